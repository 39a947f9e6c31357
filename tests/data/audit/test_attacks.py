"""The attacks' pure functions, on small hand-made arrays (no dataset build)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdquant.data.audit import dating, linkage, reidentify, side_channels
from crowdquant.data.audit.library import (
    bin_centres,
    binned_columns,
    correlation,
    gaussian_columns,
    released_scores,
)


def _ar1_eras(n: int, features: int, rho: float, eras: int, seed: int) -> list[np.ndarray]:
    """Latent AR(1) features binned into 5 equal-count bins per era (the B4 simulation)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features))
    out = []
    for _ in range(eras):
        out.append(binned_columns(x, 2))
        x = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((n, features))
    return out


def test_bin_centres_are_the_normal_quintile_means() -> None:
    c = bin_centres()
    assert c.shape == (5,)
    assert np.allclose(c, -c[::-1]) and c[2] == pytest.approx(0.0, abs=1e-12)
    assert c[4] == pytest.approx(1.3998, abs=1e-3)  # E[Z | Z > 0.8416]
    assert np.array_equal(released_scores(np.array([[0, 4]], dtype=np.int8)), c[[0, 4]][None, :])


def test_gaussian_and_binned_columns_rank_within_each_column() -> None:
    values = np.array([[3.0, np.nan], [1.0, 2.0], [2.0, 1.0], [10.0, 3.0], [0.0, 0.0]])
    g = gaussian_columns(values)
    assert np.array_equal(np.argsort(g[:, 0]), np.argsort(values[:, 0]))
    assert g[0, 1] == 0.0  # missing → the median score
    b = binned_columns(values, missing_bin=2)
    assert b.dtype == np.int8 and b[:, 0].tolist() == [3, 1, 2, 4, 0]
    assert b[0, 1] == 2


def test_linkage_tracks_persistent_features_and_not_noise() -> None:
    slow = _ar1_eras(300, 40, 0.95, 3, seed=1)
    rates, assigned = linkage.link_rates(slow[0], np.arange(300), slow[1], np.arange(300))
    assert rates.hungarian > 0.9 and rates.nearest > 0.8
    assert rates.chance == pytest.approx(1 / 300)
    assert sorted(assigned.tolist()) == list(range(300))
    noise = _ar1_eras(300, 40, 0.01, 2, seed=2)
    rates, _ = linkage.link_rates(noise[0], np.arange(300), noise[1], np.arange(300))
    assert rates.hungarian < 0.05


def test_linkage_scores_only_stocks_in_both_eras() -> None:
    eras = _ar1_eras(100, 60, 0.99, 2, seed=3)
    shifted = np.r_[50:100, 0:50]  # the later era lists its stocks in another order
    rates, _ = linkage.link_rates(eras[0][:50], np.arange(50), eras[1][shifted], shifted)
    assert rates.common == 50 and rates.hungarian > 0.9 and rates.candidates == 100
    others = np.arange(10) + 1000  # no stock in common
    rates, _ = linkage.link_rates(eras[0], np.arange(100), eras[1][:10], others)
    assert rates.common == 0 and rates.hungarian == 0.0


def test_chain_rates_follow_links_and_stop_at_unlinked_rows() -> None:
    tickers = [np.array([10, 11, 12]), np.array([12, 10, 11]), np.array([11, 12, 10])]
    perfect = [np.array([1, 2, 0]), np.array([1, 2, 0])]
    assert linkage.chain_rates(tickers, perfect) == [1.0, 1.0]
    broken = [np.array([1, 2, 0]), np.array([-1, 2, 0])]  # era-1 row 0 (stock 12) unlinked
    assert linkage.chain_rates(tickers, broken) == [1.0, pytest.approx(2 / 3)]
    assert linkage.chain_length_to_half([0.9, 0.6, 0.4, 0.7]) == 2
    assert linkage.chain_length_to_half([0.3]) == 0


def test_score_matching_ranks_and_chance() -> None:
    dist = np.array([[0.0, 1.0, 2.0], [1.0, 0.5, 0.2], [3.0, 2.0, 1.0]])
    s = reidentify.score_matching(dist, np.array([0, 1, 2]))
    # row 1's nearest is column 2, but the assignment gives column 2 to row 2 and 1 to row 1
    assert s.top1 == pytest.approx(1.0)
    assert s.top1_nearest == pytest.approx(2 / 3)
    assert s.mrr == pytest.approx((1 + 0.5 + 1) / 3)
    assert s.chance_top1 == pytest.approx(1 / 3) and s.chance_top10 == 1.0
    assert s.chance_mrr == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)


def _correlated_library(n: int, signals: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n, 4))
    loadings = rng.standard_normal((4, signals)) * rng.uniform(0.2, 1.5, size=signals)
    return factors @ loadings + rng.standard_normal((n, signals))


