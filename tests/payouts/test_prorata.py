"""Pro rata scaling: unchanged when it fits, floored shares otherwise, never over."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdquant.payouts import scale_to


def test_unchanged_when_it_fits() -> None:
    amounts = {"a": 3, "b": 7}
    assert scale_to(10, amounts) == amounts
    assert scale_to(100, amounts) == amounts
    assert scale_to(0, {}) == {}
    assert scale_to(0, {"a": 0}) == {"a": 0}


def test_scaled_down_with_floors() -> None:
    assert scale_to(5, {"a": 3, "b": 7}) == {"a": 1, "b": 3}  # 1.5, 3.5: one unit unpaid
    assert scale_to(0, {"a": 3, "b": 7}) == {"a": 0, "b": 0}
    assert scale_to(50, {"a": 30, "b": 70, "c": 0}) == {"a": 15, "b": 35, "c": 0}


def test_negative_amounts_and_availability_are_refused() -> None:
    with pytest.raises(ValueError, match=r"amounts must not be negative: \['b'\]"):
        scale_to(10, {"a": 1, "b": -1})
    with pytest.raises(ValueError, match="available must not be negative"):
        scale_to(-1, {"a": 1})


@given(
    st.integers(0, 10**24),
    st.dictionaries(st.text(max_size=3), st.integers(0, 10**24), max_size=8),
)
def test_never_more_than_available_nor_claimed(available: int, amounts: dict[str, int]) -> None:
    scaled = scale_to(available, amounts)
    assert scaled.keys() == amounts.keys()
    assert sum(scaled.values()) <= max(available, sum(amounts.values()))
    total = sum(amounts.values())
    if total > available:
        assert sum(scaled.values()) <= available
        assert available - sum(scaled.values()) < max(len(amounts), 1)  # at most a unit each
    for key, amount in amounts.items():
        assert 0 <= scaled[key] <= amount
