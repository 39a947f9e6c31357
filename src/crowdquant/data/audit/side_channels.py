"""L6 — side channels: things the published files give away besides the features.

A pass/fail checklist. Statistical checks aggregate one rank correlation per era into a
z-score, Z = Σ ρ_e √(n_e − 1) / √E, which is ≈ N(0, 1) when there is nothing to find; a
check fails when |Z| > Z_FAIL (a false alarm about once in two million audits).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crowdquant.data.audit.inputs import AuditInput
from crowdquant.data.features import feature_specs
from crowdquant.data.panel import Panel
from crowdquant.data.pipeline import eligible_universe, era_grid
from crowdquant.data.splits import LIVE
from crowdquant.data.targets import forward_returns

Z_FAIL = 5.0
ID_PATTERN = re.compile(r"^n[0-9a-f]{15}$")
DATE_PATTERN = re.compile(r"(19|20)\d{2}-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])")
UNIVERSE_MATCH_SHARE = 0.5  # fail when at least this share of eras has the public count
PSEUDO_WORD = re.compile(r"([bdfghjklmnprstvz][aeiou])+")
MIN_NAME_LENGTH = 5  # real names shorter than this are only matched whole


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    value: float | None = None


def _era_numbers(eras: pd.Series) -> np.ndarray:
    return pd.to_numeric(eras, errors="coerce").fillna(-1).to_numpy(np.int64)


def aggregated_rank_z(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """Z of per-group Spearman correlations of x and y (groups with < 3 rows are skipped)."""
    frame = pd.DataFrame({"g": groups})
    frame["x"] = pd.Series(np.asarray(x)).groupby(groups, sort=False).rank().to_numpy()
    frame["y"] = pd.Series(np.asarray(y)).groupby(groups, sort=False).rank().to_numpy()
    frame["xy"], frame["xx"], frame["yy"] = frame.x * frame.y, frame.x**2, frame.y**2
    by = frame.groupby("g", sort=False)
    s = by[["x", "y", "xy", "xx", "yy"]].sum()
    n = by.size().reindex(s.index).to_numpy(np.float64)
    sxy = s["xy"].to_numpy() - s["x"].to_numpy() * s["y"].to_numpy() / n
    sxx = s["xx"].to_numpy() - s["x"].to_numpy() ** 2 / n
    syy = s["yy"].to_numpy() - s["y"].to_numpy() ** 2 / n
    ok = (n >= 3) & (sxx > 1e-9) & (syy > 1e-9)
    if not ok.any():
        return 0.0
    rho = sxy[ok] / np.sqrt(sxx[ok] * syy[ok])
    return float(np.sum(rho * np.sqrt(n[ok] - 1)) / np.sqrt(ok.sum()))


def _z_check(name: str, z: float, what: str) -> Check:
    ok = abs(z) <= Z_FAIL
    verdict = "no detectable relation" if ok else "related"
    return Check(name, ok, f"{what}: Z = {z:+.1f} ({verdict}; fails beyond ±{Z_FAIL:g})", z)


def universe_size_check(
    counts: pd.Series, public_counts: dict[str, set[int]], live_eras: set[str]
) -> Check:
    """Row counts per era against what the public universe holds on the era's date."""
    matches = [
        label for label, n in counts.items() if int(n) in public_counts.get(str(label), set())
    ]
    share = len(matches) / max(len(counts), 1)
    live_match = bool(live_eras & set(matches))
    ok = share < UNIVERSE_MATCH_SHARE
    detail = (
        f"{len(matches)} of {len(counts)} eras ({share:.0%}) have exactly the public universe's "
        f"row count{'; the live era does' if live_match else ''} "
        f"(fails at {UNIVERSE_MATCH_SHARE:.0%} or more)"
    )
    return Check("universe_size", ok, detail, share)


def public_universe_counts(
    panel: Panel, era_dates: dict[str, str], lag: int, horizon: int
) -> dict[str, set[int]]:
    """Per era: the counts an attacker computes from public prices (eligible; and eligible
    with a complete forward-return window, i.e. a target)."""
    grid = era_grid(panel)
    position = {d: int(p) for d, p in zip(grid.dates, grid.days, strict=True)}
    labels = [e for e, d in era_dates.items() if d in position]
    if not labels:
        return {}
    days = np.array([position[era_dates[e]] for e in labels], dtype=np.int64)
    eligible = eligible_universe(panel, days)
    fwd = forward_returns(panel.close.to_numpy(np.float64), days, lag, horizon)
    with_target = eligible & np.isfinite(fwd)
    return {e: {int(eligible[k].sum()), int(with_target[k].sum())} for k, e in enumerate(labels)}


