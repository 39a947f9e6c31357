"""Reading the rules' inputs: scores at their repr, keys checked unique."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crowdquant.payouts.inputs import check_unique, float_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.02, "0.02"), (0.1, "0.1"), (-0.05, "-0.05"), (1e-20, "1E-20"), (3, "3.0")],
)
def test_float_decimal_reads_the_repr(value: float, expected: str) -> None:
    assert float_decimal(value) == Decimal(expected)


def test_float_decimal_is_not_the_binary_value() -> None:
    assert float_decimal(0.02) != Decimal.from_float(0.02)


def test_check_unique_names_the_duplicates() -> None:
    check_unique(["a", "b", "c"])
    with pytest.raises(ValueError, match=r"duplicate keys: \['a', 'b'\]"):
        check_unique(["b", "a", "c", "a", "b", "b"])
