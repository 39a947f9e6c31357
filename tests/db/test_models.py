"""Every table on both backends: round trips, constraints, foreign keys, UTC datetimes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import (
    Account,
    ApiKey,
    ApiScope,
    Cadence,
    DatasetFile,
    Model,
    Round,
    RoundStatus,
    Rules,
    Submission,
    SubmissionStatus,
    Tournament,
    WebSession,
)
from crowdquant.db.session import transaction

T0 = datetime(2026, 1, 3, 13, 0, tzinfo=UTC)
NEW_YORK_WINTER = timezone(timedelta(hours=-5))


def account(name: str = "alice") -> Account:
    return Account(
        username=name, email=f"{name}@example.org", password_hash="argon2$x", created_at=T0
    )


def tournament(number: int = 8, name: str = "classic") -> Tournament:
    return Tournament(
        number=number,
        name=name,
        rules=Rules.CLASSIC,
        cadence=Cadence.WEEKLY,
        dataset_version="v1",
        settings={"payout": {"factor": "0.25", "caps": [-0.05, 0.05]}},
        created_at=T0,
    )


def round_of(parent: Tournament, number: int = 1, **times: datetime) -> Round:
    fields: dict[str, Any] = {
        "open_time": T0,
        "close_staking_time": T0 + timedelta(days=2),
        "close_time": T0 + timedelta(days=2),
        **times,
    }
    return Round(
        tournament=parent,
        number=number,
        status=RoundStatus.OPEN,
        live_era="0042",
        dataset_version="v1",
        **fields,
    )


def model_of(owner: Account, parent: Tournament, name: str = "alice_model") -> Model:
    return Model(account=owner, tournament=parent, name=name, created_at=T0)


def submission(to: Round, by: Model, **fields: Any) -> Submission:
    return Submission(
        round=to,
        model=by,
        file_key=f"submissions/{uuid.uuid4()}.csv",
        filename="predictions.csv",
        created_at=T0 + timedelta(hours=1),
        **fields,
    )


def dataset_file(filename: str = "train.parquet", **fields: Any) -> DatasetFile:
    values: dict[str, Any] = {
        "version": "v1",
        "size": 123_456_789_012,
        "sha256": "a" * 64,
        "storage_key": f"datasets/v1/{filename}",
        "published_at": T0,
        **fields,
    }
    return DatasetFile(filename=filename, **values)


def add(sessions: sessionmaker[Session], *rows: object) -> None:
    with transaction(sessions) as session:
        session.add_all(rows)


def refused(sessions: sessionmaker[Session], *rows: object) -> None:
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        session.add_all(rows)


def refused_sql(sessions: sessionmaker[Session], statement: Any) -> None:
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        session.execute(statement)


def _round_fields(tournament_id: uuid.UUID, number: int) -> dict[str, Any]:
    return {
        "tournament_id": tournament_id,
        "number": number,
        "status": RoundStatus.OPEN,
        "open_time": T0,
        "close_staking_time": T0,
        "close_time": T0,
        "live_era": "0001",
        "dataset_version": "v1",
    }


def world(sessions: sessionmaker[Session]) -> tuple[Account, Tournament, Round, Model]:
    alice, classic = account(), tournament()
    first = round_of(classic)
    entry = model_of(alice, classic)
    add(sessions, alice, classic, first, entry)
    return alice, classic, first, entry


def test_a_round_trip_through_every_table(sessions: sessionmaker[Session]) -> None:
    alice, _, first, entry = world(sessions)
    key = ApiKey(
        account=alice,
        name="laptop",
        public_id="PUB1",
        secret_hash="h1",
        scopes=["upload", "read"],
        created_at=T0,
    )
    web = WebSession(account=alice, token_hash="t1", created_at=T0, expires_at=T0 + timedelta(1))
    upload = submission(first, entry)
    add(sessions, key, web, upload, dataset_file())

    with sessions() as session:
        got = session.scalars(select(Account).where(Account.username == "alice")).one()
        assert isinstance(got.id, uuid.UUID) and got.id == alice.id
        assert got.email == "alice@example.org" and got.created_at == T0
        assert [k.public_id for k in got.api_keys] == ["PUB1"]
        assert got.api_keys[0].scopes == ["read", "upload"]
        assert got.api_keys[0].revoked_at is None and got.api_keys[0].last_used_at is None
        assert [s.token_hash for s in got.web_sessions] == ["t1"]
        [model] = got.models
        assert model.name == "alice_model" and model.tournament.number == 8

        game = session.scalars(select(Tournament).where(Tournament.number == 8)).one()
        assert game.rules is Rules.CLASSIC and game.cadence is Cadence.WEEKLY
        assert game.settings == {"payout": {"factor": "0.25", "caps": [-0.05, 0.05]}}
        [current] = game.rounds
        assert current.status is RoundStatus.OPEN and current.live_era == "0042"
        assert current.resolve_time is None

        [sub] = model.submissions
        assert sub.round.id == current.id
        assert sub.status is SubmissionStatus.PENDING and sub.late is False
        assert sub.error is None and sub.n_rows is None and sub.validated_at is None

        stored = session.scalars(select(DatasetFile)).one()
        assert stored.size == 123_456_789_012 and stored.sha256 == "a" * 64

    with transaction(sessions) as session:
        sub = session.get_one(Submission, upload.id)
        sub.status, sub.n_rows, sub.validated_at = SubmissionStatus.VALID, 5000, T0
        session.get_one(Round, first.id).status = RoundStatus.RESOLVED
        session.get_one(Round, first.id).resolve_time = T0 + timedelta(days=30)
        session.delete(session.get_one(WebSession, web.id))

    with sessions() as session:
        sub = session.get_one(Submission, upload.id)
        assert (sub.status, sub.n_rows, sub.validated_at) == (SubmissionStatus.VALID, 5000, T0)
        assert session.get_one(Round, first.id).resolve_time == T0 + timedelta(days=30)
        assert session.scalars(select(WebSession)).all() == []


def test_datetimes_come_back_as_utc(sessions: sessionmaker[Session]) -> None:
    classic = tournament()
    opens = datetime(2026, 1, 3, 8, 0, 0, 123456, tzinfo=NEW_YORK_WINTER)
    add(sessions, classic, round_of(classic, open_time=opens))

    with sessions() as session:
        if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
            session.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
        stored = session.scalars(select(Round)).one()
        assert stored.open_time == opens
        assert stored.open_time.tzinfo is UTC
        assert stored.open_time.isoformat() == "2026-01-03T13:00:00.123456+00:00"
        # Comparisons bind through the same conversion, whatever the argument's zone.
        found = session.scalars(select(Round).where(Round.open_time == opens)).all()
        assert found == [stored]
        later = session.scalars(select(Round).where(Round.close_time > opens)).all()
        assert later == [stored]


def test_naive_datetimes_are_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(StatementError, match="naive datetime"), transaction(sessions) as session:
        session.add(dataset_file(published_at=datetime(2026, 1, 3, 13, 0)))


def test_unique_constraints(sessions: sessionmaker[Session]) -> None:
    alice, classic, _, _ = world(sessions)
    add(
        sessions,
        ApiKey(account=alice, public_id="PUB", secret_hash="s", scopes=[], created_at=T0),
        WebSession(account=alice, token_hash="tok", created_at=T0, expires_at=T0),
        dataset_file(),
    )
    same_name = Account(
        username="alice", email="other@example.org", password_hash="", created_at=T0
    )
    same_email = Account(username="bob", email="alice@example.org", password_hash="", created_at=T0)
    refused(sessions, same_name)
    refused(sessions, same_email)
    refused(
        sessions,
        ApiKey(account_id=alice.id, public_id="PUB", secret_hash="x", scopes=[], created_at=T0),
    )
    refused(
        sessions, WebSession(account_id=alice.id, token_hash="tok", created_at=T0, expires_at=T0)
    )
    refused(sessions, tournament(number=8, name="other"))
    refused(sessions, tournament(number=9, name="classic"))
    refused(sessions, Round(**_round_fields(classic.id, number=1)))
    refused(
        sessions,
        Model(account_id=alice.id, tournament_id=classic.id, name="alice_model", created_at=T0),
    )
    refused(sessions, dataset_file())

    # The same names are fine where they are scoped: another round number, another tournament,
    # another version.
    signals = tournament(number=11, name="signals")
    add(
        sessions,
        signals,
        Round(**_round_fields(classic.id, number=2)),
        Model(account_id=alice.id, tournament=signals, name="alice_model", created_at=T0),
        dataset_file(version="v2"),
    )


def test_foreign_keys_are_enforced(sessions: sessionmaker[Session]) -> None:
    alice, classic, first, entry = world(sessions)
    nobody = uuid.uuid4()
    refused(
        sessions,
        ApiKey(account_id=nobody, public_id="P", secret_hash="s", scopes=[], created_at=T0),
    )
    refused(sessions, WebSession(account_id=nobody, token_hash="t", created_at=T0, expires_at=T0))
    refused(sessions, Round(**_round_fields(nobody, number=2)))
    refused(sessions, Model(account_id=nobody, tournament_id=classic.id, name="m", created_at=T0))
    refused(sessions, Model(account_id=alice.id, tournament_id=nobody, name="m", created_at=T0))
    for round_id, model_id in ((nobody, entry.id), (first.id, nobody)):
        refused(
            sessions,
            Submission(
                round_id=round_id,
                model_id=model_id,
                file_key="k",
                filename="f.csv",
                created_at=T0,
            ),
        )


def test_deleting_an_account_takes_its_keys_and_sessions(sessions: sessionmaker[Session]) -> None:
    bob = account("bob")
    add(
        sessions,
        bob,
        ApiKey(account=bob, public_id="P", secret_hash="s", scopes=["read"], created_at=T0),
        WebSession(account=bob, token_hash="t", created_at=T0, expires_at=T0),
    )
    with transaction(sessions) as session:  # in SQL, so the database itself cascades
        session.execute(delete(Account).where(Account.id == bob.id))
    with sessions() as session:
        assert session.scalars(select(ApiKey)).all() == []
        assert session.scalars(select(WebSession)).all() == []


def test_history_cannot_be_deleted_from_under_its_rows(sessions: sessionmaker[Session]) -> None:
    alice, classic, first, entry = world(sessions)
    add(sessions, submission(first, entry))
    for table, row_id in (
        (Account, alice.id),
        (Tournament, classic.id),
        (Round, first.id),
        (Model, entry.id),
    ):
        refused_sql(sessions, delete(table).where(table.id == row_id))
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        session.delete(session.get_one(Account, alice.id))


def test_check_constraints(sessions: sessionmaker[Session]) -> None:
    _, _, first, entry = world(sessions)
    add(sessions, submission(first, entry))
    # Enumerations hold in the database, not only in Python.
    refused_sql(sessions, text("UPDATE rounds SET status = 'upcoming'"))
    refused_sql(sessions, text("UPDATE submissions SET status = 'lost'"))
    refused_sql(sessions, text("UPDATE tournaments SET rules = 'other', cadence = 'daily'"))
    refused_sql(sessions, text("UPDATE tournaments SET cadence = 'hourly'"))
    # Times, counts and checksums that cannot be.
    refused(sessions, round_of(tournament(20, "t20"), number=1, close_time=T0 - timedelta(1)))
    refused(sessions, round_of(tournament(21, "t21"), number=0))
    refused(sessions, round_of(tournament(22, "t22"), resolve_time=T0))
    refused(sessions, tournament(number=0, name="zero"))
    refused_sql(sessions, update(Submission).values(n_rows=-1))
    refused_sql(sessions, update(Submission).values(status=SubmissionStatus.VALID))
    refused(sessions, dataset_file(sha256="abc"))
    refused(sessions, dataset_file("x.parquet", size=-1))


def test_enumerations_are_checked_in_python_too(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="'write'"):
        ApiKey(public_id="P", secret_hash="s", scopes=["read", "write"], created_at=T0)
    assert [scope.value for scope in ApiScope] == ["read", "upload", "stake"]
    with pytest.raises(StatementError), transaction(sessions) as session:
        classic = tournament()
        classic.rules = "other"  # type: ignore[assignment]
        session.add(classic)
