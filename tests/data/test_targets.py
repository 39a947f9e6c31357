import numpy as np

from crowdquant.data.keys import OperatorKeys
from crowdquant.data.targets import (
    CONSTRUCTIONS,
    TARGET_NAMES,
    Exposures,
    construct,
    forward_returns,
    neutralise,
    residualise,
    target_names,
    trailing_exposures,
)


def test_forward_returns_start_after_the_lag() -> None:
    close = np.exp(np.arange(30.0))[:, None] * np.array([[1.0, 2.0]])
    out = forward_returns(close, np.array([3, 25]), lag=2, horizon=4)
    assert np.allclose(out[0], 4.0)  # log(close[9] / close[5]) on an exp(day) path
    assert np.isnan(out[1]).all()  # runs past the end of the panel


def test_residuals_are_neutral_to_sector_and_beta() -> None:
    rng = np.random.default_rng(0)
    sectors = rng.integers(0, 4, 300)
    beta = rng.normal(1, 0.3, (2, 300))
    returns = 0.5 * beta + sectors * 0.01 + rng.normal(0, 0.02, (2, 300))
    include = np.ones((2, 300), bool)
    include[1, :10] = False
    resid = residualise(returns, beta, sectors, include)
    assert np.isnan(resid[1, :10]).all()
    for era in range(2):
        rows = include[era]
        assert abs(resid[era, rows] @ beta[era, rows]) < 1e-8
        for s in range(4):
            assert abs(resid[era, rows & (sectors == s)].sum()) < 1e-10


def test_neutralise_matches_a_least_squares_fit_per_era() -> None:
    rng = np.random.default_rng(1)
    returns = rng.normal(size=(3, 80))
    design = rng.normal(size=(3, 80, 4))
    include = rng.random((3, 80)) > 0.2
    returns[0, 5] = np.nan
    out = neutralise(returns, design, include)
    for era in range(3):
        rows = include[era] & np.isfinite(returns[era])
        coef, *_ = np.linalg.lstsq(design[era, rows], returns[era, rows], rcond=None)
        assert np.allclose(out[era, rows], returns[era, rows] - design[era, rows] @ coef)
        assert np.isnan(out[era, ~rows]).all()


def _exposures(rng: np.random.Generator, eras: int, n: int) -> Exposures:
    return Exposures(
        beta=rng.normal(1, 0.3, (eras, n)),
        sectors=rng.integers(0, 5, n),
        momentum=rng.normal(0, 0.2, (eras, n)),
        volatility=rng.uniform(0.01, 0.04, (eras, n)),
    )


def test_each_construction_removes_what_it_names() -> None:
    rng = np.random.default_rng(2)
    exp = _exposures(rng, 2, 400)
    returns = exp.beta + exp.momentum + 0.1 * exp.sectors + rng.normal(0, 0.02, (2, 400))
    include = np.ones((2, 400), bool)
    out = {kind: construct(kind, returns, exp, include) for kind in CONSTRUCTIONS}
    assert np.allclose(out["raw"], returns)
    for era in range(2):
        assert abs(np.corrcoef(out["market_neutral"][era], exp.beta[era])[0, 1]) < 1e-8
        for kind in ("sector_neutral", "beta_sector_residual", "factor_neutral"):
            for s in range(5):
                assert abs(out[kind][era, exp.sectors == s].sum()) < 1e-8
        assert (
            abs(out["factor_neutral"][era] @ (exp.momentum[era] - exp.momentum[era].mean())) < 1e-6
        )
        assert abs(np.corrcoef(out["beta_sector_residual"][era], exp.momentum[era])[0, 1]) > 0.5
    scaled = out["volatility_scaled"] * exp.volatility
    assert np.allclose(scaled, out["beta_sector_residual"])
    assert np.allclose(
        residualise(returns, exp.beta, exp.sectors, include), out["beta_sector_residual"]
    )


def test_trailing_exposures_read_only_the_past() -> None:
    rng = np.random.default_rng(3)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, (400, 3)), axis=0))
    days = np.array([100, 300, 399])
    exp = trailing_exposures(close, days, np.ones((3, 3)), np.zeros(3, int))
    assert np.isnan(exp.momentum[0]).all()  # a year of history is not there yet
    assert np.allclose(exp.momentum[1], np.log(close[279] / close[48]))
    daily = np.diff(np.log(close), axis=0)
    assert np.allclose(exp.volatility[2], daily[399 - 63 : 399].std(axis=0, ddof=1))
    later = close.copy()
    later[301:] *= 3.0  # what happens after an era day changes nothing of it
    again = trailing_exposures(later, days[:2], np.ones((2, 3)), np.zeros(3, int))
    assert np.allclose(again.volatility[1], exp.volatility[1])


def test_target_names_are_keyed_but_the_main_one_is_the_operators_choice() -> None:
    first = target_names(OperatorKeys(bytes(32)), "ender", "beta_sector_residual")
    second = target_names(OperatorKeys(bytes(range(32))), "ender", "beta_sector_residual")
    assert set(first) == set(second) == set(TARGET_NAMES)
    assert sorted(first.values()) == sorted(CONSTRUCTIONS)
    assert first["ender"] == second["ender"] == "beta_sector_residual"
    assert first != second
    assert target_names(OperatorKeys(bytes(32)), "victor", "raw")["victor"] == "raw"
