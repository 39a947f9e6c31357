"""The report of one diagnostics request: `Diagnostics.result`, declared once.

The worker builds a `DiagnosticsReport` and stores ``model_dump(mode="json")``; readers
(GraphQL, REST, pages) parse the stored JSON with `DiagnosticsReport.model_validate`.
Statistics follow `scoring.summary` (population std, Sharpe = mean / std, max drawdown of
the cumulative score, ≥ 0). Non-finite numbers are stored as null: JSON has no NaN, and
PostgreSQL's JSONB refuses it.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _finite(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


Number = Annotated[float | None, BeforeValidator(_finite)]
"""A float, or null where it is not finite (or not defined)."""


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EraDiagnostics(_Report):
    """One validation era's scores."""

    era: str
    corr: Number
    mmc: Number
    fnc: Number
    feature_exposure: Number
    """The largest |Pearson correlation| of the predictions with one feature of the set."""
    corr_with_example_preds: Number
    """The Spearman correlation of the predictions with the example predictions."""
    example_corr: Number


class DiagnosticsSummary(_Report):
    """The statistics over the eras."""

    n_eras: int
    request_number: int
    corr_mean: Number
    corr_std: Number
    corr_sharpe: Number
    mmc_mean: Number
    mmc_std: Number
    mmc_sharpe: Number
    corr_plus_mmc_mean: Number
    corr_plus_mmc_std: Number
    corr_plus_mmc_sharpe: Number
    corr_max_drawdown: Number
    fnc_mean: Number
    fnc_std: Number
    fnc_sharpe: Number
    max_feature_exposure: Number
    """The mean over eras of each era's largest feature exposure."""
    corr_with_example_preds: Number
    """The mean over eras of the Spearman correlation with the example predictions."""
    example_corr_mean: Number
    corr_corr_with_example: Number
    """The Pearson correlation of the per-era CORR with the example model's per-era CORR."""


class DiagnosticsReport(_Report):
    """What a `done` request found; `rules` is the version of what is computed."""

    rules: str
    dataset_version: str
    feature_set: str
    target: str
    meta_model: str
    """What MMC is measured against: the example model's validation predictions."""
    request_number: int
    n_rows: int
    per_era: list[EraDiagnostics]
    summary: DiagnosticsSummary
