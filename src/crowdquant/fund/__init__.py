"""The fund: the meta model's predictions → a neutral long/short book → realised P&L.

portfolio   one book from a signal: dollar-, beta- and sector-neutral, within position,
            gross and turnover limits (cvxpy + Clarabel), and the checks every book passes
costs       the linear commission + spread cost model
pnl         booking a period's P&L, equity curves, performance figures
market      prices, betas and the id map behind a dataset version (operator only)
backtest    the same process over historical eras
allocation  versioned blend weights from stake and reputation, and their comparison
report      equity curves and drawdowns as PNG and one self-contained HTML page
"""
