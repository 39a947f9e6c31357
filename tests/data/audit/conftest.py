"""Small builds for the audit tests (each test module builds what it needs once)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

from crowdquant.data.audit import AuditInput
from crowdquant.data.config import AnonymisationConfig, DatasetConfig, ExampleModelConfig
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.panel import Panel
from crowdquant.data.pipeline import build_dataset
from crowdquant.data.sources.synthetic import SyntheticConfig, SyntheticMarket

KEYS = OperatorKeys(bytes(range(32)))
MARKET = SyntheticConfig(n_stocks=200, n_weeks=130, seed=1)


def config(**anonymisation: object) -> DatasetConfig:
    return DatasetConfig(
        anonymisation=AnonymisationConfig(**anonymisation),  # type: ignore[arg-type]
        example_model=ExampleModelConfig(max_iter=10),
    )


@contextmanager
def one_thread() -> Iterator[None]:
    """Builds and audits run single-threaded: steadier on a busy test machine."""
    with threadpool_limits(limits=1):
        yield


def synthetic_panel(market: SyntheticConfig = MARKET) -> Panel:
    return SyntheticMarket(market).panel()


def build_input(panel: Panel, cfg: DatasetConfig) -> AuditInput:
    with one_thread():
        built = build_dataset(panel, cfg, KEYS)
    return AuditInput.from_built(built, panel, cfg)
