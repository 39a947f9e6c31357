"""Choices stored in the database, importable without SQLAlchemy (the CLI uses them)."""

from __future__ import annotations

import enum


class Rules(enum.StrEnum):
    """Which scoring and payout rules a tournament plays by."""

    CLASSIC = "classic"
    RULES2017 = "legacy2017"  # the stored value, as the database, CLI and API know it
    ROUND_STAKE = "round-stake"  # classic scores, a stake per round (Numerai's 2026 rule)


class Cadence(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class ApiScope(enum.StrEnum):
    """What an API key may do."""

    READ = "read"
    UPLOAD = "upload"
    STAKE = "stake"
