"""What the REST API reads and answers, kept apart from the database models: one module per
router.

Times are UTC, ISO 8601 with ``Z``. Ids are UUID strings. Token amounts, when they appear,
are decimal strings in NMR (the database keeps integers of 10^-18 NMR). Answers are read
from the objects the services return (``TournamentOut.model_validate(tournament)``); inputs
refuse fields they do not know.
"""
