"""Portfolio construction: a signal over tickers → a dollar-, beta- and sector-neutral book.

A book is a vector of weights w (fractions of the fund's equity; + long, − short). Each
build solves, with cvxpy and the Clarabel solver,

    maximise   ẑ·w − (risk_aversion / 2)·n·Σ w_i² − turnover_penalty·Σ|w_i − p_i|
    subject to Σ w_i = 0                       dollar neutral
               Σ w_i·β_i = 0                   neutral to market beta
               Σ_{i in s} w_i = 0, each s      neutral to every sector
               |w_i| ≤ max_position
               Σ|w_i| ≤ max_gross
               Σ|w_i − p_i| ≤ max_turnover     against the previous book p (none for a first book)

Turnover here is Σ|w − p|, the notional traded (buys and sells), which costs are charged on;
it is twice the one-way turnover Σ|w − p| / 2 that numerai-tools reports.

ẑ is the signal Gaussianised (Φ⁻¹ of tie-kept ranks, as the meta model is) and scaled to unit
standard deviation over the n tickers that have one. A ticker the previous book holds but the
signal lacks stays in the universe with ẑ = 0, so it is wound down as the turnover allows; a
ticker without a finite beta or a sector can only be held at 0 (it must be sold).

Neutrality, the position limit and the gross limit are hard: no returned book breaks them.
The turnover limit gives way: when no book within it meets the hard constraints (a ticker
must be sold, betas have moved), it is relaxed to the least turnover that does, and the book
says so (status "turnover_relaxed"). Should the solver fail, the book is flat (status "flat"),
which meets every hard constraint. Every solution is polished (projected onto the equality
constraints, then scaled into the bounds) and checked by `check_constraints` before it is
returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cvxpy as cp
import numpy as np
import numpy.typing as npt
import pandas as pd
from cvxpy.atoms.affine.sum import sum as cp_sum
from cvxpy.atoms.elementwise.abs import abs as cp_abs
from cvxpy.atoms.norm1 import norm1
from cvxpy.atoms.sum_squares import sum_squares
from pydantic import BaseModel, ConfigDict, Field

from crowdquant.scoring.ranking import gaussianised

PORTFOLIO_VERSION = "neutral-meanvar-v1"
TOLERANCE = 1e-6  # what the checks allow: the solver is accurate to about 1e-8
POSITION_EPS = 1e-6  # weights smaller than this do not count as positions

FloatArray = npt.NDArray[np.float64]
Status = Literal["optimal", "turnover_relaxed", "flat"]


class PortfolioLimits(BaseModel):
    """The constraints and penalties of a build (weights are fractions of equity)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_position: float = Field(0.10, gt=0, description="largest |weight| of one ticker")
    max_gross: float = Field(2.0, gt=0, description="Σ|w|: 2.0 is 100 % long and 100 % short")
    max_turnover: float | None = Field(
        1.0, gt=0, description="Σ|w − previous| per rebalance; None: no limit"
    )
    risk_aversion: float = Field(
        0.2, ge=0, description="weight of the diagonal risk term (n/2)·Σw² against ẑ·w"
    )
    turnover_penalty: float = Field(0.05, ge=0, description="ẑ units given up per unit traded")


@dataclass(frozen=True)
class Portfolio:
    """A built book: weights per ticker of the universe, and how it was reached."""

    weights: pd.Series  # ticker → weight, every ticker of the universe (0 where not held)
    previous: pd.Series  # the book before this rebalance, same index (zeros for a first book)
    limits: PortfolioLimits
    turnover_limit: float | None  # the limit in force: limits.max_turnover, relaxed, or None
    status: Status
    notes: tuple[str, ...] = field(default=())
    version: str = PORTFOLIO_VERSION

    @property
    def gross(self) -> float:
        return float(self.weights.abs().sum())

    @property
    def net(self) -> float:
        return float(self.weights.sum())

    @property
    def turnover(self) -> float:
        """Traded notional of this rebalance, Σ|w − previous|, as a fraction of equity."""
        return float((self.weights - self.previous).abs().sum())

    @property
    def n_positions(self) -> int:
        return int((self.weights.abs() > POSITION_EPS).sum())

    def holdings(self) -> pd.Series:
        """The non-zero positions, largest first."""
        held = self.weights[self.weights.abs() > POSITION_EPS]
        return held.reindex(held.abs().sort_values(ascending=False).index)


