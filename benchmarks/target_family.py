"""The target family's cost: every construction at both horizons, batched over eras, against
a per-era least-squares loop (the textbook way) on the same returns and exposures.

    uv run python benchmarks/target_family.py --stocks 5000 --eras 1200

Prints the seconds of each and their ratio, and checks that both give the same residuals.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from crowdquant.data.targets import CONSTRUCTIONS, Exposures, _design, _groups, construct


def per_era_reference(
    kind: str, returns: np.ndarray, exposures: Exposures, include: np.ndarray
) -> np.ndarray:
    """One `np.linalg.lstsq` per era, on group dummies and exposures."""
    design = _design(kind, exposures, include)
    groups = _groups(kind, exposures)
    if groups is not None:
        dummies = (groups[:, None] == np.unique(groups)[None, :]).astype(np.float64)
        stacked = np.broadcast_to(dummies, (*returns.shape, dummies.shape[1]))
        design = np.concatenate([stacked, design], axis=-1)
    out = np.full(returns.shape, np.nan)
    for era in range(returns.shape[0]):
        rows = include[era] & np.isfinite(returns[era])
        if design.shape[-1] == 0:
            out[era, rows] = returns[era, rows]
            continue
        coef, *_ = np.linalg.lstsq(design[era, rows], returns[era, rows], rcond=None)
        out[era, rows] = returns[era, rows] - design[era, rows] @ coef
    if kind == "volatility_scaled":
        out = out / exposures.volatility
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stocks", type=int, default=2000)
    parser.add_argument("--eras", type=int, default=400)
    parser.add_argument("--sectors", type=int, default=11)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.eras, args.stocks)
    exposures = Exposures(
        beta=rng.normal(1, 0.3, shape),
        sectors=rng.integers(0, args.sectors, args.stocks),
        momentum=rng.normal(0, 0.3, shape),
        volatility=rng.uniform(0.01, 0.04, shape),
    )
    include = rng.random(shape) < 0.9
    horizons = [rng.normal(0, 0.05, shape) for _ in range(2)]  # 20 and 60 days

    start = time.perf_counter()
    ours = [construct(k, r, exposures, include) for k in CONSTRUCTIONS for r in horizons]
    batched = time.perf_counter() - start
    start = time.perf_counter()
    reference = [
        per_era_reference(k, r, exposures, include) for k in CONSTRUCTIONS for r in horizons
    ]
    looped = time.perf_counter() - start
    worst = max(float(np.nanmax(np.abs(a - b))) for a, b in zip(ours, reference, strict=True))
    print(
        f"{len(ours)} targets, {args.eras} eras × {args.stocks} stocks: batched {batched:.2f} s,"
        f" per-era lstsq {looped:.2f} s, ratio {looped / batched:.1f}x, max |diff| {worst:.1e}"
    )


if __name__ == "__main__":
    main()
