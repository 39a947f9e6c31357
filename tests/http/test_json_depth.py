"""JSON nesting is measured before parsing, strings skipped."""

from __future__ import annotations

import pytest

from crowdquant.http.json_depth import MAX_JSON_DEPTH, nested_deeper_than


@pytest.mark.parametrize(
    ("body", "deeper"),
    [
        (b"[" * 100_000, True),
        (b'{"a":' * (MAX_JSON_DEPTH + 1), True),
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, False),
        (b"[]" * 10_000, False),  # many brackets, none inside another
        (b'["' + b"[" * 10_000 + b'"]', False),  # brackets in a string do not count
        (b'["\\"' + b"[" * 10_000 + b'"]', False),  # nor after an escaped quote
        (b'{"query": "{ rounds { number } }"}', False),
    ],
)
def test_nesting_is_counted_outside_strings(body: bytes, deeper: bool) -> None:
    assert nested_deeper_than(body) is deeper


def test_the_limit_is_exact() -> None:
    assert not nested_deeper_than(b"[[[]]]", limit=3)
    assert nested_deeper_than(b"[[[[]]]]", limit=3)