def check_constraints(
    portfolio: Portfolio, betas: pd.Series, sectors: pd.Series, *, tol: float = TOLERANCE
) -> list[str]:
    """Every constraint the book breaks, in words; empty when it meets them all.

    `betas` and `sectors` are the inputs the book was built for (ticker-indexed); a position
    in a ticker without a finite beta or a sector is itself a violation.
    """
    index = portfolio.weights.index
    w = portfolio.weights.to_numpy(np.float64)
    if not np.isfinite(w).all():
        return ["weights are not all finite"]
    beta = _aligned(betas, index).to_numpy(np.float64)
    codes, labels = pd.factorize(_aligned(sectors, index))
    problems: list[str] = []
    held = np.abs(w) > tol
    for label, missing in (("a beta", ~np.isfinite(beta)), ("a sector", codes < 0)):
        bad = np.flatnonzero(held & missing)
        if len(bad):
            problems.append(f"holds {len(bad)} ticker(s) without {label}, e.g. {index[bad[0]]!r}")
    if abs(w.sum()) > tol:
        problems.append(f"not dollar neutral: Σw = {w.sum():.3g}")
    exposure = float(w @ np.where(np.isfinite(beta), beta, 0.0))
    if abs(exposure) > tol:
        problems.append(f"not beta neutral: Σw·β = {exposure:.3g}")
    by_sector = np.bincount(codes[codes >= 0], weights=w[codes >= 0], minlength=len(labels))
    off = np.flatnonzero(np.abs(by_sector) > tol)
    if len(off):
        shown = {str(labels[k]): round(float(by_sector[k]), 6) for k in off[:5]}
        problems.append(f"not sector neutral: {shown}")
    limits = portfolio.limits
    largest = float(np.abs(w).max(initial=0.0))
    if largest > limits.max_position + tol:
        problems.append(f"position {largest:.4f} over the limit {limits.max_position}")
    gross = float(np.abs(w).sum())
    if gross > limits.max_gross + tol:
        problems.append(f"gross {gross:.4f} over the limit {limits.max_gross}")
    turnover = float(np.abs(w - _aligned(portfolio.previous, index).to_numpy(np.float64)).sum())
    if portfolio.turnover_limit is not None and turnover > portfolio.turnover_limit + tol:
        problems.append(f"turnover {turnover:.4f} over the limit {portfolio.turnover_limit:.4f}")
    if portfolio.status == "optimal" and portfolio.turnover_limit != _requested_limit(portfolio):
        problems.append("an optimal book must keep the requested turnover limit")
    return problems


def _aligned(series: pd.Series, index: pd.Index) -> pd.Series:
    return series if series.index.equals(index) else series.reindex(index)


def _requested_limit(portfolio: Portfolio) -> float | None:
    first = not (portfolio.previous.to_numpy() != 0).any()
    return None if first else portfolio.limits.max_turnover


def signal_scores(signal: pd.Series) -> pd.Series:
    """ẑ: the finite values Gaussianised by rank and scaled to unit std; NaN elsewhere."""
    values = signal.to_numpy(dtype=np.float64)
    present = np.isfinite(values)
    out = np.full(len(values), np.nan)
    if present.any():
        gauss = gaussianised(values[present])
        sd = float(gauss.std())
        out[present] = gauss / sd if sd > 0 else 0.0
    return pd.Series(out, index=signal.index, name="score")