def id_format_check(ids: pd.Index) -> Check:
    bad = [i for i in ids if not (isinstance(i, str) and ID_PATTERN.match(i))]
    ok = not bad
    detail = (
        "every id is 'n' + 15 hex"
        if ok
        else f"{len(bad)} ids are not 'n' + 15 hex, e.g. {bad[0]!r}"
    )
    return Check("id_format", ok, detail, float(len(bad)))


def id_unique_check(ids: pd.Index) -> Check:
    repeated = int(ids.duplicated().sum())
    ok = repeated == 0
    detail = "no id appears twice" if ok else f"{repeated} ids are reused (across eras or splits)"
    return Check("id_unique", ok, detail, float(repeated))


def id_similarity_check(rows: pd.DataFrame) -> Check:
    """Do a stock's ids in consecutive eras share characters more than chance (1/16)?"""
    pairs = _consecutive_pairs(rows)
    if pairs.empty:
        return Check("id_linkage", True, "no consecutive eras to compare", 0.0)
    a = np.array(pairs["id_a"].astype(str), dtype="S16").view(np.uint8).reshape(-1, 16)[:, 1:]
    b = np.array(pairs["id_b"].astype(str), dtype="S16").view(np.uint8).reshape(-1, 16)[:, 1:]
    same = float((a == b).mean())
    p = 1 / 16
    z = (same - p) / np.sqrt(p * (1 - p) / a.size)
    ok = z <= Z_FAIL
    detail = (
        f"a stock's ids in consecutive eras agree in {same:.2%} of characters (chance 6.25%; "
        f"Z = {z:+.1f})"
    )
    return Check("id_linkage", ok, detail, float(z))


def _consecutive_pairs(rows: pd.DataFrame) -> pd.DataFrame:
    """Same-ticker rows of era n and era n + 1: id and position of each."""
    frame = rows[["id", "ticker", "number", "position"]]
    later = frame.assign(number=frame["number"] - 1)
    return frame.merge(later, on=["ticker", "number"], suffixes=("_a", "_b"))


def no_missing_features_check(frames: Iterable[pd.DataFrame], features: list[str]) -> Check:
    missing, outside, not_int = 0, 0, []
    for frame in frames:
        values = frame[features]
        missing += int(values.isna().to_numpy().sum())
        not_int += [c for c, t in values.dtypes.items() if not pd.api.types.is_integer_dtype(t)]
        filled = values.to_numpy(np.float64)
        outside += int(((filled < 0) | (filled > 4)).sum())
    ok = missing == 0 and outside == 0 and not not_int
    detail = (
        "features are integer bins 0–4, no NaN"
        if ok
        else f"{missing} NaN feature values, {outside} outside 0–4, "
        f"{len(set(not_int))} non-integer columns"
    )
    return Check("no_missing_features", ok, detail, float(missing + outside))


def _string_values(frames: Iterable[pd.DataFrame], features: list[str]) -> set[str]:
    values: set[str] = set()
    skip = set(features)
    for frame in frames:
        values.update(str(v) for v in frame.index.unique())
        values.add(str(frame.index.name))
        for column in frame.columns:
            values.add(str(column))
            if column in skip:
                continue
            series = frame[column]
            if not pd.api.types.is_numeric_dtype(series.dtype):
                values.update(str(v) for v in series.unique())
    return values


def no_tickers_check(values: set[str], columns: list[str], tickers: list[str]) -> Check:
    found = sorted(values & set(tickers))
    long = [t for t in tickers if len(t) >= 3]
    found += sorted({t for c in columns for t in long if t in c} - set(found))
    ok = not found
    detail = (
        "no ticker appears in any column, index or value"
        if ok
        else f"tickers published: {found[:5]}"
    )
    return Check("no_tickers", ok, detail, float(len(found)))


