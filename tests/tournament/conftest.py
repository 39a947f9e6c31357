"""The scored round fixture, shared by the scoring and leaderboard tests."""

from .scored_round import world

__all__ = ["world"]