class PortfolioBuilder:
    """The problem compiled once for a universe (tickers and their sectors).

    A backtest builds hundreds of books over one panel: cvxpy compiles the parametrised
    problem once and each build is then a Clarabel solve of a few milliseconds.
    """

    def __init__(
        self,
        tickers: Sequence[str],
        sectors: pd.Series,
        limits: PortfolioLimits | None = None,
    ) -> None:
        self.tickers = pd.Index([str(t) for t in tickers], name="ticker")
        if not self.tickers.is_unique:
            raise ValueError("tickers must be unique")
        self.limits = limits or PortfolioLimits()
        self.sectors = sectors.reindex(self.tickers)
        labels = sorted({str(s) for s in self.sectors.dropna()})
        codes = pd.Categorical(self.sectors, categories=labels).codes
        self._has_sector = codes >= 0
        self._dummies = (codes[None, :] == np.arange(len(labels))[:, None]).astype(np.float64)
        n = len(self.tickers)
        self._w = cp.Variable(n, name="w")
        self._score = cp.Parameter(n, name="score")
        self._beta = cp.Parameter(n, name="beta")
        self._cap = cp.Parameter(n, nonneg=True, name="cap")
        self._prev = cp.Parameter(n, name="previous")
        self._turnover = cp.Parameter(nonneg=True, name="turnover_limit")
        self._kappa = cp.Parameter(nonneg=True, name="risk_weight")
        w, trade = self._w, norm1(self._w - self._prev)
        hard = [
            cp_sum(w) == 0,
            self._beta @ w == 0,
            cp_abs(w) <= self._cap,
            norm1(w) <= self.limits.max_gross,
        ]
        if len(labels):
            hard.append(self._dummies @ w == 0)
        objective = (
            self._score @ w - self._kappa * sum_squares(w) - self.limits.turnover_penalty * trade
        )
        self._main = cp.Problem(cp.Maximize(objective), [*hard, trade <= self._turnover])
        self._least_trade = cp.Problem(cp.Minimize(trade), hard)

    def build(
        self, signal: pd.Series, betas: pd.Series, previous: pd.Series | None = None
    ) -> Portfolio:
        """The book for `signal` (ticker → value; NaN or absent: no view) given each ticker's
        market beta (NaN: cannot be held) and the book before this rebalance."""
        _check_index(signal, self.tickers, "signal")
        if previous is not None:
            _check_index(previous, self.tickers, "previous")
        if not betas.index.is_unique:
            raise ValueError("betas has duplicate tickers")
        prev = (
            pd.Series(0.0, index=self.tickers)
            if previous is None
            else previous.reindex(self.tickers).fillna(0.0).astype(np.float64)
        )
        held: FloatArray = np.asarray(prev, dtype=np.float64)
        if not np.isfinite(held).all():
            raise ValueError("previous weights must be finite")
        beta = betas.reindex(self.tickers).to_numpy(np.float64)
        scores = signal_scores(signal.reindex(self.tickers))
        holdable = np.isfinite(beta) & self._has_sector
        active = holdable & (np.isfinite(scores.to_numpy()) | (held != 0))
        first = not (held != 0).any()
        limit = None if first else self.limits.max_turnover
        notes: list[str] = []
        forced = int(((held != 0) & ~holdable).sum())
        if forced:
            notes.append(f"{forced} held ticker(s) cannot be held any more: sold")
        inputs = _Inputs(
            score=scores.fillna(0.0).to_numpy() * active,
            beta=np.where(active, beta, 0.0),
            cap=np.where(active, self.limits.max_position, 0.0),
            prev=held,
            active=active,
            betas=pd.Series(beta, index=self.tickers),
        )
        return self._solve(inputs, prev, limit, notes)

    def _solve(
        self, inputs: _Inputs, prev: pd.Series, limit: float | None, notes: list[str]
    ) -> Portfolio:
        self._score.value = inputs.score
        self._beta.value = inputs.beta
        self._cap.value = inputs.cap
        self._prev.value = inputs.prev
        self._kappa.value = self.limits.risk_aversion * max(int(inputs.active.sum()), 1) / 2
        no_limit = self.limits.max_gross + float(np.abs(inputs.prev).sum()) + 1.0
        self._turnover.value = no_limit if limit is None else limit
        weights = self._solved(self._main, inputs)
        if weights is not None:
            book = self._portfolio(inputs, weights, prev, limit, "optimal", notes)
            if book is not None:
                return book
        if limit is not None:
            least = self._solved(self._least_trade, inputs)
            if least is not None:
                needed = float(np.abs(least - inputs.prev).sum())
                relaxed = max(limit, needed * (1 + 1e-4) + 1e-7)
                self._turnover.value = relaxed
                weights = self._solved(self._main, inputs)
                note = (
                    f"turnover limit {limit:.3f} cannot be met: relaxed to {relaxed:.3f}, "
                    "the least that meets the hard constraints"
                )
                if weights is not None:
                    status: Status = "turnover_relaxed"
                    book = self._portfolio(inputs, weights, prev, relaxed, status, [*notes, note])
                    if book is not None:
                        return book
        flat = np.zeros(len(self.tickers))
        out_limit = None if limit is None else max(limit, float(np.abs(inputs.prev).sum()))
        note = "the solver found no book: flat (every position sold)"
        book = self._portfolio(inputs, flat, prev, out_limit, "flat", [*notes, note])
        if book is None:  # cannot happen: a flat book meets every hard constraint
            raise RuntimeError("a flat book failed its own checks")
        return book

    def _solved(self, problem: cp.Problem, inputs: _Inputs) -> FloatArray | None:
        try:
            problem.solve(solver=cp.CLARABEL)  # type: ignore[no-untyped-call]
        except cp.error.SolverError:
            return None
        if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or self._w.value is None:
            return None
        return _polished(np.asarray(self._w.value, dtype=np.float64), inputs, self)

    def _portfolio(
        self,
        inputs: _Inputs,
        weights: FloatArray,
        prev: pd.Series,
        limit: float | None,
        status: Status,
        notes: list[str],
    ) -> Portfolio | None:
        """The book, or None when it fails `check_constraints` (a numerical failure)."""
        book = Portfolio(
            weights=pd.Series(weights, index=self.tickers, name="weight"),
            previous=prev.rename("previous"),
            limits=self.limits,
            turnover_limit=limit,
            status=status,
            notes=tuple(notes),
        )
        return None if check_constraints(book, inputs.betas, self.sectors) else book

    @property
    def equality_rows(self) -> FloatArray:
        """The rows A of the equality constraints A·w = 0, for the current betas."""
        rows = [np.ones(len(self.tickers)), np.asarray(self._beta.value, dtype=np.float64)]
        return np.vstack([*rows, self._dummies])


