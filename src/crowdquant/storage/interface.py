"""What the platform needs from file storage, independent of where the bytes live.

Keys are POSIX-like relative paths (``datasets/v1/train.parquet``). A backend streams in
both directions: nothing here ever holds a whole file in memory.

Contract shared by every backend (``tests/storage/test_contract.py`` checks it):

- ``write`` is atomic: a write that fails (``TooLarge``, an exception from the caller's
  chunks, a storage error) leaves nothing behind and leaves any previous file at the key
  untouched; a successful write replaces it.
- ``read(key, start, end)`` streams bytes ``start <= i < end`` (``end`` exclusive, like a
  slice; an HTTP range ``bytes=a-b`` is ``start=a, end=b + 1``). ``end`` past the end of
  the file is clamped to its size; ``start == size`` yields nothing; ``start > size``,
  ``start < 0`` or ``end < start`` raise ``InvalidRange``. Errors (``NotFound``,
  ``InvalidRange``) are raised by the ``read`` call itself, before the first chunk, so a
  caller can answer 404 / 416 before it starts a response.
- ``list(prefix)`` treats ``prefix`` as a folder: ``list("users/1")`` returns every file
  below ``users/1/`` (recursively, sorted by key) and never ``users/10/...``; ``""`` lists
  everything. ``list(prefix, after=key, limit=n)`` returns one page of that list: the first
  ``n`` files whose keys sort after ``key``, reading no more of the storage than it needs, so
  that a sweep over millions of files can take them a page at a time.
- ``delete`` is idempotent: deleting a missing key is not an error.
- ``StoredFile.sha256`` is set on what ``write`` and ``copy_in`` return (computed while
  streaming); ``stat`` and ``list`` report it as ``None`` since no backend knows it without
  reading the file. Record it where it matters (a dataset manifest does).
- A key cannot also be a folder of other keys (``a/b`` and ``a/b/c``): object stores allow
  it but a directory cannot, so don't rely on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, runtime_checkable

CHUNK_SIZE = 1024 * 1024
"""Default size of the chunks ``read`` yields and ``write`` reads from a file object."""

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
RESERVED_PREFIX = ".crowdquant-"
"""Backends keep their own files (temporary writes) under names starting with this."""

Content = bytes | Iterable[bytes] | BinaryIO
"""What ``write`` accepts: one bytes object, an iterable of chunks, or a binary file object."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class StorageError(Exception):
    """Base class of every error a storage backend raises."""


class NotFound(StorageError, KeyError):  # noqa: N818  (short names read better where raised and caught)
    """No file is stored at this key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no stored file at {self.key!r}"


class InvalidKey(StorageError, ValueError):  # noqa: N818
    """The key is not a safe relative POSIX path."""


class InvalidRange(StorageError, ValueError):  # noqa: N818
    """The byte range is malformed or starts past the end of the file."""


class TooLarge(StorageError):  # noqa: N818
    """A write went past its ``max_bytes``; nothing was stored."""

    def __init__(self, key: str, max_bytes: int) -> None:
        super().__init__(f"{key!r} is larger than the limit of {max_bytes} bytes")
        self.key = key
        self.max_bytes = max_bytes

    def __reduce__(self) -> tuple[type[TooLarge], tuple[str, int]]:
        return TooLarge, (self.key, self.max_bytes)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file as storage knows it. ``modified`` is timezone-aware UTC."""

    key: str
    size: int
    modified: datetime
    sha256: str | None = None


