"""The mechanism checks on synthetic records whose answers are known, and the block bootstrap."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from crowdquant.scoring.metamodel import blend_concentration
from crowdquant.simulate.checks import (
    COPIER_MMC_TOLERANCE,
    Check,
    best_single_model,
    block_bootstrap_ci,
    block_length,
    controlled_bootstrap_ci,
    controlled_mean,
    copier_mmc_near_zero,
    late_never_staked,
    meta_beats_best_single,
    run_checks,
    spam_burned_down,
    spam_stake_share,
    spammer_returns,
    spammers_lose,
    sybil_no_gain,
)
from crowdquant.simulate.record import (
    FUND_COLUMNS,
    HOLDING_COLUMNS,
    MODEL_COLUMNS,
    RESULT_COLUMNS,
    ROUND_COLUMNS,
    SimulationRecord,
)

# (model, account, archetype, stake at risk)
POPULATION = [
    ("ex-1", "example", "example", 100.0),
    ("lin-1", "linear", "linear", 100.0),
    ("boost-1", "boosting", "boosting", 100.0),
    *[(f"spam-{k}", "spammer", "spammer", 10.0) for k in range(5)],
    ("copy-1", "copier", "copier", 50.0),
    *[(f"syb-{k}", "sybil", "sybil", 25.0) for k in range(4)],
    ("late-1", "latecomer", "latecomer", 0.0),
]
MEAN_CORR = {"example": 0.010, "linear": 0.012, "boosting": 0.008, "copier": 0.010}


def _classic(corr: float, mmc: float) -> float:
    return float(np.clip(0.5 * corr + 2 * mmc, -0.05, 0.05))


def synthetic_record(
    rounds: int = 120,
    *,
    seed: int = 0,
    spammer_return: float = -0.01,
    spam_corr_payout: float = 0.0,
    copier_mmc: float = 0.0,
    sybil_extra: float = 0.0,
    late_payout: float = 0.0,
    meta_edge: float = 0.005,
    spam_stake: float = 10.0,
    spam_decay: float = 0.0,
    meta_spam_penalty: float = 0.0,
    omit: tuple[str, ...] = (),
    fund: bool = True,
) -> SimulationRecord:
    """A population whose per-round figures are drawn around known means: spammers earn
    `spammer_return` per NMR (plus `spam_corr_payout` per unit of their random CORR),
    copiers `copier_mmc` MMC, the sybil the linear bot's return
    plus `sybil_extra`, the meta model the linear bot's CORR plus `meta_edge`; the first
    late row is paid `late_payout`. Each spammer stakes `spam_stake` in the first round, a
    share `spam_decay` less each round after; the meta model loses `meta_spam_penalty` in the
    rounds where they hold more than a tenth of the stake at risk."""
    rng = np.random.default_rng(seed)
    population = [p for p in POPULATION if p[2] not in omit]
    models = pd.DataFrame(
        [(f"id-{name}", name, account, kind) for name, account, kind, _ in population],
        columns=list(MODEL_COLUMNS),
    )
    results, round_rows, holdings = [], [], []
    wealth = {account: 1_000.0 for _, account, _, _ in population}
    for r in range(1, rounds + 1):
        corr = {kind: mean + rng.normal(0, 0.02) for kind, mean in MEAN_CORR.items()}
        mmc = {kind: rng.normal(0, 0.01) for kind in MEAN_CORR}
        mmc["copier"] = copier_mmc + rng.normal(0, 0.01)
        linear_return = _classic(corr["linear"], mmc["linear"])
        spam_shock = spammer_return + rng.normal(0, 0.01)
        rows = []
        for name, account, kind, stake in population:
            late = kind == "latecomer"
            if kind == "spammer":
                stake = spam_stake * (1 - spam_decay) ** (r - 1)
                c, m = rng.normal(0, 0.02), rng.normal(0, 0.01)
                ret = spam_shock + spam_corr_payout * c
            elif kind == "sybil":
                c, m = corr["linear"] + rng.normal(0, 1e-4), mmc["linear"]
                ret = linear_return + sybil_extra + rng.normal(0, 1e-4)
            elif late:
                c, m, ret = corr["linear"], 0.0, 0.0
            else:
                c, m = corr[kind], mmc[kind]
                ret = _classic(c, m)
            payout = late_payout if late and r == 1 else stake * ret
            rows.append((r, f"id-{name}", True, late, stake, payout, payout * 5, c, m))
            wealth[account] += payout
        results += rows
        paid = sum(row[5] for row in rows if row[5] > 0)
        burned = -sum(row[5] for row in rows if row[5] < 0)
        spam_share = sum(row[4] for row in rows if "spam" in row[1]) / sum(row[4] for row in rows)
        penalty = meta_spam_penalty if spam_share > 0.1 else 0.0
        meta = corr["linear"] + meta_edge - penalty + rng.normal(0, 0.005)
        blend = blend_concentration([row[4] for row in rows if not row[3]])
        round_rows.append(
            (r, pd.Timestamp("2024-01-01") + pd.Timedelta(days=r), meta, *blend, paid, burned)
        )
        kinds = {account: kind for _, account, kind, _ in population}
        holdings += [(r, account, kinds[account], nmr) for account, nmr in wealth.items()]
    days = pd.bdate_range("2024-01-02", periods=rounds if fund else 0)
    equity = np.cumprod(1 + rng.normal(0.0005, 0.01, len(days)))
    return SimulationRecord(
        rule="classic-v2",
        cadence="daily",
        rounds_run=rounds + 5,
        models=models,
        results=pd.DataFrame(results, columns=list(RESULT_COLUMNS)),
        rounds=pd.DataFrame(round_rows, columns=list(ROUND_COLUMNS)),
        holdings=pd.DataFrame(holdings, columns=list(HOLDING_COLUMNS)),
        fund=pd.DataFrame({"date": days, "equity": equity}, columns=list(FUND_COLUMNS)),
        seconds=12.5,
    )


# --- the checks --------------------------------------------------------------------------------


def test_spammers_losing_hold() -> None:
    check = spammers_lose(synthetic_record(spammer_return=-0.01))
    assert check.holds and check.verdict == "holds"
    assert check.n == 120 and check.unit == "rounds"
    assert check.low < -0.01 < check.high < 0
    assert check.estimate == pytest.approx(-0.01, abs=0.003)


def test_spammers_earning_fail() -> None:
    check = spammers_lose(synthetic_record(spammer_return=0.01))
    assert not check.holds and check.decided and check.verdict == "fails"
    assert 0 < check.low < check.estimate < check.high


def test_spammers_whose_payouts_follow_their_random_corr_are_told_losing() -> None:
    """Payouts that follow the spammers' random CORR hide a small loss in the plain mean's
    interval; with that CORR (mean 0) as a control the same rounds show it."""
    record = synthetic_record(spammer_return=-0.005, spam_corr_payout=6.0, seed=3)
    plain_low, plain_high = block_bootstrap_ci(spammer_returns(record))
    assert plain_low < 0 < plain_high
    check = spammers_lose(record)
    assert check.holds and check.low < -0.005 < check.high < 0
    assert check.high - check.low < (plain_high - plain_low) / 2
    assert check.detail.startswith("β = 6") and "plain mean" in check.detail


def test_copiers_near_zero_mmc_hold_and_a_real_edge_fails() -> None:
    near = copier_mmc_near_zero(synthetic_record(copier_mmc=0.0))
    assert near.holds
    assert -COPIER_MMC_TOLERANCE <= near.low < near.high <= COPIER_MMC_TOLERANCE
    far = copier_mmc_near_zero(synthetic_record(copier_mmc=0.02))
    assert not far.holds and far.estimate == pytest.approx(0.02, abs=0.005)
    assert not copier_mmc_near_zero(synthetic_record(copier_mmc=0.0), tolerance=1e-4).holds


def test_sybil_splitting_gains_nothing_holds_and_a_gain_fails() -> None:
    fair = sybil_no_gain(synthetic_record(sybil_extra=0.0))
    assert fair.holds and fair.low <= 0 and abs(fair.estimate) < 1e-4
    gaming = sybil_no_gain(synthetic_record(sybil_extra=0.01))
    assert not gaming.holds and gaming.low > 0
    assert gaming.estimate == pytest.approx(0.01, abs=1e-4)  # per NMR, as the record was built


def test_late_rows_never_staked() -> None:
    check = late_never_staked(synthetic_record())
    assert check.holds and check.estimate == 0 and check.n == 120 and check.unit == "late rows"
    assert check.low == 0 and check.high == pytest.approx(1 - 0.025 ** (1 / 120))


def test_a_paid_late_row_fails() -> None:
    check = late_never_staked(synthetic_record(late_payout=0.5))
    assert not check.holds and check.decided
    assert check.estimate == pytest.approx(1 / 120)
    assert check.low < 1 / 120 < check.high
    assert check.detail == "1 of 120 late rows staked or paid"


def test_meta_model_beats_the_best_single_out_of_sample() -> None:
    good = meta_beats_best_single(synthetic_record(meta_edge=0.005))
    assert good.holds and good.n == 60
    assert good.detail.startswith("picked ") and "on rounds 1–60" in good.detail
    bad = meta_beats_best_single(synthetic_record(meta_edge=-0.02))
    assert not bad.holds and bad.high < 0


def test_the_meta_check_tells_how_many_models_the_meta_model_blended_out_of_sample() -> None:
    record = synthetic_record(meta_edge=0.005)
    # rounds 61-120 are out of sample: their blends rest on 2 models, then on 1
    members = np.where(record.rounds["round"] > 90, 1.0, 2.0)
    check = meta_beats_best_single(
        replace(record, rounds=record.rounds.assign(meta_members=members))
    )
    assert check.detail.endswith(
        "; out of sample the meta model blended a median 1.5 effective members"
    )
    unknown = record.rounds.assign(meta_members=np.nan)
    check = meta_beats_best_single(replace(record, rounds=unknown))
    assert "blended" not in check.detail


def test_the_spam_stake_burns_down_in_the_first_round_at_a_tenth_of_the_stake() -> None:
    # 5 spammers of 100 NMR, 5% less each round, beside 450 NMR of others: their share is
    # 500q / (500q + 450) with q = 0.95^(r − 1), at most a tenth once q ≤ 0.1, from round 46
    record = synthetic_record(80, spam_stake=100.0, spam_decay=0.05)
    shares = spam_stake_share(record)
    assert shares.loc[1] == pytest.approx(500 / 950)
    assert shares.loc[45] > 0.1 >= shares.loc[46]
    burned = spam_burned_down(record)
    assert (burned.round, burned.lowest_round) == (46, 80)
    assert burned.describe() == (
        "spam stake 53% of the stake at risk in the first round, at most 10% from round 46"
    )
    assert spam_burned_down(synthetic_record(10)).round == 1  # 50 of 500 NMR: a tenth
    never = spam_burned_down(synthetic_record(10, spam_stake=100.0))
    assert never.round is None
    assert never.describe().endswith("never down to 10% (lowest 52.6%, round 1)")
    nobody = spam_burned_down(synthetic_record(10, omit=("spammer",)))
    assert (nobody.round, nobody.start) == (1, 0.0)


def test_the_meta_model_is_judged_once_the_spam_stake_is_burned_down() -> None:
    # spam drags the meta model down while it holds over a tenth of the stake (up to round
    # 153: 0.985^152 > 0.1 ≥ 0.985^153): judged on every round, the meta model loses to the
    # best single model; from the burn-down on, it beats it
    record = synthetic_record(
        200, spam_stake=100.0, spam_decay=0.015, meta_spam_penalty=0.1, meta_edge=0.005
    )
    after = meta_beats_best_single(record)
    assert after.holds and after.n == 47 - 47 // 2
    assert "at most 10% from round 154; out of sample the meta model blended" in after.detail
    assert "on rounds 154–176" in after.detail
    throughout = meta_beats_best_single(record, spam_share=1.0)
    assert not throughout.holds and throughout.n == 100 and throughout.high < 0
    never = meta_beats_best_single(synthetic_record(60, spam_stake=100.0))
    assert not never.decided and not never.holds
    assert never.verdict.startswith("not reached: spam stake 53% of the stake at risk")
    without = meta_beats_best_single(synthetic_record(60, omit=("spammer",)))
    assert without.holds and without.n == 30 and "spam stake" not in without.detail


@pytest.mark.parametrize(
    ("omit", "check", "why"),
    [
        (("spammer",), spammers_lose, "not run: no spammer in the population"),
        (("copier",), copier_mmc_near_zero, "not run: no copier in the population"),
        (("sybil",), sybil_no_gain, "not run: no sybil in the population"),
        (("linear",), sybil_no_gain, "not run: no linear in the population"),
        (
            ("latecomer",),
            late_never_staked,
            "not run: no late submission (no latecomer in the population)",
        ),
    ],
)
def test_a_missing_archetype_is_not_run(
    omit: tuple[str, ...], check: Callable[[SimulationRecord], Check], why: str
) -> None:
    result = check(synthetic_record(30, omit=omit))
    assert result.verdict == why and result.detail == why
    assert not result.holds and not result.decided and result.n == 0
    assert math.isnan(result.estimate) and math.isnan(result.low) and math.isnan(result.high)


def test_too_few_rounds_are_undecided() -> None:
    record = synthetic_record(2)
    for check in run_checks(record):
        if check.name == "late_never_staked":
            assert check.decided  # counts rows, not rounds
            continue
        assert not check.holds and not check.decided
        assert check.detail.startswith("too few rounds")
        assert math.isnan(check.low) and math.isnan(check.high)
    assert spammers_lose(record).n == 2


def test_run_checks_gives_all_five_in_order() -> None:
    names = [check.name for check in run_checks(synthetic_record(30))]
    assert names == [
        "spammers_lose",
        "copier_mmc_near_zero",
        "sybil_no_gain",
        "late_never_staked",
        "meta_beats_best_single",
    ]


# --- the block bootstrap ---------------------------------------------------------------------


def _ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(size=n)
    x = np.empty(n)
    x[0] = noise[0] / math.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def test_block_bootstrap_covers_an_ar1_mean_where_iid_does_not() -> None:
    """AR(1) with φ = 0.8: the mean's variance is (1 + φ)/(1 − φ) = 9 times the i.i.d. one."""
    rng = np.random.default_rng(7)
    covered = {20: 0, 1: 0}
    widths: dict[int, list[float]] = {20: [], 1: []}
    for _ in range(100):
        x = _ar1(400, 0.8, rng)
        for block in covered:
            low, high = block_bootstrap_ci(x, block=block, resamples=500)
            covered[block] += low <= 0 <= high
            widths[block].append(high - low)
    assert covered[20] >= 85
    assert covered[1] <= 70
    assert np.mean(widths[20]) > 2 * np.mean(widths[1])


