"""Publishing `meta_model.parquet` for a dataset version's validation eras.

Each publication is written under keys of its own, ``<version>/meta_model_<N>.parquet`` and
``<version>/meta_model_manifest_<N>.json`` (N: the newest resolved round of the tournament,
0 before any), and recorded as those files and as the plain ``meta_model.parquet`` and
``meta_model_manifest.json``, which name the newest. numerapi's ``round_num`` answers a
round's copy or the newest before it (`datasets.round_file`). The manifest says, era by era,
whether the values are a round's real meta model or the blend of the version's published
predictions (`data.meta_model`). Publishing the same inputs again changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.data.meta_model import prediction_blend, validation_meta_model
from crowdquant.data.release import DatasetVersion
from crowdquant.data.splits import VALIDATION
from crowdquant.db.models import DatasetFile, Round, RoundStatus, Tournament
from crowdquant.storage import FileStorage
from crowdquant.tournament.scoring import stored_meta_model

META_MODEL_FILE = "meta_model.parquet"
MANIFEST_FILE = "meta_model_manifest.json"
BENCHMARK_FILE = "validation_benchmark_models.parquet"
EXAMPLE_FILE = "validation_example_preds.parquet"

RoundTickers = Callable[[Round], pd.Series]
"""A round's live ids → tickers (operator only: `FeedTargets.live_era(round_).tickers`)."""


@dataclass(frozen=True)
class PublishedMetaModel:
    round_number: int
    """The newest resolved round it includes (0: none)."""
    sources: dict[str, str]
    """Era → ``round <N>`` or ``blend``."""
    blend_of: list[str]


def _blend_inputs(version: DatasetVersion) -> dict[str, pd.Series]:
    """The version's published validation predictions: example and benchmark models."""
    inputs: dict[str, pd.Series] = {}
    for name in (EXAMPLE_FILE, BENCHMARK_FILE):
        path = version.published / name
        if not path.is_file():
            continue
        frame = pd.read_parquet(path)
        for column in frame.columns:
            if column != "era" and pd.api.types.is_numeric_dtype(frame[column]):
                label = "example" if name == EXAMPLE_FILE else str(column)
                inputs[label] = frame[column].rename(index=str)
    return inputs


@dataclass(frozen=True)
class _VersionBlend:
    """What a version's files alone decide: its validation rows and the blend of its
    published predictions."""

    validation: pd.DataFrame
    blend: pd.Series
    eras: frozenset[str]
    blend_of: list[str]


def _version_blend(version: DatasetVersion) -> _VersionBlend:
    id_map = version.id_map()
    validation = (
        id_map[id_map["data_type"] == VALIDATION]
        .assign(id=lambda frame: frame["id"].astype(str))
        .set_index("id")[["era", "ticker"]]
    )
    inputs = _blend_inputs(version)
    blend = prediction_blend(validation["era"], list(inputs.values()))
    return _VersionBlend(
        validation, blend, frozenset(validation["era"].astype(str)), sorted(inputs)
    )


Published = tuple[DatasetVersion, str, tuple[tuple[str, int], ...], bytes, dict[str, str]]
"""A meta model file written: its version, its tournament, the (era, round) pairs it
carries, its bytes and each era's source."""


class PublishedFiles:
    """What publishing a version's meta model again can reuse: the version's blend (a
    built version's files never change) and the last file written, by the rounds whose meta
    models it carries (a fixed meta model never changes either)."""

    def __init__(self) -> None:
        self.blends: dict[DatasetVersion, _VersionBlend] = {}
        self.last: Published | None = None

    def blend(self, version: DatasetVersion) -> _VersionBlend:
        found = self.blends.get(version)
        if found is None:
            found = self.blends[version] = _version_blend(version)
        return found