class ByteStream(Iterator[bytes]):
    """The chunks of a stored byte range, with the resource behind them.

    It releases that resource when exhausted, when iteration fails, on ``close()`` or on
    leaving a ``with`` block; close it yourself if you stop early.
    """

    __slots__ = ("_chunks", "_release")

    def __init__(self, chunks: Iterator[bytes], release: Callable[[], object]) -> None:
        self._chunks = chunks
        self._release: Callable[[], object] | None = release

    def __iter__(self) -> ByteStream:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the resource; later ``next()`` calls raise ``StopIteration``."""
        chunks, self._chunks = self._chunks, iter(())
        release, self._release = self._release, None
        if release is None:
            return
        try:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        finally:
            release()

    def __enter__(self) -> ByteStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class FileStorage(Protocol):
    """Where published datasets and participants' uploads live."""

    def write(self, key: str, content: Content, *, max_bytes: int | None = None) -> StoredFile:
        """Store ``content`` at ``key``, streaming; raise ``TooLarge`` past ``max_bytes``."""
        ...

    def copy_in(self, key: str, path: Path) -> StoredFile:
        """Publish the local file at ``path`` under ``key`` without reading it into memory."""
        ...

    def stat(self, key: str) -> StoredFile:
        """The stored file's size and modification time; ``NotFound`` if there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> ByteStream:
        """Stream bytes ``start`` (inclusive) to ``end`` (exclusive) in bounded chunks."""
        ...

    def delete(self, key: str) -> None:
        """Remove the file at ``key``; a missing key is not an error."""
        ...

    def list(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[StoredFile]:
        """Every file below the folder ``prefix``, sorted by key: those whose keys sort after
        ``after`` only, and the first ``limit`` of them (at least 1) if given."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative POSIX path, else raise ``InvalidKey``."""
    if not isinstance(key, str):
        raise InvalidKey(f"a key is a str, not {type(key).__name__}")
    if not key:
        raise InvalidKey("a key cannot be empty")
    if key.startswith("/"):
        raise InvalidKey(f"{key!r} is absolute; keys are relative paths")
    if "\\" in key:
        raise InvalidKey(f"{key!r} contains a backslash; use '/' between segments")
    if _CONTROL.search(key):
        raise InvalidKey(f"{key!r} contains a control character")
    if len(key.encode("utf-8", errors="surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey(f"a key is at most {MAX_KEY_BYTES} bytes")
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey(f"{key!r} has an empty segment")
        if segment in (".", ".."):
            raise InvalidKey(f"{key!r} contains a {segment!r} segment")
        if segment.startswith(RESERVED_PREFIX):
            raise InvalidKey(f"{key!r}: names starting with {RESERVED_PREFIX!r} are reserved")
        if len(segment.encode("utf-8", errors="surrogatepass")) > MAX_SEGMENT_BYTES:
            raise InvalidKey(f"a key segment is at most {MAX_SEGMENT_BYTES} bytes")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKey(f"{key!r} is not valid UTF-8 text") from exc
    return key


def validate_prefix(prefix: str) -> str:
    """Normalise a folder prefix for ``list``: ``""`` or a valid key, one trailing '/' allowed."""
    if prefix == "":
        return ""
    if isinstance(prefix, str) and prefix.endswith("/"):
        prefix = prefix[:-1]
    return validate_key(prefix)


def check_limit(limit: int | None) -> None:
    """Refuse a page size for ``list`` that is not a positive count."""
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise ValueError(f"a page of a listing holds at least 1 file, not {limit!r}")


def check_range(start: int, end: int | None) -> None:
    """Refuse ranges that are malformed whatever the file's size."""
    if start < 0:
        raise InvalidRange(f"start must be >= 0, not {start}")
    if end is not None and end < start:
        raise InvalidRange(f"end ({end}) is before start ({start})")


def clamp_range(key: str, start: int, end: int | None, size: int) -> tuple[int, int]:
    """Resolve a range against a file of ``size`` bytes (see the module's contract)."""
    if start > size:
        raise InvalidRange(f"{key!r} has {size} bytes; a range cannot start at {start}")
    return start, size if end is None else min(end, size)


def iter_content(content: Content, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield ``content`` as bytes chunks; file objects are read ``chunk_size`` at a time."""
    if isinstance(content, bytes | bytearray | memoryview):
        yield bytes(content)
        return
    if hasattr(content, "read"):
        while chunk := content.read(chunk_size):
            yield chunk
        return
    for chunk in content:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"chunks must be bytes, not {type(chunk).__name__}")
        yield bytes(chunk)
