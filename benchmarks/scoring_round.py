"""A daily update of one round at real scale: CORR + MMC + FNC for every submission.

    uv run python benchmarks/scoring_round.py            # N=6000, K=10000, F=780

crowdquant prepares the round once (ranks, Φ⁻¹, the meta-model projection, the
feature-neutral predictions: nothing there depends on the target) and then scores each of
the 20 daily target updates with a few matrix-vector products. The reference is
numerai-tools called with whole DataFrames (its fastest use) on the first `--reference-k`
submissions, scaled linearly to K, in the same run. Scores are checked equal on that subset.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd
from numerai_tools import scoring as reference

from crowdquant.scoring.metamodel import stake_weighted_meta_model
from crowdquant.scoring.round import PreparedRound

UPDATES = 20


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def round_data(n: int, k: int, f: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal(n)
    features = rng.integers(0, 5, size=(n, f), dtype=np.int8)
    predictions = np.empty((n, k))
    for start in range(0, k, 1000):  # skill varies per submission; values rounded → ties
        stop = min(start + 1000, k)
        skill = rng.uniform(0, 0.2, stop - start)
        noise = rng.standard_normal((n, stop - start))
        predictions[:, start:stop] = np.round(
            1 / (1 + np.exp(-(skill * signal[:, None] + noise))), 4
        )
    daily = [signal + rng.standard_normal(n) * (2.0 - d / 10) for d in range(UPDATES)]
    targets = [
        np.digitize(t, np.quantile(t, [0.05, 0.25, 0.75, 0.95])) / 4.0 for t in daily
    ]  # 5 bins, 5/20/50/20/5 %
    return {"predictions": predictions, "features": features, "targets": np.array(targets)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=780)
    parser.add_argument("--reference-k", type=int, default=500)
    args = parser.parse_args()
    n, k = args.rows, args.submissions
    data = round_data(n, k, args.features)
    ids = pd.Index([f"n{i:015x}" for i in range(n)])
    stakes = np.random.default_rng(1).gamma(1.0, 100.0, k)

    start = time.perf_counter()
    meta = stake_weighted_meta_model(data["predictions"], stakes)
    prepared = PreparedRound(data["predictions"], ids, meta, features=data["features"])
    prepare_s = time.perf_counter() - start
    update_s = []
    for targets in data["targets"]:
        start = time.perf_counter()
        scores = prepared.score(targets)
        update_s.append(time.perf_counter() - start)
    ours_peak = peak_rss_gb()

    kr = min(args.reference_k, k)
    frame = pd.DataFrame(data["predictions"][:, :kr], index=ids)
    features = pd.DataFrame(data["features"].astype(np.float64), index=ids)
    meta_s = pd.Series(meta, index=ids)
    target = pd.Series(data["targets"][0], index=ids, name="target")
    start = time.perf_counter()
    ref_corr = reference.numerai_corr(frame, target)
    ref_mmc = reference.correlation_contribution(frame, meta_s, target)
    ref_fnc = reference.feature_neutral_corr(frame, features, target)
    reference_s = (time.perf_counter() - start) * k / kr

    first = prepared.score(data["targets"][0])
    assert scores.fnc is not None and first.fnc is not None
    diff = max(
        np.abs(first.corr[:kr] - ref_corr.to_numpy()).max(),
        np.abs(first.mmc[:kr] - ref_mmc.to_numpy()).max(),
        np.abs(first.fnc[:kr] - ref_fnc.to_numpy()).max(),
    )
    per_update = float(np.median(update_s))
    print(f"round: N={n} rows, K={k} submissions, F={args.features} features")
    print(
        f"crowdquant: meta model + prepare {prepare_s:.2f} s, then {per_update * 1e3:.0f} ms per "
        f"update (median of {UPDATES}); peak RSS {ours_peak:.2f} GB"
    )
    print(f"numerai-tools: {reference_s:.1f} s per update (measured on K={kr}, scaled ×{k / kr:g})")
    print(f"max |difference| on those {kr} submissions: {diff:.1e}")
    print(f"ratio, first update (prepare included): {reference_s / (prepare_s + update_s[0]):.1f}x")
    print(f"ratio, each later daily update: {reference_s / per_update:.0f}x")
    print(
        f"ratio, all {UPDATES} updates: {UPDATES * reference_s / (prepare_s + sum(update_s)):.0f}x"
    )


if __name__ == "__main__":
    main()
