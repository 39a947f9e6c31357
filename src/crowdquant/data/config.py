"""Everything that shapes a dataset version, in one validated, hashable object."""

from __future__ import annotations

import hashlib
import json
import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

PIPELINE_VERSION = "1.0"
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
    horizon: int = Field(20, ge=1, description="trading days of the main target's return")
    aux_horizon: int = Field(60, ge=1, description="trading days of the auxiliary target")
    proportions: tuple[float, float, float, float, float] = (0.05, 0.20, 0.50, 0.20, 0.05)

    @model_validator(mode="after")
    def _check_proportions(self) -> TargetConfig:
        if any(p <= 0 for p in self.proportions) or not math.isclose(sum(self.proportions), 1):
            raise ValueError("target proportions must be positive and sum to 1")
        return self

    @property
    def span_eras(self) -> int:
        """Eras a main target reaches into the future (what an embargo must cover)."""
        return math.ceil((self.lag + self.horizon) / TRADING_DAYS_PER_ERA)


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


class DatasetConfig(_Frozen):
    anonymisation: AnonymisationConfig = AnonymisationConfig()
    targets: TargetConfig = TargetConfig()
    splits: SplitConfig = SplitConfig()
    example_model: ExampleModelConfig = ExampleModelConfig()
    min_stocks_per_era: int = Field(10, ge=5)
    small_fraction: float = Field(0.1, gt=0, le=1)
    medium_fraction: float = Field(0.5, gt=0, le=1)

    @model_validator(mode="after")
    def _check_embargo(self) -> DatasetConfig:
        if self.splits.embargo_eras < self.targets.span_eras:
            raise ValueError(
                f"embargo_eras={self.splits.embargo_eras} is shorter than the main target's "
                f"reach of {self.targets.span_eras} eras (lag + horizon)"
            )
        return self

    def digest(self) -> str:
        """sha256 of the canonical JSON form: two equal configs hash the same."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(f"{PIPELINE_VERSION}:{canonical}".encode()).hexdigest()
