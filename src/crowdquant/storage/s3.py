"""Files in an S3-compatible object store (AWS S3, MinIO, Ceph, moto, ...), through boto3.

Writes stream: the content is buffered one part at a time (``part_size``, 8 MiB by
default, at least 5 MiB as S3 requires), so a file that fits in one part is a single
``PutObject`` and a larger one a multipart upload. ``max_bytes`` is enforced while
streaming; on any failure the multipart upload is aborted, so nothing is left behind and
a previous object at the key stays as it was. With 8 MiB parts and S3's 10,000-part limit
one write holds at most ~78 GiB.

Reads are ranged ``GetObject`` calls streamed through the body's ``iter_chunks``.

boto3 ships no type hints (mypy treats it as ``Any``), so the client is typed ``Any``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from crowdquant.storage.interface import (
    CHUNK_SIZE,
    ByteStream,
    Content,
    InvalidKey,
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

MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})


def make_s3_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> Any:
    """A boto3 S3 client; without keys, boto3's usual chain (env, profile, role) applies.

    A custom ``endpoint_url`` gets path-style addressing (``http://host/bucket/key``),
    which self-hosted stores need. Checksums are only sent when an operation requires
    them, since boto3's newer default (CRC32 on every upload) trips some S3-compatible
    servers.
    """
    config = Config(
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Storage:
    """A ``FileStorage`` in one bucket, optionally below a key ``prefix`` (a folder)."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        prefix: str = "",
        chunk_size: int = CHUNK_SIZE,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 storage needs a bucket")
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.chunk_size = chunk_size
        self.part_size = part_size

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _failure(self, what: str, exc: ClientError | BotoCoreError) -> StorageError:
        if isinstance(exc, ClientError) and _code(exc) == "NoSuchBucket":
            return StorageError(f"S3 bucket {self.bucket!r} does not exist")
        return StorageError(f"S3 {what} failed: {exc}")

    # -- writing ---------------------------------------------------------------------------

    def write(self, key: str, content: Content, *, max_bytes: int | None = None) -> StoredFile:
        object_key = self._object_key(key)
        digest = hashlib.sha256()
        size = 0
        pending: list[bytes] = []
        pending_bytes = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in iter_content(content, self.chunk_size):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(key, max_bytes)
                digest.update(chunk)
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= self.part_size:
                    if upload_id is None:
                        upload_id = self._start_upload(object_key)
                    body = b"".join(pending)
                    pending.clear()
                    pending_bytes = 0
                    parts.append(self._upload_part(object_key, upload_id, len(parts) + 1, body))
                    del body
            body = b"".join(pending)
            pending.clear()
            if upload_id is None:
                self._call(
                    "upload", self.client.put_object, Bucket=self.bucket, Key=object_key, Body=body
                )
            else:
                if body:
                    parts.append(self._upload_part(object_key, upload_id, len(parts) + 1, body))
                self._call(
                    "upload",
                    self.client.complete_multipart_upload,
                    Bucket=self.bucket,
                    Key=object_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            if upload_id is not None:
                with suppress(ClientError, BotoCoreError):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=object_key, UploadId=upload_id
                    )
            raise
        stored = self.stat(key)
        return StoredFile(key=key, size=size, modified=stored.modified, sha256=digest.hexdigest())

    def _start_upload(self, object_key: str) -> str:
        created = self._call(
            "upload", self.client.create_multipart_upload, Bucket=self.bucket, Key=object_key
        )
        return str(created["UploadId"])

    def _upload_part(
        self, object_key: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        answer = self._call(
            "upload",
            self.client.upload_part,
            Bucket=self.bucket,
            Key=object_key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _call(self, what: str, operation: Any, **kwargs: Any) -> Any:
        try:
            return operation(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._failure(what, exc) from exc

    def copy_in(self, key: str, path: Path) -> StoredFile:
        validate_key(key)
        with Path(path).open("rb") as source:
            return self.write(key, source)

    # -- reading ---------------------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any]:
        object_key = self._object_key(key)
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise NotFound(key) from None
            raise self._failure("stat", exc) from exc
        except BotoCoreError as exc:
            raise self._failure("stat", exc) from exc
        return head

    def stat(self, key: str) -> StoredFile:
        head = self._head(key)
        return StoredFile(
            key=key,
            size=int(head["ContentLength"]),
            modified=head["LastModified"].astimezone(UTC),
        )

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except NotFound:
            return False
        return True

    def read(self, key: str, start: int = 0, end: int | None = None) -> ByteStream:
        object_key = self._object_key(key)
        check_range(start, end)
        if end == start:
            clamp_range(key, start, end, self.stat(key).size)  # NotFound / past the end
            return _empty()
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": object_key}
        if start > 0 or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            answer = self.client.get_object(**request)
        except ClientError as exc:
            code = _code(exc)
            if code in _NOT_FOUND:
                raise NotFound(key) from None
            if code == "InvalidRange":  # start >= size: empty at the very end, else refused
                clamp_range(key, start, end, self.stat(key).size)
                return _empty()
            raise self._failure("read", exc) from exc
        except BotoCoreError as exc:
            raise self._failure("read", exc) from exc
        body = answer["Body"]
        return ByteStream(self._chunks(key, body), body.close)

    def _chunks(self, key: str, body: Any) -> Iterator[bytes]:
        try:
            for chunk in body.iter_chunks(self.chunk_size):
                if chunk:
                    yield chunk
        except BotoCoreError as exc:
            raise StorageError(f"S3 read of {key!r} broke off: {exc}") from exc

    def list(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[StoredFile]:
        prefix = validate_prefix(prefix)
        check_limit(limit)
        folder = "/".join(part for part in (self.prefix, prefix) if part)
        strip = len(self.prefix) + 1 if self.prefix else 0
        found: list[StoredFile] = []
        where = {"Bucket": self.bucket, "Prefix": f"{folder}/" if folder else ""}
        if after is not None:  # S3 lists keys in UTF-8 byte order: the order of str
            where["StartAfter"] = f"{self.prefix}/{after}" if self.prefix else after
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(**where)
            for page in pages:
                if limit is not None and len(found) >= limit:
                    break
                for entry in page.get("Contents", []):
                    key = str(entry["Key"])[strip:]
                    try:
                        validate_key(key)
                    except InvalidKey:
                        continue  # e.g. "folder/" markers made by consoles: not files
                    found.append(
                        StoredFile(
                            key=key,
                            size=int(entry["Size"]),
                            modified=entry["LastModified"].astimezone(UTC),
                        )
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._failure("list", exc) from exc
        found.sort(key=lambda stored: stored.key)
        return found[:limit]

    # -- deleting --------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        self._call(
            "delete", self.client.delete_object, Bucket=self.bucket, Key=self._object_key(key)
        )


def _empty() -> ByteStream:
    return ByteStream(iter(()), lambda: None)
