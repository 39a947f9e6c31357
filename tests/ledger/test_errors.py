"""The ledger's refusals: one family with a stable code and a message, like ServiceError."""

from __future__ import annotations

import inspect

from crowdquant import ledger
from crowdquant.ledger import errors
from crowdquant.ledger.errors import InsufficientFunds, LedgerError, Unbalanced


def _families() -> list[type[LedgerError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, LedgerError)
    ]


def test_every_error_has_its_own_code_and_a_default_message() -> None:
    families = _families()
    assert len(families) == 8
    codes = [cls.code for cls in families]
    assert len(set(codes)) == len(codes)
    for cls in families:
        error = cls()
        assert error.message == cls.default_message == str(error)
        assert isinstance(error, ValueError)
        assert getattr(ledger, cls.__name__) is cls  # exported by the package


def test_a_message_replaces_the_default_and_details_ride_along() -> None:
    error = InsufficientFunds("wallet is short", account="wallet:x", balance=1, needed=2)
    assert (error.message, error.account, error.balance, error.needed) == (
        "wallet is short",
        "wallet:x",
        1,
        2,
    )
    assert Unbalanced().code == "unbalanced"
    assert isinstance(Unbalanced(), errors.InvalidPosting)