def no_dates_check(values: set[str], frames: Iterable[pd.DataFrame], dates: set[str]) -> Check:
    found = sorted(v for v in values if v in dates or DATE_PATTERN.fullmatch(v))
    found += [
        f"column {c} ({t})"
        for f in frames
        for c, t in f.dtypes.items()
        if pd.api.types.is_datetime64_any_dtype(t)
    ]
    ok = not found
    detail = (
        "no date appears in any column, index or value" if ok else f"dates published: {found[:5]}"
    )
    return Check("no_dates", ok, detail, float(len(found)))


def no_real_names_check(values: set[str], real_names: set[str]) -> Check:
    lowered = {v.lower() for v in values}
    # A real name spelled like a published pseudo-word ("volume" = vo·lu·me) can turn up in
    # a feature name by chance: such names count only when they stand alone as a value.
    names = {n.lower() for n in real_names if n}
    searchable = {n for n in names if len(n) >= MIN_NAME_LENGTH and not PSEUDO_WORD.fullmatch(n)}
    found = sorted(lowered & names)
    found += sorted({n for n in searchable for v in lowered if n in v} - set(found))
    ok = not found
    detail = (
        "no real feature or group name is published" if ok else f"real names published: {found[:5]}"
    )
    return Check("no_real_names", ok, detail, float(len(found)))


def side_channel_checks(
    frames: dict[str, pd.DataFrame],
    features: list[str],
    id_map: pd.DataFrame,
    panel: Panel,
    real_names: set[str],
    lag: int,
    horizon: int,
) -> list[Check]:
    published = [f for f in frames.values() if len(f)]
    table = pd.concat([f[["era", "data_type"]] for f in published], axis=0)
    ids = pd.Index(table.index)
    truth = id_map.set_index("id")
    rows = pd.DataFrame(
        {
            "id": ids.astype(str),
            "era": table["era"].astype(str).to_numpy(),
            "data_type": table["data_type"].astype(str).to_numpy(),
        }
    )
    known = rows["id"].isin(truth.index)
    rows = rows[known.to_numpy()].reset_index(drop=True)
    rows["ticker"] = truth.loc[rows["id"], "ticker"].astype(str).to_numpy()
    rows["number"] = _era_numbers(rows["era"])
    rows["position"] = rows.groupby("era", sort=False).cumcount()
    ticker_code = pd.factorize(rows["ticker"], sort=True)[0]
    id_code = pd.factorize(rows["id"], sort=True)[0]
    era_code = pd.factorize(rows["era"])[0]

    first_date = truth.groupby("era")["date"].first()
    era_dates = {str(e): str(d) for e, d in first_date.items()}
    counts = table.groupby("era").size()
    live_eras = set(table.loc[table["data_type"] == LIVE, "era"].astype(str))
    public = public_universe_counts(panel, era_dates, lag, horizon)

    pairs = _consecutive_pairs(rows)
    pair_code = pd.factorize(pairs["number"])[0] if len(pairs) else np.zeros(0)

    values = _string_values(published, features)
    columns = [str(c) for f in published for c in f.columns]
    return [
        universe_size_check(counts, public, live_eras),
        id_format_check(ids),
        id_unique_check(ids),
        _z_check(
            "id_order_vs_ticker",
            aggregated_rank_z(id_code, ticker_code, era_code),
            "order of ids vs order of tickers within each era",
        ),
        id_similarity_check(rows),
        _z_check(
            "row_order_vs_ticker",
            aggregated_rank_z(rows["position"].to_numpy(), ticker_code, era_code),
            "row order vs ticker order within each era",
        ),
        _z_check(
            "row_order_stable",
            aggregated_rank_z(
                pairs["position_a"].to_numpy(), pairs["position_b"].to_numpy(), pair_code
            )
            if len(pairs)
            else 0.0,
            "a stock's row position in one era vs the next",
        ),
        no_missing_features_check(published, features),
        no_tickers_check(values, columns, panel.tickers),
        no_dates_check(values, published, set(era_dates.values())),
        no_real_names_check(values, real_names),
    ]


def checklist(data: AuditInput) -> list[Check]:
    """Every side-channel check on a dataset's published frames."""
    specs = feature_specs(data.panel.volume is not None)
    real = {s.name for s in specs} | {s.group for s in specs}
    real |= {f.get("source", "") for f in data.feature_map}
    real |= {f.get("group", "") for f in data.feature_map}
    return side_channel_checks(
        data.frames,
        data.features,
        data.id_map,
        data.panel,
        real - {""},
        data.config.targets.lag,
        data.config.targets.horizon,
    )
