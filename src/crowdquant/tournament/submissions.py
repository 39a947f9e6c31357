"""Uploading predictions to a round, and reading one's own uploads back.

A participant uploads a predictions file for one of their models. The upload is checked
against the round's live ids (`scoring.validation`) or, in a round published with 2017
files, against every row of its ``numerai_tournament_data.csv`` (validation, test and live:
`validate_2017_submission`, `rules2017_files.tournament_rows`), stored raw under
``submissions/<round id>/<model id>/<submission id>.<csv|parquet>`` and recorded as a
`Submission`: `valid` with its row count, or `invalid` with the validator's message (its
code first, ``"invalid_submission_ids: ..."``). An invalid file is recorded too, so the
participant sees why it was refused and can download what they sent. A valid upload to a
round with 2017 files also gets its figures (`rules2017_checks`: validation log-loss,
consistency, originality, and the operator's test-set log-loss) as `SubmissionCheck` rows.

When uploads are taken: from the round's open time until it is resolved. After the close
(or once the round's status has left `open`) an upload is `late`: it is scored later but
never staked and never counts for the round (`counting_submission`). Before the open time,
or once resolved, the upload is refused with `RoundNotOpen`.

Inside the window, the newest valid on-time upload counts; a later invalid one does not
replace it. Uploads are ordered by `created_at`, the clock's time: two uploads of a model at
the very same instant have no defined order.

An upload runs in three steps, so that the slow part holds no lock: `upload_target` reads
(the model, the round and its window), `check_upload` needs no database (it validates the
bytes with a `Validator`, in the server the worker pool of `tournament.validator`, and
stores them under a fresh key of their own), and `record_upload` runs in the writing
transaction (the model and the round checked again, then the row). The interfaces end the
reading transaction before `check_upload` and begin the writing one after it: uploads are
the one exception to one transaction per request. `submit_predictions` runs the three in
the caller's transaction (the CLI, the web form, tests).

Predictions sent by a participant (the APIs, the site; `by_participant`, the default) are
refused for a model whose predictions only its runs may send (`own_submission_refusal`:
a model with an enabled upload, or any model of a closed-live tournament); a compute job's
run submits with `by_participant=False`.

As elsewhere in `tournament/`, functions work in the caller's transaction: they flush,
never commit. A refusal (wrong model, round not taking uploads, oversized file) stores no
file and adds no row; a refusal by `record_upload` deletes the file `check_upload` stored.
If the row cannot be flushed the stored file is deleted again; if the caller's transaction
fails later, the file stays without a row (harmless: nothing refers to it, its key is never
reused, and the orphan sweep of `retention` deletes it a day later).
"""

from __future__ import annotations

import io
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from crowdquant.clock import Clock
from crowdquant.db.models import (
    Account,
    DatasetFile,
    Model,
    Round,
    RoundStatus,
    Submission,
    SubmissionStatus,
)
from crowdquant.scoring.validation import (
    DEFAULT_MAX_BYTES,
    PARQUET_MAGIC,
    PARQUET_SUFFIXES,
    LiveIds,
    SubmissionError,
    ValidatedSubmission,
)
from crowdquant.storage import ByteStream, FileStorage, TooLarge
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.live_mode import closed_live_reason, is_closed_live
from crowdquant.tournament.model_uploads import model_upload_of
from crowdquant.tournament.models import NotYourModel, get_own_model
from crowdquant.tournament.rounds import current_round, is_open
from crowdquant.tournament.rules2017_checks import check_rows, rules2017_upload_checks
from crowdquant.tournament.rules2017_files import tournament_rows
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.validator import IN_PROCESS, Validator
from crowdquant.tournament.visibility import Viewer, submission_visible

SUBMISSIONS_PREFIX = "submissions"
MAX_FILENAME_LENGTH = 255
DEFAULT_FILENAME = "predictions.csv"


# --- errors (N818 waived: short names read better where raised and caught) -------------------


class SubmissionRejected(ServiceError):  # noqa: N818
    """A refused upload or lookup.

    A file that is uploaded but fails validation is not refused: it is recorded as an
    invalid submission.
    """

    code = "submission_rejected"
    default_message = "the submission was refused"


