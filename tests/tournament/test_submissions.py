"""Uploading predictions to an open round of a synthetic market, on both backends.

Every refusal is checked to change nothing: no row in any table (`snapshot`) and no file
under `submissions/` in storage.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.base import Base
from crowdquant.db.models import (
    Account,
    Cadence,
    Model,
    Round,
    RoundStatus,
    Rules,
    Submission,
    SubmissionStatus,
)
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.models import NotYourModel, UnknownModel, create_model
from crowdquant.tournament.rounds import (
    FeedPublisher,
    open_round,
)
from crowdquant.tournament.submissions import (
    RoundNotOpen,
    SubmissionRejected,
    UnknownSubmission,
    UploadTooLarge,
    WrongTournament,
    counting_submission,
    list_submissions,
    live_ids_of_round,
    submission_file,
    submit_predictions,
)
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from .live_market import TUESDAY_NOON, local_storage, market_feed, read_parquet, stored_bytes

MINUTE = timedelta(minutes=1)
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(TUESDAY_NOON + 5 * MINUTE)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return local_storage(tmp_path / "files")


@pytest.fixture
def session(sessions: sessionmaker[Session], clock: ManualClock) -> Iterator[Session]:
    with sessions() as session:
        create_tournament(session, clock, 8, "t8", Rules.CLASSIC, Cadence.DAILY, "v1")
        create_tournament(session, clock, 11, "t11", Rules.CLASSIC, Cadence.WEEKLY, "v2")
        session.commit()
        yield session


@pytest.fixture
def round_(session: Session, clock: ManualClock, storage: LocalStorage) -> Round:
    publisher = FeedPublisher(market_feed(), storage)
    opened = open_round(session, clock, get_tournament(session, 8), publisher)
    session.commit()
    return opened


@pytest.fixture
def live_ids(round_: Round, storage: LocalStorage) -> pd.Index:
    return live_ids_of_round(storage, round_)


@pytest.fixture
def alice(session: Session, clock: ManualClock) -> Account:
    account = sign_up(session, clock, "alice", "alice@example.org", "x" * 10, hasher=CHEAP)
    session.commit()
    return account


@pytest.fixture
def bob(session: Session, clock: ManualClock) -> Account:
    account = sign_up(session, clock, "bob", "bob@example.org", "x" * 10, hasher=CHEAP)
    session.commit()
    return account


@pytest.fixture
def alice_model(session: Session, clock: ManualClock, alice: Account) -> Model:
    model = create_model(session, clock, alice, 8, "alice_model")
    session.commit()
    return model


@pytest.fixture
def bob_model(session: Session, clock: ManualClock, bob: Account) -> Model:
    model = create_model(session, clock, bob, 8, "bob_model")
    session.commit()
    return model


def predictions_csv(ids: pd.Index, extra: int = 0) -> bytes:
    values = np.linspace(0.1, 0.9, len(ids) + extra)
    rows = [*ids, *(f"extra{i}" for i in range(extra))]
    lines = ["id,prediction", *(f"{i},{v:.6f}" for i, v in zip(rows, values, strict=True))]
    return ("\n".join(lines) + "\n").encode()


def predictions_parquet(ids: pd.Index) -> bytes:
    frame = pd.DataFrame(
        {"prediction": np.linspace(0.2, 0.8, len(ids))}, index=pd.Index(ids, name="id")
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def snapshot(session: Session, storage: LocalStorage) -> dict[str, list[Any]]:
    """Every row of every table, in primary-key order, and every uploaded file's key."""
    rows: dict[str, list[Any]] = {
        table.name: [
            tuple(row) for row in session.execute(select(table).order_by(*table.primary_key))
        ]
        for table in Base.metadata.sorted_tables
    }
    rows["files"] = [f.key for f in storage.list("submissions")]
    return rows


def submit(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    account: Account,
    model: Model | uuid.UUID | str,
    round_: Round | int,
    data: bytes,
    live_ids: pd.Index,
    filename: str = "preds.csv",
    max_bytes: int = 1 << 20,
) -> Submission:
    model_id = model.id if isinstance(model, Model) else model
    return submit_predictions(
        session,
        clock,
        storage,
        account,
        model_id,
        round_,
        filename,
        data,
        live_ids=live_ids,
        max_bytes=max_bytes,
    )


def test_live_ids_come_from_the_rounds_published_file(
    round_: Round, storage: LocalStorage, live_ids: pd.Index
) -> None:
    published = read_parquet(storage, "v1/live_1.parquet").index
    assert live_ids.equals(pd.Index(published.astype(str), name="id"))
    assert live_ids.name == "id" and len(live_ids) > 20


