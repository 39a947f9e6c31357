"""Steps 1 and 2, in the web request: the upload key, the queued request; and reading the
caller's own requests back."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.models import Account, DatasetFile, Diagnostics, DiagnosticsStatus
from crowdquant.scoring.validation import DEFAULT_MAX_BYTES
from crowdquant.storage import FileStorage, NotFound, TooLarge
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.models import get_own_model
from crowdquant.tournament.submissions import UploadTooLarge
from crowdquant.tournament.uploads import NothingUploaded, new_upload_key, own_upload
from crowdquant.tournament.visibility import Viewer, diagnostics_visible

DIAGNOSTICS_PREFIX: Final = "diagnostics"
VALIDATION_FILE: Final = "validation.parquet"
HOW: Final = "PUT the file to the URL of diagnosticsUploadAuth"
_NUMBER_ATTEMPTS = 5


# --- errors (N818 waived: short names read better where raised and caught) -------------------


class DiagnosticsError(ServiceError):
    """A refused diagnostics request or lookup."""

    code = "diagnostics_refused"
    default_message = "the diagnostics request was refused"


class NoValidationData(DiagnosticsError, LookupError):  # noqa: N818
    """The dataset version has no (usable) published validation data."""

    code = "no_validation_data"
    default_message = "the dataset version has no published validation data"


class UnknownDiagnostics(DiagnosticsError, LookupError):  # noqa: N818
    code = "unknown_diagnostics"
    default_message = "no diagnostics has that id for this model"


# --- step 1 and 2: the upload and the request (in the web request) -----------------------------


def diagnostics_upload_key(
    session: Session, account: Account, model_id: uuid.UUID | str, filename: str | None
) -> str:
    """A fresh storage key for `account`'s model `model_id` to PUT a diagnostics file to.

    Raises `UnknownModel` / `NotYourModel`. The API answers it as `filename` with a signed
    PUT URL for exactly that key.
    """
    return new_upload_key(get_own_model(session, account, model_id), filename)


def request_diagnostics(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    account: Account,
    model_id: uuid.UUID | str,
    filename: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Diagnostics:
    """Queue the upload at key `filename` (from `diagnostics_upload_key`) for diagnostics.

    Returns the flushed `pending` row: the model's next request number, the model's
    tournament's dataset version. Raises `UnknownModel` / `NotYourModel`, `NotAnUpload`,
    `NoValidationData`, `NothingUploaded` and `UploadTooLarge`, each before anything is
    written. The upload is moved under ``diagnostics/``; if the row cannot be flushed the
    moved copy is deleted again and the upload stays.
    """
    model = get_own_model(session, account, model_id)
    key = own_upload(model, filename, "use diagnosticsUploadAuth")
    version = model.tournament.dataset_version
    published = session.scalar(
        select(DatasetFile.id).where(
            DatasetFile.version == version, DatasetFile.filename == VALIDATION_FILE
        )
    )
    if published is None:
        raise NoValidationData(
            f"dataset version {version!r} has no published {VALIDATION_FILE}: diagnostics are"
            " not available for this tournament yet"
        )
    name = PurePosixPath(key).name
    try:
        size = storage.stat(key).size
    except NotFound:
        raise NothingUploaded(f"nothing was uploaded as {key!r}: {HOW}") from None
    if size > max_bytes:
        raise UploadTooLarge(f"{name!r} is {size:,} bytes, over the limit of {max_bytes:,} bytes")

    diagnostics_id = uuid.uuid4()
    stored = f"{DIAGNOSTICS_PREFIX}/{model.id.hex}/{diagnostics_id.hex}/{name}"
    try:
        with storage.read(key) as chunks:
            storage.write(stored, chunks, max_bytes=max_bytes)
    except NotFound:  # deleted between the stat and the read
        raise NothingUploaded(f"nothing was uploaded as {key!r}") from None
    except TooLarge:
        raise UploadTooLarge(f"{name!r} is over the limit of {max_bytes:,} bytes") from None
    try:
        row = _insert_numbered(
            session,
            Diagnostics(
                id=diagnostics_id,
                model_id=model.id,
                dataset_version=version,
                file_key=stored,
                filename=name,
                status=DiagnosticsStatus.PENDING,
                created_at=clock.now(),
            ),
        )
    except BaseException:
        storage.delete(stored)
        raise
    storage.delete(key)
    return row


def _insert_numbered(session: Session, row: Diagnostics) -> Diagnostics:
    """Insert `row` as its model's next request; retry if a concurrent request took it."""
    for attempt in range(_NUMBER_ATTEMPTS):
        latest = session.scalar(
            select(func.max(Diagnostics.request_number)).where(Diagnostics.model_id == row.model_id)
        )
        row.request_number = (latest or 0) + 1
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            if attempt == _NUMBER_ATTEMPTS - 1:
                raise
            continue
        return row
    raise AssertionError("unreachable")  # pragma: no cover


# --- reading -----------------------------------------------------------------------------------


def list_diagnostics(
    session: Session, account: Account, model_id: uuid.UUID | str
) -> list[Diagnostics]:
    """Every diagnostics request of `account`'s model `model_id`, newest first."""
    model = get_own_model(session, account, model_id)
    return list(
        session.scalars(
            select(Diagnostics)
            .where(Diagnostics.model_id == model.id)
            .order_by(Diagnostics.request_number.desc())
        )
    )


def get_diagnostics(
    session: Session,
    account: Account,
    model_id: uuid.UUID | str,
    diagnostics_id: uuid.UUID | str | None = None,
) -> Diagnostics:
    """One of the diagnostics of `account`'s model `model_id`: `diagnostics_id`, or the
    newest when it is None. Raises `UnknownModel` / `NotYourModel`, `UnknownDiagnostics`."""
    model = get_own_model(session, account, model_id)
    query = select(Diagnostics).where(Diagnostics.model_id == model.id)
    if diagnostics_id is None:
        found = session.scalar(query.order_by(Diagnostics.request_number.desc()).limit(1))
        if found is None:
            raise UnknownDiagnostics(
                f"model {model.name!r} has no diagnostics yet: upload predictions on the "
                "validation data first"
            )
    else:
        try:
            key = (
                diagnostics_id
                if isinstance(diagnostics_id, uuid.UUID)
                else uuid.UUID(str(diagnostics_id))
            )
        except ValueError:
            raise UnknownDiagnostics() from None
        found = session.scalar(query.where(Diagnostics.id == key))
        if found is None:
            raise UnknownDiagnostics()
    if not diagnostics_visible(Viewer.participant(account), found):
        raise UnknownDiagnostics()
    return found
