"""What only the local-folder backend promises, beyond the shared contract."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from crowdquant.storage import LocalStorage, StorageError, TooLarge
from tests.storage.harness import local_leftovers

MiB = 1024 * 1024


def test_files_live_at_their_key_and_the_root_is_made_lazily(tmp_path: Path) -> None:
    root = tmp_path / "files"
    storage = LocalStorage(root)
    assert not root.exists()
    assert storage.list() == []
    storage.write("datasets/v1/features.json", b"{}")
    assert (root / "datasets" / "v1" / "features.json").read_bytes() == b"{}"


def test_the_leftover_check_sees_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / ".crowdquant-tmp-x").write_bytes(b"")
    assert local_leftovers(tmp_path) == ["a/.crowdquant-tmp-x"]


def test_temporary_files_are_never_listed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write("a/real.csv", b"1")
    (tmp_path / "a" / ".crowdquant-tmp-0123").write_bytes(b"half a write")
    assert [f.key for f in storage.list()] == ["a/real.csv"]


def test_a_failed_write_removes_its_temporary_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(TooLarge):
        storage.write("deep/er/p.csv", [b"x" * 10] * 10, max_bytes=50)
    assert local_leftovers(tmp_path) == []


def test_delete_prunes_empty_folders_but_not_the_root(tmp_path: Path) -> None:
    root = tmp_path / "files"
    storage = LocalStorage(root)
    storage.write("users/1/sub/a.csv", b"a")
    storage.write("users/2.csv", b"b")
    storage.delete("users/1/sub/a.csv")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "users",
        "users/2.csv",
    ]
    storage.delete("users/2.csv")
    assert root.is_dir()
    assert list(root.iterdir()) == []


def test_delete_keeps_the_folders_up_to_keep_depth(tmp_path: Path) -> None:
    root = tmp_path / "files"
    storage = LocalStorage(root, keep_depth=2)
    storage.write("uploads/m1/n1/a.csv", b"a")
    storage.write("top.csv", b"t")
    storage.delete("uploads/m1/n1/a.csv")
    storage.delete("top.csv")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "uploads",
        "uploads/m1",
    ]
    assert storage.list() == []
    storage.write("uploads/m1/n2/b.csv", b"b")
    assert [found.key for found in storage.list("uploads/")] == ["uploads/m1/n2/b.csv"]
    with pytest.raises(ValueError, match="keep_depth"):
        LocalStorage(root, keep_depth=-1)


def test_a_key_cannot_also_be_a_folder(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write("a/b", b"file")
    with pytest.raises(StorageError):
        storage.write("a/b/c", b"below a file")
    with pytest.raises(StorageError):
        storage.write("a", b"over a folder")
    assert local_leftovers(tmp_path) == ["a/b"]
    assert not storage.exists("a")
    assert not storage.exists("a/b/c")


def test_a_stream_keeps_its_file_across_an_overwrite(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, chunk_size=4)
    storage.write("f", b"old old old ")
    with storage.read("f") as stream:
        first = next(stream)
        storage.write("f", b"new")
        assert first + b"".join(stream) == b"old old old "
    assert b"".join(storage.read("f")) == b"new"


def test_twenty_megabytes_never_sit_in_memory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    size = 20 * 1000 * 1000

    def generate() -> Iterator[bytes]:
        for offset in range(0, size, 256 * 1024):
            yield bytes([offset % 251]) * min(256 * 1024, size - offset)

    tracemalloc.start()
    try:
        stored = storage.write("big.bin", generate())
        total = sum(len(chunk) for chunk in storage.read("big.bin"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == total == size
    assert peak < 6 * MiB, f"peak {peak / MiB:.1f} MiB while streaming 20 MB"
