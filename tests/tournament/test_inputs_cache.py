"""The scoring inputs kept in memory between passes: served only for the same submissions,
the least recently scored round forgotten first, within a bound in rounds and in bytes."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import cast

import numpy as np
import pandas as pd

from crowdquant.db.enums import Rules
from crowdquant.db.models import MetaModel
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


def sized(label: str, values: int) -> RoundInputs:
    """Inputs whose arrays hold `values` floats (8 bytes each)."""
    return cast(
        RoundInputs,
        SimpleNamespace(
            label=label,
            predictions=np.zeros(values),
            features=np.zeros(0),
            meta_model=None,
            benchmark=None,
        ),
    )


def test_a_bound_in_bytes_forgets_the_least_recent_and_keeps_no_oversized_round() -> None:
    cache = InputsCache(rounds=10, max_bytes=8 * 100)
    rounds = [uuid.uuid4() for _ in range(4)]
    cache.put(rounds[0], (), sized("0", 40))
    cache.put(rounds[1], (), sized("1", 40))
    assert cache.get(rounds[0], ()) is not None  # scored again: now the most recent
    cache.put(rounds[2], (), sized("2", 40))  # 120 floats: the least recent goes
    assert [cache.get(r, ()) is not None for r in rounds[:3]] == [True, False, True]
    cache.put(rounds[3], (), sized("3", 101))  # alone over the bound: not kept
    assert cache.get(rounds[3], ()) is None
    assert [cache.get(r, ()) is not None for r in rounds[:3]] == [True, False, True]
    cache.put(rounds[0], (), sized("0", 10))  # read again, smaller: its old size is gone
    cache.put(rounds[1], (), sized("1", 50))
    assert all(cache.get(r, ()) is not None for r in rounds[:3])


def test_derived_work_is_kept_only_beside_the_inputs_it_came_from() -> None:
    cache, round_id = InputsCache(), uuid.uuid4()
    kept = inputs("a")
    cache.keep_derived(round_id, kept, "main", "prepared", 0)  # nothing kept yet: not kept
    assert cache.derived(round_id, kept, "main") is None
    cache.put(round_id, (), kept)
    cache.keep_derived(round_id, kept, "main", "prepared", 0)
    assert cache.derived(round_id, kept, "main") == "prepared"
    assert cache.derived(round_id, kept, "benchmark") is None
    other = cast(RoundInputs, SimpleNamespace())  # read again, e.g. a pass that fixed them
    assert cache.derived(round_id, other, "main") is None
    cache.put(round_id, (uuid.uuid4(),), other)  # a late upload: the old work goes
    assert cache.derived(round_id, other, "main") is None
    cache.forget(round_id)
    assert cache.derived(round_id, kept, "main") is None


def test_derived_work_counts_within_the_bound_in_bytes() -> None:
    cache = InputsCache(rounds=10, max_bytes=8 * 100)
    rounds = [uuid.uuid4() for _ in range(2)]
    first, second = sized("0", 30), sized("1", 30)
    cache.put(rounds[0], (), first)
    cache.put(rounds[1], (), second)
    cache.keep_derived(rounds[1], second, "main", "big", 8 * 71)  # 101 floats alone: not kept
    assert cache.derived(rounds[1], second, "main") is None
    cache.keep_derived(rounds[1], second, "main", "prepared", 8 * 50)  # 110: the oldest goes
    assert cache.derived(rounds[1], second, "main") == "prepared"
    assert cache.get(rounds[0], ()) is None
    assert cache.get(rounds[1], ()) is second


def test_inputs_that_fixed_the_meta_model_serve_only_once_it_committed() -> None:
    cache, round_id = InputsCache(), uuid.uuid4()
    fixed = RoundInputs(
        rules=Rules.CLASSIC,
        ids=pd.Index(["a", "b", "c"]),
        features=np.zeros((3, 1)),
        submissions=[],
        predictions=np.zeros((3, 0)),
        meta_model=np.zeros(3),
        benchmark=None,
        new_meta_model=MetaModel(),
    )
    cache.put(round_id, (), fixed, pending=True)
    assert cache.get(round_id, ()) is None  # the meta model's row may yet roll back
    cache.keep_derived(round_id, fixed, "main", "prepared", 0)  # its pass prepares beside it
    cache.confirm(round_id)
    kept = cache.get(round_id, ())
    assert kept is not None and kept is not fixed
    assert kept.new_meta_model is None  # as read from storage: the row is not added again
    assert kept.predictions is fixed.predictions
    assert cache.derived(round_id, kept, "main") == "prepared"


def test_pending_inputs_forgotten_or_read_again_are_never_served() -> None:
    cache, round_id = InputsCache(), uuid.uuid4()
    fixed = cast(RoundInputs, SimpleNamespace(new_meta_model="row"))
    cache.put(round_id, (), fixed, pending=True)
    cache.forget(round_id)  # its rows failed to commit
    cache.confirm(round_id)
    assert cache.get(round_id, ()) is None
    cache.put(round_id, (), fixed, pending=True)
    cache.put(round_id, (), inputs("read"))  # read again from storage: kept as read
    cache.confirm(round_id)
    assert cache.get(round_id, ()) == "read"