def test_a_valid_upload_is_recorded_with_its_rows_and_stored_as_sent(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    round_: Round,
    live_ids: pd.Index,
    alice: Account,
    alice_model: Model,
) -> None:
    data = predictions_csv(live_ids, extra=3)
    sub = submit(session, clock, storage, alice, alice_model, round_, data, live_ids)
    session.commit()

    stored = session.scalars(select(Submission)).one()
    assert stored is sub
    assert (sub.status, sub.n_rows, sub.error, sub.late) == (
        SubmissionStatus.VALID,
        len(live_ids) + 3,
        None,
        False,
    )
    assert (sub.round_id, sub.model_id, sub.filename) == (round_.id, alice_model.id, "preds.csv")
    assert sub.created_at == sub.validated_at == clock.now()
    assert sub.file_key == (f"submissions/{round_.id.hex}/{alice_model.id.hex}/{sub.id.hex}.csv")
    assert stored_bytes(storage, sub.file_key) == data
    assert counting_submission(session, round_, alice_model) == sub

    # Parquet is stored as .parquet; a path in the uploaded name keeps only the name.
    clock.advance(MINUTE)
    data = predictions_parquet(live_ids)
    pq = submit(
        session, clock, storage, alice, str(alice_model.id), 8, data, live_ids, "C:\\me\\p.bin"
    )
    assert (pq.status, pq.n_rows, pq.filename) == (SubmissionStatus.VALID, len(live_ids), "p.bin")
    assert pq.file_key.endswith(f"{pq.id.hex}.parquet") and pq.round_id == round_.id
    assert stored_bytes(storage, pq.file_key) == data


def test_an_invalid_upload_is_recorded_with_a_readable_reason(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    round_: Round,
    live_ids: pd.Index,
    alice: Account,
    alice_model: Model,
) -> None:
    data = predictions_csv(live_ids[:-2])
    sub = submit(session, clock, storage, alice, alice_model, round_, data, live_ids)
    session.commit()
    assert (sub.status, sub.n_rows, sub.late) == (SubmissionStatus.INVALID, None, False)
    assert sub.validated_at == clock.now()
    assert sub.error is not None and sub.error.startswith("invalid_submission_ids: ")
    assert "2" in sub.error  # says how many live ids are missing
    assert stored_bytes(storage, sub.file_key) == data  # kept for the participant
    assert counting_submission(session, round_, alice_model) is None

    bad_header = b"ids,prediction\na,0.5\n"
    clock.advance(MINUTE)
    other = submit(session, clock, storage, alice, alice_model, round_, bad_header, live_ids)
    assert other.status is SubmissionStatus.INVALID
    assert other.error is not None and other.error.startswith("invalid_submission_headers: ")


def test_the_newest_valid_upload_counts(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    round_: Round,
    live_ids: pd.Index,
    alice: Account,
    alice_model: Model,
    bob: Account,
    bob_model: Model,
) -> None:
    first = submit(session, clock, storage, alice, alice_model, round_, b"x", live_ids)
    assert first.status is SubmissionStatus.INVALID
    clock.advance(MINUTE)
    second = submit(
        session, clock, storage, alice, alice_model, round_, predictions_csv(live_ids), live_ids
    )
    clock.advance(MINUTE)
    third = submit(
        session, clock, storage, alice, alice_model, round_, predictions_csv(live_ids, 1), live_ids
    )
    assert counting_submission(session, round_, alice_model) == third
    clock.advance(MINUTE)
    broken = submit(session, clock, storage, alice, alice_model, round_, b"id\n1\n", live_ids)
    session.commit()
    assert broken.status is SubmissionStatus.INVALID
    assert counting_submission(session, round_, alice_model) == third  # not replaced
    assert counting_submission(session, round_, bob_model) is None  # per model
    assert second.status is SubmissionStatus.VALID


def test_uploads_after_the_close_are_late_and_never_count(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    round_: Round,
    live_ids: pd.Index,
    alice: Account,
    alice_model: Model,
) -> None:
    data = predictions_csv(live_ids)
    on_time = submit(session, clock, storage, alice, alice_model, round_, data, live_ids)
    clock.set(round_.close_time)  # still status open, but past the window
    late = submit(session, clock, storage, alice, alice_model, round_, data, live_ids)
    assert (late.status, late.late, on_time.late) == (SubmissionStatus.VALID, True, False)
    RoundLifecycle(None, clock).close(session, round_)
    RoundLifecycle(None, clock).start_scoring(session, round_)
    clock.advance(MINUTE)
    scoring = submit(session, clock, storage, alice, alice_model, round_, data, live_ids)
    session.commit()
    assert scoring.late and scoring.status is SubmissionStatus.VALID
    assert counting_submission(session, round_, alice_model) == on_time

    RoundLifecycle(None, clock).resolve(session, round_)
    session.commit()
    before = snapshot(session, storage)
    with pytest.raises(RoundNotOpen, match="resolved") as refused:
        submit(session, clock, storage, alice, alice_model, round_, data, live_ids)
    assert refused.value.code == "round_not_open"
    assert snapshot(session, storage) == before


