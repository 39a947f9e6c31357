"""Building books: every constraint holds on every book, infeasible cases give way politely."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from crowdquant.fund.portfolio import (
    Portfolio,
    PortfolioBuilder,
    PortfolioLimits,
    build_portfolio,
    check_constraints,
    signal_scores,
)


def universe(n: int, n_sectors: int, seed: int) -> tuple[pd.Series, pd.Series, pd.Series]:
    """A signal, betas and sectors for n tickers."""
    rng = np.random.default_rng(seed)
    tickers = [f"T{i:03d}" for i in range(n)]
    signal = pd.Series(rng.standard_normal(n), index=tickers)
    betas = pd.Series(1.0 + 0.3 * rng.standard_normal(n), index=tickers)
    sectors = pd.Series([f"s{i % n_sectors}" for i in range(n)], index=tickers)
    return signal, betas, sectors


def assert_valid(book: Portfolio, betas: pd.Series, sectors: pd.Series) -> None:
    assert check_constraints(book, betas, sectors) == []


@st.composite
def cases(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(2, 30))
    n_sectors = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    signal, betas, sectors = universe(n, n_sectors, seed)
    betas[rng.random(n) < draw(st.sampled_from([0.0, 0.2]))] = np.nan
    signal[rng.random(n) < draw(st.sampled_from([0.0, 0.3]))] = np.nan
    previous = None
    if draw(st.booleans()):
        scale = draw(st.sampled_from([0.02, 0.1, 0.5]))
        previous = pd.Series(scale * rng.standard_normal(n), index=signal.index)
    limits = PortfolioLimits(
        max_position=draw(st.sampled_from([0.02, 0.1, 0.3])),
        max_gross=draw(st.sampled_from([0.5, 1.0, 2.0])),
        max_turnover=draw(st.sampled_from([None, 0.05, 0.5, 2.0])),
        risk_aversion=draw(st.sampled_from([0.0, 0.2, 5.0])),
        turnover_penalty=draw(st.sampled_from([0.0, 0.05])),
    )
    return {
        "signal": signal,
        "betas": betas,
        "sectors": sectors,
        "previous": previous,
        "limits": limits,
    }


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_book_meets_every_constraint(case: dict[str, object]) -> None:
    book = build_portfolio(**case)  # type: ignore[arg-type]
    event(f"status {book.status}")
    betas, sectors = case["betas"], case["sectors"]
    assert isinstance(betas, pd.Series) and isinstance(sectors, pd.Series)
    assert_valid(book, betas, sectors)
    limits = case["limits"]
    assert isinstance(limits, PortfolioLimits)
    if case["previous"] is None:
        assert book.turnover_limit is None  # a first book is built from cash
    elif book.status == "optimal":
        assert book.turnover_limit == limits.max_turnover
    else:
        assert book.notes, "a relaxed book says why"


def test_the_book_follows_the_signal_and_uses_its_gross() -> None:
    signal, betas, sectors = universe(200, 5, 1)
    book = build_portfolio(signal, betas, sectors)
    assert_valid(book, betas, sectors)
    assert book.status == "optimal"
    assert book.gross == pytest.approx(2.0, abs=1e-6)
    assert float(book.weights @ signal) > 0
    assert np.corrcoef(book.weights, signal)[0, 1] > 0.8
    assert book.weights[signal.idxmax()] > 0 > book.weights[signal.idxmin()]
    assert book.holdings().abs().is_monotonic_decreasing


def test_turnover_limit_binds_against_the_previous_book() -> None:
    signal, betas, sectors = universe(120, 4, 2)
    builder = PortfolioBuilder(list(signal.index), sectors, PortfolioLimits(max_turnover=0.3))
    first = builder.build(signal, betas)
    second = builder.build(-signal, betas, first.weights)
    for book in (first, second):
        assert_valid(book, betas, sectors)
    assert second.status == "optimal"
    assert second.turnover == pytest.approx(0.3, abs=1e-6)
    assert float(second.weights @ signal) < float(first.weights @ signal)


def test_a_ticker_that_loses_its_beta_is_sold_and_the_turnover_limit_gives_way() -> None:
    signal, betas, sectors = universe(40, 2, 3)
    builder = PortfolioBuilder(list(signal.index), sectors, PortfolioLimits(max_turnover=0.01))
    first = builder.build(signal, betas)
    held = first.weights.abs().idxmax()
    gone = betas.copy()
    gone[held] = np.nan
    second = builder.build(signal, gone, first.weights)
    assert_valid(second, gone, sectors)
    assert second.status == "turnover_relaxed"
    assert second.weights[held] == 0
    assert second.turnover_limit is not None and second.turnover_limit > 0.01
    assert second.turnover >= abs(first.weights[held]) - 1e-6
    assert any("relaxed" in note for note in second.notes)
    assert any("cannot be held" in note for note in second.notes)


def test_a_failing_solver_gives_a_flat_book(monkeypatch: pytest.MonkeyPatch) -> None:
    signal, betas, sectors = universe(30, 3, 4)
    builder = PortfolioBuilder(list(signal.index), sectors)
    first = builder.build(signal, betas)
    monkeypatch.setattr(builder, "_solved", lambda problem, inputs: None)
    second = builder.build(signal, betas, first.weights)
    assert second.status == "flat"
    assert (second.weights == 0).all()
    assert_valid(second, betas, sectors)
    assert any("flat" in note for note in second.notes)


def test_held_tickers_without_a_signal_stay_in_the_universe() -> None:
    signal, betas, sectors = universe(50, 2, 5)
    builder = PortfolioBuilder(list(signal.index), sectors, PortfolioLimits(max_turnover=0.2))
    first = builder.build(signal, betas)
    missing = signal.copy()
    missing[first.weights.abs() > 0.05] = np.nan  # no view on the biggest positions now
    second = builder.build(missing, betas, first.weights)
    assert_valid(second, betas, sectors)
    assert second.status == "optimal"  # wound down within the limit, not dumped


def test_no_holdable_ticker_gives_an_empty_book() -> None:
    signal, betas, sectors = universe(10, 2, 6)
    book = build_portfolio(signal, betas * np.nan, sectors)
    assert (book.weights == 0).all() and book.n_positions == 0
    assert_valid(book, betas * np.nan, sectors)


def test_single_stock_sectors_cannot_be_held() -> None:
    signal, betas, sectors = universe(12, 2, 7)
    sectors.iloc[0] = "alone"
    book = build_portfolio(signal, betas, sectors)
    assert abs(book.weights.iloc[0]) < 1e-9
    assert_valid(book, betas, sectors)


def test_check_constraints_names_each_violation() -> None:
    index = pd.Index(["A", "B", "C", "D"])
    betas = pd.Series([1.0, 1.0, 2.0, np.nan], index=index)
    sectors = pd.Series(["x", "x", "y", "y"], index=index)
    book = Portfolio(
        weights=pd.Series([0.5, -0.1, 0.2, 0.1], index=index),
        previous=pd.Series([0.0, 0.0, 0.0, -0.3], index=index),
        limits=PortfolioLimits(max_position=0.3, max_gross=0.8, max_turnover=0.5),
        turnover_limit=0.5,
        status="optimal",
    )
    found = " | ".join(check_constraints(book, betas, sectors))
    for words in (
        "without a beta",
        "dollar neutral",
        "beta neutral",
        "sector neutral",
        "position 0.5000",
        "gross 0.9000",
        "turnover 1.2000",
    ):
        assert words in found
    nan = Portfolio(
        weights=pd.Series([np.nan, 0, 0, 0], index=index),
        previous=pd.Series(0.0, index=index),
        limits=PortfolioLimits(),
        turnover_limit=None,
        status="optimal",
    )
    assert check_constraints(nan, betas, sectors) == ["weights are not all finite"]


def test_signal_scores_are_rank_gaussian_with_unit_std() -> None:
    raw = pd.Series([3.0, 1.0, np.nan, 2.0, 100.0])
    scores = signal_scores(raw)
    assert np.isnan(scores.iloc[2])
    present = scores.dropna()
    assert present.std(ddof=0) == pytest.approx(1.0)
    assert list(present.rank()) == list(raw.dropna().rank())
    assert (signal_scores(pd.Series([1.0, 1.0, 1.0])) == 0).all()


def test_inputs_are_checked() -> None:
    signal, betas, sectors = universe(5, 1, 8)
    builder = PortfolioBuilder(list(signal.index), sectors)
    with pytest.raises(ValueError, match="outside the universe"):
        builder.build(pd.Series([1.0], index=["ZZZ"]), betas)
    with pytest.raises(ValueError, match="finite"):
        builder.build(signal, betas, signal * np.inf)
    with pytest.raises(ValueError, match="unique"):
        PortfolioBuilder(["A", "A"], sectors)
    with pytest.raises(ValidationError):
        PortfolioLimits(max_position=-0.1)
