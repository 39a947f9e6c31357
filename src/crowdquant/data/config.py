"""Everything that shapes a dataset version, in one validated, hashable object."""

from __future__ import annotations

import hashlib
import json
import math
import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crowdquant.data.targets import CONSTRUCTIONS, DEFAULT_MAIN_CONSTRUCTION, TARGET_NAMES

PIPELINE_VERSION = "1.1"
TRADING_DAYS_PER_ERA = 5


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AnonymisationConfig(_Frozen):
    missing_bin: int = Field(2, ge=0, le=4, description="bin given to a missing feature value")
    mixing: bool = Field(False, description="secret orthogonal mixing within each group")
    subsample: tuple[float, float] | None = Field(
        (0.85, 0.95), description="per-era fraction of the universe kept, drawn in this range"
    )

    @model_validator(mode="after")
    def _check_subsample(self) -> AnonymisationConfig:
        if self.subsample is not None:
            low, high = self.subsample
            if not 0 < low <= high <= 1:
                raise ValueError("subsample must be a range (low, high) with 0 < low <= high <= 1")
        return self


class TargetConfig(_Frozen):
    lag: int = Field(2, ge=0, description="trading days between era close and return start")
    horizon: int = Field(20, ge=1, description="trading days of the short targets' return")
    aux_horizon: int = Field(60, ge=1, description="trading days of the long targets' return")
    proportions: tuple[float, float, float, float, float] = (0.05, 0.20, 0.50, 0.20, 0.05)
    main: str | None = Field(
        None,
        description="the published target that `target` copies and rounds are scored on;"
        " None: target_ender_<horizon>",
    )
    main_construction: str = Field(
        DEFAULT_MAIN_CONSTRUCTION, description="what the main target is (operator only)"
    )

    @model_validator(mode="after")
    def _check_targets(self) -> TargetConfig:
        if any(p <= 0 for p in self.proportions) or not math.isclose(sum(self.proportions), 1):
            raise ValueError("target proportions must be positive and sum to 1")
        if self.aux_horizon <= self.horizon:
            raise ValueError("aux_horizon must be longer than horizon")
        if self.main_construction not in CONSTRUCTIONS:
            raise ValueError(
                f"main_construction {self.main_construction!r} is not one of"
                f" {sorted(CONSTRUCTIONS)}"
            )
        if self.main_target not in self.columns:
            raise ValueError(f"main target {self.main!r} is not one of {list(self.columns)}")
        return self

    @property
    def horizons(self) -> tuple[int, int]:
        return (self.horizon, self.aux_horizon)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every published target column but `target`, sorted."""
        return tuple(sorted(f"target_{n}_{h}" for n in TARGET_NAMES for h in self.horizons))

    @property
    def main_target(self) -> str:
        return self.main or f"target_{TARGET_NAMES[0]}_{self.horizon}"

    @property
    def main_name(self) -> str:
        match = re.fullmatch(r"target_(.+)_(\d+)", self.main_target)
        assert match is not None  # checked on construction
        return match.group(1)

    @property
    def main_horizon(self) -> int:
        return int(self.main_target.rsplit("_", 1)[1])

    def reach_eras(self, horizon: int) -> int:
        """Eras a target of this horizon reaches into the future."""
        return math.ceil((self.lag + horizon) / TRADING_DAYS_PER_ERA)

    @property
    def span_eras(self) -> int:
        """Eras the main target reaches into the future (what an embargo must cover)."""
        return self.reach_eras(self.main_horizon)


class SplitConfig(_Frozen):
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    holdout_fraction: float = Field(0.1, ge=0, lt=1, description="host-only, never published")
    embargo_eras: int = Field(5, ge=0)


class ExampleModelConfig(_Frozen):
    max_iter: int = Field(60, ge=1)
    max_depth: int = Field(5, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    max_rows: int = Field(
        250_000, ge=1000, description="train on every n-th era to stay under this"
    )


class BenchmarkConfig(_Frozen):
    targets: tuple[str, ...] | None = Field(
        None,
        description="published targets to fit a benchmark model on; None: the main target"
        " and target_teager2b_<horizon> (target_cyrusd_<horizon> if that is the main one)",
    )
    n_estimators: int = Field(20, ge=1)
    learning_rate: float = Field(0.1, gt=0)
    num_leaves: int = Field(15, ge=2)
    max_depth: int = Field(5, ge=1)
    colsample_bytree: float = Field(0.5, gt=0, le=1)
    n_jobs: int = Field(1, ge=1)
    max_rows: int = Field(250_000, ge=1000, description="fit on every n-th era to stay under this")


class DatasetConfig(_Frozen):
    anonymisation: AnonymisationConfig = AnonymisationConfig()
    targets: TargetConfig = TargetConfig()
    splits: SplitConfig = SplitConfig()
    example_model: ExampleModelConfig = ExampleModelConfig()
    benchmark: BenchmarkConfig = BenchmarkConfig()
    min_stocks_per_era: int = Field(10, ge=5)
    small_size: int = Field(42, ge=1, description="features in the `small` set, as Numerai's")
    small_fraction: float | None = Field(None, gt=0, le=1, description="overrides small_size")
    fnc_rows_per_feature: int = Field(
        4, ge=2, description="the FNC set keeps the smallest era this many rows per feature"
    )
    medium_fraction: float = Field(0.5, gt=0, le=1)

    @model_validator(mode="after")
    def _check_embargo(self) -> DatasetConfig:
        if self.splits.embargo_eras < self.targets.span_eras:
            raise ValueError(
                f"embargo_eras={self.splits.embargo_eras} is shorter than the main target's "
                f"reach of {self.targets.span_eras} eras (lag + horizon)"
            )
        return self

    @model_validator(mode="after")
    def _check_benchmark_targets(self) -> DatasetConfig:
        unknown = set(self.benchmark.targets or ()) - set(self.targets.columns)
        if unknown:
            raise ValueError(f"benchmark targets {sorted(unknown)} are not published targets")
        return self

    @property
    def benchmark_targets(self) -> list[str]:
        """The targets benchmark models learn, the main one first."""
        main, horizon = self.targets.main_target, self.targets.horizon
        if self.benchmark.targets is not None:
            return list(dict.fromkeys(self.benchmark.targets))
        other = f"target_teager2b_{horizon}"
        return [main, other if other != main else f"target_cyrusd_{horizon}"]

    def digest(self) -> str:
        """sha256 of the canonical JSON form: two equal configs hash the same."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(f"{PIPELINE_VERSION}:{canonical}".encode()).hexdigest()
