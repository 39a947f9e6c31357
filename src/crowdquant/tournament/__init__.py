"""Use cases of the running tournament: accounts, models, rounds, submissions."""
