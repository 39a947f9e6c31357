"""Amounts of money: integers in a currency's smallest unit, 10^-18 NMR or US cents.

Amounts are read from what people write (`parse_nmr`, `parse_nmr_or_zero`, `parse_usd`) and
written for them (`format_amount`, `usd_dollars`), for the APIs (`nmr_text`, `usd_text`) and
for charts and scoring weights (`nmr_float`, `usd_float`) here only; everywhere else they
stay integers.
"""

from __future__ import annotations

import enum
import re
from decimal import Decimal, InvalidOperation, localcontext

NMR_UNIT = 10**18
"""10^-18 NMR units in one NMR."""

USD_CENTS = 100
"""Cents in one US dollar."""

GENESIS_SUPPLY = 11_000_000 * NMR_UNIT
"""The fixed supply, minted once by the genesis transaction into the treasury; no more ever."""

MAX_AMOUNT_TEXT = 64
THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")


class Currency(enum.StrEnum):
    NMR = "NMR"
    """Numeraire, counted in 10^-18 NMR."""
    USD = "USD"
    """US dollars, counted in cents."""

    @property
    def decimals(self) -> int:
        """How many decimal places one smallest unit is: 18 for NMR, 2 for USD."""
        return 18 if self is Currency.NMR else 2


class AmountError(ValueError):
    """Text that is not an amount; the message says what is wrong with it."""


def parse_nmr(text: str | int | float | Decimal) -> int:
    """A positive NMR amount written by a person ("1.5", "6.75", "1e-3", "1,000") in 10^-18
    units, exactly: more than 18 decimals, or more than the supply, is refused, never
    rounded."""
    written = str(text).strip()
    if len(written) > MAX_AMOUNT_TEXT or ("," in written and not THOUSANDS.fullmatch(written)):
        raise AmountError(f"{text!r} is not an amount of NMR")
    try:
        value = Decimal(written.replace(",", ""))
    except InvalidOperation:
        raise AmountError(f"{text!r} is not an amount of NMR") from None
    if not value.is_finite() or value <= 0:
        raise AmountError(f"{text!r} is not a positive amount of NMR")
    with localcontext() as exact:
        exact.prec = 2 * MAX_AMOUNT_TEXT  # enough digits that nothing is rounded
        units = value * NMR_UNIT
        if units != units.to_integral_value():
            raise AmountError(f"{text!r} has more than 18 decimals")
    if units > GENESIS_SUPPLY:
        raise AmountError(f"{text!r} is more NMR than there is")
    return int(units)


def parse_nmr_or_zero(text: str) -> int:
    """`parse_nmr`, or 0 for a written zero ("0", "0.00", "-0")."""
    try:
        if Decimal(text.replace(",", "").strip()) == 0:
            return 0
    except ArithmeticError:
        pass  # parse_nmr says what is wrong with it
    return parse_nmr(text)


def parse_usd(text: str) -> int:
    """US dollars written by a person ("1000", "3603.05") in cents, exactly: more than 2
    decimals is refused, never rounded."""
    try:
        cents = Decimal(text) * USD_CENTS
    except InvalidOperation:
        raise AmountError(f"{text!r} is not an amount of USD") from None
    if not cents.is_finite():
        raise AmountError(f"{text!r} is not an amount of USD")
    if cents != cents.to_integral_value():
        raise AmountError(f"{text!r}: USD amounts have at most 2 decimals")
    return int(cents)


def _digits(amount: int, currency: Currency) -> tuple[str, int, str]:
    """The sign, whole units and fraction digits of `amount` (NMR's trailing zeros dropped)."""
    whole, fraction = divmod(abs(amount), 10**currency.decimals)
    digits = f"{fraction:0{currency.decimals}d}"
    if currency is Currency.NMR:
        digits = digits.rstrip("0")
    return "-" if amount < 0 else "", whole, digits


def format_amount(amount: int, currency: Currency) -> str:
    """`amount` smallest units for a person: `1,234.5 NMR`, `-12.00 USD` (exact, no rounding)."""
    sign, whole, digits = _digits(amount, currency)
    return f"{sign}{whole:,}{'.' if digits else ''}{digits} {currency.value}"


def usd_dollars(cents: int) -> str:
    """US cents for a person, with the dollar sign: "$1,234.50", "-$0.05"."""
    sign, whole, digits = _digits(cents, Currency.USD)
    return f"{sign}${whole:,}.{digits}"


def amount_text(amount: int, currency: Currency) -> str:
    """An amount as the APIs write it: a plain decimal string ("1.5", "0", "12.34"), exact."""
    sign, whole, digits = _digits(amount, currency)
    return f"{sign}{whole}{'.' if digits else ''}{digits}"


def nmr_text(units: int) -> str:
    """10^-18 NMR units as a plain decimal string of NMR: 1500000000000000000 → "1.5"."""
    return amount_text(units, Currency.NMR)


def usd_text(cents: int) -> str:
    """US cents as a plain decimal string of dollars: 1234 → "12.34", -5 → "-0.05"."""
    return amount_text(cents, Currency.USD)


def nmr_float(units: int) -> float:
    """10^-18 NMR units as a float of NMR, for charts and weights (not exact)."""
    return units / NMR_UNIT


def usd_float(cents: int) -> float:
    """US cents as a float of dollars, for charts (not exact)."""
    return cents / USD_CENTS