def test_block_bootstrap_centres_on_the_mean_when_the_ends_differ() -> None:
    """Rounds whose first and last target windows differ from the middle ones (a regime at
    the start and the end): every value counts alike, so the interval straddles the mean."""
    rng = np.random.default_rng(3)
    ends, middle = np.full(20, -1.0), np.full(160, 0.25)
    x = np.concatenate([ends, middle, ends]) + rng.normal(0, 0.05, 200)
    low, high = block_bootstrap_ci(x)
    assert low < x.mean() < high
    assert abs((low + high) / 2 - x.mean()) < (high - low) / 10


def test_block_bootstrap_is_seeded_and_needs_three_values() -> None:
    x = np.random.default_rng(1).normal(size=50)
    assert block_bootstrap_ci(x) == block_bootstrap_ci(x)
    assert block_bootstrap_ci(x, seed=1) != block_bootstrap_ci(x, seed=2)
    assert all(math.isnan(v) for v in block_bootstrap_ci([1.0, np.nan, 2.0]))
    low, high = block_bootstrap_ci([1.0, 2.0, 3.0, np.inf])
    assert 1.0 <= low <= high <= 3.0


def _windows(shocks: np.ndarray, width: int) -> np.ndarray:
    """Means of `width` consecutive rows: figures over overlapping target windows."""
    sums = np.cumsum(np.vstack([np.zeros(shocks.shape[1]), shocks]), axis=0)
    return np.asarray((sums[width:] - sums[:-width]) / width)


