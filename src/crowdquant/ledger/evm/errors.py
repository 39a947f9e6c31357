"""Refusals on the chain side, in the ledger's family (`LedgerError`: a code, a message;
N818 waived, as for the ledger's other errors)."""

from __future__ import annotations

from crowdquant.ledger.errors import LedgerError


class ChainConfigError(LedgerError):
    """The chain settings are missing, malformed or point at another chain."""

    code = "chain_config"
    default_message = "the chain settings are not usable"


class ChainCallRefused(LedgerError):  # noqa: N818
    """The node says the call would revert: nothing was signed, recorded or sent."""

    code = "chain_call_refused"
    default_message = "the chain refused the call"


class ChainTransactionReverted(LedgerError):  # noqa: N818
    """The transaction was mined and reverted; its business key stays spent."""

    code = "chain_transaction_reverted"
    default_message = "the transaction reverted on chain"


class BusinessKeyConflict(LedgerError):  # noqa: N818
    """A business key already names another call."""

    code = "business_key_conflict"
    default_message = "the business key already names another call"
