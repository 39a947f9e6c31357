"""Money the operator puts in: NMR granted to participants, USD for prize pools.

NMR is never minted: a grant moves it from the treasury (the genesis supply) to a wallet.
USD comes from outside the books (`operator_funding`, which goes negative by what the
operator has put in) into a tournament's prize pool, which pays the 2017 rules' awards and
prizes. Both are idempotent on the operator's `reference`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from crowdquant.db.models import Tournament
from crowdquant.ledger import (
    OPERATOR_FUNDING,
    TREASURY,
    Ledger,
    Transaction,
    prize_pool,
    transfer,
)
from crowdquant.money import Currency, format_amount
from crowdquant.tournament.errors import ServiceError


class FundingError(ServiceError):
    code = "funding_refused"


def treasury_balance(session: Session, ledger: Ledger) -> int:
    """The NMR (10^-18 units) the treasury still holds for grants and rewards."""
    return ledger.balance(session, TREASURY, Currency.NMR)


def fund_prize_pool(
    session: Session, ledger: Ledger, tournament: Tournament, cents: int, reference: str
) -> Transaction:
    """Put `cents` USD into `tournament`'s prize pool (idempotent on `reference`)."""
    if cents <= 0:
        raise FundingError("prize money is a positive amount of USD")
    return ledger.post(
        session,
        f"prize-funding:{reference}",
        Currency.USD,
        transfer(OPERATOR_FUNDING, prize_pool(tournament.id), cents),
        memo=f"{format_amount(cents, Currency.USD)} into tournament {tournament.number}'s prizes",
    )