def test_a_round_not_yet_open_or_of_another_tournament_is_refused(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    round_: Round,
    live_ids: pd.Index,
    alice: Account,
    alice_model: Model,
) -> None:
    start = round_.close_time + timedelta(days=1)
    upcoming = Round(
        tournament_id=round_.tournament_id,
        number=2,
        status=RoundStatus.OPEN,
        open_time=start,
        close_staking_time=start + timedelta(hours=1),
        close_time=start + timedelta(hours=1),
        live_era="0004",
        dataset_version="v1",
    )
    session.add(upcoming)
    session.commit()
    data = predictions_csv(live_ids)
    refusals: list[tuple[Round | int, type[SubmissionRejected], str]] = [
        (upcoming, RoundNotOpen, "opens at"),
        (8, RoundNotOpen, "opens at"),  # the tournament's newest round
        (11, WrongTournament, "tournament 11"),
    ]
    before = snapshot(session, storage)
    for target, error, match in refusals:
        with pytest.raises(error, match=match):
            submit(session, clock, storage, alice, alice_model, target, data, live_ids)
        assert snapshot(session, storage) == before, target


def test_an_oversized_upload_changes_nothing(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    round_: Round,
    live_ids: pd.Index,
    alice: Account,
    alice_model: Model,
) -> None:
    data = predictions_csv(live_ids)
    before = snapshot(session, storage)
    with pytest.raises(UploadTooLarge, match="over the limit of 100 bytes") as refused:
        submit(session, clock, storage, alice, alice_model, round_, data, live_ids, max_bytes=100)
    assert refused.value.code == "upload_too_large"
    assert snapshot(session, storage) == before
    assert storage.list("") and not storage.list("submissions")


def test_someone_elses_model_is_refused(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    round_: Round,
    live_ids: pd.Index,
    alice: Account,
    bob_model: Model,
) -> None:
    data = predictions_csv(live_ids)
    before = snapshot(session, storage)
    with pytest.raises(NotYourModel):
        submit(session, clock, storage, alice, bob_model, round_, data, live_ids)
    for unknown in (uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(UnknownModel):
            submit(session, clock, storage, alice, unknown, round_, data, live_ids)
    assert snapshot(session, storage) == before


def test_participants_list_and_download_their_own_submissions(
    session: Session,
    clock: ManualClock,
    storage: LocalStorage,
    round_: Round,
    live_ids: pd.Index,
    alice: Account,
    alice_model: Model,
    bob: Account,
    bob_model: Model,
) -> None:
    second_model = create_model(session, clock, alice, 8, "alice_two")
    uploads = []
    for account, model, name in [
        (alice, alice_model, "a1.csv"),
        (bob, bob_model, "b1.csv"),
        (alice, second_model, "a2.csv"),
        (alice, alice_model, "a3.csv"),
    ]:
        data = predictions_csv(live_ids, extra=len(uploads))
        sub = submit(session, clock, storage, account, model, round_, data, live_ids, name)
        uploads.append((sub, data))
        clock.advance(MINUTE)
    session.commit()
    a1, b1, a2, a3 = (sub for sub, _ in uploads)

    assert list_submissions(session, alice) == [a3, a2, a1]
    assert list_submissions(session, alice, alice_model.id) == [a3, a1]
    assert list_submissions(session, alice, str(second_model.id), round_) == [a2]
    assert list_submissions(session, bob, round_=round_) == [b1]
    with pytest.raises(NotYourModel):
        list_submissions(session, alice, bob_model.id)

    filename, stream = submission_file(session, storage, alice, str(a2.id))
    with stream:
        assert (filename, b"".join(stream)) == ("a2.csv", uploads[2][1])
    with pytest.raises(NotYourModel):
        submission_file(session, storage, alice, b1.id)
    for unknown in (uuid.uuid4(), "nope"):
        with pytest.raises(UnknownSubmission) as refused:
            submission_file(session, storage, alice, unknown)
        assert refused.value.code == "unknown_submission"
