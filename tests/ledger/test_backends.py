"""The ledger backend is chosen by the settings."""

from __future__ import annotations

from typing import get_args

from crowdquant.clock import SystemClock
from crowdquant.ledger import ledger_from_settings
from crowdquant.ledger.backends import BACKENDS
from crowdquant.ledger.sql import SqlLedger
from crowdquant.settings import Settings


def test_the_default_backend_is_the_books_in_the_database() -> None:
    assert Settings().ledger_backend == "sql"
    assert isinstance(ledger_from_settings(Settings(), SystemClock()), SqlLedger)


def test_every_backend_the_settings_allow_is_registered() -> None:
    allowed = get_args(Settings.model_fields["ledger_backend"].annotation)
    assert set(BACKENDS) == set(allowed)
