"""Participants' models on both backends: names unique per tournament, renames, ownership.

Every refusal is checked to change nothing: `snapshot` reads every row of every table
(flushing whatever the session holds) before and after the refused call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.base import Base
from crowdquant.db.models import Account, Cadence, Model, Rules, Tournament
from crowdquant.tournament import models
from crowdquant.tournament.accounts import AccountError, sign_up
from crowdquant.tournament.models import (
    InvalidModelName,
    ModelNameTaken,
    NotYourModel,
    UnknownModel,
    create_model,
    get_own_model,
    list_models,
    rename_model,
)
from crowdquant.tournament.tournaments import TournamentNotFound

T0 = datetime(2026, 1, 3, 13, 0, tzinfo=UTC)
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        session.add_all([tournament(8, "classic"), tournament(11, "signals")])
        session.commit()
        yield session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def alice(session: Session, clock: ManualClock) -> Account:
    return sign_up(session, clock, "alice", "alice@example.org", "x" * 10, hasher=CHEAP)


@pytest.fixture
def bob(session: Session, clock: ManualClock) -> Account:
    return sign_up(session, clock, "bob", "bob@example.org", "x" * 10, hasher=CHEAP)


def tournament(number: int, name: str) -> Tournament:
    return Tournament(
        number=number,
        name=name,
        rules=Rules.CLASSIC,
        cadence=Cadence.WEEKLY,
        dataset_version="v1",
        created_at=T0,
    )


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    return {
        table.name: [
            tuple(row) for row in session.execute(select(table).order_by(*table.primary_key))
        ]
        for table in Base.metadata.sorted_tables
    }


def test_create_model_stores_a_lower_case_name(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    model = create_model(session, clock, alice, 8, "Alice_Model")
    session.commit()
    stored = session.scalars(select(Model)).one()
    assert stored is model
    assert (stored.name, stored.account, stored.tournament.number) == ("alice_model", alice, 8)
    assert stored.created_at == T0
    assert isinstance(stored.id, uuid.UUID)


def test_names_are_unique_per_tournament_regardless_of_case(
    session: Session, clock: ManualClock, alice: Account, bob: Account
) -> None:
    create_model(session, clock, alice, 8, "quant")
    before = snapshot(session)
    for owner, name in ((alice, "quant"), (bob, "QUANT"), (bob, "Quant")):
        with pytest.raises(ModelNameTaken):
            create_model(session, clock, owner, 8, name)
        assert snapshot(session) == before, name
    create_model(session, clock, bob, 11, "quant")  # another tournament, another namespace
    create_model(session, clock, alice, 8, "quant2")  # one account, several models
    session.commit()
    assert len(snapshot(session)["models"]) == 3


def test_create_model_refusals_change_nothing(
    session: Session, clock: ManualClock, alice: Account
) -> None:
    refusals: list[tuple[int, str, type[AccountError]]] = [
        (8, "ab", InvalidModelName),
        (8, "a" * 33, InvalidModelName),
        (8, "my model", InvalidModelName),
        (8, "modèle", InvalidModelName),
        (9, "fine_name", TournamentNotFound),
        (9, "no", InvalidModelName),  # the name is checked first
    ]
    before = snapshot(session)
    for number, name, error in refusals:
        with pytest.raises(error):
            create_model(session, clock, alice, number, name)
        assert snapshot(session) == before, (number, name)


def test_a_duplicate_that_slips_past_the_check_is_caught_by_the_database(
    session: Session,
    clock: ManualClock,
    alice: Account,
    bob: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As if another request took the name between our check and our write."""
    create_model(session, clock, alice, 8, "quant")
    bobs = create_model(session, clock, bob, 8, "other")
    session.commit()
    check = models._check_free
    calls: list[str] = []

    def late_check(session: Session, tournament_id: uuid.UUID, name: str) -> None:
        calls.append(name)
        if len(calls) % 2 == 0:
            check(session, tournament_id, name)

    monkeypatch.setattr(models, "_check_free", late_check)
    before = snapshot(session)
    with pytest.raises(ModelNameTaken):
        create_model(session, clock, bob, 8, "quant")
    assert snapshot(session) == before
    with pytest.raises(ModelNameTaken):
        rename_model(session, bob, bobs.id, "quant")
    assert bobs.name == "other"
    assert snapshot(session) == before
    assert calls == ["quant"] * 4
    session.commit()


def test_rename_model_keeps_its_id(session: Session, clock: ManualClock, alice: Account) -> None:
    model = create_model(session, clock, alice, 8, "first")
    create_model(session, clock, alice, 11, "second")
    assert rename_model(session, alice, model.id, "Renamed") is model
    assert rename_model(session, alice, str(model.id), "renamed") is model  # same name: no-op
    assert rename_model(session, alice, model.id, "second") is model  # free in tournament 8
    session.commit()
    assert session.get(Model, model.id) is model
    assert sorted(session.scalars(select(Model.name))) == ["second", "second"]


def test_rename_model_refusals_change_nothing(
    session: Session, clock: ManualClock, alice: Account, bob: Account
) -> None:
    model = create_model(session, clock, alice, 8, "first")
    create_model(session, clock, alice, 8, "taken")
    bobs = create_model(session, clock, bob, 8, "bobs")
    refusals: list[tuple[Account, uuid.UUID | str, str, type[AccountError]]] = [
        (alice, model.id, "TAKEN", ModelNameTaken),
        (alice, model.id, "bobs", ModelNameTaken),
        (alice, model.id, "x", InvalidModelName),
        (alice, bobs.id, "mine_now", NotYourModel),
        (bob, model.id, "mine_now", NotYourModel),
        (alice, uuid.uuid4(), "mine_now", UnknownModel),
        (alice, "not-a-uuid", "mine_now", UnknownModel),
    ]
    before = snapshot(session)
    for owner, model_id, name, error in refusals:
        with pytest.raises(error):
            rename_model(session, owner, model_id, name)
        assert snapshot(session) == before, (owner.username, model_id, name)


def test_get_own_model_refuses_other_peoples_models(
    session: Session, clock: ManualClock, alice: Account, bob: Account
) -> None:
    model = create_model(session, clock, alice, 8, "quant")
    session.commit()
    assert get_own_model(session, alice, model.id) is model
    assert get_own_model(session, alice, str(model.id)) is model
    assert get_own_model(session, alice, str(model.id).upper()) is model
    with pytest.raises(NotYourModel) as refused:
        get_own_model(session, bob, model.id)
    assert refused.value.code == "not_your_model"
    for unknown in (uuid.uuid4(), str(uuid.uuid4()), "", "quant", "1; DROP TABLE models"):
        with pytest.raises(UnknownModel):
            get_own_model(session, alice, unknown)


def test_list_models_shows_ones_own_by_tournament_then_name(
    session: Session, clock: ManualClock, alice: Account, bob: Account
) -> None:
    beta = create_model(session, clock, alice, 11, "beta")
    z = create_model(session, clock, alice, 8, "zed")
    a = create_model(session, clock, alice, 8, "alpha")
    clock.advance(timedelta(days=1))
    bobs = create_model(session, clock, bob, 8, "bobs")
    session.commit()
    assert list_models(session, alice) == [a, z, beta]
    assert list_models(session, alice, 8) == [a, z]
    assert list_models(session, alice, 11) == [beta]
    assert list_models(session, bob) == [bobs]
    assert list_models(session, bob, 11) == []
    with pytest.raises(TournamentNotFound, match="no tournament 99"):
        list_models(session, alice, 99)
