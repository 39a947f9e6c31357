"""Amounts read from people and written for people, the APIs and the charts, exactly."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdquant.money import (
    GENESIS_SUPPLY,
    MAX_AMOUNT_TEXT,
    MAX_USD,
    NMR_UNIT,
    USD_CENTS,
    AmountError,
    Currency,
    amount_text,
    console_amount,
    format_amount,
    nmr_float,
    nmr_text,
    parse_nmr,
    parse_nmr_or_zero,
    parse_usd,
    plain_digits,
    usd_dollars,
    usd_float,
    usd_text,
)


def test_units() -> None:
    assert NMR_UNIT == 10**18
    assert USD_CENTS == 100


def test_the_supply_is_eleven_million_nmr_in_smallest_units() -> None:
    assert NMR_UNIT == 10**18
    assert GENESIS_SUPPLY == 11_000_000 * 10**18
    assert Currency.NMR.decimals == 18
    assert Currency.USD.decimals == 2


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (GENESIS_SUPPLY, Currency.NMR, "11,000,000 NMR"),
        (15 * NMR_UNIT // 10, Currency.NMR, "1.5 NMR"),
        (1, Currency.NMR, "0.000000000000000001 NMR"),
        (0, Currency.NMR, "0 NMR"),
        (-25 * NMR_UNIT, Currency.NMR, "-25 NMR"),
        (10**37 + 1, Currency.NMR, "10,000,000,000,000,000,000.000000000000000001 NMR"),
        (123456, Currency.USD, "1,234.56 USD"),
        (-5, Currency.USD, "-0.05 USD"),
        (0, Currency.USD, "0.00 USD"),
    ],
)
def test_amounts_are_shown_exactly(amount: int, currency: Currency, shown: str) -> None:
    assert format_amount(amount, currency) == shown


@pytest.mark.parametrize(
    ("units", "written"),
    [
        (0, "0"),
        (1, "0.000000000000000001"),
        (15 * 10**17, "1.5"),
        (100 * NMR_UNIT, "100"),
        (-5 * 10**17, "-0.5"),
        (GENESIS_SUPPLY, "11000000"),
        (GENESIS_SUPPLY - 1, "10999999.999999999999999999"),
    ],
)
def test_nmr_text_writes_amounts_exactly(units: int, written: str) -> None:
    assert nmr_text(units) == written
    assert amount_text(units, Currency.NMR) == written
    if units > 0:
        assert parse_nmr(written) == units


def test_nmr_text_stays_exact_beyond_the_supply() -> None:
    assert nmr_text(10**37 + 1) == "10000000000000000000.000000000000000001"


@pytest.mark.parametrize(
    ("cents", "dollars", "shown"),
    [
        (1234, "12.34", "$12.34"),
        (-5, "-0.05", "-$0.05"),
        (0, "0.00", "$0.00"),
        (123456789, "1234567.89", "$1,234,567.89"),
    ],
)
def test_usd_is_written_in_dollars_and_cents(cents: int, dollars: str, shown: str) -> None:
    assert usd_text(cents) == amount_text(cents, Currency.USD) == dollars
    assert usd_dollars(cents) == shown


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("abc", "'abc' is not an amount of NMR"),
        ("1,5", "'1,5' is not an amount of NMR"),
        ("1" * 65, "is not an amount of NMR"),
        ("0", "'0' is not a positive amount of NMR"),
        ("NaN", "'NaN' is not a positive amount of NMR"),
        ("1.0000000000000000001", "'1.0000000000000000001' has more than 18 decimals"),
        ("11000000.000000000000000001", "is more NMR than there is"),
    ],
)
def test_parse_nmr_says_what_is_wrong(written: str, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        parse_nmr(written)
    assert issubclass(AmountError, ValueError)


@pytest.mark.parametrize(
    ("written", "units"),
    [
        ("0", 0),
        ("0.000", 0),
        ("-0", 0),
        ("0,000", 0),
        ("1.5", 15 * 10**17),
        ("1,000", 1000 * NMR_UNIT),
    ],
)
def test_parse_nmr_or_zero_reads_a_written_zero(written: str, units: int) -> None:
    assert parse_nmr_or_zero(written) == units


@pytest.mark.parametrize("written", ["-1", "abc", "1e-19", ""])
def test_parse_nmr_or_zero_refuses_what_parse_nmr_refuses(written: str) -> None:
    with pytest.raises(AmountError):
        parse_nmr_or_zero(written)


@pytest.mark.parametrize(
    ("written", "cents"),
    [("1000", 100_000), ("3603.05", 360_305), ("0.1", 10), ("1,000", 100_000), ("-2.50", -250)],
)
def test_parse_usd_reads_dollars_in_cents(written: str, cents: int) -> None:
    assert parse_usd(written) == cents


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("lots", "'lots' is not an amount of USD"),
        ("Infinity", "'Infinity' is not an amount of USD"),
        ("1.005", "'1.005': USD amounts have at most 2 decimals"),
        ("1e2", "'1e2' is not an amount of USD: write amounts without an exponent"),
        ("1" * 20, "is more USD than the books hold"),
    ],
)
def test_parse_usd_refuses_what_is_not_dollars_and_cents(written: str, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        parse_usd(written)


def test_floats_for_charts_and_weights() -> None:
    assert nmr_float(15 * 10**17) == 1.5
    assert nmr_float(-NMR_UNIT) == -1.0
    assert usd_float(1234) == 12.34


PARSERS = [parse_nmr, parse_nmr_or_zero, parse_usd]


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("1e999999", "without an exponent"),
        ("1E-3", "without an exponent"),
        ("2.5e2", "without an exponent"),
        (".5e1", "without an exponent"),
        ("1_000", "without underscores"),
        ("1_0.5", "without underscores"),
        ("\uff11\uff10", "with the digits 0-9"),  # full-width 10
        ("\u0661\u0660", "with the digits 0-9"),  # Arabic-Indic 10
        ("1\u0665", "with the digits 0-9"),
        ("+1", "without a plus sign"),
        ("1" * 65, f"over {MAX_AMOUNT_TEXT} characters"),
    ],
)
def test_every_parser_names_what_is_wrong_with_an_amount(
    parse: Callable[[str], int], written: str, problem: str
) -> None:
    with pytest.raises(AmountError, match=re.escape(problem)):
        parse(written)


@pytest.mark.parametrize("written", ["--1", "1-", "- 1", "1.2.3", "1,00", ",100", "0x10", "1 000"])
@pytest.mark.parametrize("parse", PARSERS)
def test_every_parser_refuses_what_is_not_written_as_a_decimal(
    parse: Callable[[str], int], written: str
) -> None:
    with pytest.raises(AmountError, match="is not an amount of"):
        parse(written)


@given(st.text(max_size=80))
def test_parsers_answer_any_text_with_an_amount_or_an_amount_error(written: str) -> None:
    """Whatever is written, a parser answers an amount or says what is wrong: never another
    error (no overflow), and it accepts only ASCII digits, commas, a point and a minus sign."""
    for parse in PARSERS:
        try:
            parse(written)
        except AmountError:
            continue
        assert re.fullmatch(r"-?[0-9,.]+", written.strip(), re.ASCII)


@given(st.integers(min_value=1, max_value=GENESIS_SUPPLY))
def test_parse_nmr_reads_back_every_amount_nmr_text_writes(units: int) -> None:
    assert parse_nmr(nmr_text(units)) == parse_nmr_or_zero(nmr_text(units)) == units


@given(st.integers(min_value=-MAX_USD, max_value=MAX_USD))
def test_parse_usd_reads_back_every_amount_usd_text_writes(cents: int) -> None:
    assert parse_usd(usd_text(cents)) == cents


@given(st.integers(min_value=1, max_value=10**40), st.integers(min_value=0, max_value=40))
def test_huge_and_tiny_amounts_are_refused_by_name(digits: int, decimals: int) -> None:
    written = f"{digits}e{decimals}"
    for parse in PARSERS:
        with pytest.raises(AmountError, match="without an exponent"):
            parse(written)


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("1e-05", "0.00001"),  # str(0.00001): how numerapi sends a small float
        ("1.5e-07", "0.00000015"),
        ("1E-7", "0.0000001"),  # str(Decimal("0.0000001"))
        ("1.5E-10", "0.00000000015"),
        ("1e+16", "10000000000000000"),
        ("1e-3", "1e-3"),  # not how Python writes 0.001: left for the parser to refuse
        ("1e999999", "1e999999"),  # no float, and too long to write out
        ("1E+999999999", "1E+999999999"),
        ("1E-05", "1E-05"),
        ("1.5", "1.5"),
        ("abc", "abc"),
    ],
)
def test_plain_digits_reads_only_what_str_of_a_number_writes(sent: str, read: str) -> None:
    assert plain_digits(sent) == read


@given(st.floats(min_value=1e-18, max_value=11e6))
def test_numerapi_float_amounts_read_as_their_decimal(amount: float) -> None:
    written = plain_digits(str(amount))
    assert "e" not in written
    assert Decimal(written) == Decimal(repr(amount))


@given(st.decimals(min_value=Decimal("1e-18"), max_value=11_000_000, places=18))
def test_numerapi_decimal_amounts_read_as_their_units(amount: Decimal) -> None:
    assert parse_nmr(plain_digits(str(amount))) == int(amount * NMR_UNIT)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (15_639_893_379_281_908_600, Currency.NMR, "15.6399 NMR"),
        (-15_639_893_379_281_908_600, Currency.NMR, "-15.6399 NMR"),
        (1_234_500_050_000_000_000_000, Currency.NMR, "1,234.5 NMR"),  # 0.00005 rounds to even
        (1_234_500_150_000_000_000_000, Currency.NMR, "1,234.5002 NMR"),
        (99_999_960_000_000_000, Currency.NMR, "0.1 NMR"),
        (-40_000_000_000_000, Currency.NMR, "0 NMR"),
        (2 * NMR_UNIT, Currency.NMR, "2 NMR"),
        (-1205, Currency.USD, "-12.05 USD"),
    ],
)
def test_console_amounts_show_at_most_four_decimals(
    amount: int, currency: Currency, shown: str
) -> None:
    assert console_amount(amount, currency) == shown


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_a_console_amount_is_within_half_a_ten_thousandth_of_the_exact_one(units: int) -> None:
    shown = console_amount(units, Currency.NMR).removesuffix(" NMR").replace(",", "")
    assert len(shown.partition(".")[2]) <= 4
    assert abs(Decimal(shown) * NMR_UNIT - units) <= NMR_UNIT // 20_000
