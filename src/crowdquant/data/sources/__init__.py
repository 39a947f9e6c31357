"""Where a panel comes from: the bundled real prices, an operator's file, or a synthetic market."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from crowdquant.data.panel import Panel
from crowdquant.data.sources.synthetic import SyntheticConfig


class BundledSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["bundled"] = "bundled"


class FileSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["file"] = "file"
    path: Path


class SyntheticSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["synthetic"] = "synthetic"
    market: SyntheticConfig = SyntheticConfig()


Source = Annotated[BundledSource | FileSource | SyntheticSource, Field(discriminator="kind")]
_SOURCE: TypeAdapter[BundledSource | FileSource | SyntheticSource] = TypeAdapter(Source)


def stored_source(payload: Mapping[str, Any]) -> BundledSource | FileSource | SyntheticSource:
    """The source a dataset version records in its build info (``build_info()["source"]``)."""
    return _SOURCE.validate_python(payload)


def load_panel(source: BundledSource | FileSource | SyntheticSource, min_stocks: int = 10) -> Panel:
    """The full panel a source describes (imports are local: each source has its own deps)."""
    if isinstance(source, BundledSource):
        from crowdquant.data.sources.bundled import load_bundled_panel

        return load_bundled_panel()
    if isinstance(source, FileSource):
        from crowdquant.data.sources.file import load_panel_file

        return load_panel_file(source.path, min_stocks_per_era=min_stocks)
    from crowdquant.data.sources.synthetic import SyntheticMarket

    return SyntheticMarket(source.market).panel()
