"""Raw uploads: keys per model, refusals, and the sweep of abandoned ones."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crowdquant.db.models import Model
from crowdquant.tournament.uploads import (
    ABANDONED_AFTER,
    NotAnUpload,
    NothingUploaded,
    new_upload_key,
    own_upload,
    read_upload,
    safe_name,
    sweep_abandoned_uploads,
)

from .live_market import local_storage


def _model() -> Model:
    return Model(id=uuid.uuid4(), name="m")


def test_keys_are_fresh_per_upload_and_checked_per_model() -> None:
    model, other = _model(), _model()
    first, second = new_upload_key(model, "my preds.csv"), new_upload_key(model, "my preds.csv")
    assert first != second and first.endswith("/my_preds.csv")
    assert own_upload(model, first, "how") == first
    with pytest.raises(NotAnUpload, match="not an upload of this model: how"):
        own_upload(other, first, "how")
    with pytest.raises(NotAnUpload, match="not a valid upload key"):
        own_upload(model, "../../etc/passwd", "how")
    assert safe_name("..\\..\\x y.parquet") == "x_y.parquet"
    assert safe_name(None) == safe_name("") == "predictions.csv"


def test_reading_a_missing_upload_says_how(tmp_path: Path) -> None:
    storage = local_storage(tmp_path)
    key = new_upload_key(_model(), "p.csv")
    with pytest.raises(NothingUploaded, match="PUT it first"):
        read_upload(storage, key, "PUT it first")
    storage.write(key, b"id,prediction\n")
    assert read_upload(storage, key, "PUT it first") == b"id,prediction\n"


def test_the_sweep_deletes_only_abandoned_uploads(tmp_path: Path) -> None:
    storage = local_storage(tmp_path)
    model = _model()
    old, fresh = new_upload_key(model, "old.csv"), new_upload_key(model, "fresh.csv")
    for key in (old, fresh, "v1/live.parquet"):
        storage.write(key, b"x")
    now = datetime.now(UTC)
    two_days_ago = (now - 2 * ABANDONED_AFTER).timestamp()
    os.utime(tmp_path.joinpath(*old.split("/")), (two_days_ago, two_days_ago))
    os.utime(tmp_path / "v1" / "live.parquet", (two_days_ago, two_days_ago))

    assert sweep_abandoned_uploads(storage, now) == 1
    assert not storage.exists(old) and storage.exists(fresh)
    assert storage.exists("v1/live.parquet")  # not an upload: never swept
    assert sweep_abandoned_uploads(storage, now + timedelta(seconds=1)) == 0
