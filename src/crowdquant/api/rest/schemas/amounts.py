"""Token amounts at the API's edge: decimal strings of NMR (and dollars) in answers, and the
amounts inputs take, written and read by `crowdquant.money`.

The database keeps integers in the smallest unit (10^-18 NMR, US cents); `NmrText` and
`UsdText` read such an integer into an answer's decimal string.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from crowdquant.money import nmr_text, parse_nmr, parse_nmr_or_zero, usd_text

NmrText = Annotated[str, BeforeValidator(nmr_text)]
"""An answer's amount of NMR, read from 10^-18 units."""
UsdText = Annotated[str, BeforeValidator(usd_text)]
"""An answer's amount of dollars, read from cents."""


def _positive_nmr(text: str) -> str:
    parse_nmr(text)
    return text


def _nmr_or_zero(text: str) -> str:
    parse_nmr_or_zero(text)
    return text


NMR_AMOUNT = (
    "A plain decimal string of NMR: digits 0-9, at most 18 decimals, no exponent, underscore"
    ' or plus sign, e.g. `"1.5"` or `"1,000"`.'
)
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