def test_graph_matching_recovers_a_hidden_permutation_without_ground_truth() -> None:
    rng = np.random.default_rng(4)
    library = _correlated_library(2000, 24, seed=5)
    perm = rng.permutation(24)
    released = binned_columns(library[:, perm], 2)  # released feature i = signal perm[i]
    groups = ["g1"] * 24
    found = reidentify.estimate_correspondence(
        correlation(released), correlation(binned_columns(library, 2)), groups, groups
    )
    assert found.accuracy(reidentify.Correspondence(perm, np.ones(24))) > 0.8
    assert np.all(found.signs == 1.0)


def test_group_sizes_constrain_the_matching() -> None:
    library = _correlated_library(1000, 6, seed=6)
    corr = correlation(binned_columns(library, 2))
    found = reidentify.estimate_correspondence(
        corr, corr, ["a", "a", "b", "b", "b", "b"], ["x", "x", "y", "y", "y", "y"]
    )
    assert set(found.columns[:2].tolist()) == {0, 1}
    assert set(found.columns[2:].tolist()) == {2, 3, 4, 5}


def test_reidentification_through_a_known_correspondence_and_a_self_trained_map() -> None:
    rng = np.random.default_rng(7)
    library = _correlated_library(400, 30, seed=8)
    gauss = gaussian_columns(library)
    rows = np.sort(rng.choice(400, size=300, replace=False))
    perm = rng.permutation(30)
    released = binned_columns(library[rows][:, perm], 2)
    target = reidentify.EraTarget.build(released, rows, np.arange(400), gauss)
    truth = reidentify.Correspondence(perm, np.ones(30))
    known = reidentify.attack_known([target], truth, truth)
    assert known.scores[0].top1 > 0.95 and known.scores[0].candidates == 400
    wrong = reidentify.Correspondence(rng.permutation(30), np.ones(30))
    guessed = reidentify.attack_estimated([target], wrong, try_flip=False, refine=False)
    assert guessed.scores[0].top1 < 0.2
    # a rotation of the features, as mixing does: the self-trained linear map undoes it
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    mixed = binned_columns(gaussian_columns(library[rows]) @ q, 2)
    target = reidentify.EraTarget.build(mixed, rows, np.arange(400), gauss)
    start = reidentify.correlated_correspondence(np.corrcoef(mixed.T, gauss[rows].T)[:30, 30:])
    plain = reidentify.attack_estimated([target], start, try_flip=True, refine=False)
    refined = reidentify.attack_estimated([target], start, try_flip=True, refine=True)
    assert refined.scores[0].top1 >= plain.scores[0].top1
    assert refined.scores[0].top1 > 0.9


def test_group_fingerprint_is_invariant_to_linear_maps_within_groups() -> None:
    rng = np.random.default_rng(9)
    data = _correlated_library(3000, 9, seed=10)
    groups = [np.arange(0, 4), np.arange(4, 9)]
    mixed = data.copy()
    for g in groups:
        mixed[:, g] = data[:, g] @ rng.standard_normal((len(g), len(g)))
    a = dating.group_fingerprint(correlation(data), groups)
    b = dating.group_fingerprint(correlation(mixed), groups)
    assert a.shape == (4,) and np.allclose(a, b, atol=1e-4)
    assert np.all((a >= 0) & (a <= 1 + 1e-9))


def test_score_dating_exact_within_one_week_and_joint_offset() -> None:
    candidates = 50
    truth = np.array([20, 21, 22])
    dist = np.ones((3, candidates))
    dist[0, 20] = dist[1, 22] = 0.0  # era 0 exact, era 1 one week off
    dist[2, 40] = 0.0  # era 2 far off, but the joint offset repairs it
    dist[2, 22] = 0.1
    s = dating.score_dating(dist, truth, np.array([101, 102, 103]))
    assert s.exact == pytest.approx(1 / 3)
    assert s.within_one_week == pytest.approx(2 / 3)
    assert s.joint_exact and s.joint_within_one_week
    assert s.chance_exact == pytest.approx(1 / 50)


def test_aggregated_rank_z_detects_order_and_not_noise() -> None:
    rng = np.random.default_rng(11)
    groups = np.repeat(np.arange(30), 20)
    x = rng.permutation(len(groups))
    assert abs(side_channels.aggregated_rank_z(x, rng.permutation(len(groups)), groups)) < 5
    assert side_channels.aggregated_rank_z(x, x + rng.normal(0, 1, len(x)), groups) > 20


def test_string_checks() -> None:
    frame = pd.DataFrame(
        {"era": ["0001", "0001"], "data_type": ["train", "train"], "feature_a": [0, 1]},
        index=pd.Index(["nabcdef012345678", "AAPL"], name="id"),
    )
    values = side_channels._string_values([frame], ["feature_a"])
    assert not side_channels.id_format_check(frame.index).passed
    assert not side_channels.no_tickers_check(values, list(frame.columns), ["AAPL"]).passed
    assert side_channels.no_tickers_check(values, list(frame.columns), ["MSFT"]).passed
    assert not side_channels.no_dates_check(values | {"2020-01-03"}, [frame], set()).passed
    assert side_channels.no_dates_check(values, [frame], {"2020-01-03"}).passed
    assert not side_channels.no_real_names_check(values, {"feature_a"}).passed
    assert side_channels.no_real_names_check(values, {"momentum_252_21"}).passed
