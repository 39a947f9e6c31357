"""Token amounts at the API's edge: decimal strings of NMR (and dollars) in answers, and the
amounts inputs take.

The database keeps integers in the smallest unit (10^-18 NMR, US cents); `NmrText` and
`UsdText` read such an integer into an answer's decimal string.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from crowdquant.api.wallet import usd_text
from crowdquant.tournament.staking import InvalidStakeAmount, parse_nmr

TOKEN_DECIMALS = 18


def nmr(units: int) -> str:
    """An amount of 10^-18 NMR units as a decimal string of NMR: 1500000000000000000 → "1.5"."""
    whole, fraction = divmod(abs(units), 10**TOKEN_DECIMALS)
    digits = f"{fraction:0{TOKEN_DECIMALS}d}".rstrip("0")
    return ("-" if units < 0 else "") + str(whole) + (f".{digits}" if digits else "")


NmrText = Annotated[str, BeforeValidator(nmr)]
"""An answer's amount of NMR, read from 10^-18 units."""
UsdText = Annotated[str, BeforeValidator(usd_text)]
"""An answer's amount of dollars, read from cents."""


def _positive_nmr(text: str) -> str:
    try:
        parse_nmr(text)
    except InvalidStakeAmount as exc:
        raise ValueError(exc.message) from None
    return text


def _is_zero(text: str) -> bool:
    try:
        return Decimal(text.replace(",", "").strip()) == 0
    except ArithmeticError:
        return False  # parse_nmr says what is wrong with it


def _nmr_or_zero(text: str) -> str:
    return text if _is_zero(text) else _positive_nmr(text)


def nmr_units(text: str) -> int:
    """A validated amount of NMR (`NmrAmount`, `NmrAmountOrZero`) in 10^-18 units."""
    return 0 if _is_zero(text) else parse_nmr(text)


NMR_AMOUNT = 'A decimal string of NMR with at most 18 decimals, e.g. `"1.5"`.'
NmrAmount = Annotated[
    str,
    Field(min_length=1, max_length=64, description="A positive amount. " + NMR_AMOUNT),
    AfterValidator(_positive_nmr),
]
NmrAmountOrZero = Annotated[
    str,
    Field(min_length=1, max_length=64, description="An amount, or 0. " + NMR_AMOUNT),
    AfterValidator(_nmr_or_zero),
]
