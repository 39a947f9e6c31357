"""Amounts of money: integers in a currency's smallest unit, 10^-18 NMR or US cents.

Amounts are read from what people write (`parse_nmr`, `parse_nmr_or_zero`, `parse_usd`: plain
decimals only, never an exponent; `plain_digits` for what numerapi sends) and
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
"""The longest amount a person may write, separators and decimals included."""

MAX_USD = 10**15 * USD_CENTS
"""A quadrillion dollars: the most one written USD amount may be, so it fits the books."""

DECIMAL = re.compile(r"-?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]*)?|-?\.[0-9]+", re.ASCII)
"""What a written amount looks like: ASCII digits, an optional minus sign, thousands commas,
a decimal point."""
EXPONENT = re.compile(r"[0-9.][eE][+-]?[0-9]")
NOT_A_NUMBER = {"nan", "snan", "inf", "infinity"}


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


def _written(text: str | int | float | Decimal) -> str:
    """`text` as a person would have written it: stripped; a number in plain digits."""
    if isinstance(text, str):
        return text.strip()
    number = Decimal(str(text))
    return format(number, "f") if number.is_finite() else str(number)


def _problem(written: str) -> str | None:
    """What makes `written` not an amount, named, where it is a common slip."""
    if any(char.isdigit() and not char.isascii() for char in written):
        return "write amounts with the digits 0-9"
    if "_" in written:
        return "write amounts without underscores"
    if EXPONENT.search(written):
        return "write amounts without an exponent"
    if written.startswith("+"):
        return "write amounts without a plus sign"
    return None


def _read(text: str | int | float | Decimal, currency: Currency, positive: bool) -> Decimal:
    """The decimal number `text` writes, exactly, in `currency`'s whole units; `AmountError`
    naming what is wrong otherwise (never an exponent, so never an overflow)."""
    written = _written(text)
    if len(written) > MAX_AMOUNT_TEXT:
        raise AmountError(
            f"{text!r} is not an amount of {currency}: over {MAX_AMOUNT_TEXT} characters"
        )
    if DECIMAL.fullmatch(written):
        return Decimal(written.replace(",", ""))
    if problem := _problem(written):
        raise AmountError(f"{text!r} is not an amount of {currency}: {problem}")
    if written.lower().lstrip("+-") in NOT_A_NUMBER:
        kind = "a positive amount" if positive else "an amount"
        raise AmountError(f"{text!r} is not {kind} of {currency}")
    raise AmountError(f"{text!r} is not an amount of {currency}")


def _scaled(value: Decimal, currency: Currency) -> Decimal:
    """`value` whole units in smallest units, exactly (a fraction if it has too many decimals)."""
    with localcontext() as exact:
        exact.prec = 2 * MAX_AMOUNT_TEXT  # enough digits that nothing is rounded
        return value.scaleb(currency.decimals)


def plain_digits(text: str) -> str:
    """`text` in plain digits where it is exactly how Python writes a float or a Decimal with
    an exponent ("1e-05" → "0.00001", "1E-7" → "0.0000001"): numerapi sends amounts as
    `str(nmr)`. Any other text unchanged, for the parsers to judge."""
    if not EXPONENT.search(text):
        return text
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if not number.is_finite() or abs(number.adjusted()) > MAX_AMOUNT_TEXT:
        return text
    if text not in (repr(float(number)), str(number)):
        return text
    return format(number, "f")


def parse_nmr(text: str | int | float | Decimal) -> int:
    """A positive NMR amount written by a person ("1.5", "6.75", "1,000") in 10^-18 units,
    exactly: exponents, underscores, signs and digits other than 0-9 are refused, and so is
    more than 18 decimals or more than the supply, never rounded."""
    value = _read(text, Currency.NMR, positive=True)
    if value <= 0:
        raise AmountError(f"{text!r} is not a positive amount of NMR")
    units = _scaled(value, Currency.NMR)
    if units != units.to_integral_value():
        raise AmountError(f"{text!r} has more than 18 decimals")
    if units > GENESIS_SUPPLY:
        raise AmountError(f"{text!r} is more NMR than there is")
    return int(units)


def parse_nmr_or_zero(text: str) -> int:
    """`parse_nmr`, or 0 for a written zero ("0", "0.00", "-0")."""
    return 0 if _read(text, Currency.NMR, positive=True) == 0 else parse_nmr(text)


def parse_usd(text: str) -> int:
    """US dollars written by a person ("1000", "3603.05", "-2.50") in cents, exactly: exponents,
    underscores, a plus sign and digits other than 0-9 are refused, and so is more than 2
    decimals or more than `MAX_USD`, never rounded."""
    cents = _scaled(_read(text, Currency.USD, positive=False), Currency.USD)
    if cents != cents.to_integral_value():
        raise AmountError(f"{text!r}: USD amounts have at most 2 decimals")
    if abs(cents) > MAX_USD:
        raise AmountError(f"{text!r} is more USD than the books hold")
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


CONSOLE_DECIMALS = 4


def console_amount(amount: int, currency: Currency) -> str:
    """`amount` smallest units for a console line, rounded half to even to at most four
    decimals: `15.6399 NMR`, `-12.00 USD`. Rounded for reading only: the data and the APIs
    keep the exact amount."""
    places = min(CONSOLE_DECIMALS, currency.decimals)
    step = 10 ** (currency.decimals - places)
    quotient, remainder = divmod(abs(amount), step)
    if 2 * remainder > step or (2 * remainder == step and quotient % 2 == 1):
        quotient += 1
    rounded = (quotient * step) * (-1 if amount < 0 else 1)
    return format_amount(rounded, currency)