class RoundNotOpen(SubmissionRejected):
    """The round does not take uploads now: not yet open, already resolved, or none."""

    code = "round_not_open"
    default_message = "the round does not take submissions now"


class WrongTournament(SubmissionRejected):
    code = "wrong_tournament"
    default_message = "the model and the round belong to different tournaments"


class UploadTooLarge(SubmissionRejected):
    code = "upload_too_large"
    default_message = "the upload is over the size limit"


class UnknownSubmission(SubmissionRejected, LookupError):  # noqa: N818
    code = "unknown_submission"
    default_message = "no submission has that id"


class SubmissionPurged(SubmissionRejected):
    """The upload is still listed but its file was deleted by retention."""

    code = "submission_purged"
    default_message = "this upload's file was purged: only a model's newest uploads are kept"


class NoLiveFile(SubmissionRejected, LookupError):  # noqa: N818
    """The round's live file was never recorded: an operator's problem, not the caller's."""

    code = "no_live_file"
    default_message = "the round's live file is not published"


class SubmittedByRunsOnly(SubmissionRejected):
    """The model's predictions come from its uploaded model's runs only."""

    code = "submitted_by_runs_only"
    default_message = "this model's predictions come from its uploaded model's runs only"


def own_submission_refusal(session: Session, model: Model) -> str | None:
    """Why `model`'s owner may not send its live predictions themselves (through the APIs,
    the site or a webhook), or None if they may: its tournament runs closed-live, or it has
    an enabled upload, whose runs submit for it."""
    if is_closed_live(model.tournament):
        return closed_live_reason(model.tournament)
    upload = model_upload_of(session, model)
    if upload is not None:
        return (
            f"model {model.name!r} runs its uploaded model {upload.filename!r} (upload"
            f" {upload.id}) on every round and takes no other submissions: disable that"
            " upload to submit predictions yourself"
        )
    return None


def check_own_submission(session: Session, model: Model) -> None:
    """Raise `SubmittedByRunsOnly` with `own_submission_refusal`'s reason, if there is one."""
    reason = own_submission_refusal(session, model)
    if reason is not None:
        raise SubmittedByRunsOnly(reason)


# --- the round's live ids --------------------------------------------------------------------


def live_file_name(round_: Round) -> str:
    """The `DatasetFile.filename` of `round_`'s own live file (``live_<n>.parquet``)."""
    return f"live_{round_.number}.parquet"


def live_ids_of_round(storage: FileStorage, round_: Round) -> pd.Index:
    """The ids of `round_`'s live era, read from its published live file.

    The file is found through the round's `DatasetFile` row (`live_<n>.parquet` of the
    round's dataset version), looked up in the session `round_` belongs to. Raises
    `NoLiveFile` if there is no such row.
    """
    return _read_live_ids(storage, _live_file_key(round_))


def live_file_key(round_: Round) -> str:
    """The storage key of `round_`'s published live file (see `live_ids_of_round`)."""
    return _live_file_key(round_)


def _live_file_key(round_: Round) -> str:
    session = object_session(round_)
    if session is None:
        raise ValueError("the round must belong to a session to find its live file")
    key = session.scalar(
        select(DatasetFile.storage_key).where(
            DatasetFile.version == round_.dataset_version,
            DatasetFile.filename == live_file_name(round_),
        )
    )
    if key is None:
        raise NoLiveFile(
            f"round {round_.number} has no published {live_file_name(round_)}"
            f" in dataset version {round_.dataset_version!r}"
        )
    return key


def _read_live_ids(storage: FileStorage, key: str) -> pd.Index:
    with storage.read(key) as chunks:
        content = b"".join(chunks)
    frame = pd.read_parquet(io.BytesIO(content), columns=[])
    ids: pd.Index = pd.Index(frame.index.astype(str), name="id")
    return ids


