"""Crash points: named steps where a process kills itself, for the kill-and-restart tests.

Setting ``CROWDQUANT_CRASH_AT`` to one of `CRASH_STEPS` makes the process that reaches that
step kill itself with SIGKILL, as a power cut would: no rollback, no cleanup, no buffers
flushed. Each step sits in a window between a storage write and the commit of the row that
names it, or between the ledger's postings and the round's status change; or, for the
chain (`CHAIN_CRASH_STEPS`), between sending a transaction and recording what came of it. Unset (the
default), `crash_point` does nothing.
"""

from __future__ import annotations

import os
import signal

CRASH_AT = "CROWDQUANT_CRASH_AT"

CRASH_STEPS = frozenset(
    {
        "open:after-files",  # a round's live files are written, its row not yet added
        "open:before-commit",  # the round's row and file rows are flushed, not committed
        "close:before-commit",  # the round is closed and its stakes frozen, not committed
        "scoring:after-meta-model",  # a round's meta model is written, its row not yet added
        "scoring:after-targets",  # a day's targets are written, their row not yet added
        "scoring:before-commit",  # the pass's rows are flushed, not committed
        "resolution:after-status",  # the round is resolved, nothing paid yet
        "resolution:before-commit",  # payouts posted and the result recorded, not committed
        "fund:before-commit",  # the fund's books and days are flushed, not committed
    }
)
"""The steps a process can be told to crash at, each named where it happens."""

CHAIN_CRASH_STEPS = frozenset(
    {
        "chain:after-broadcast",  # a transaction is sent to the node, its outcome not recorded
    }
)
"""The steps on the way to the chain a process can be told to crash at."""


def crash_point(step: str) -> None:
    """Kill this process with SIGKILL if ``CROWDQUANT_CRASH_AT`` names `step`."""
    if step not in CRASH_STEPS | CHAIN_CRASH_STEPS:
        raise ValueError(f"{step!r} is not one of the crash steps")
    if os.environ.get(CRASH_AT) == step:
        die()


def die() -> None:
    """Kill this process with SIGKILL, at once."""
    os.kill(os.getpid(), signal.SIGKILL)
