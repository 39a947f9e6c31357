"""The FileStorage contract, checked against every backend (local folder, S3 via moto)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crowdquant.storage import (
    CHUNK_SIZE,
    Content,
    FileStorage,
    InvalidKey,
    InvalidRange,
    NotFound,
    StorageError,
    TooLarge,
)
from crowdquant.storage.s3 import MIN_PART_SIZE
from tests.storage.harness import Backend

DATA = bytes(range(256)) * 40  # 10,240 bytes, every byte value, position-dependent
MiB = 1024 * 1024


def read_all(storage: FileStorage, key: str, start: int = 0, end: int | None = None) -> bytes:
    with storage.read(key, start, end) as stream:
        return b"".join(stream)


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def test_is_a_file_storage(storage: FileStorage) -> None:
    assert isinstance(storage, FileStorage)


# -- writing and reading back -------------------------------------------------------------


@pytest.mark.parametrize("form", ["bytes", "list", "generator", "file"])
def test_round_trip(storage: FileStorage, form: str) -> None:
    contents: dict[str, Content] = {
        "bytes": DATA,
        "list": list(pieces(DATA, 1000)),
        "generator": pieces(DATA, 777),
        "file": io.BytesIO(DATA),
    }
    content = contents[form]
    before = datetime.now(UTC) - timedelta(seconds=5)
    stored = storage.write("datasets/v1/train.parquet", content)
    assert stored.key == "datasets/v1/train.parquet"
    assert stored.size == len(DATA)
    assert stored.sha256 == hashlib.sha256(DATA).hexdigest()
    assert stored.modified.tzinfo is not None
    assert before <= stored.modified <= datetime.now(UTC) + timedelta(seconds=5)
    assert read_all(storage, "datasets/v1/train.parquet") == DATA


def test_empty_file(storage: FileStorage) -> None:
    stored = storage.write("empty.bin", [])
    assert stored.size == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert storage.stat("empty.bin").size == 0
    assert read_all(storage, "empty.bin") == b""
    assert read_all(storage, "empty.bin", 0, 10) == b""


def test_copy_in_publishes_a_local_file(storage: FileStorage, tmp_path: Path) -> None:
    source = tmp_path / "live.parquet"
    source.write_bytes(DATA)
    stored = storage.copy_in("rounds/7/live.parquet", source)
    assert (stored.size, stored.sha256) == (len(DATA), hashlib.sha256(DATA).hexdigest())
    assert read_all(storage, "rounds/7/live.parquet") == DATA


def test_stat_reports_size_and_time(storage: FileStorage) -> None:
    written = storage.write("a/b.csv", DATA[:1234])
    stat = storage.stat("a/b.csv")
    assert (stat.key, stat.size) == ("a/b.csv", 1234)
    assert stat.sha256 is None  # only write() knows it without reading the file
    assert abs(stat.modified - written.modified) < timedelta(seconds=2)
    assert storage.exists("a/b.csv")


def test_overwrite_replaces_content_and_size(storage: FileStorage) -> None:
    storage.write("model.pkl", DATA)
    storage.write("model.pkl", b"short")
    assert storage.stat("model.pkl").size == 5
    assert read_all(storage, "model.pkl") == b"short"
    assert [f.key for f in storage.list()] == ["model.pkl"]


# -- byte ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 10, DATA[:10]),  # first bytes
        (1000, 3000, DATA[1000:3000]),  # middle
        (9000, None, DATA[9000:]),  # to the end
        (5000, 5001, DATA[5000:5001]),  # a single byte
        (len(DATA) - 1, None, DATA[-1:]),  # the last byte
        (100, 100, b""),  # an empty range
        (len(DATA), None, b""),  # starting exactly at the end: nothing
        (10_000, 99_999, DATA[10_000:]),  # end past the end: clamped
        (0, None, DATA),
    ],
)
def test_ranges(storage: FileStorage, start: int, end: int | None, expected: bytes) -> None:
    storage.write("data.bin", DATA)
    assert read_all(storage, "data.bin", start, end) == expected


@pytest.mark.parametrize(
    ("start", "end"), [(len(DATA) + 1, None), (len(DATA) + 5, len(DATA) + 9), (-1, None), (9, 3)]
)
def test_bad_ranges_are_refused_at_the_call(
    storage: FileStorage, start: int, end: int | None
) -> None:
    storage.write("data.bin", DATA)
    with pytest.raises(InvalidRange):
        storage.read("data.bin", start, end)  # not only once iterated


def test_range_past_the_end_of_an_empty_file(storage: FileStorage) -> None:
    storage.write("empty.bin", b"")
    with pytest.raises(InvalidRange):
        storage.read("empty.bin", 1)


def test_a_stream_can_be_closed_early(storage: FileStorage) -> None:
    storage.write("data.bin", DATA)
    stream = storage.read("data.bin")
    assert next(stream) == DATA  # small file: one chunk
    stream.close()
    stream.close()  # idempotent
    assert list(stream) == []  # a closed stream yields nothing more
    assert read_all(storage, "data.bin", 1, 3) == DATA[1:3]


# -- listing and deleting -------------------------------------------------------------------


def test_list_by_folder(storage: FileStorage) -> None:
    for key in ["users/1/a.csv", "users/1/sub/b.csv", "users/10/c.csv", "users/2.csv", "x"]:
        storage.write(key, key.encode())
    assert [f.key for f in storage.list("users/1")] == ["users/1/a.csv", "users/1/sub/b.csv"]
    assert [f.key for f in storage.list("users/1/")] == ["users/1/a.csv", "users/1/sub/b.csv"]
    assert [f.key for f in storage.list("users")] == [
        "users/1/a.csv",
        "users/1/sub/b.csv",
        "users/10/c.csv",
        "users/2.csv",
    ]
    everything = storage.list()
    assert [f.key for f in everything] == sorted(f.key for f in everything)
    assert len(everything) == 5
    sizes = {f.key: f.size for f in everything}
    assert sizes["users/1/sub/b.csv"] == len(b"users/1/sub/b.csv")
    assert storage.list("nobody") == []
    assert storage.list("users/2.csv") == []  # a file is not a folder


def test_list_a_page_at_a_time_in_key_order(storage: FileStorage) -> None:
    keys = ["a.txt", "a/x", "a/y/z", "ab", "b", "users/1/a.csv", "users/10/b.csv"]
    for key in reversed(keys):
        storage.write(key, key.encode())
    assert [f.key for f in storage.list()] == keys  # a file "a.txt" sorts before folder "a"
    pages, after = [], None
    while page := storage.list(after=after, limit=2):
        pages.append([f.key for f in page])
        after = page[-1].key
    assert pages == [keys[0:2], keys[2:4], keys[4:6], keys[6:]]
    assert [f.key for f in storage.list("users", after="users/1/a.csv")] == ["users/10/b.csv"]
    assert [f.key for f in storage.list(after="a/")] == keys[1:]  # `after` need be no key
    assert [f.key for f in storage.list(after="a/y/z", limit=1)] == ["ab"]
    assert storage.list(after="users/2") == []
    assert storage.list("a", limit=1)[0].size == len(b"a/x")
    for bad in (0, -1):
        with pytest.raises(ValueError, match="at least 1 file"):
            storage.list(limit=bad)


def test_list_of_an_empty_storage(storage: FileStorage) -> None:
    assert storage.list() == []


def test_delete(storage: FileStorage, backend: Backend) -> None:
    storage.write("rounds/1/live.parquet", DATA)
    storage.write("rounds/1/other.parquet", DATA)
    storage.delete("rounds/1/live.parquet")
    assert not storage.exists("rounds/1/live.parquet")
    with pytest.raises(NotFound):
        storage.stat("rounds/1/live.parquet")
    assert [f.key for f in storage.list()] == ["rounds/1/other.parquet"]
    storage.delete("rounds/1/live.parquet")  # idempotent
    storage.delete("never/was/here")
    storage.delete("rounds/1/other.parquet")
    assert backend.leftovers() == []


def test_missing_keys(storage: FileStorage) -> None:
    assert not storage.exists("nope.csv")
    with pytest.raises(NotFound) as raised:
        storage.stat("nope.csv")
    assert raised.value.key == "nope.csv"
    assert isinstance(raised.value, StorageError)
    with pytest.raises(NotFound):
        storage.read("nope.csv")  # raised by the call, before any chunk
    with pytest.raises(NotFound):
        storage.read("nope.csv", 5, 5)
    with pytest.raises(NotFound):
        storage.read("nope.csv", 5, 10)


# -- atomicity and the size limit -----------------------------------------------------------


def test_write_up_to_the_limit_is_fine(storage: FileStorage) -> None:
    assert storage.write("up.csv", pieces(DATA, 100), max_bytes=len(DATA)).size == len(DATA)


def test_too_large_leaves_nothing(storage: FileStorage, backend: Backend) -> None:
    with pytest.raises(TooLarge) as raised:
        storage.write("uploads/p.csv", pieces(DATA, 100), max_bytes=len(DATA) - 1)
    assert raised.value.max_bytes == len(DATA) - 1
    assert isinstance(raised.value, StorageError)
    assert not storage.exists("uploads/p.csv")
    assert backend.leftovers() == []


def test_too_large_past_several_parts_leaves_nothing(
    storage: FileStorage, backend: Backend
) -> None:
    """Long enough that S3 has started (and must abort) a multipart upload."""
    chunk = b"x" * MiB
    limit = MIN_PART_SIZE + 3 * MiB
    with pytest.raises(TooLarge):
        storage.write("big.bin", (chunk for _ in range(20)), max_bytes=limit)
    assert backend.leftovers() == []


def test_failing_chunks_leave_nothing(storage: FileStorage, backend: Backend) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * MiB
        yield b"y" * MIN_PART_SIZE  # S3 uploads a first part
        raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError, match="went away"):
        storage.write("uploads/p.csv", broken())
    assert not storage.exists("uploads/p.csv")
    assert storage.list() == []
    assert backend.leftovers() == []


def test_a_failed_overwrite_keeps_the_old_file(storage: FileStorage, backend: Backend) -> None:
    storage.write("uploads/p.csv", DATA)
    with pytest.raises(TooLarge):
        storage.write("uploads/p.csv", [b"z" * 200] * 10, max_bytes=1000)

    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="on fire"):
        storage.write("uploads/p.csv", broken())
    assert read_all(storage, "uploads/p.csv") == DATA
    assert backend.leftovers() == ["uploads/p.csv"]


def test_chunks_must_be_bytes(storage: FileStorage, backend: Backend) -> None:
    with pytest.raises(TypeError):
        storage.write("a.txt", ["text, not bytes"])  # type: ignore[list-item]
    assert backend.leftovers() == []


# -- keys -----------------------------------------------------------------------------------

INVALID_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "a/../../b",
    "a/./b",
    ".",
    "a//b",
    "a/",
    "a\\b",
    "..\\windows",
    "nul\x00byte",
    "line\nbreak",
    "a/.crowdquant-tmp-123",
    "k" * 1025,
]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused(storage: FileStorage, backend: Backend, key: str) -> None:
    with pytest.raises(InvalidKey):
        storage.write(key, b"x")
    with pytest.raises(InvalidKey):
        storage.stat(key)
    with pytest.raises(InvalidKey):
        storage.exists(key)
    with pytest.raises(InvalidKey):
        storage.read(key)
    with pytest.raises(InvalidKey):
        storage.delete(key)
    assert backend.leftovers() == []


@pytest.mark.parametrize("prefix", ["/abs", "../up", "a//b", "a\\b"])
def test_invalid_prefixes_are_refused(storage: FileStorage, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        storage.list(prefix)


@pytest.mark.parametrize("key", ["plain", "a/b/c.parquet", "spaces and ümlauts/é.csv", ".hidden"])
def test_unusual_but_valid_keys(storage: FileStorage, key: str) -> None:
    storage.write(key, b"ok")
    assert read_all(storage, key) == b"ok"
    assert [f.key for f in storage.list()] == [key]


# -- big files stream -----------------------------------------------------------------------


def test_twenty_megabytes_stream_in_bounded_chunks(storage: FileStorage) -> None:
    size = 20 * 1000 * 1000
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB, not all one byte
    produced = hashlib.sha256()

    def generate() -> Iterator[bytes]:
        remaining = size
        while remaining:
            chunk = block[: min(len(block), remaining)]
            produced.update(chunk)
            remaining -= len(chunk)
            yield chunk

    stored = storage.write("datasets/v1/big.bin", generate())
    assert stored.size == size
    assert stored.sha256 == produced.hexdigest()
    assert storage.stat("datasets/v1/big.bin").size == size

    received = hashlib.sha256()
    total = chunks = 0
    with storage.read("datasets/v1/big.bin") as stream:
        for chunk in stream:
            assert 0 < len(chunk) <= CHUNK_SIZE
            received.update(chunk)
            total += len(chunk)
            chunks += 1
    assert (total, received.hexdigest()) == (size, stored.sha256)
    assert chunks >= size // CHUNK_SIZE

    tail = read_all(storage, "datasets/v1/big.bin", size - 70_000, size + 1)
    assert len(tail) == 70_000


def test_errors_survive_pickling() -> None:
    """Errors may cross process boundaries (workers); they must come back whole."""
    import pickle

    too_large = pickle.loads(pickle.dumps(TooLarge("k", 5)))
    assert (too_large.key, too_large.max_bytes, str(too_large)) == ("k", 5, str(TooLarge("k", 5)))
    not_found = pickle.loads(pickle.dumps(NotFound("k")))
    assert (not_found.key, str(not_found)) == ("k", "no stored file at 'k'")
