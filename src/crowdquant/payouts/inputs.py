"""Reading the rules' inputs: scores at the decimal people see, keys checked unique."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal


def float_decimal(value: float) -> Decimal:
    """A float as the Decimal of its shortest repr: 0.02 is 2/100, not its binary neighbour.

    Scores and losses arrive as floats; reading them at their repr makes payouts match the
    numbers people see (and the worked examples) exactly.
    """
    return Decimal(repr(float(value)))


def check_unique(keys: Iterable[str]) -> None:
    """ValueError naming the keys that appear more than once."""
    duplicates = sorted(key for key, n in Counter(keys).items() if n > 1)
    if duplicates:
        raise ValueError(f"duplicate keys: {duplicates}")