def test_a_control_with_a_known_mean_takes_its_noise_out_of_the_mean() -> None:
    rng = np.random.default_rng(5)
    control = rng.normal(0, 1, 400)
    values = 0.1 + 2 * control + rng.normal(0, 0.01, 400)
    estimate, beta = controlled_mean(values, control)
    assert beta == pytest.approx(2, abs=0.01)
    assert estimate == pytest.approx(0.1, abs=0.002)
    assert abs(values.mean() - 0.1) > 10 * abs(estimate - 0.1)
    low, high = controlled_bootstrap_ci(values, control, block=1)
    assert low < 0.1 < high and high - low < 0.01
    assert controlled_mean([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]) == (2.0, 0.0)  # no β to fit


def test_the_controlled_interval_covers_clipped_payouts_over_overlapping_windows() -> None:
    """Spammer-like rounds: 16 random models whose CORR and MMC span 20-round windows, paid
    clip(0.5 CORR + 2 MMC, ±5%): the controlled interval covers the true mean as the plain
    one does, at half its width or less."""
    rng = np.random.default_rng(11)
    rounds, width, models = 300, 20, 16

    def draw() -> tuple[np.ndarray, np.ndarray]:
        corr = _windows(rng.normal(0, 0.13, (rounds + width, models)), width)
        mmc = 0.86 * corr - 0.001 + _windows(rng.normal(0, 0.02, (rounds + width, models)), width)
        payout = np.clip(0.5 * corr + 2 * mmc, -0.05, 0.05)
        return payout.mean(axis=1), corr.mean(axis=1)

    truth = np.mean([draw()[0].mean() for _ in range(100)])
    covered, controlled_widths, plain_widths = 0, [], []
    for _ in range(40):
        values, control = draw()
        low, high = controlled_bootstrap_ci(values, control, resamples=500)
        covered += low <= truth <= high
        controlled_widths.append(high - low)
        plain_low, plain_high = block_bootstrap_ci(values, resamples=500)
        plain_widths.append(plain_high - plain_low)
    assert covered >= 34
    assert np.mean(controlled_widths) < np.mean(plain_widths) / 2


