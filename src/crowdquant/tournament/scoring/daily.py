"""The scores of a round's inputs against a day's targets, every submission in one batch.

Day 0 holds what needs no target (`similarity_scores`); `DailyScorer` prepares the round
once (`scoring.round.PreparedRound`) and scores any day's targets with it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crowdquant.data.pipeline import MAIN_TARGET
from crowdquant.scoring.round import PreparedRound
from crowdquant.scoring.rules2017 import logloss_batch, originality_round
from crowdquant.scoring.similarity import cwmm_scores, originality_against
from crowdquant.tournament.rules import ruleset_for
from crowdquant.tournament.scoring.inputs import (
    FloatArray,
    InputsCache,
    RoundInputs,
    ScoredSubmission,
)
from crowdquant.tournament.scoring.targets import RESIDUAL

BENCHMARK_LOGLOSS = "benchmark_logloss"
"""The benchmark models' log-loss on a 2017 round's live rows that day, kept beside each
submission's `logloss`: what the 2017 payout rule compares it with."""


@dataclass(frozen=True)
class ScoreValue:
    submission: ScoredSubmission
    metric: str
    day: int
    value: float | None


def _values(
    inputs: RoundInputs, metric: str, day: int, values: Iterable[float]
) -> list[ScoreValue]:
    return [
        ScoreValue(sub, metric, day, None if math.isnan(v) else float(v))
        for sub, v in zip(inputs.submissions, values, strict=True)
    ]


def similarity_scores(inputs: RoundInputs) -> list[ScoreValue]:
    """Day 0: the scores that need no target."""
    if not inputs.submissions:
        return []
    out: list[ScoreValue] = []
    if inputs.meta_model is not None:
        out += _values(inputs, "cwmm", 0, cwmm_scores(inputs.predictions, inputs.meta_model))
    on_time = [k for k, sub in enumerate(inputs.submissions) if not sub.late]
    similarity = originality_against(inputs.predictions, on_time)
    out += _values(inputs, "max_corr_others", 0, similarity.max_corr)
    out += _values(inputs, "mean_corr_others", 0, similarity.mean_corr)
    if "originality_2017" in ruleset_for(inputs.rules).closing_metrics:
        out += _values(inputs, "originality_2017", 0, _originality_2017(inputs))
    return out


def _originality_2017(inputs: RoundInputs) -> FloatArray:
    """The 2017 originality gate, 1 (original) or 0: each submission against the earlier
    ones of other accounts that were judged original (`scoring.rules2017.originality_round`),
    on-time submissions first, each group in upload order, so a late arrival changes no one
    else's verdict."""
    order = sorted(
        range(len(inputs.submissions)),
        key=lambda k: (inputs.submissions[k].late, inputs.submissions[k].created_at or 0, k),
    )
    owners = [inputs.submissions[k].owner or inputs.submissions[k].model_id for k in order]
    verdicts = originality_round(inputs.predictions[:, order], owners)
    passed = np.empty(len(order), dtype=np.float64)
    passed[order] = [1.0 if verdict.original else 0.0 for verdict in verdicts]
    return passed


class DailyScorer:
    """Scores a round's inputs against any day's targets; the costly preparation runs once.

    Given the `cache` that keeps the inputs of round `round_id`, the preparation is kept
    beside them, so the round's next passes score with it too (a prepared round is never
    changed by scoring: the same inputs and targets give the same floats)."""

    def __init__(
        self,
        inputs: RoundInputs,
        cache: InputsCache | None = None,
        round_id: uuid.UUID | None = None,
    ) -> None:
        self.inputs, self.cache, self.round_id = inputs, cache, round_id
        self._main: PreparedRound | None = None
        self._benchmark: PreparedRound | None = None

    def _prepared(self) -> PreparedRound:
        if self._main is None:
            inputs = self.inputs
            # Without a meta model MMC is not stored; any non-constant vector stands in.
            meta = inputs.meta_model
            if meta is None:
                meta = np.arange(len(inputs.ids), dtype=np.float64)
            self._main = self._kept(
                "main",
                lambda: PreparedRound(
                    inputs.predictions, inputs.ids, meta, features=inputs.features
                ),
                copies=3,  # the CORR, MMC and FNC rows
            )
        return self._main

    def _bmc(self, targets: pd.Series) -> FloatArray:
        benchmark = self.inputs.benchmark
        assert benchmark is not None
        if self._benchmark is None:
            self._benchmark = self._kept(
                "benchmark",
                lambda: PreparedRound(self.inputs.predictions, self.inputs.ids, benchmark),
                copies=2,  # the CORR and MMC rows
            )
        return self._benchmark.score(targets).mmc

    def _kept(self, name: str, prepare: Callable[[], PreparedRound], copies: int) -> PreparedRound:
        """The preparation kept beside the inputs, else `prepare()`, kept there when it fits
        (counted as `copies` times the prediction matrix's bytes; the few sub-rounds it
        keeps for targets missing some ids come on top)."""
        if self.cache is None or self.round_id is None:
            return prepare()
        found = self.cache.derived(self.round_id, self.inputs, name)
        if isinstance(found, PreparedRound):
            return found
        prepared = prepare()
        size = copies * self.inputs.predictions.nbytes
        self.cache.keep_derived(self.round_id, self.inputs, name, prepared, size)
        return prepared

    def scores(self, day: int, targets: pd.DataFrame) -> list[ScoreValue]:
        inputs = self.inputs
        if not inputs.submissions:
            return []
        target = targets[MAIN_TARGET].astype(np.float64)
        scored = self._prepared().score(target)
        metrics = ruleset_for(inputs.rules).daily_metrics
        out = _values(inputs, "corr", day, scored.corr)
        if "logloss" in metrics:
            losses, benchmark = self._logloss(targets)
            out += _values(inputs, "logloss", day, losses)
            if benchmark is not None:
                out += _values(inputs, BENCHMARK_LOGLOSS, day, [benchmark] * len(losses))
        if "mmc" in metrics and inputs.meta_model is not None:
            out += _values(inputs, "mmc", day, scored.mmc)
        if "fnc" in metrics and scored.fnc is not None:
            out += _values(inputs, "fnc", day, scored.fnc)
        if "bmc" in metrics and inputs.benchmark is not None:
            out += _values(inputs, "bmc", day, self._bmc(target))
        return out

    def _logloss(self, targets: pd.DataFrame) -> tuple[FloatArray, float | None]:
        """Each submission's log-loss on the binary target, and the benchmark models' (None
        without their probabilities)."""
        residual = targets[RESIDUAL].reindex(self.inputs.ids)
        known = residual.notna().to_numpy()
        binary = (residual[known] > residual[known].median()).to_numpy(np.float64)
        losses = logloss_batch(self.inputs.predictions[known], binary)
        models = self.inputs.benchmark_probability
        if models is None or not known.any():
            return losses, None
        return losses, float(logloss_batch(models[known], binary)[0])
