"""Diagnostics of one submission: CORR, MMC and FNC over many validation eras.

    uv run python benchmarks/scoring_diagnostics.py      # 600 eras × 5000 rows, 200 features

Two ways of ours, each checked equal to the reference on the measured eras:
* cold: `score_eras`, every era from scratch (what a one-off call costs);
* prepared: `ValidationEras`, the validation set's per-era targets, meta model and feature
  factorisations made once per dataset version (the diagnostics service keeps it for every
  upload); its one-off cost is shown apart.
The reference is numerai-tools applied per era with groupby, on the first `--reference-eras`
eras, scaled linearly to all eras, in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from numerai_tools import scoring as reference

from crowdquant.scoring.diagnostics import ValidationEras
from crowdquant.scoring.eras import score_eras


def validation_frame(eras: int, rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = eras * rows
    bins = rng.integers(0, 5, size=(n, features), dtype=np.int8)
    signal = bins[:, :10].mean(axis=1) + rng.standard_normal(n)
    frame = pd.DataFrame(bins, columns=[f"f{i}" for i in range(features)])
    frame["era"] = np.repeat([f"{e:04d}" for e in range(1, eras + 1)], rows)
    frame["target"] = (
        pd.Series(signal)
        .groupby(frame["era"])
        .transform(
            lambda s: pd.qcut(s.rank(method="first"), [0, 0.05, 0.25, 0.75, 0.95, 1], labels=False)
        )
        / 4.0
    )
    frame["prediction"] = np.round(signal + rng.standard_normal(n), 3)
    frame["meta"] = signal + 2 * rng.standard_normal(n)
    frame.index = pd.Index([f"n{i:015x}" for i in range(n)], name="id")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eras", type=int, default=600)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--reference-eras", type=int, default=60)
    args = parser.parse_args()
    frame = validation_frame(args.eras, args.rows, args.features)
    features = [c for c in frame.columns if c.startswith("f")]

    start = time.perf_counter()
    cold = score_eras(frame, ["prediction"], "target", meta_model="meta", features=features)
    cold_s = time.perf_counter() - start

    start = time.perf_counter()
    prepared = ValidationEras(frame["era"], frame["target"], frame["meta"], frame[features])
    prepare_s = time.perf_counter() - start
    start = time.perf_counter()
    quick = prepared.score(frame["prediction"])
    prepared_s = time.perf_counter() - start

    measured = sorted(frame["era"].unique())[: args.reference_eras]
    subset = frame[frame["era"].isin(measured)]
    start = time.perf_counter()
    expected = []
    for _, era in subset.groupby("era"):
        target, predictions = era["target"], era[["prediction"]]
        expected.append(
            [
                reference.numerai_corr(predictions, target).iloc[0],
                reference.correlation_contribution(predictions, era["meta"], target).iloc[0],
                reference.feature_neutral_corr(
                    predictions, era[features].astype(np.float64), target
                ).iloc[0],
            ]
        )
    reference_s = (time.perf_counter() - start) * args.eras / len(measured)

    expected_array = np.array(expected)
    diff = max(
        np.abs(cold.to_numpy()[: len(measured)] - expected_array).max(),
        np.abs(quick.to_numpy()[: len(measured)] - expected_array).max(),
    )
    print(
        f"diagnostics: 1 submission, {args.eras} eras × {args.rows} rows, {args.features} features"
    )
    print(f"numerai-tools per era: {reference_s:.1f} s (measured on {len(measured)} eras, scaled)")
    print(f"crowdquant cold: {cold_s:.2f} s → ratio {reference_s / cold_s:.1f}x")
    print(
        f"crowdquant prepared: {prepared_s:.2f} s per submission → ratio "
        f"{reference_s / prepared_s:.1f}x (era factorisations once per dataset: {prepare_s:.2f} s)"
    )
    print(f"max |difference| against the reference on the measured eras: {diff:.1e}")


if __name__ == "__main__":
    main()
