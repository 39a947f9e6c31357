"""Helpers shared by the storage tests: what a backend left behind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crowdquant.storage import FileStorage

ACCESS = {"access_key": "test", "secret_key": "test", "region": "us-east-1"}


@dataclass
class Backend:
    """A storage under test and a way to see everything it left behind."""

    name: str
    storage: FileStorage
    leftovers: Callable[[], list[str]]


def s3_leftovers(client: Any, bucket: str) -> list[str]:
    """Every object and every unfinished multipart upload in the bucket."""
    objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [o["Key"] for o in objects] + [f"upload:{u['Key']}" for u in uploads]


def local_leftovers(root: Path) -> list[str]:
    """Every file below root, hidden and temporary ones included."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
