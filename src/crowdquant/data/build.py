"""Building a dataset version end to end: load, build, optionally gate on the audit, write."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from crowdquant.data.audit import AuditInput, single_era_reidentification
from crowdquant.data.config import DatasetConfig
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.pipeline import BuiltDataset, Step, build_dataset
from crowdquant.data.release import DatasetVersion, write_version
from crowdquant.data.sources import BundledSource, FileSource, SyntheticSource, load_panel

AnySource = BundledSource | FileSource | SyntheticSource


class GateError(RuntimeError):
    """The audit found the version too easy to re-identify; nothing was written."""


def default_version_name(
    source: AnySource, config: DatasetConfig, until: pd.Timestamp | None
) -> str:
    """`<source kind>-<10 hex>`, stable for the same source, cut-off date and config."""
    described = json.dumps(
        {"source": source.model_dump(mode="json"), "until": str(until), "config": config.digest()},
        sort_keys=True,
    )
    return f"{source.kind}-{hashlib.sha256(described.encode()).hexdigest()[:10]}"


def build_version(
    source: AnySource,
    config: DatasetConfig,
    keys: OperatorKeys,
    datasets_dir: Path,
    operator_dir: Path,
    *,
    version: str | None = None,
    until: pd.Timestamp | None = None,
    max_reidentification: float | None = None,
    report: Step | None = None,
) -> tuple[DatasetVersion, BuiltDataset]:
    step = report or (lambda _: None)
    step("load")
    panel = load_panel(source, config.min_stocks_per_era)
    if until is not None:
        panel = panel.until(until)
    built = build_dataset(panel, config, keys, step)
    if max_reidentification is not None:
        step("audit gate")
        rate = single_era_reidentification(AuditInput.from_built(built, panel, config))
        built.summary["single_era_reidentification"] = rate
        if rate > max_reidentification:
            raise GateError(
                f"single-era re-identification {rate:.1%} exceeds the threshold "
                f"{max_reidentification:.1%}; no version was written"
            )
    step("write")
    name = version or default_version_name(source, config, until)
    provenance = {
        "source": source.model_dump(mode="json"),
        "until": None if until is None else str(until.date()),
    }
    written = write_version(built, config, name, datasets_dir, operator_dir, provenance)
    return written, built
