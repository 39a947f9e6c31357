"""Schema revisions, oldest first: `rev_<id>_<slug>.py`."""
