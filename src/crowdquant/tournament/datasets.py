"""Publishing a dataset version: its files into storage, one `DatasetFile` row per file.

`publish_dataset_version` serves what a built version's manifest lists (train, validation,
live, features.json, example predictions, benchmark models' predictions) under the storage
keys ``<version>/<filename>``, the same folder the round publisher writes each round's live
files into.

- It checks the version against its manifest first, and every stored copy's sha256 after.
- It is idempotent: a file already recorded with the manifest's checksum is left as it is,
  so publishing a version twice changes nothing. A file recorded with other content raises
  `DatasetFileConflict` before anything is written (once rounds have opened, `live.parquet`
  and `live_benchmark_models.parquet` hold the newest round's, so a version is published
  before its first round).
- It is all-or-nothing: if a copy fails or does not match, the files this call wrote are
  deleted and no row is added.

Functions work inside the caller's transaction: they flush, never commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.data.release import DatasetVersion, ReleaseError
from crowdquant.db.models import DatasetFile
from crowdquant.storage import FileStorage, validate_key
from crowdquant.tournament.errors import ServiceError

MAX_VERSION_LENGTH = 64
MAX_FILENAME_LENGTH = 255


class DatasetError(ServiceError):
    """A dataset version cannot be published or a file found."""

    code = "dataset_error"


class DatasetFileConflict(DatasetError):  # noqa: N818
    """A file of this version is already published with other content."""

    def __init__(self, version: str, filename: str, recorded: str, manifest: str) -> None:
        super().__init__(
            f"{version}/{filename} is already published with sha256 {recorded}; the version"
            f" being published has {manifest}"
        )
        self.version, self.filename = version, filename


class StoredCopyMismatch(DatasetError):  # noqa: N818
    """What storage holds after a copy is not what the manifest records."""


class UnknownDatasetFile(DatasetError, LookupError):  # noqa: N818
    """No published file of that name in that version."""

    code = "unknown_dataset_file"

    def __init__(self, version: str, filename: str) -> None:
        super().__init__(f"no published dataset file {version}/{filename}")
        self.version, self.filename = version, filename


def storage_key(version: str, filename: str) -> str:
    """Where storage keeps a published file."""
    return validate_key(f"{version}/{filename}")


def _manifest_files(version: DatasetVersion) -> dict[str, tuple[str, int]]:
    """filename → (sha256, size) from the version's manifest, after checking the names."""
    if not version.version or len(version.version) > MAX_VERSION_LENGTH:
        raise DatasetError(f"a version name has 1 to {MAX_VERSION_LENGTH} characters")
    files: dict[str, tuple[str, int]] = {}
    for name, entry in version.manifest()["files"].items():
        if "/" in name or len(name) > MAX_FILENAME_LENGTH:
            raise DatasetError(f"cannot publish a file named {name!r}")
        storage_key(version.version, name)
        files[name] = (str(entry["sha256"]), int(entry["bytes"]))
    return files


def publish_dataset_version(
    session: Session, clock: Clock, storage: FileStorage, version: DatasetVersion
) -> list[DatasetFile]:
    """Store and record every published file of `version`; its rows, sorted by filename."""
    try:
        version.verify()
    except (ReleaseError, OSError, KeyError) as exc:
        raise DatasetError(
            f"dataset version {version.version!r} fails its manifest: {exc}"
        ) from exc
    wanted = _manifest_files(version)
    recorded = {
        row.filename: row
        for row in session.scalars(
            select(DatasetFile).where(DatasetFile.version == version.version)
        )
    }
    for name, (sha256, _size) in wanted.items():
        if name in recorded and recorded[name].sha256 != sha256:
            raise DatasetFileConflict(version.version, name, recorded[name].sha256, sha256)

    missing = sorted(name for name in wanted if name not in recorded)
    if missing:
        now = clock.now()
        written: list[str] = []
        try:
            for name in missing:
                key = storage_key(version.version, name)
                written.append(key)
                stored = storage.copy_in(key, version.published / name)
                sha256, size = wanted[name]
                if stored.sha256 != sha256 or stored.size != size:
                    raise StoredCopyMismatch(f"the stored copy of {key} differs from the manifest")
                recorded[name] = DatasetFile(
                    version=version.version,
                    filename=name,
                    size=size,
                    sha256=sha256,
                    storage_key=key,
                    published_at=now,
                )
            with session.begin_nested():
                session.add_all(recorded[name] for name in missing)
        except BaseException:
            _delete_all(storage.delete, written)
            raise
    return [recorded[name] for name in sorted(wanted)]


def _delete_all(delete: Callable[[str], None], keys: list[str]) -> None:
    """Delete each key, trying the rest even if one delete fails."""
    for key in keys:
        with contextlib.suppress(Exception):  # the caller re-raises the error that matters
            delete(key)


def list_dataset_versions(session: Session) -> list[str]:
    """Every published version, oldest first."""
    first = func.min(DatasetFile.published_at)
    query = (
        select(DatasetFile.version)
        .group_by(DatasetFile.version)
        .order_by(first, DatasetFile.version)
    )
    return list(session.scalars(query))


def list_dataset_files(session: Session, version: str | None = None) -> list[DatasetFile]:
    """Published files, of one version or all, sorted by version then filename."""
    query = select(DatasetFile).order_by(DatasetFile.version, DatasetFile.filename)
    if version is not None:
        query = query.where(DatasetFile.version == version)
    return list(session.scalars(query))


def get_dataset_file(session: Session, version: str, filename: str) -> DatasetFile:
    """One published file; `UnknownDatasetFile` if there is none."""
    row = session.scalar(
        select(DatasetFile).where(DatasetFile.version == version, DatasetFile.filename == filename)
    )
    if row is None:
        raise UnknownDatasetFile(version, filename)
    return row


__all__ = [
    "DatasetError",
    "DatasetFileConflict",
    "StoredCopyMismatch",
    "UnknownDatasetFile",
    "get_dataset_file",
    "list_dataset_files",
    "list_dataset_versions",
    "publish_dataset_version",
    "storage_key",
]
