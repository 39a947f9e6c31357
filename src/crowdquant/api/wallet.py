"""Wallet amounts as both APIs write them: decimal strings of the currency's unit."""

from __future__ import annotations

from crowdquant.ledger import Currency
from crowdquant.tournament.staking import nmr_text


def usd_text(cents: int) -> str:
    """US cents as a decimal string of dollars: 1234 → "12.34", -5 → "-0.05"."""
    whole, fraction = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{fraction:02d}"


def amount_text(amount: int, currency: Currency) -> str:
    """An amount in `currency`'s smallest unit as a decimal string ("1.5", "12.34")."""
    return nmr_text(amount) if currency is Currency.NMR else usd_text(amount)