class LiveIdsCache:
    """The indexed live ids of the last few rounds uploaded to, by their live file's storage
    key (a committed live file is never rewritten). Safe to share between threads."""

    def __init__(self, rounds: int = 8) -> None:
        self.rounds = rounds
        self._found: OrderedDict[str, LiveIds] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], pd.Index]) -> LiveIds:
        """The ids kept for `key`, or `load()`'s, indexed and kept (loaded once, however
        many uploads ask at the same time)."""
        with self._lock:
            if key in self._found:
                self._found.move_to_end(key)
                return self._found[key]
            found = self._found[key] = LiveIds(load())
            while len(self._found) > self.rounds:
                self._found.popitem(last=False)
            return found


def round_live_ids(storage: FileStorage, round_: Round, cache: LiveIdsCache) -> LiveIds:
    """`live_ids_of_round`, indexed for validation and kept in `cache`."""
    key = _live_file_key(round_)
    return cache.get(key, lambda: _read_live_ids(storage, key))


# --- uploading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadTarget:
    """Where an upload goes, found and checked by `upload_target`: the caller's model and a
    round that takes uploads now (with its 2017 tournament rows, if it has them)."""

    model: Model
    round_: Round
    rows_2017: pd.DataFrame | None
    by_participant: bool = True


@dataclass(frozen=True)
class CheckedUpload:
    """An upload validated and stored by `check_upload`, before any writing transaction;
    `record_upload` records it as a `Submission`."""

    submission_id: uuid.UUID
    model_id: uuid.UUID
    round_id: uuid.UUID
    filename: str
    file_key: str
    status: SubmissionStatus
    n_rows: int | None
    error: str | None
    has_2017_files: bool
    by_participant: bool = True


def upload_target(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    account: Account,
    model_id: uuid.UUID | str,
    round_: Round | int,
    *,
    by_participant: bool = True,
    own_submission_checked: bool = False,
) -> UploadTarget:
    """The first step of an upload, which only reads: `account`'s model `model_id` and the
    round it uploads to (`round_`, or a tournament number meaning its newest round), which
    must take uploads now. Raises `UnknownModel` / `NotYourModel`, `TournamentNotFound`,
    `WrongTournament`, `SubmittedByRunsOnly` (predictions `by_participant` for a model
    whose runs alone submit; not checked again when the caller did `check_own_submission`
    in this transaction: `own_submission_checked`) and `RoundNotOpen`."""
    model = get_own_model(session, account, model_id)
    if by_participant and not own_submission_checked:
        check_own_submission(session, model)
    round_ = _round_for(session, model, round_)
    _check_window(round_, clock.now())
    rows_2017 = tournament_rows(session, storage, round_)
    return UploadTarget(model, round_, rows_2017, by_participant)


