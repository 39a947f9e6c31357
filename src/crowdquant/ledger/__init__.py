"""The books: an append-only, double-entry, hash-chained ledger of NMR and USD.

Services see the `Ledger` protocol and the vocabulary below; `ledger_from_settings` opens
the backend the settings choose (`ledger.backends`), by default the books in the
application's database, `crowdquant.ledger.sql.SqlLedger` (imported only when chosen, so
that importing this package never pulls in the database models).
"""

from __future__ import annotations

from crowdquant.ledger.accounts import (
    BURNED,
    GENESIS,
    OPERATOR_FUNDING,
    TREASURY,
    AccountId,
    AccountKind,
    prize_pool,
    release,
    stake,
    wallet,
)
from crowdquant.ledger.audit import SOUND, AuditReport, Problem
from crowdquant.ledger.backends import ledger_from_settings
from crowdquant.ledger.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidPosting,
    LedgerError,
    LedgerTampered,
    MintingRefused,
    NoGenesis,
    Unbalanced,
)
from crowdquant.ledger.interface import (
    Entry,
    Ledger,
    NewTransaction,
    Posting,
    Transaction,
    transfer,
)
from crowdquant.ledger.rules import GENESIS_EVENT_KEY

__all__ = [
    "BURNED",
    "GENESIS",
    "GENESIS_EVENT_KEY",
    "OPERATOR_FUNDING",
    "SOUND",
    "TREASURY",
    "AccountId",
    "AccountKind",
    "AuditReport",
    "Entry",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidPosting",
    "Ledger",
    "LedgerError",
    "LedgerTampered",
    "MintingRefused",
    "NewTransaction",
    "NoGenesis",
    "Posting",
    "Problem",
    "Transaction",
    "Unbalanced",
    "ledger_from_settings",
    "prize_pool",
    "release",
    "stake",
    "transfer",
    "wallet",
]
