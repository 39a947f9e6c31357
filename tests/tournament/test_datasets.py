"""Publishing dataset versions into storage and the database, on both backends."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.build import build_version
from crowdquant.data.config import DatasetConfig, ExampleModelConfig
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.release import MANIFEST, DatasetVersion
from crowdquant.data.sources import SyntheticSource
from crowdquant.data.sources.synthetic import SyntheticConfig
from crowdquant.db.models import DatasetFile
from crowdquant.storage import LocalStorage, StorageError, StoredFile
from crowdquant.tournament.datasets import (
    DatasetError,
    DatasetFileConflict,
    StoredCopyMismatch,
    UnknownDatasetFile,
    get_dataset_file,
    list_dataset_aliases,
    list_dataset_files,
    list_dataset_versions,
    publish_dataset_version,
    remove_dataset_alias,
    set_dataset_alias,
    version_named,
)

T0 = datetime(2026, 1, 3, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    root = tmp_path_factory.mktemp("built")
    version, _ = build_version(
        SyntheticSource(market=SyntheticConfig(n_stocks=40, n_weeks=110, seed=3)),
        DatasetConfig(example_model=ExampleModelConfig(max_iter=5)),
        OperatorKeys(bytes(range(32))),
        root / "datasets",
        root / "operator",
        version="v1",
    )
    return version


@pytest.fixture
def version(built: DatasetVersion, tmp_path: Path) -> DatasetVersion:
    """A private copy of the built version, free to tamper with."""
    published = shutil.copytree(built.published, tmp_path / "datasets" / "v1")
    private = shutil.copytree(built.private, tmp_path / "operator" / "datasets" / "v1")
    return DatasetVersion("v1", published, private)


def renamed(version: DatasetVersion, name: str) -> DatasetVersion:
    """The same files under another version name."""
    published = shutil.copytree(version.published, version.published.parent / name)
    private = shutil.copytree(version.private, version.private.parent / name)
    return DatasetVersion(name, published, private)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files", fsync=False)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def manifest_files(version: DatasetVersion) -> dict[str, dict[str, object]]:
    files: dict[str, dict[str, object]] = version.manifest()["files"]
    return files


def rows(session: Session) -> list[tuple[str, str, int, str, str, datetime]]:
    query = select(DatasetFile).order_by(DatasetFile.version, DatasetFile.filename)
    return [
        (f.version, f.filename, f.size, f.sha256, f.storage_key, f.published_at)
        for f in session.scalars(query)
    ]


def test_publish_stores_and_records_every_manifest_file(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    storage: LocalStorage,
    version: DatasetVersion,
) -> None:
    expected = manifest_files(version)
    with sessions.begin() as session:
        published = publish_dataset_version(session, clock, storage, version)
        assert [f.filename for f in published] == sorted(expected)
    assert "train.parquet" in expected and MANIFEST not in expected
    with sessions() as session:
        files = list_dataset_files(session)
        assert [f.filename for f in files] == sorted(expected)
        for f in files:
            assert (f.version, f.storage_key, f.published_at) == ("v1", f"v1/{f.filename}", T0)
            assert (f.sha256, f.size) == (
                expected[f.filename]["sha256"],
                expected[f.filename]["bytes"],
            )
            stored = b"".join(storage.read(f.storage_key))
            assert hashlib.sha256(stored).hexdigest() == f.sha256
            assert stored == (version.published / f.filename).read_bytes()
        assert get_dataset_file(session, "v1", "train.parquet").storage_key == "v1/train.parquet"
        assert list_dataset_versions(session) == ["v1"]
    assert sorted(s.key for s in storage.list()) == [f"v1/{name}" for name in sorted(expected)]


def test_publishing_again_changes_nothing(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    storage: LocalStorage,
    version: DatasetVersion,
) -> None:
    with sessions.begin() as session:
        publish_dataset_version(session, clock, storage, version)
    with sessions() as session:
        before = rows(session)
    modified = {s.key: s.modified for s in storage.list()}
    clock.advance(timedelta(days=1))
    with sessions.begin() as session:
        again = publish_dataset_version(session, clock, storage, version)
        assert [f.published_at for f in again] == [T0] * len(again)
    with sessions() as session:
        assert rows(session) == before
    assert {s.key: s.modified for s in storage.list()} == modified


def test_versions_are_listed_oldest_first(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    storage: LocalStorage,
    version: DatasetVersion,
) -> None:
    with sessions() as session:
        assert list_dataset_versions(session) == []
        with pytest.raises(UnknownDatasetFile) as missing:
            get_dataset_file(session, "v1", "train.parquet")
        assert (missing.value.version, missing.value.filename) == ("v1", "train.parquet")
        assert isinstance(missing.value, LookupError)
    with sessions.begin() as session:
        publish_dataset_version(session, clock, storage, renamed(version, "v9"))
        clock.advance(timedelta(days=1))
        publish_dataset_version(session, clock, storage, renamed(version, "v10"))
        clock.advance(timedelta(days=1))
        publish_dataset_version(session, clock, storage, version)
    with sessions() as session:
        assert list_dataset_versions(session) == ["v9", "v10", "v1"]
        assert {f.version for f in list_dataset_files(session)} == {"v1", "v9", "v10"}
        only = list_dataset_files(session, "v10")
        assert {f.version for f in only} == {"v10"}
        assert len(only) == len(manifest_files(version))
        assert list_dataset_files(session, "v2") == []
        with pytest.raises(UnknownDatasetFile):
            get_dataset_file(session, "v2", "train.parquet")


def test_other_content_under_a_published_name_is_refused(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    storage: LocalStorage,
    version: DatasetVersion,
    tmp_path: Path,
) -> None:
    with sessions.begin() as session:
        publish_dataset_version(session, clock, storage, version)
        before = rows(session)
    stored_before = {s.key: b"".join(storage.read(s.key)) for s in storage.list()}

    # another build published under the same version name: rewrite one file and its manifest
    (version.published / "features.json").write_text('{"feature_sets": {}}\n')
    manifest = version.published / MANIFEST
    text = manifest.read_text()
    old = manifest_files(version)["features.json"]
    new_sha = hashlib.sha256((version.published / "features.json").read_bytes()).hexdigest()
    new_size = (version.published / "features.json").stat().st_size
    text = text.replace(str(old["sha256"]), new_sha).replace(
        f'"bytes": {old["bytes"]}', f'"bytes": {new_size}', 1
    )
    manifest.write_text(text)
    version.verify()

    with sessions.begin() as session, pytest.raises(DatasetFileConflict) as conflict:
        publish_dataset_version(session, clock, storage, version)
    assert conflict.value.filename == "features.json"
    with sessions() as session:
        assert rows(session) == before
    assert {s.key: b"".join(storage.read(s.key)) for s in storage.list()} == stored_before


def test_a_version_that_fails_its_manifest_is_refused(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    storage: LocalStorage,
    version: DatasetVersion,
) -> None:
    with (version.published / "train.parquet").open("ab") as handle:
        handle.write(b"tampered")
    with sessions.begin() as session, pytest.raises(DatasetError):
        publish_dataset_version(session, clock, storage, version)
    with sessions() as session:
        assert rows(session) == []
    assert storage.list() == []


class FailingStorage(LocalStorage):
    """Local storage whose copy of one file fails, or stores other bytes."""

    def __init__(self, root: Path, fail_on: str, *, corrupt: bool = False) -> None:
        super().__init__(root, fsync=False)
        self.fail_on, self.corrupt = fail_on, corrupt
        self.copied: list[str] = []

    def copy_in(self, key: str, path: Path) -> StoredFile:
        self.copied.append(key)
        if key.endswith(self.fail_on):
            if self.corrupt:
                return self.write(key, b"not what the manifest says")
            raise StorageError(f"disk full while storing {key}")
        return super().copy_in(key, path)


def test_a_failed_copy_records_nothing_and_leaves_no_file(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    version: DatasetVersion,
    tmp_path: Path,
) -> None:
    last = sorted(manifest_files(version))[-1]
    for corrupt, error in ((False, StorageError), (True, StoredCopyMismatch)):
        storage = FailingStorage(tmp_path / "files", last, corrupt=corrupt)
        with sessions.begin() as session, pytest.raises(error):
            publish_dataset_version(session, clock, storage, version)
        assert len(storage.copied) == len(manifest_files(version))  # earlier copies did happen
        assert storage.list() == []
        with sessions() as session:
            assert rows(session) == []

    # a retry with working storage publishes everything
    working = LocalStorage(tmp_path / "files", fsync=False)
    with sessions.begin() as session:
        assert len(publish_dataset_version(session, clock, working, version)) == len(storage.copied)


def test_a_failed_copy_inside_a_longer_transaction_keeps_earlier_work(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    version: DatasetVersion,
    tmp_path: Path,
) -> None:
    working = LocalStorage(tmp_path / "files", fsync=False)
    failing = FailingStorage(tmp_path / "files", "train.parquet")
    with sessions.begin() as session:
        publish_dataset_version(session, clock, working, renamed(version, "v0"))
        with pytest.raises(StorageError):
            publish_dataset_version(session, clock, failing, version)
    with sessions() as session:
        assert list_dataset_versions(session) == ["v0"]
    assert {s.key.split("/")[0] for s in working.list()} == {"v0"}


def test_aliases_name_a_published_version_and_refuse_what_would_confuse(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    storage: LocalStorage,
    version: DatasetVersion,
) -> None:
    with sessions.begin() as session:
        publish_dataset_version(session, clock, storage, version)
        set_dataset_alias(session, clock, "v5.2", "v1")
        set_dataset_alias(session, clock, "v5.1", "v1")
    refusals = (
        ("v5.0", "v9", "there is no published dataset version 'v9'"),
        ("v1", "v5.2", "'v1' is a published version: an alias names none of its own"),
        ("v5.0", "v5.2", "'v5.2' is itself an alias (of 'v1'): name that version"),
        ("v1", "v1", "'v1' cannot be an alias of itself"),
        ("a/b", "v1", "an alias has 1 to 64 characters and no '/'"),
        ("", "v1", "an alias has 1 to 64 characters and no '/'"),
    )
    for alias, target, message in refusals:
        with sessions.begin() as session, pytest.raises(DatasetError) as refused:
            set_dataset_alias(session, clock, alias, target)
        assert str(refused.value) == message
    # a version cannot be published under an alias's name
    with sessions.begin() as session, pytest.raises(DatasetError, match="an alias of 'v1'"):
        publish_dataset_version(session, clock, storage, renamed(version, "v5.2"))
    with sessions.begin() as session:
        assert remove_dataset_alias(session, "v5.1") == "v1"
        with pytest.raises(DatasetError, match=r"there is no dataset alias 'v5\.1'"):
            remove_dataset_alias(session, "v5.1")
    with sessions() as session:
        assert list_dataset_aliases(session) == {"v5.2": "v1"}
        assert version_named(session, "v5.2") == "v1"
        assert version_named(session, "v1") == "v1"
        assert list_dataset_versions(session) == ["v1"]
        assert {row.version for row in list_dataset_files(session)} == {"v1"}
