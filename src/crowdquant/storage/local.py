"""Files in a local directory: the embedded default.

A write goes to a temporary file in the key's own directory and is moved into place with
``os.replace``, so readers see the old file or the new one, never a part, and a failed
write leaves nothing. Temporary files are named ``.crowdquant-tmp-*`` (a reserved name no
key can take) and never listed.

A delete removes the folders it leaves empty, except those at most `keep_depth` levels
below the root: the app keeps ``uploads/<model>/`` and ``submissions/<round>/`` (depth 2)
for the next upload, as making and removing a folder costs more than the file write itself.
Empty folders are never listed, so what is kept is invisible through the interface.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO

from crowdquant.storage.interface import (
    CHUNK_SIZE,
    RESERVED_PREFIX,
    ByteStream,
    Content,
    NotFound,
    StorageError,
    StoredFile,
    TooLarge,
    check_limit,
    check_range,
    clamp_range,
    iter_content,
    validate_key,
    validate_prefix,
)

TEMP_PREFIX = RESERVED_PREFIX + "tmp-"


class LocalStorage:
    """A ``FileStorage`` rooted at a directory, created on first write."""

    def __init__(
        self, root: Path, *, chunk_size: int = CHUNK_SIZE, fsync: bool = True, keep_depth: int = 0
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if keep_depth < 0:
            raise ValueError("keep_depth must not be negative")
        self.root = Path(root)
        self.chunk_size = chunk_size
        self.fsync = fsync
        self.keep_depth = keep_depth

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _stored(self, key: str, st: os.stat_result, sha256: str | None = None) -> StoredFile:
        modified = datetime.fromtimestamp(st.st_mtime, UTC)
        return StoredFile(key=key, size=st.st_size, modified=modified, sha256=sha256)

    # -- writing ---------------------------------------------------------------------------

    def write(self, key: str, content: Content, *, max_bytes: int | None = None) -> StoredFile:
        path = self._path(key)
        fd, temp = self._open_temp(path)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in iter_content(content, self.chunk_size):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(key, max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                if self.fsync:
                    os.fsync(out.fileno())
            try:
                os.replace(temp, path)
            except OSError as exc:
                raise StorageError(f"cannot store {key!r} at {path}: {exc}") from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self._stored(key, path.stat(), digest.hexdigest())

    def copy_in(self, key: str, path: Path) -> StoredFile:
        validate_key(key)
        with Path(path).open("rb") as source:
            return self.write(key, source)

    def _open_temp(self, path: Path) -> tuple[int, Path]:
        """Create an empty temporary file next to ``path``, creating its folders."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        for _attempt in range(5):
            temp = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                return os.open(temp, flags, 0o666), temp
            except FileNotFoundError:
                continue  # a concurrent delete pruned the folder: make it again
            except OSError as exc:
                raise StorageError(f"cannot write under {path.parent}: {exc}") from exc
        raise StorageError(f"cannot create a temporary file in {path.parent}")

    # -- reading ---------------------------------------------------------------------------

    def stat(self, key: str) -> StoredFile:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(key) from None
        except OSError as exc:
            raise StorageError(f"cannot stat {key!r}: {exc}") from exc
        if not S_ISREG(st.st_mode):
            raise NotFound(key)
        return self._stored(key, st)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read(self, key: str, start: int = 0, end: int | None = None) -> ByteStream:
        path = self._path(key)
        check_range(start, end)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(key) from None
        except OSError as exc:
            raise StorageError(f"cannot read {key!r}: {exc}") from exc
        try:
            size = os.fstat(handle.fileno()).st_size
            start, stop = clamp_range(key, start, end, size)
            handle.seek(start)
        except BaseException:
            handle.close()
            raise
        return ByteStream(self._chunks(handle, stop - start), handle.close)

    def _chunks(self, handle: BinaryIO, remaining: int) -> Iterator[bytes]:
        while remaining > 0:
            chunk = handle.read(min(self.chunk_size, remaining))
            if not chunk:
                break  # the file shrank under us: end early rather than spin
            remaining -= len(chunk)
            yield chunk

    def list(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[StoredFile]:
        prefix = validate_prefix(prefix)
        check_limit(limit)
        top = self.root.joinpath(*prefix.split("/")) if prefix else self.root
        found: list[StoredFile] = []
        for key, entry in _files_below(str(top), prefix, after):
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue  # deleted while we walked
            found.append(self._stored(key, st))
            if len(found) == limit:
                break
        return found

    # -- deleting --------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        path = self._path(key)
        if not path.is_file():
            return
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r}: {exc}") from exc
        self._prune(path.parent, key.count("/"))

    def _prune(self, folder: Path, depth: int) -> None:
        """Remove folders left empty by a delete, from `folder` (`depth` levels below the
        root) up to the deepest one kept (`keep_depth`; the root always)."""
        while depth > self.keep_depth:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or already gone): stop
            folder, depth = folder.parent, depth - 1


def _files_below(
    folder: str, key: str, after: str | None
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """The key and entry of each file below `folder` (at `key`), in key order, from the first
    key after `after`; a folder holding only keys up to `after` is not read.

    A folder's entries go in the order of their keys: a folder `a` as "a/", so the file
    "a.txt" comes before "a/x" ('.' < '/') and "ab" after it."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    named = []
    for entry in entries:
        if entry.name.startswith(RESERVED_PREFIX):
            continue
        child = f"{key}/{entry.name}" if key else entry.name
        is_folder = entry.is_dir()
        named.append((f"{child}/" if is_folder else child, child, entry, is_folder))
    named.sort(key=lambda item: item[0])
    for _, child, entry, is_folder in named:
        if not is_folder:
            if after is None or child > after:
                yield child, entry
        # every key below the folder sorts before child + "0" ('/' < '0')
        elif not entry.is_symlink() and (after is None or f"{child}0" > after):
            yield from _files_below(entry.path, child, after)
