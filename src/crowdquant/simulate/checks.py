"""Mechanism checks on a simulation: small pure functions from a record to a verdict.

Each check turns the record into one figure per round (or, for late submissions, a count),
estimates its mean with a 95% confidence interval, and states whether the claim holds:

1. `spammers_lose`: random predictions lose NMR on average (their CORR, whose mean is known
   to be 0, as a control variate).
2. `copier_mmc_near_zero`: copying the crowd's consensus earns ≈ 0 MMC.
3. `sybil_no_gain`: one stake split across near-identical models earns no more per NMR.
4. `late_never_staked`: late submissions never carry stake nor move NMR.
5. `meta_beats_best_single`: the meta model's out-of-sample CORR is at least the best
   single model's (picked in sample), judged once the spammers' stake has been burned down:
   from the first round where they held at most `SPAM_BURNED_SHARE` of the stake at risk
   (`spam_burned_down`; from the first round when the population has no spammer).

Rounds overlap in time (each round's target spans 20 trading days, so a daily round shares
its target window with the next 19), so per-round figures are autocorrelated and an i.i.d.
interval would be too narrow: the interval of a mean is a circular block bootstrap
(`block_bootstrap_ci`) whose blocks span one target window (`block_length`). A check with
fewer than `MIN_ROUNDS` usable rounds is undecided ("too few rounds"); a check whose bots are
missing from the population is "not run". The data decide: nothing here is tuned to pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import binomtest

from crowdquant.simulate.record import SimulationRecord

LEVEL = 0.95
RESAMPLES = 2_000
SEED = 0
MIN_ROUNDS = 3
TARGET_HORIZON_DAYS = 20  # trading days a round's target spans (calendar.target_horizon_days)
ROUND_SPACING_DAYS = {"daily": 1, "weekly": 5}  # trading days between consecutive rounds
COPIER_MMC_TOLERANCE = 0.005
"""|mean MMC| a copier may show and still count as ≈ 0: a quarter of a typical round's
±0.02 MMC, and a payout of at most 2 × 0.005 = 1% of stake under the classic rule."""

SPAM_BURNED_SHARE = 0.1
"""The spammers' share of the stake at risk at or below which their stake counts as burned
down: a tenth, against half at the start of the spam population (about 4 % in the realistic one)."""

TOO_FEW = "too few rounds"


@dataclass(frozen=True)
class Check:
    """One mechanism check: the mean of `statistic` with its 95% interval [low, high] over
    `n` units (`unit`: rounds, or late rows). `decided` is False when the check could not
    be judged (not run, or too few rounds): then `holds` is False and `detail` says why."""

    name: str
    claim: str
    statistic: str
    estimate: float
    low: float
    high: float
    n: int
    holds: bool
    detail: str
    unit: str = "rounds"
    decided: bool = True

    @property
    def verdict(self) -> str:
        """The verdict: "holds", "fails", or why the check was not decided."""
        if not self.decided:
            return self.detail
        return "holds" if self.holds else "fails"


# --- confidence intervals ------------------------------------------------------------------------


def block_length(cadence: str) -> int:
    """Rounds per target window: 20 for daily rounds, 4 for weekly ones.

    A round's score shares its 20-day target window with the rounds opened during it, so
    per-round figures are correlated up to that many rounds apart; a block must span the
    window to keep that dependence inside it. (The rule of thumb ceil(n^(1/3)), 6 for 180
    rounds, ignores this known span and would give intervals that are too narrow.)
    """
    spacing = ROUND_SPACING_DAYS.get(cadence, 1)
    return max(1, math.ceil(TARGET_HORIZON_DAYS / spacing))


def block_bootstrap_ci(
    values: npt.ArrayLike,
    *,
    block: int = TARGET_HORIZON_DAYS,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Percentile interval of the mean by the circular block bootstrap (Politis & Romano).

    Each resample joins ceil(n / L) blocks of L consecutive values, their starts drawn
    uniformly from all n positions and wrapping past the end to the start, cut to n values;
    the interval is the (1 ± level)/2 quantiles of the resamples' means. Wrapping gives every
    value the same chance to be drawn, so the resamples centre on the mean itself; blocks that
    may only start where they fit (the moving-block bootstrap) draw the first and last L − 1
    values less often and shift the interval towards the middle rounds. L = `block` capped at
    n // 2 (so at least two blocks are drawn; L = 1 is the i.i.d. bootstrap). Non-finite
    values are dropped first; with fewer than `MIN_ROUNDS` left the bounds are NaN. Seeded:
    the same values always give the same interval.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < MIN_ROUNDS:
        return math.nan, math.nan
    means = x[_resamples(len(x), block, resamples, seed)].mean(axis=1)
    return _percentiles(means, level)


def _resamples(n: int, block: int, resamples: int, seed: int) -> npt.NDArray[np.intp]:
    """Positions of `resamples` circular block bootstrap resamples of n values, a row each."""
    length = max(1, min(block, n // 2))
    count = math.ceil(n / length)
    starts = np.random.default_rng(seed).integers(0, n, size=(resamples, count))
    return ((starts[:, :, None] + np.arange(length)) % n).reshape(resamples, -1)[:, :n]


def _percentiles(estimates: npt.NDArray[np.float64], level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    low, high = np.quantile(estimates, [tail, 1 - tail])
    return float(low), float(high)


def controlled_mean(values: npt.ArrayLike, control: npt.ArrayLike) -> tuple[float, float]:
    """The mean of `values` with `control`, a figure whose mean is known to be 0, as a control
    variate: mean(values) − β · mean(control), β = cov(values, control) / var(control) (0 when
    the control is constant); and β. Unbiased as the plain mean is (up to β's estimation, of
    order 1/n), with the variance of values − β · control: the part of their noise that the
    control explains is taken out."""
    y, c = np.asarray(values, dtype=float)[None, :], np.asarray(control, dtype=float)[None, :]
    estimate, beta = _controlled(y, c)
    return float(estimate[0]), float(beta[0])


def _controlled(
    y: npt.NDArray[np.float64], c: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Row by row, the control-variate mean of `y` given `c` (`controlled_mean`), and β."""
    y_mean, c_mean = y.mean(axis=1), c.mean(axis=1)
    dc = c - c_mean[:, None]
    variance = (dc**2).mean(axis=1)
    covariance = ((y - y_mean[:, None]) * dc).mean(axis=1)
    beta = np.divide(covariance, variance, out=np.zeros_like(variance), where=variance > 0)
    return y_mean - beta * c_mean, beta


