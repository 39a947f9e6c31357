"""The token and the per-round stakes on an EVM chain.

`contracts/` holds the Vyper sources (`Token.vy`: the NMR-style token; `Tournament.vy`:
per-round stakes in escrow, paid by Merkle claims); `build/` holds their ABI and bytecode,
made by `crowdquant ledger compile-contracts` and checked against a fresh compile by the
tests. `artifacts` compiles and loads them; `deploy` puts them on a chain through web3.
"""