def check_upload(
    storage: FileStorage,
    target: UploadTarget,
    filename: str,
    data: bytes,
    *,
    live_ids: Iterable[str] | pd.Index | LiveIds,
    validator: Validator = IN_PROCESS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> CheckedUpload:
    """The second step, which needs no database: validate the bytes with `validator`
    (against `live_ids`, or the round's 2017 tournament rows) and store them under a fresh
    key of their own. Run it outside any transaction (validation is the slow part of an
    upload), then `record_upload` in a writing one. Raises `UploadTooLarge` before
    anything is stored."""
    if len(data) > max_bytes:
        raise UploadTooLarge(_too_large(filename, len(data), max_bytes))
    name = _clean_filename(filename)
    status, n_rows, error = SubmissionStatus.VALID, None, None
    try:
        validated: ValidatedSubmission
        if target.rows_2017 is not None:
            validated = validator.validate_2017(
                data, target.rows_2017["data_type"], filename=name, max_bytes=max_bytes
            )
        else:
            live = live_ids if isinstance(live_ids, LiveIds) else LiveIds(live_ids)
            validated = validator.validate(data, live, filename=name, max_bytes=max_bytes)
    except SubmissionError as refused:
        status, error = SubmissionStatus.INVALID, str(refused)
    else:
        n_rows = validated.n_rows

    submission_id = uuid.uuid4()
    model, round_ = target.model, target.round_
    key = (
        f"{SUBMISSIONS_PREFIX}/{round_.id.hex}/{model.id.hex}/{submission_id.hex}"
        f".{_extension(name, data)}"
    )
    try:
        storage.write(key, data, max_bytes=max_bytes)
    except TooLarge:
        raise UploadTooLarge(_too_large(filename, len(data), max_bytes)) from None
    return CheckedUpload(
        submission_id=submission_id,
        model_id=model.id,
        round_id=round_.id,
        filename=name,
        file_key=key,
        status=status,
        n_rows=n_rows,
        error=error,
        has_2017_files=target.rows_2017 is not None,
        by_participant=target.by_participant,
    )


def record_upload(
    session: Session, clock: Clock, storage: FileStorage, account: Account, upload: CheckedUpload
) -> Submission:
    """The second step of an upload, in the writing transaction: check again that the model
    is `account`'s and that its round still takes uploads, then add the `Submission` row
    (`late` if the round is past its window now) and a 2017 round's figures. A refusal or a
    failed flush deletes the stored file."""
    try:
        model = get_own_model(session, account, upload.model_id)
        if upload.by_participant:
            check_own_submission(session, model)
        round_ = session.get(Round, upload.round_id)
        if round_ is None or round_.tournament_id != model.tournament_id:
            raise RoundNotOpen()
        now = clock.now()
        _check_window(round_, now)
        submission = Submission(
            id=upload.submission_id,
            round_id=round_.id,
            model_id=model.id,
            file_key=upload.file_key,
            filename=upload.filename,
            late=not is_open(round_, now),
            created_at=now,
            validated_at=now,
            status=upload.status,
            n_rows=upload.n_rows,
            error=upload.error,
        )
        with session.begin_nested():
            session.add(submission)
            session.flush()
            found = (
                rules2017_upload_checks(session, storage, submission)
                if upload.has_2017_files
                else None
            )
            if found is not None:
                session.add_all(check_rows(found, submission, now))
                session.flush()
    except BaseException:
        storage.delete(upload.file_key)
        raise
    return submission


def submit_predictions(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    account: Account,
    model_id: uuid.UUID | str,
    round_: Round | int,
    filename: str,
    data: bytes,
    *,
    live_ids: Iterable[str] | pd.Index | LiveIds,
    validator: Validator = IN_PROCESS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    by_participant: bool = True,
) -> Submission:
    """Record an upload of `account`'s model `model_id` to a round and store its bytes:
    `upload_target`, `check_upload` and `record_upload` in the caller's transaction.

    `round_` is a `Round`, or a tournament number meaning that tournament's newest round.
    `live_ids` are the round's live ids (`live_ids_of_round`); a round with 2017 files is
    checked against its tournament rows instead. Raises `UnknownModel` /
    `NotYourModel`, `TournamentNotFound`, `WrongTournament`, `SubmittedByRunsOnly` (unless
    sent by a model's run: `by_participant=False`), `RoundNotOpen` and `UploadTooLarge`, each
    before anything is stored. Returns the flushed submission:
    `valid` or `invalid` (never `pending`), `late` if the round is past its window.
    """
    target = upload_target(
        session, clock, storage, account, model_id, round_, by_participant=by_participant
    )
    upload = check_upload(
        storage,
        target,
        filename,
        data,
        live_ids=live_ids,
        validator=validator,
        max_bytes=max_bytes,
    )
    return record_upload(session, clock, storage, account, upload)


def _check_window(round_: Round, now: datetime) -> None:
    if now < round_.open_time:
        raise RoundNotOpen(f"round {round_.number} opens at {round_.open_time:%Y-%m-%d %H:%M} UTC")
    if round_.status is RoundStatus.RESOLVED:
        raise RoundNotOpen(f"round {round_.number} is resolved and takes no more submissions")


def _round_for(session: Session, model: Model, round_: Round | int) -> Round:
    if isinstance(round_, Round):
        if round_.tournament_id != model.tournament_id:
            raise WrongTournament(
                f"model {model.name!r} is not in the tournament of round {round_.number}"
            )
        return round_
    tournament = get_tournament(session, round_)
    if tournament.id != model.tournament_id:
        raise WrongTournament(f"model {model.name!r} is not in tournament {tournament.number}")
    latest = current_round(session, tournament)
    if latest is None:
        raise RoundNotOpen(f"tournament {tournament.number} has no round yet")
    return latest


def _too_large(filename: str, size: int, max_bytes: int) -> str:
    return f"{filename!r} is {size:,} bytes, over the limit of {max_bytes:,} bytes"


def _clean_filename(filename: str) -> str:
    """The uploaded name without any folders, at most 255 characters."""
    name = PurePosixPath(filename.replace("\\", "/")).name.strip()
    if not name:
        return DEFAULT_FILENAME
    if len(name) <= MAX_FILENAME_LENGTH:
        return name
    suffix = PurePosixPath(name).suffix[:16]
    return name[: MAX_FILENAME_LENGTH - len(suffix)] + suffix


def _extension(filename: str, data: bytes) -> str:
    """The stored file's extension: `parquet` when the bytes or the name say so, else `csv`."""
    if data.startswith(PARQUET_MAGIC) and data.endswith(PARQUET_MAGIC):
        return "parquet"
    if PurePosixPath(filename).suffix.lower() in PARQUET_SUFFIXES:
        return "parquet"
    return "csv"


# --- reading ---------------------------------------------------------------------------------


def counting_submission(session: Session, round_: Round, model: Model) -> Submission | None:
    """The upload that counts for `model` in `round_`: its newest valid, on-time one."""
    return session.scalar(
        select(Submission)
        .where(
            Submission.round_id == round_.id,
            Submission.model_id == model.id,
            Submission.status == SubmissionStatus.VALID,
            Submission.late.is_(False),
        )
        .order_by(Submission.created_at.desc())
        .limit(1)
    )


def list_submissions(
    session: Session,
    account: Account,
    model_id: uuid.UUID | str | None = None,
    round_: Round | None = None,
) -> list[Submission]:
    """`account`'s submissions, newest first; optionally of one model (which must be
    theirs: `UnknownModel` / `NotYourModel`) and one round."""
    query = (
        select(Submission)
        .join(Model, Submission.model_id == Model.id)
        .where(Model.account_id == account.id)
        .order_by(Submission.created_at.desc())
    )
    if model_id is not None:
        query = query.where(Submission.model_id == get_own_model(session, account, model_id).id)
    if round_ is not None:
        query = query.where(Submission.round_id == round_.id)
    return list(session.scalars(query))


def get_own_submission(
    session: Session, account: Account, submission_id: uuid.UUID | str
) -> Submission:
    """The submission `submission_id` (a UUID or its text), if its model is `account`'s;
    raises `UnknownSubmission`, or `NotYourModel` for someone else's."""
    try:
        key = submission_id if isinstance(submission_id, uuid.UUID) else uuid.UUID(submission_id)
    except ValueError:
        raise UnknownSubmission() from None
    submission = session.get(Submission, key)
    if submission is None:
        raise UnknownSubmission()
    if not submission_visible(Viewer.participant(account), submission):
        raise NotYourModel()
    return submission


def downloadable_submission(
    session: Session, account: Account, submission_id: uuid.UUID | str
) -> Submission:
    """`get_own_submission`, refused with `SubmissionPurged` once its file is gone."""
    submission = get_own_submission(session, account, submission_id)
    if submission.purged_at is not None:
        raise SubmissionPurged(
            f"the file of submission {submission.id} ({submission.filename!r}) was purged"
            f" on {submission.purged_at:%Y-%m-%d}: only the uploads a round is scored by and"
            " a model's newest ones are kept"
        )
    return submission


def submission_file(
    session: Session, storage: FileStorage, account: Account, submission_id: uuid.UUID | str
) -> tuple[str, ByteStream]:
    """The uploaded filename and a stream of the bytes of one of `account`'s submissions.

    Close the stream (or exhaust it, or use it in a ``with`` block)."""
    submission = downloadable_submission(session, account, submission_id)
    return submission.filename, storage.read(submission.file_key)
