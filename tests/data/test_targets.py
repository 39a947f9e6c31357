import numpy as np

from crowdquant.data.targets import forward_returns, residualise


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