def publish_meta_model(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    version: DatasetVersion,
    tournament: Tournament,
    round_tickers: RoundTickers,
    kept: PublishedFiles | None = None,
) -> PublishedMetaModel:
    """Publish the version's validation meta model as of the tournament's resolved rounds
    (`kept`: what an earlier publication left to reuse)."""
    found = _version_blend(version) if kept is None else kept.blend(version)
    validation, blend, eras = found.validation, found.blend, found.eras
    resolved = (
        Round.tournament_id == tournament.id,
        Round.status == RoundStatus.RESOLVED,
        Round.dataset_version == version.version,
    )
    # only the rounds of validation eras are read: the others grow with every round
    of_eras = select(Round).where(*resolved, Round.live_era.in_(sorted(eras)))
    round_models: dict[str, tuple[int, pd.Series]] = {}
    for round_ in session.scalars(of_eras.order_by(Round.number)):  # a later round wins
        meta = stored_meta_model(session, storage, round_)
        if meta is None:
            continue
        tickers = round_tickers(round_).rename(index=str)
        by_ticker = pd.Series(meta.to_numpy(), index=tickers.reindex(meta.index).to_numpy())
        by_ticker = by_ticker[by_ticker.index.notna()]
        round_models[round_.live_era] = (round_.number, by_ticker.groupby(level=0).mean())
    carried = tuple(sorted((era, number) for era, (number, _) in round_models.items()))
    last = None if kept is None else kept.last
    if last is not None and last[:3] == (version, str(tournament.id), carried):
        content, sources = last[3], dict(last[4])
    else:
        frame, sources = validation_meta_model(validation, blend, round_models)
        buffer = io.BytesIO()
        frame.to_parquet(buffer, engine="pyarrow", compression="zstd", index=True)
        content = buffer.getvalue()
        if kept is not None:
            kept.last = (version, str(tournament.id), carried, content, dict(sources))
    number = session.scalar(select(func.max(Round.number)).where(*resolved)) or 0
    manifest = {
        "version": version.version,
        "round": number,
        "column": "numerai_meta_model",
        "eras": sources,
        "blend_of": found.blend_of,
        "about": (
            "eras named 'round N' carry that resolved round's stake-weighted meta model onto"
            " the validation ids; the others the mean per-era rank of the predictions in"
            " blend_of"
        ),
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    for plain, written in ((META_MODEL_FILE, content), (MANIFEST_FILE, manifest_bytes)):
        stem, _, suffix = plain.rpartition(".")
        _publish(
            session, clock, storage, version.version, plain, f"{stem}_{number}.{suffix}", written
        )
    return PublishedMetaModel(number, sources, list(found.blend_of))


def _round_of(key: str | None) -> int:
    found = None if key is None else re.search(r"_(\d+)\.\w+$", key)
    return -1 if found is None else int(found.group(1))


def _publish(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    version: str,
    plain: str,
    own: str,
    content: bytes,
) -> None:
    """Store `content` as the version's file `own` (once) and point `plain` at it."""
    sha256 = hashlib.sha256(content).hexdigest()
    key = f"{version}/{own}"
    rows = {
        row.filename: row
        for row in session.scalars(
            select(DatasetFile).where(
                DatasetFile.version == version, DatasetFile.filename.in_([plain, own])
            )
        )
    }
    existing = rows.get(own)
    if existing is None:
        stored = storage.write(key, content)
        existing = DatasetFile(
            version=version,
            filename=own,
            size=stored.size,
            sha256=sha256,
            storage_key=key,
            published_at=clock.now(),
        )
        session.add(existing)
    pointer = rows.get(plain)
    if pointer is None:
        pointer = DatasetFile(version=version, filename=plain)
        session.add(pointer)
    # the plain name moves to this copy unless it names a newer one (another tournament's,
    # on the same version)
    newer = _round_of(pointer.storage_key) > _round_of(existing.storage_key)
    if not newer and pointer.storage_key != existing.storage_key:
        pointer.size, pointer.sha256 = existing.size, existing.sha256
        pointer.storage_key, pointer.published_at = existing.storage_key, clock.now()
    session.flush()


@dataclass(frozen=True)
class ValidationMetaModel:
    """What a tournament's runtime publishes the meta model file with, as rounds resolve."""

    version: DatasetVersion
    round_tickers: RoundTickers
    kept: PublishedFiles = field(default_factory=PublishedFiles, compare=False, repr=False)

    def publish(
        self, session: Session, clock: Clock, storage: FileStorage, tournament: Tournament
    ) -> PublishedMetaModel | None:
        """Publish it for the tournament's rounds; None when the tournament has moved on to
        another dataset version."""
        if tournament.dataset_version != self.version.version:
            return None
        return publish_meta_model(
            session, clock, storage, self.version, tournament, self.round_tickers, self.kept
        )