def controlled_bootstrap_ci(
    values: npt.ArrayLike,
    control: npt.ArrayLike,
    *,
    block: int = TARGET_HORIZON_DAYS,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Percentile interval of `controlled_mean` by the same circular block bootstrap as
    `block_bootstrap_ci`: each resample draws whole (value, control) pairs and estimates β
    afresh. Pairs with a non-finite member are dropped first."""
    y, c = np.asarray(values, dtype=float), np.asarray(control, dtype=float)
    kept = np.isfinite(y) & np.isfinite(c)
    y, c = y[kept], c[kept]
    if len(y) < MIN_ROUNDS:
        return math.nan, math.nan
    index = _resamples(len(y), block, resamples, seed)
    estimates, _ = _controlled(y[index], c[index])
    return _percentiles(estimates, level)


# --- per-round figures ---------------------------------------------------------------------------


def _rows(record: SimulationRecord, archetype: str) -> pd.DataFrame:
    """`results` rows of the models run by bots of `archetype`."""
    kinds = record.archetype_of()
    return record.results[record.results["model_id"].map(kinds) == archetype]


def _has(record: SimulationRecord, archetype: str) -> bool:
    return bool((record.models["archetype"] == archetype).any())


def _return_per_nmr(rows: pd.DataFrame) -> pd.Series:
    """Per round: Σ payout ÷ Σ at_risk of `rows`, over rounds where Σ at_risk > 0."""
    sums = rows.groupby("round")[["payout", "at_risk"]].sum().sort_index()
    sums = sums[sums["at_risk"] > 0]
    return (sums["payout"] / sums["at_risk"]).rename("return")


def spammer_returns(record: SimulationRecord) -> pd.Series:
    """Per round: the spammers' total payout ÷ their total at_risk (rounds with stake)."""
    return _return_per_nmr(_rows(record, "spammer"))


def spammer_corr(record: SimulationRecord) -> pd.Series:
    """Per round with stake: the spammers' CORR, each model's weighted by its at_risk (over
    the models scored). Their predictions are random, so its mean is 0 whatever the target."""
    rows = _rows(record, "spammer").astype({"corr": float, "at_risk": float})
    rows = rows[(rows["at_risk"] > 0) & rows["corr"].notna()]
    sums = (
        rows.assign(weighted=rows["corr"] * rows["at_risk"])
        .groupby("round")[["weighted", "at_risk"]]
        .sum()
        .sort_index()
    )
    return (sums["weighted"] / sums["at_risk"]).rename("corr")


def copier_mmc(record: SimulationRecord) -> pd.Series:
    """Per round: the copier models' mean final MMC (rounds with a scored copier)."""
    rows = _rows(record, "copier")
    return rows.groupby("round")["mmc"].mean().dropna().sort_index()


def sybil_excess(record: SimulationRecord) -> pd.Series:
    """Per round: the sybil models' payout per NMR at risk (their payouts and stakes summed)
    minus the linear bot's, over rounds where both had stake at risk.

    With equal stakes (as the population is built: the sybil splits the linear bot's
    stake) this is (Σ sybil payouts − linear payout) ÷ linear at_risk; per NMR, it stays
    a like-for-like comparison when the two stakes drift apart.
    """
    sybil = _return_per_nmr(_rows(record, "sybil"))
    linear = _return_per_nmr(_rows(record, "linear"))
    return (sybil - linear).dropna().rename("excess")


def spam_stake_share(record: SimulationRecord) -> pd.Series:
    """Per round with stake at risk: the spammers' Σ at_risk ÷ everyone's Σ at_risk."""
    rows = record.results
    spam = rows["model_id"].map(record.archetype_of()).eq("spammer")
    total = rows.groupby("round")["at_risk"].sum().sort_index()
    theirs = rows[spam].groupby("round")["at_risk"].sum().reindex(total.index, fill_value=0.0)
    staked = total > 0
    return (theirs[staked] / total[staked]).astype(float).rename("spam_share")


@dataclass(frozen=True)
class BurnDown:
    """When the spammers' stake fell to `share` of the stake at risk or less: `round`, the
    first round it did (None: never), `start`, their share in the first round with stake, and the
    `lowest` share seen, in round `lowest_round` (NaN and None without stake)."""

    share: float
    round: int | None
    start: float
    lowest: float
    lowest_round: int | None

    def describe(self) -> str:
        """E.g. "spam stake 50% of the stake at risk in the first round, at most 10% from
        round 84"."""
        if self.lowest_round is None:
            return "no stake at risk"
        start = f"spam stake {self.start:.0%} of the stake at risk in the first round"
        if self.round is None:
            return (
                f"{start}, never down to {self.share:.0%} "
                f"(lowest {self.lowest:.1%}, round {self.lowest_round})"
            )
        return f"{start}, at most {self.share:.0%} from round {self.round}"


def spam_burned_down(record: SimulationRecord, share: float = SPAM_BURNED_SHARE) -> BurnDown:
    """The first round where the spammers held at most `share` of the stake at risk."""
    shares = spam_stake_share(record)
    if shares.empty:
        return BurnDown(share, None, math.nan, math.nan, None)
    below = shares[shares <= share]
    first = int(below.index[0]) if len(below) else None
    lowest = int(shares.index[int(np.argmin(shares.to_numpy()))])
    return BurnDown(share, first, float(shares.iloc[0]), float(shares.min()), lowest)


def best_single_model(
    results: pd.DataFrame, rounds: npt.ArrayLike, names: Mapping[Hashable, str]
) -> tuple[Hashable, float] | None:
    """The model_id with the highest mean CORR over `rounds`, and that mean, among models
    scored in at least half of them (so one lucky round cannot win); None when none is.
    Models with the same mean (the same predictions) are told apart by their `names`, so the
    choice does not depend on the random ids a run draws."""
    chosen = pd.Index(np.asarray(rounds))
    scored = results[results["round"].isin(chosen)].dropna(subset=["corr"])
    stats = scored.groupby("model_id")["corr"].agg(["mean", "count"])
    stats = stats[stats["count"] >= max(1, len(chosen) / 2)]
    if stats.empty:
        return None
    means: dict[Hashable, float] = stats["mean"].astype(float).to_dict()
    best = min(means, key=lambda model: (-means[model], names[model]))
    return best, means[best]


def model_names(record: SimulationRecord) -> dict[Hashable, str]:
    """Each model_id's name."""
    return dict(zip(record.models["model_id"], record.models["model"], strict=True))


def model_label(record: SimulationRecord, model_id: Hashable) -> str:
    """A model's name and its bot's archetype, e.g. "lin-1 (linear)"."""
    row = record.models[record.models["model_id"] == model_id].iloc[0]
    return f"{row['model']} ({row['archetype']})"


# --- the checks ----------------------------------------------------------------------------------


def _mean_check(
    name: str,
    claim: str,
    statistic: str,
    values: pd.Series,
    block: int,
    holds: Callable[[float, float], bool],
    detail: str = "",
) -> Check:
    """The bootstrap check of a per-round series: `holds(low, high)` of its interval."""
    x = values.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < MIN_ROUNDS:
        estimate = float(x.mean()) if n else math.nan
        why = f"{TOO_FEW} ({n}, needs {MIN_ROUNDS})"
        return _undecided(name, claim, statistic, why, n, estimate)
    low, high = block_bootstrap_ci(x, block=block)
    return Check(name, claim, statistic, float(x.mean()), low, high, n, holds(low, high), detail)


def _undecided(
    name: str,
    claim: str,
    statistic: str,
    why: str,
    n: int = 0,
    estimate: float = math.nan,
    unit: str = "rounds",
) -> Check:
    nan = math.nan
    return Check(name, claim, statistic, estimate, nan, nan, n, False, why, unit, decided=False)


def _block(record: SimulationRecord, block: int | None) -> int:
    return block_length(record.cadence) if block is None else block


def spammers_lose(record: SimulationRecord, *, block: int | None = None) -> Check:
    """Random predictions lose NMR: per round where the spammers had stake at risk, their
    total payout ÷ their total at_risk, its mean estimated with their CORR
    (`spammer_corr`) as a control variate (`controlled_mean`); holds when the interval's
    upper bound is < 0.

    Random predictions score 0 CORR in expectation and a little less than 0 MMC (their own
    weight in the meta model counts against them), so a rule paying on CORR and MMC alone
    pays them ≈ 0 (classic-v1); the classic rule's hurdle (classic-v2) takes the payout
    factor times the hurdle from them each round. Either is far smaller than the ±0.03 of
    CORR a round draws at random. Their payouts follow that draw, which leaves the plain
    mean's interval too wide to tell a small loss from none over a thousand rounds; the
    CORR's known mean of 0 takes that noise out without moving the estimate's expectation.
    The plain mean and its interval are given in the detail."""
    name = "spammers_lose"
    claim = "random spammers lose NMR on average"
    statistic = "spammers' payout per NMR at risk per round, with their CORR as control"
    if not _has(record, "spammer"):
        return _undecided(name, claim, statistic, "not run: no spammer in the population")
    rounds = pd.DataFrame({"payout": spammer_returns(record), "corr": spammer_corr(record)})
    rounds = rounds.astype(float).dropna()  # the rounds with both
    y, c = rounds["payout"].to_numpy(), rounds["corr"].to_numpy()
    n, size = len(y), _block(record, block)
    if n < MIN_ROUNDS:
        why = f"{TOO_FEW} ({n}, needs {MIN_ROUNDS})"
        return _undecided(name, claim, statistic, why, n, float(y.mean()) if n else math.nan)
    estimate, beta = controlled_mean(y, c)
    low, high = controlled_bootstrap_ci(y, c, block=size)
    plain_low, plain_high = block_bootstrap_ci(y, block=size)
    detail = (
        f"β = {beta:.3g} per CORR; plain mean {y.mean():.4g} [{plain_low:.4g}, {plain_high:.4g}]"
    )
    return Check(name, claim, statistic, estimate, low, high, n, high < 0, detail)


def copier_mmc_near_zero(
    record: SimulationRecord,
    *,
    tolerance: float = COPIER_MMC_TOLERANCE,
    block: int | None = None,
) -> Check:
    """Copying the crowd's consensus earns ≈ 0 MMC: per round, the copier models' mean
    final MMC; holds when the whole interval lies inside ±tolerance (0.005 by default,
    `COPIER_MMC_TOLERANCE`)."""
    name = "copier_mmc_near_zero"
    claim = f"copiers of the crowd's consensus earn ≈ 0 MMC (within ±{tolerance:g})"
    statistic = "copiers' mean MMC per round"
    if not _has(record, "copier"):
        return _undecided(name, claim, statistic, "not run: no copier in the population")
    return _mean_check(
        name,
        claim,
        statistic,
        copier_mmc(record),
        _block(record, block),
        lambda low, high: -tolerance <= low and high <= tolerance,
        f"tolerance ±{tolerance:g}",
    )


def sybil_no_gain(record: SimulationRecord, *, block: int | None = None) -> Check:
    """Splitting a stake across sybil models earns no more than the same stake on one
    model: per round where both had stake at risk, the sybil models' Σ payout ÷ Σ at_risk
    minus the linear bot's (its control: the same recipe, the same total stake on one
    model); holds when the interval's lower bound is ≤ 0 (splitting does not earn
    significantly more)."""
    name = "sybil_no_gain"
    claim = "splitting a stake across sybil models earns no more than one model"
    statistic = "sybil − linear payout per NMR at risk per round"
    for archetype in ("sybil", "linear"):
        if not _has(record, archetype):
            why = f"not run: no {archetype} in the population"
            return _undecided(name, claim, statistic, why)
    values = sybil_excess(record)
    return _mean_check(
        name, claim, statistic, values, _block(record, block), lambda low, _: low <= 0
    )


def late_never_staked(record: SimulationRecord) -> Check:
    """Late submissions never move stakes: the share of late (round, model) rows with
    at_risk ≠ 0 or payout ≠ 0, with its exact Clopper–Pearson 95% interval; holds when
    that count is 0."""
    name = "late_never_staked"
    claim = "late submissions never carry stake nor move NMR"
    statistic = "share of late rows with at_risk ≠ 0 or payout ≠ 0"
    late = record.results[record.results["late"].eq(True)]
    n = len(late)
    if n == 0:
        why = "not run: no late submission"
        why += "" if _has(record, "latecomer") else " (no latecomer in the population)"
        return _undecided(name, claim, statistic, why, unit="late rows")
    bad = int(((late["at_risk"] != 0) | (late["payout"] != 0)).sum())
    interval = binomtest(bad, n).proportion_ci(confidence_level=LEVEL, method="exact")
    detail = f"{bad} of {n} late rows staked or paid"
    low, high = float(interval.low), float(interval.high)
    return Check(name, claim, statistic, bad / n, low, high, n, bad == 0, detail, "late rows")


def meta_beats_best_single(
    record: SimulationRecord,
    *,
    block: int | None = None,
    spam_share: float = SPAM_BURNED_SHARE,
) -> Check:
    """The meta model's out-of-sample CORR is at least the best single model's, once the
    spammers' stake is burned down: the rounds with a meta CORR from the first round where
    the spammers held at most `spam_share` (a tenth) of the stake at risk (all of them
    without spammers; not reached: undecided) are split in two halves in order; the single
    model with the best mean CORR on the first half (among models scored in at least half of
    its rounds) is picked in sample; on the second half, per round, meta CORR − that model's
    CORR; holds when the interval's upper bound is ≥ 0 (the meta model is not significantly
    worse)."""
    name = "meta_beats_best_single"
    claim = "the meta model's out-of-sample CORR is at least the best single model's"
    statistic = "meta CORR − in-sample best model's CORR per out-of-sample round"
    rounds = record.rounds.dropna(subset=["meta_corr"]).sort_values("round")
    window = ""
    if _has(record, "spammer"):
        burned = spam_burned_down(record, spam_share)
        if burned.round is None:
            return _undecided(name, claim, statistic, f"not reached: {burned.describe()}")
        rounds = rounds[rounds["round"] >= burned.round]
        window = f"; {burned.describe()}"
    half = len(rounds) // 2
    first, second = rounds.iloc[:half], rounds.iloc[half:]
    if half < MIN_ROUNDS:
        why = f"{TOO_FEW} ({len(rounds)} with a meta CORR, needs {2 * MIN_ROUNDS})"
        return _undecided(name, claim, statistic, why, len(second))
    best = best_single_model(record.results, first["round"], model_names(record))
    if best is None:
        return _undecided(name, claim, statistic, "not run: no single model scored in sample")
    model_id, in_sample = best
    members = second["meta_members"].median()
    blend = (
        f"; out of sample the meta model blended a median {members:.1f} effective members"
        if math.isfinite(members)
        else ""
    )
    detail = (
        f"picked {model_label(record, model_id)}: mean CORR {in_sample:.4f} "
        f"on rounds {first['round'].iloc[0]}–{first['round'].iloc[-1]}{window}{blend}"
    )
    theirs = record.results[record.results["model_id"] == model_id].set_index("round")["corr"]
    meta = second.set_index("round")["meta_corr"]
    gap = meta - theirs.reindex(meta.index)
    return _mean_check(
        name, claim, statistic, gap, _block(record, block), lambda _, high: high >= 0, detail
    )


CHECKS: tuple[Callable[[SimulationRecord], Check], ...] = (
    spammers_lose,
    copier_mmc_near_zero,
    sybil_no_gain,
    late_never_staked,
    meta_beats_best_single,
)
"""The checks, in the order above; each one's docstring is its definition."""


def run_checks(record: SimulationRecord) -> list[Check]:
    """All the checks of `CHECKS`, with their defaults."""
    return [check(record) for check in CHECKS]
