"""Both storage backends behind one fixture: a local folder and a moto S3 server."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crowdquant.storage import FileStorage, LocalStorage
from tests.storage.harness import ACCESS, Backend, local_leftovers, s3_leftovers


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    from crowdquant.storage.s3 import make_s3_client

    return make_s3_client(endpoint_url=s3_endpoint, **ACCESS)


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[str]:
    """A fresh bucket for one test, emptied and removed afterwards."""
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    s3_client.create_bucket(Bucket=bucket)
    yield bucket
    for upload in s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3_client.abort_multipart_upload(
            Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            s3_client.delete_object(Bucket=bucket, Key=entry["Key"])
    s3_client.delete_bucket(Bucket=bucket)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        root = tmp_path / "files"
        return Backend("local", LocalStorage(root), lambda: local_leftovers(root))
    from crowdquant.storage.s3 import MIN_PART_SIZE, S3Storage

    client = request.getfixturevalue("s3_client")
    bucket = request.getfixturevalue("s3_bucket")
    storage = S3Storage(client, bucket, part_size=MIN_PART_SIZE)
    return Backend("s3", storage, lambda: s3_leftovers(client, bucket))


@pytest.fixture
def storage(backend: Backend) -> FileStorage:
    return backend.storage
