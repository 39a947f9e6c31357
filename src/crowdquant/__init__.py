"""crowdquant: a self-hostable crowdsourced hedge-fund tournament on anonymised market data."""

__version__ = "0.1.0"
