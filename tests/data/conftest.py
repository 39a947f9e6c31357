"""Built dataset versions shared by the data tests: one per source, built once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from crowdquant.data.build import AnySource, build_version
from crowdquant.data.config import DatasetConfig, ExampleModelConfig
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.panel import Panel
from crowdquant.data.pipeline import BuiltDataset
from crowdquant.data.release import DatasetVersion
from crowdquant.data.sources import BundledSource, FileSource, SyntheticSource, load_panel
from crowdquant.data.sources.synthetic import SyntheticConfig

KEYS = OperatorKeys(bytes(range(32)))
FAST = DatasetConfig(example_model=ExampleModelConfig(max_iter=20))
# A planted alpha strong enough that 19 validation eras of 100 stocks show it whatever rows
# the keyed sub-sample keeps (at the default strength its sign hangs on the draw).
SMALL_MARKET = SyntheticConfig(n_stocks=120, n_weeks=150, seed=7, alpha_strength=1e-3)


@dataclass
class Built:
    source: AnySource
    panel: Panel
    version: DatasetVersion
    built: BuiltDataset
    root: Path


def build(root: Path, source: AnySource, config: DatasetConfig = FAST, **kwargs: object) -> Built:
    version, built = build_version(
        source,
        config,
        KEYS,
        root / "datasets",
        root / "operator",
        version="v1",
        **kwargs,  # type: ignore[arg-type]
    )
    return Built(source, load_panel(source), version, built, root)


def write_panel_file(panel: Panel, path: Path) -> Path:
    """The synthetic market as an operator's long-format file, with volume and sector."""
    long = panel.close.stack().rename("close").to_frame()
    long["volume"] = panel.volume.stack() if panel.volume is not None else None
    long = long.reset_index()
    long.columns = ["date", "ticker", "close", "volume"]
    long["sector"] = long["ticker"].map(panel.sector)
    if path.suffix == ".csv":
        long.to_csv(path, index=False)
    else:
        long.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="session")
def synthetic_build(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("synthetic"), SyntheticSource(market=SMALL_MARKET))


@pytest.fixture(scope="session")
def bundled_build(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("bundled"), BundledSource())


@pytest.fixture(scope="session")
def file_build(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("file")
    market = load_panel(SyntheticSource(market=SyntheticConfig(n_stocks=40, n_weeks=110, seed=3)))
    path = write_panel_file(market, root / "panel.csv")
    return build(root, FileSource(path=path))


@pytest.fixture(scope="session", params=["bundled", "synthetic", "file"])
def any_build(request: pytest.FixtureRequest) -> Built:
    return request.getfixturevalue(f"{request.param}_build")  # type: ignore[no-any-return]


def published_frames(version: DatasetVersion) -> dict[str, pd.DataFrame]:
    return {split: version.frame(split) for split in ("train", "validation", "live")}
