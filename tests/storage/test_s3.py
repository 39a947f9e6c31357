"""What only the S3 backend promises, beyond the shared contract (moto's server)."""

from __future__ import annotations

from typing import Any

import pytest

from crowdquant.storage import InvalidKey, StorageError
from crowdquant.storage.s3 import MIN_PART_SIZE, S3Storage

MiB = 1024 * 1024


def test_small_files_are_one_put_and_big_ones_multipart(s3_client: Any, s3_bucket: str) -> None:
    storage = S3Storage(s3_client, s3_bucket, part_size=MIN_PART_SIZE)
    storage.write("small.bin", b"x" * 1000)
    big = storage.write("big.bin", (b"y" * MiB for _ in range(12)))
    assert big.size == 12 * MiB
    assert "-" not in s3_client.head_object(Bucket=s3_bucket, Key="small.bin")["ETag"]
    # 12 MiB in 5 MiB parts: 5 + 5 + 2
    assert s3_client.head_object(Bucket=s3_bucket, Key="big.bin")["ETag"].endswith('-3"')
    assert b"".join(storage.read("big.bin", 5 * MiB - 2, 5 * MiB + 2)) == b"y" * 4


def test_a_prefix_keeps_keys_in_a_folder_of_the_bucket(s3_client: Any, s3_bucket: str) -> None:
    inside = S3Storage(s3_client, s3_bucket, prefix="/crowdquant/")
    whole = S3Storage(s3_client, s3_bucket)
    inside.write("users/1/p.csv", b"p")
    whole.write("elsewhere.txt", b"e")
    assert [f.key for f in whole.list()] == ["crowdquant/users/1/p.csv", "elsewhere.txt"]
    assert [f.key for f in inside.list()] == ["users/1/p.csv"]
    assert [f.key for f in inside.list("users")] == ["users/1/p.csv"]
    inside.write("users/2/q.csv", b"q")
    assert [f.key for f in inside.list(after="users/1/p.csv")] == ["users/2/q.csv"]
    assert [f.key for f in inside.list("users", limit=1)] == ["users/1/p.csv"]
    inside.delete("users/2/q.csv")
    assert inside.stat("users/1/p.csv").size == 1
    assert not inside.exists("elsewhere.txt")
    inside.delete("users/1/p.csv")
    assert [f.key for f in whole.list()] == ["elsewhere.txt"]


def test_objects_no_key_can_name_are_not_listed(s3_client: Any, s3_bucket: str) -> None:
    for key in ["users/1/", "users/1/a.csv", "users//b.csv", "users/1/../c"]:
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"")
    assert [f.key for f in S3Storage(s3_client, s3_bucket).list("users")] == ["users/1/a.csv"]


def test_a_missing_bucket_is_a_clear_storage_error(s3_client: Any) -> None:
    storage = S3Storage(s3_client, "no-such-bucket-here")
    with pytest.raises(StorageError, match=r"no-such-bucket-here.*does not exist"):
        storage.write("a.txt", b"a")
    with pytest.raises(StorageError, match="does not exist"):
        storage.list()


def test_construction_is_checked() -> None:
    with pytest.raises(ValueError, match="part_size"):
        S3Storage(object(), "bucket", part_size=MiB)
    with pytest.raises(ValueError, match="bucket"):
        S3Storage(object(), "")
    with pytest.raises(InvalidKey):
        S3Storage(object(), "bucket", prefix="a/../b")