def test_the_controlled_interval_drops_unpaired_values_and_needs_three() -> None:
    values, control = [1.0, 2.0, np.nan, 3.0, 4.0], [0.1, np.inf, 0.3, -0.2, 0.0]
    assert controlled_bootstrap_ci(values, control) == controlled_bootstrap_ci(
        [1.0, 3.0, 4.0], [0.1, -0.2, 0.0]
    )
    assert all(math.isnan(v) for v in controlled_bootstrap_ci([1.0, 2.0], [0.1, 0.2]))


def test_block_length_spans_one_target_window() -> None:
    assert block_length("daily") == 20
    assert block_length("weekly") == 4


def test_models_with_the_same_mean_corr_are_told_apart_by_name_not_id() -> None:
    results = pd.DataFrame(
        {
            "model_id": ["id-b", "id-a", "id-c"] * 2,
            "round": [1, 1, 1, 2, 2, 2],
            "corr": [0.02, 0.02, 0.01, 0.04, 0.04, 0.03],
        }
    )
    names = {"id-a": "zeta", "id-b": "alpha", "id-c": "beta"}
    assert best_single_model(results, [1, 2], names) == ("id-b", pytest.approx(0.03))
    renamed = {"id-a": "alpha", "id-b": "zeta", "id-c": "beta"}
    assert best_single_model(results, [1, 2], renamed) == ("id-a", pytest.approx(0.03))
