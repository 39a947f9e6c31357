"""Settings choose the storage backend, and refuse an S3 setup with holes in it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from crowdquant.settings import Settings
from crowdquant.storage import LocalStorage, storage_from_settings
from crowdquant.storage.s3 import S3Storage


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CROWDQUANT_"):
            monkeypatch.delenv(name)


def test_local_is_the_default_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings().storage_backend == "local"
    assert Settings().storage_dir == Path(".crowdquant/files")
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path))
    storage = storage_from_settings(Settings())
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "files"
    assert storage.fsync  # each file flushed to disk before it is named


def test_a_throwaway_home_may_skip_flushing_files_to_disk(tmp_path: Path) -> None:
    storage = storage_from_settings(Settings(home=tmp_path, storage_fsync=False))
    assert isinstance(storage, LocalStorage)
    assert not storage.fsync


def test_the_local_root_can_be_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CROWDQUANT_STORAGE_ROOT", str(tmp_path / "elsewhere"))
    storage = storage_from_settings(Settings())
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "elsewhere"


def test_s3_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, s3_bucket: str
) -> None:
    for name, value in {
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_BUCKET": s3_bucket,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY": "test",
        "S3_SECRET_KEY": "test",
        "S3_PREFIX": "cq",
    }.items():
        monkeypatch.setenv(f"CROWDQUANT_{name}", value)
    settings = Settings()
    assert "test" not in repr(settings.s3_secret_key)
    storage = storage_from_settings(settings)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == (s3_bucket, "cq")
    storage.write("hello.txt", b"hello")
    assert b"".join(storage.read("hello.txt")) == b"hello"
    assert [f.key for f in storage.list()] == ["hello.txt"]


def test_s3_without_a_bucket_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWDQUANT_STORAGE_BACKEND", "s3")
    with pytest.raises(ValidationError, match="CROWDQUANT_S3_BUCKET must be set"):
        Settings()


def test_half_a_key_pair_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWDQUANT_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("CROWDQUANT_S3_BUCKET", "b")
    monkeypatch.setenv("CROWDQUANT_S3_ACCESS_KEY", "only-the-id")
    with pytest.raises(ValidationError, match="CROWDQUANT_S3_SECRET_KEY"):
        Settings()


def test_an_unknown_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWDQUANT_STORAGE_BACKEND", "ftp")
    with pytest.raises(ValidationError):
        Settings()
