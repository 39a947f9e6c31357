"""Per-era score summaries: mean, std, Sharpe, max drawdown, positive share."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt

from crowdquant.scoring.summary import summarise, summarise_many, summary_stats


def test_golden_series() -> None:
    scores = pd.Series([0.1, -0.2, 0.3, -0.4, 0.05], index=[f"e{i}" for i in range(5)])
    summary = summarise(scores)
    assert summary.mean == pytest.approx(-0.03)
    assert summary.std == pytest.approx(np.std(scores.to_numpy()))
    assert summary.sharpe == pytest.approx(nt.sharpe_ratio(scores))
    assert summary.max_drawdown == pytest.approx(0.4)  # cumsum .1 −.1 .2 −.2 −.15
    assert summary.positive_share == pytest.approx(0.6)
    assert summary.n_eras == 5
    assert summary.scores is scores
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.mean = 0.0  # type: ignore[misc]


def example_scripts_drawdown(scores: pd.Series) -> float:
    cumulative = scores.cumsum()
    return float((cumulative.expanding(min_periods=1).max() - cumulative).max())


@pytest.mark.parametrize("seed", range(3))
def test_column_wise_equals_per_series(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(0.01, 0.03, (60, 4)), columns=list("abcd"))
    many = summarise_many(frame)
    assert list(many.index) == list("abcd")
    for name in frame.columns:
        one = summarise(frame[name])
        row = many.loc[name]
        assert row["mean"] == pytest.approx(one.mean)
        assert row["std"] == pytest.approx(frame[name].std(ddof=0))
        assert row["sharpe"] == pytest.approx(nt.sharpe_ratio(frame[name]))
        assert row["max_drawdown"] == pytest.approx(example_scripts_drawdown(frame[name]))
        assert row["positive_share"] == pytest.approx((frame[name] > 0).mean())
        assert row["n_eras"] == 60


def test_nan_eras_are_skipped() -> None:
    values = np.array([[np.nan, 0.2], [np.nan, -0.1], [-0.3, np.nan], [0.1, 0.4], [np.nan, -0.5]])
    stats = summary_stats(values)
    for k in range(2):
        present = pd.Series(values[:, k]).dropna()
        assert stats["mean"][k] == pytest.approx(present.mean())
        assert stats["std"][k] == pytest.approx(present.std(ddof=0))
        assert stats["max_drawdown"][k] == pytest.approx(example_scripts_drawdown(present))
        assert stats["positive_share"][k] == pytest.approx((present > 0).mean())
        assert stats["n_eras"][k] == len(present)


def test_degenerate_inputs() -> None:
    flat = summarise([0.02, 0.02, 0.02])
    assert flat.std == 0 and np.isnan(flat.sharpe) and flat.max_drawdown == 0
    empty = summarise(pd.Series([np.nan, np.nan]))
    assert np.isnan(empty.mean) and np.isnan(empty.max_drawdown) and empty.n_eras == 0
    none = summary_stats(np.empty((0, 3)))
    assert none["mean"].shape == (3,) and np.isnan(none["sharpe"]).all()
    with pytest.raises(ValueError, match="eras"):
        summary_stats(np.zeros((2, 2, 2)))
