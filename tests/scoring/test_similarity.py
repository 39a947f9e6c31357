"""CWMM and originality (max / mean correlation with the other submissions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt
from scipy.stats import norm

from crowdquant.scoring.align import AlignmentError
from crowdquant.scoring.similarity import (
    NearDuplicates,
    cwmm,
    cwmm_scores,
    near_duplicates,
    originality,
    originality_against,
    originality_scores,
    spearman_pairs,
)


def make_predictions(seed: int, n: int = 200, k: int = 7, decimals: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = sorted(f"n{x:012x}" for x in rng.choice(2**40, n, replace=False))
    common = rng.random(n)
    values = np.round(common[:, None] * rng.random(k) + rng.random((n, k)), decimals)
    return pd.DataFrame(values, index=ids, columns=[f"model_{i}" for i in range(k)])


def test_cwmm_matches_the_docs_formula_on_reference_pieces() -> None:
    predictions = make_predictions(0)
    meta = pd.Series(np.random.default_rng(0).normal(size=200), predictions.index)
    expected = nt.tie_kept_rank__gaussianize__pow_1_5(predictions).corrwith(meta)
    np.testing.assert_allclose(cwmm_scores(predictions.to_numpy(), meta.to_numpy()), expected)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_cwmm_frame_aligns_and_constant_is_nan() -> None:
    predictions = make_predictions(1)
    predictions["flat"] = 1.0
    meta = pd.Series(predictions.to_numpy()[:, :3].mean(axis=1), predictions.index)
    meta.iloc[:10] = np.nan
    shuffled = predictions.sample(frac=1.0, random_state=1)
    ours = cwmm(shuffled, meta)
    assert np.isnan(ours["flat"])
    kept = predictions.iloc[10:]
    expected = nt.tie_kept_rank__gaussianize__pow_1_5(kept).corrwith(meta.iloc[10:])
    np.testing.assert_allclose(ours, expected, atol=1e-12)
    with pytest.raises(AlignmentError):
        cwmm(predictions, meta.iloc[:100])


def brute_force(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gauss = nt.gaussian(nt.tie_kept_rank(pd.DataFrame(values))).to_numpy()
    corr = np.corrcoef(gauss, rowvar=False)
    np.fill_diagonal(corr, np.nan)
    return np.nanmax(corr, axis=1), np.nanmean(corr, axis=1)


@pytest.mark.parametrize("block_size", [1, 3, 1024])
def test_originality_matches_the_full_correlation_matrix(block_size: int) -> None:
    values = make_predictions(2, k=8).to_numpy()
    result = originality_scores(values, block_size=block_size)
    best, mean = brute_force(values)
    np.testing.assert_allclose(result.max_corr, best, atol=1e-12)
    np.testing.assert_allclose(result.mean_corr, mean, atol=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_originality_leaves_constant_submissions_out() -> None:
    predictions = make_predictions(3, k=5)
    predictions.insert(2, "flat", 0.0)
    frame = originality(predictions, block_size=2)
    assert frame.loc["flat"].isna().all()
    best, mean = brute_force(predictions.drop(columns="flat").to_numpy())
    np.testing.assert_allclose(frame.drop("flat")["max_corr"], best, atol=1e-12)
    np.testing.assert_allclose(frame.drop("flat")["mean_corr"], mean, atol=1e-12)


def test_originality_with_too_few_submissions() -> None:
    values = make_predictions(4, k=2).to_numpy()
    single = originality_scores(values[:, :1])
    assert np.isnan(single.max_corr).all() and np.isnan(single.mean_corr).all()
    pair = originality_scores(values)
    assert pair.max_corr[0] == pytest.approx(pair.max_corr[1])
    assert pair.mean_corr[0] == pytest.approx(pair.max_corr[0])
    copies = originality_scores(np.column_stack([values[:, 0], values[:, 0] * 2 + 1]))
    np.testing.assert_allclose(copies.max_corr, [1.0, 1.0])


def test_originality_against_a_reference_set_ignores_the_other_columns() -> None:
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(300, 6))
    matrix[:, 5] = matrix[:, 0] + 0.01 * rng.normal(size=300)  # a copy of column 0
    matrix[:, 4] = 1.0  # constant: no correlation
    references = [0, 1, 2]
    result = originality_against(matrix, references)

    corr = pd.DataFrame(matrix[:, :4]).rank().apply(lambda c: norm.ppf((c - 0.5) / len(c))).corr()
    for k in range(4):
        others = [j for j in references if j != k]
        assert result.max_corr[k] == pytest.approx(corr.loc[k, others].max())
        assert result.mean_corr[k] == pytest.approx(corr.loc[k, others].mean())
    assert np.isnan(result.max_corr[4]) and np.isnan(result.mean_corr[4])
    assert result.max_corr[5] > 0.99  # compared with column 0, which it copies
    # a column's figures do not depend on the columns outside the reference set
    alone = originality_against(matrix[:, [0, 1, 2, 5]], [0, 1, 2])
    assert alone.max_corr[3] == result.max_corr[5]


def test_spearman_pairs_find_near_duplicates_by_rank_only() -> None:
    rng = np.random.default_rng(3)
    base = rng.random(500)
    columns = {
        "base": base,
        "monotone": np.exp(5 * base),  # a different scale, the same ranks: Spearman 1
        "nudged": base + rng.normal(0, 0.01, 500),
        "other": rng.random(500),
        "constant": np.full(500, 0.5),
        "gappy": np.where(np.arange(500) < 5, np.nan, base),
    }
    matrix = np.column_stack(list(columns.values()))
    pairs = spearman_pairs(matrix, 0.95, block_size=2)  # blocks that split the pairs
    assert [(a, b) for a, b, _ in pairs] == [(0, 1), (0, 2), (0, 5), (1, 2), (1, 5), (2, 5)]
    assert pairs[0][2] == pytest.approx(1.0)
    assert all(0.95 < rho <= 1.0 for _, _, rho in pairs)
    whole = spearman_pairs(matrix, 0.95)
    assert [(a, b) for a, b, _ in whole] == [(a, b) for a, b, _ in pairs]
    assert [rho for _, _, rho in whole] == pytest.approx([rho for _, _, rho in pairs])
    assert spearman_pairs(matrix, 0.9999) == [(0, 1, pytest.approx(1.0))]
    assert spearman_pairs(matrix, 1.0) == []  # a threshold of 1 finds none


def test_near_duplicates_keep_the_preferred_of_each_owner_and_flag_the_others() -> None:
    # 0 ~ 1 ~ 2 chain within owner "a"; 3 (owner "b") looks like 0; 4 alone
    pairs = [(0, 1, 0.99), (0, 3, 0.97), (1, 2, 0.96)]
    owners = ["a", "a", "a", "b", "a"]
    found = near_duplicates(pairs, owners, preference=[1.0, 5.0, 2.0, 9.0, 0.0])
    assert found.dropped == {0: 1, 2: 1}
    assert found.flagged == [(0, 3, 0.97)]
    tie = near_duplicates([(0, 1, 0.99)], ["a", "a"], preference=[1.0, 1.0])
    assert tie.dropped == {1: 0}
    assert near_duplicates([], ["a"], [0.0]) == NearDuplicates(dropped={}, flagged=[])
