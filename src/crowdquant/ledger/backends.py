"""The ledger backend the settings choose (`Settings.ledger_backend`).

A backend is a module of its own plus one line in `BACKENDS`: the name the settings use,
mapped to a function that opens it. Each backend is imported only when chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from crowdquant.clock import Clock
from crowdquant.ledger.interface import Ledger
from crowdquant.settings import Settings

LedgerFactory = Callable[[Settings, Clock], Ledger]


def _sql(settings: Settings, clock: Clock) -> Ledger:
    from crowdquant.ledger.sql import SqlLedger

    del settings  # the books live in the application's database
    return SqlLedger(clock)


def _evm(settings: Settings, clock: Clock) -> Ledger:
    from crowdquant.ledger.evm.backend import EvmLedger

    return EvmLedger(settings, clock)


BACKENDS: Mapping[str, LedgerFactory] = {"sql": _sql, "evm": _evm}


def ledger_from_settings(settings: Settings, clock: Clock) -> Ledger:
    """The ledger backend `settings` chooses, keeping time by `clock`."""
    return BACKENDS[settings.ledger_backend](settings, clock)
