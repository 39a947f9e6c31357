"""The ledger's refusals: one family, shaped like the services' `ServiceError`.

Every error has a stable `code` and a `message` for the person. The ledger is
infrastructure and imports no service, so this is its own base class (`LedgerError`), not
a `ServiceError`; interfaces map the two families side by side. A refusal raised by
`Ledger.post` or `Ledger.genesis` has written nothing. (N818 waived, as for the services'
errors: short names read better where raised and caught.)
"""

from __future__ import annotations

from typing import ClassVar


class LedgerError(ValueError):
    code: ClassVar[str] = "ledger_refused"
    default_message: ClassVar[str] = "the ledger refused the request"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class InvalidPosting(LedgerError):  # noqa: N818
    """Malformed: an empty or overlong event key, a non-integer or zero amount, an account
    that cannot hold the currency, nothing to move."""

    code = "invalid_posting"
    default_message = "the postings are not valid"


class Unbalanced(InvalidPosting):
    """The postings of one transaction do not sum to zero."""

    code = "unbalanced"
    default_message = "a transaction's postings must sum to zero"


class InsufficientFunds(LedgerError):  # noqa: N818
    """The transaction would take an account below zero."""

    code = "insufficient_funds"
    default_message = "insufficient funds"

    def __init__(
        self,
        message: str | None = None,
        *,
        account: str = "",
        balance: int = 0,
        needed: int = 0,
    ) -> None:
        super().__init__(message)
        self.account = account
        self.balance = balance
        self.needed = needed


class MintingRefused(LedgerError):  # noqa: N818
    """Anything that would create NMR: touching the genesis account after the genesis, or
    taking NMR back out of the burn sink."""

    code = "minting_refused"
    default_message = "the supply is fixed: no NMR can be minted after the genesis"


class NoGenesis(LedgerError):  # noqa: N818
    """Nothing can be posted before the genesis transaction (`crowdquant ledger genesis`)."""

    code = "no_genesis"
    default_message = "the ledger has no genesis yet: run `crowdquant ledger genesis`"


class IdempotencyConflict(LedgerError):  # noqa: N818
    """The event key is already recorded, with other postings."""

    code = "idempotency_conflict"
    default_message = "this event is already recorded with other postings"

    def __init__(self, message: str | None = None, *, event_key: str = "") -> None:
        super().__init__(message)
        self.event_key = event_key


class LedgerTampered(LedgerError):  # noqa: N818
    """The journal does not verify (a broken hash chain, a rewritten posting, books that do
    not balance); the ledger refuses to build on it."""

    code = "ledger_tampered"
    default_message = "the ledger's journal does not verify"

    def __init__(self, message: str | None = None, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems
