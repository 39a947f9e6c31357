"""Writing a dataset version to disk, atomically, and reading it back.

Published (what participants download):   <datasets>/<version>/
    train.parquet  validation.parquet  live.parquet  features.json
    validation_example_preds.parquet  live_example_preds.parquet
    {train,validation,live}_benchmark_models.parquet (columns such as v53_lgbm_ender20)
    manifest.json
Operator only (never served):             <operator>/datasets/<version>/
    holdout.parquet  id_map.parquet  eras.parquet  feature_map.json  target_map.json
    benchmark_models.json  build.json  manifest.json
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from crowdquant.data.benchmark import BenchmarkModels, benchmark_column
from crowdquant.data.config import PIPELINE_VERSION, DatasetConfig
from crowdquant.data.pipeline import BuiltDataset
from crowdquant.data.splits import HOLDOUT, LIVE, TRAIN, VALIDATION

MANIFEST = "manifest.json"
BENCHMARK_MODELS = "benchmark_models.json"


class ReleaseError(RuntimeError):
    """A version cannot be written or read back as it should be."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, engine="pyarrow", compression="zstd", index=True)


def _write_json(payload: Any, path: Path) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _write_manifest(directory: Path, extra: dict[str, Any]) -> None:
    files = {
        p.name: {"sha256": sha256_of(p), "bytes": p.stat().st_size}
        for p in sorted(directory.iterdir())
        if p.name != MANIFEST
    }
    _write_json({**extra, "files": files}, directory / MANIFEST)


def benchmark_file(split: str) -> str:
    return f"{split}_benchmark_models.parquet"


def published_benchmarks(predictions: pd.DataFrame, version: str) -> pd.DataFrame:
    """Benchmark predictions with their columns named after the version, as published."""
    return predictions.rename(
        columns={t: benchmark_column(version, t) for t in predictions.columns if t != "era"}
    )


def _published(built: BuiltDataset, version: str, out: Path) -> None:
    for split in (TRAIN, VALIDATION, LIVE):
        _write_parquet(built.frames[split], out / f"{split}.parquet")
    for split, predictions in built.example_predictions.items():
        _write_parquet(predictions, out / f"{split}_example_preds.parquet")
    for split, predictions in built.benchmark_predictions.items():
        _write_parquet(published_benchmarks(predictions, version), out / benchmark_file(split))
    _write_json(built.features_json, out / "features.json")


def _operator(
    built: BuiltDataset, config: DatasetConfig, provenance: dict[str, Any], out: Path
) -> None:
    _write_parquet(built.frames[HOLDOUT], out / "holdout.parquet")
    _write_parquet(built.id_map.set_index("id"), out / "id_map.parquet")
    _write_parquet(built.eras.set_index("era"), out / "eras.parquet")
    _write_json(built.feature_map, out / "feature_map.json")
    _write_json(built.target_map, out / "target_map.json")
    models = built.benchmark_models
    _write_json({"features": models.features, "models": models.models}, out / BENCHMARK_MODELS)
    build = {"config": config.model_dump(mode="json"), "summary": built.summary, **provenance}
    _write_json(build, out / "build.json")


def write_version(
    built: BuiltDataset,
    config: DatasetConfig,
    version: str,
    datasets_dir: Path,
    operator_dir: Path,
    provenance: dict[str, Any],
) -> DatasetVersion:
    """Write both halves of a version; either both appear complete or neither does."""
    if not version or "/" in version or version.startswith("."):
        raise ReleaseError(f"invalid version name: {version!r}")
    published = datasets_dir / version
    private = operator_dir / "datasets" / version
    for target in (published, private):
        if target.exists():
            raise ReleaseError(f"version {version!r} already exists at {target}")
    header = {
        "version": version,
        "pipeline_version": PIPELINE_VERSION,
        "config_hash": config.digest(),
    }
    staged: list[tuple[Path, Path]] = []
    try:
        writers: list[tuple[Path, Callable[[Path], None]]] = [
            (private, lambda d: _operator(built, config, provenance, d)),
            (published, lambda d: _published(built, version, d)),
        ]
        for target, fill in writers:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".{version}.partial-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            staged.append((tmp, target))
            fill(tmp)
            _write_manifest(tmp, header)
        moved: list[Path] = []
        try:
            for tmp, target in staged:
                tmp.rename(target)
                moved.append(target)
        except OSError:
            for target in moved:
                shutil.rmtree(target, ignore_errors=True)
            raise
    finally:
        for tmp, _ in staged:
            shutil.rmtree(tmp, ignore_errors=True)
    return DatasetVersion(version, published, private)


@dataclass(frozen=True)
class DatasetVersion:
    """A version on disk: its published directory and the operator's private one."""

    version: str
    published: Path
    private: Path

    @classmethod
    def open(cls, version: str, datasets_dir: Path, operator_dir: Path) -> DatasetVersion:
        found = cls(version, datasets_dir / version, operator_dir / "datasets" / version)
        for directory in (found.published, found.private):
            if not (directory / MANIFEST).is_file():
                raise ReleaseError(f"no complete dataset version {version!r} at {directory}")
        return found

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.published / MANIFEST).read_text()))

    def verify(self) -> None:
        """Check every file against the sha256 its manifest records."""
        for directory in (self.published, self.private):
            manifest = json.loads((directory / MANIFEST).read_text())
            for name, entry in manifest["files"].items():
                if sha256_of(directory / name) != entry["sha256"]:
                    raise ReleaseError(f"{directory / name} does not match its manifest")

    def frame(self, split: str) -> pd.DataFrame:
        directory = self.private if split == HOLDOUT else self.published
        return pd.read_parquet(directory / f"{split}.parquet")

    def features_json(self) -> dict[str, Any]:
        return dict(json.loads((self.published / "features.json").read_text()))

    def feature_map(self) -> list[dict[str, str]]:
        return list(json.loads((self.private / "feature_map.json").read_text()))

    def target_map(self) -> dict[str, Any]:
        """The main target's name, and what each published target is (construction,
        horizon, reach in eras)."""
        return dict(json.loads((self.private / "target_map.json").read_text()))

    def id_map(self) -> pd.DataFrame:
        """id → ticker, date and residual returns, one row per published or hidden row."""
        return pd.read_parquet(self.private / "id_map.parquet").reset_index()

    def eras(self) -> pd.DataFrame:
        return pd.read_parquet(self.private / "eras.parquet").reset_index()

    def build_info(self) -> dict[str, Any]:
        return dict(json.loads((self.private / "build.json").read_text()))

    def config(self) -> DatasetConfig:
        return DatasetConfig.model_validate(self.build_info()["config"])

    def benchmark_models(self) -> BenchmarkModels | None:
        """The fitted benchmark models; None for a version built without them."""
        path = self.private / BENCHMARK_MODELS
        if not path.is_file():
            return None
        stored = json.loads(path.read_text())
        return BenchmarkModels(dict(stored["models"]), list(stored["features"]))

    def example_predictions(self, split: str) -> pd.DataFrame:
        return pd.read_parquet(self.published / f"{split}_example_preds.parquet")
