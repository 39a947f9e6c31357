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

A version may also be served under other names, its aliases (`set_dataset_alias`:
``v5.2`` for ``v5.3``, as participants' scripts ask for either), and a file asked for a
round is that round's own copy or the newest before it (`round_file`).

Functions work inside the caller's transaction: they flush, never commit.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.data.release import DatasetVersion, ReleaseError
from crowdquant.db.models import DatasetAlias, DatasetFile, Tournament
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
    aliased = _alias_row(session, version.version)
    if aliased is not None:
        raise DatasetError(
            f"{version.version!r} is an alias of {aliased.version!r}: remove the alias first"
        )
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


# --- aliases and rounds ------------------------------------------------------------------------


def _alias_row(session: Session, alias: str) -> DatasetAlias | None:
    return session.scalar(select(DatasetAlias).where(DatasetAlias.alias == alias))


def _published(session: Session, version: str) -> bool:
    found = select(DatasetFile.id).where(DatasetFile.version == version).limit(1)
    return session.scalar(found) is not None


def alias_listed_by(session: Session, alias: str) -> int | None:
    """The number of the tournament whose settings list `alias` (``"aliases"``), if one does."""
    for number, settings in session.execute(select(Tournament.number, Tournament.settings)):
        listed = settings.get("aliases") if isinstance(settings, dict) else None
        if isinstance(listed, list) and alias in listed:
            return int(number)
    return None


def _refuse_listed(session: Session, alias: str, for_tournament: int | None) -> None:
    owner = alias_listed_by(session, alias)
    if owner is not None and owner != for_tournament:
        raise DatasetError(
            f'{alias!r} is listed in tournament {owner}\'s settings ("aliases"): change it there'
        )


def set_dataset_alias(
    session: Session,
    clock: Clock,
    alias: str,
    version: str,
    *,
    for_tournament: int | None = None,
) -> DatasetAlias:
    """Serve the published `version` also as `alias` (repointing an alias that exists, unless
    a tournament other than `for_tournament` lists it in its settings)."""
    if not alias or len(alias) > MAX_VERSION_LENGTH or "/" in alias:
        raise DatasetError(f"an alias has 1 to {MAX_VERSION_LENGTH} characters and no '/'")
    storage_key(alias, "x")  # the same characters as a version's name
    if alias == version:
        raise DatasetError(f"{alias!r} cannot be an alias of itself")
    if _published(session, alias):
        raise DatasetError(f"{alias!r} is a published version: an alias names none of its own")
    target = _alias_row(session, version)
    if target is not None:
        raise DatasetError(
            f"{version!r} is itself an alias (of {target.version!r}): name that version"
        )
    if not _published(session, version):
        raise DatasetError(f"there is no published dataset version {version!r}")
    row = _alias_row(session, alias)
    if row is not None and row.version != version:
        _refuse_listed(session, alias, for_tournament)
    if row is None:
        row = DatasetAlias(alias=alias, version=version, created_at=clock.now())
        session.add(row)
    row.version = version
    session.flush()
    return row


def remove_dataset_alias(session: Session, alias: str, *, for_tournament: int | None = None) -> str:
    """Stop serving `alias` (unless a tournament other than `for_tournament` lists it in its
    settings); the version it named."""
    row = _alias_row(session, alias)
    if row is None:
        raise DatasetError(f"there is no dataset alias {alias!r}")
    _refuse_listed(session, alias, for_tournament)
    session.delete(row)
    session.flush()
    return row.version


def list_dataset_aliases(session: Session) -> dict[str, str]:
    """alias → version, by alias."""
    rows = session.scalars(select(DatasetAlias).order_by(DatasetAlias.alias))
    return {row.alias: row.version for row in rows}


def aliases_by_version(session: Session) -> dict[str, list[str]]:
    """version → the aliases serving it, each list sorted; versions without one left out."""
    found: dict[str, list[str]] = {}
    for alias, version in list_dataset_aliases(session).items():
        found.setdefault(version, []).append(alias)
    return found


def version_named(session: Session, name: str) -> str:
    """The version `name` is: an alias's version, else `name` itself."""
    row = _alias_row(session, name)
    return name if row is None else row.version


def round_file(
    session: Session, version: str, filename: str, round_number: int, moving: bool
) -> DatasetFile:
    """`filename` as published for round `round_number`: the round's own copy
    (``<stem>_<round>.<suffix>``), else the newest copy of an earlier round, else (for a
    file that is not `moving`, one whose plain name always holds the newest round's data)
    the plain file."""
    stem, dot, suffix = filename.rpartition(".")
    if dot:
        own = session.scalar(
            select(DatasetFile).where(
                DatasetFile.version == version,
                DatasetFile.filename == f"{stem}_{round_number}.{suffix}",
            )
        )
        if own is not None:
            return own
        # Only this file's copies are read, so the look-up does not grow with other files.
        copy = re.compile(re.escape(stem) + r"_(\d+)\." + re.escape(suffix))
        candidates = select(DatasetFile).where(
            DatasetFile.version == version,
            DatasetFile.filename.startswith(f"{stem}_", autoescape=True),
            DatasetFile.filename.endswith(f".{suffix}", autoescape=True),
        )
        copies = {
            int(found.group(1)): row
            for row in session.scalars(candidates)
            if (found := copy.fullmatch(row.filename)) and int(found.group(1)) <= round_number
        }
        if copies:
            return copies[max(copies)]
        if moving:
            raise UnknownDatasetFile(version, f"{stem}_{round_number}.{suffix}")
    return get_dataset_file(session, version, filename)


__all__ = [
    "DatasetError",
    "DatasetFileConflict",
    "StoredCopyMismatch",
    "UnknownDatasetFile",
    "get_dataset_file",
    "list_dataset_aliases",
    "list_dataset_files",
    "list_dataset_versions",
    "publish_dataset_version",
    "remove_dataset_alias",
    "round_file",
    "set_dataset_alias",
    "storage_key",
    "version_named",
]