@dataclass(frozen=True)
class _Inputs:
    score: FloatArray
    beta: FloatArray
    cap: FloatArray
    prev: FloatArray
    active: npt.NDArray[np.bool_]
    betas: pd.Series  # the given betas (NaN: cannot be held), for the final check


def _polished(w: FloatArray, inputs: _Inputs, builder: PortfolioBuilder) -> FloatArray:
    """The solver's weights made exact: zero off the active set, projected onto the
    equality constraints, then scaled (which keeps them) into the position and gross bounds."""
    active = inputs.active
    out = np.where(active, w, 0.0)
    if active.any():
        rows = builder.equality_rows[:, active]
        part = out[active]
        part -= np.linalg.pinv(rows) @ (rows @ part)
        out[active] = part
    largest = float(np.abs(out).max(initial=0.0))
    gross = float(np.abs(out).sum())
    limits = builder.limits
    scale = min(
        1.0,
        limits.max_position / largest if largest > 0 else 1.0,
        limits.max_gross / gross if gross > 0 else 1.0,
    )
    return out * scale


def _check_index(series: pd.Series, universe: pd.Index, name: str) -> None:
    if not series.index.is_unique:
        raise ValueError(f"{name} has duplicate tickers")
    unknown = series.index.difference(universe)
    if len(unknown):
        raise ValueError(f"{name} names {len(unknown)} ticker(s) outside the universe")


def build_portfolio(
    signal: pd.Series,
    betas: pd.Series,
    sectors: pd.Series,
    previous: pd.Series | None = None,
    limits: PortfolioLimits | None = None,
) -> Portfolio:
    """One book: the universe is the signal's tickers and those the previous book holds.

    For many books over one universe, reuse a `PortfolioBuilder` instead.
    """
    held = pd.Index([]) if previous is None else previous.index[previous.fillna(0.0) != 0]
    universe = signal.index.union(held)
    builder = PortfolioBuilder([str(t) for t in universe], sectors, limits)
    universe = builder.tickers
    return builder.build(
        signal.rename(index=str),
        betas.rename(index=str).reindex(universe),
        None if previous is None else previous.rename(index=str).reindex(universe),
    )
