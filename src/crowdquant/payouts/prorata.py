"""Scaling claims down pro rata to what is available."""

from __future__ import annotations

from collections.abc import Mapping


def scale_to(available: int, amounts: Mapping[str, int]) -> dict[str, int]:
    """The amounts unchanged if they fit in `available`, else each scaled down pro rata.

    Each scaled amount is floor(amount × available / total), so the sum never exceeds
    `available` (the few units lost to rounding stay unpaid).
    """
    if available < 0:
        raise ValueError(f"available must not be negative, got {available}")
    negative = sorted(key for key, amount in amounts.items() if amount < 0)
    if negative:
        raise ValueError(f"amounts must not be negative: {negative}")
    total = sum(amounts.values())
    if total <= available:
        return dict(amounts)
    return {key: amount * available // total for key, amount in amounts.items()}
