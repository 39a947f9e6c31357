"""Transaction costs, in basis points of traded notional.

Trading a book from weights p to w (fractions of equity) costs, as a fraction of equity,

    cost = (commission_bps + half_spread_bps) / 10⁴ · Σ_i |w_i − p_i|

a commission (fees and taxes, linear in notional) plus half the bid-ask spread paid on
every trade, buys and sells alike. Holding short positions can also cost a borrow fee:

    borrow = borrow_bps_per_year / 10⁴ · (trading days held / 252) · Σ_i max(−w_i, 0)

(0 by default). The model is linear: no market impact, so it suits books small against
the stocks' volume; the defaults (1 bp + 5 bp) are a cautious figure for liquid large caps.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

COST_MODEL_VERSION = "linear-spread-v1"
TRADING_DAYS_PER_YEAR = 252
BPS = 1e-4


class CostModel(BaseModel):
    """Linear costs in basis points (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commission_bps: float = Field(1.0, ge=0, description="fees per unit of notional traded")
    half_spread_bps: float = Field(5.0, ge=0, description="half the bid-ask spread")
    borrow_bps_per_year: float = Field(0.0, ge=0, description="fee on short notional held")
    version: str = COST_MODEL_VERSION

    @property
    def bps_per_trade(self) -> float:
        """What one unit of traded notional costs, in basis points."""
        return self.commission_bps + self.half_spread_bps

    def trading_cost(self, trades: pd.Series | npt.ArrayLike) -> float:
        """The cost of trading `trades` (w − p per ticker), as a fraction of equity."""
        traded = float(np.abs(np.asarray(trades, dtype=np.float64)).sum())
        return traded * self.bps_per_trade * BPS

    def borrow_cost(self, weights: pd.Series | npt.ArrayLike, days: int) -> float:
        """The fee for holding the short side of `weights` for `days` trading days."""
        short = float(np.clip(-np.asarray(weights, dtype=np.float64), 0.0, None).sum())
        return short * self.borrow_bps_per_year * BPS * days / TRADING_DAYS_PER_YEAR
