"""The scoring inputs kept in memory between passes: served only for the same submissions,
the least recently scored round forgotten first."""

from __future__ import annotations

import uuid
from typing import cast

from crowdquant.tournament.scoring import InputsCache, RoundInputs


def inputs(label: str) -> RoundInputs:
    return cast(RoundInputs, label)  # the cache never looks inside


def test_an_entry_serves_only_the_submissions_it_was_read_with() -> None:
    cache, round_id = InputsCache(), uuid.uuid4()
    first = (uuid.uuid4(), "benchmark")
    cache.put(round_id, first, inputs("a"))
    assert cache.get(round_id, first) == "a"
    assert cache.get(round_id, (*first, uuid.uuid4())) is None  # a late upload arrived
    assert cache.get(uuid.uuid4(), first) is None
    cache.forget(round_id)
    assert cache.get(round_id, first) is None


def test_the_least_recently_scored_round_is_forgotten_first() -> None:
    cache = InputsCache(rounds=2)
    rounds = [uuid.uuid4() for _ in range(3)]
    cache.put(rounds[0], (), inputs("0"))
    cache.put(rounds[1], (), inputs("1"))
    assert cache.get(rounds[0], ()) == "0"  # scored again: now the most recent
    cache.put(rounds[2], (), inputs("2"))
    assert [cache.get(r, ()) for r in rounds] == ["0", None, "2"]
