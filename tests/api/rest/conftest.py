"""The REST world: a real uvicorn server on each database backend (the `sessions` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import ApiScope, Cadence, Rules
from crowdquant.db.session import transaction
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import create_api_key, revoke_api_key, sign_up
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import FeedPublisher, open_round
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import create_tournament, get_tournament
from crowdquant.tournament.validator import IN_PROCESS, Validator

from ...tournament.live_market import TUESDAY_NOON, local_storage, market_feed
from ..server import serve
from .helpers import RestWorld

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
MAX_UPLOAD_BYTES = 16 * 1024
READ, UPLOAD, STAKE = ApiScope.READ, ApiScope.UPLOAD, ApiScope.STAKE


@pytest.fixture
def validator() -> Validator:
    """Where the app validates uploads (a test module may serve a pool instead)."""
    return IN_PROCESS


@pytest.fixture
def world(
    sessions: sessionmaker[Session], tmp_path: Path, validator: Validator
) -> Iterator[RestWorld]:
    clock = ManualClock(TUESDAY_NOON + timedelta(minutes=5))
    storage = local_storage(tmp_path / "files")
    tokens: dict[str, str] = {}
    with transaction(sessions) as session:
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        create_tournament(session, clock, 11, "weekly", Rules.CLASSIC, Cadence.WEEKLY, "v2")
        alice = sign_up(session, clock, "alice", "alice@example.org", "x" * 10, hasher=CHEAP)
        bob = sign_up(session, clock, "bob", "bob@example.org", "x" * 10, hasher=CHEAP)
        alice_model = str(create_model(session, clock, alice, 8, "alice_model").id)
        bob_model = str(create_model(session, clock, bob, 8, "bob_model").id)
        for name, account, scopes in (
            ("alice", alice, [READ, UPLOAD]),
            ("reader", alice, [READ]),
            ("uploader", alice, [UPLOAD]),
            ("revoked", alice, [READ, UPLOAD]),
            ("bob", bob, [READ, UPLOAD]),
            ("bob_staker", bob, [STAKE]),
        ):
            tokens[name] = create_api_key(session, clock, account, name, scopes).token
        revoke_api_key(session, clock, alice, tokens["revoked"].split("$")[0])
    with transaction(sessions) as session:
        publisher = FeedPublisher(market_feed(), storage)
        round_ = open_round(session, clock, get_tournament(session, 8), publisher)
        live_ids = live_ids_of_round(storage, round_)
    settings = Settings(mode="local", home=tmp_path / "home")
    app = create_app(
        settings,
        clock=clock,
        sessions=sessions,
        storage=storage,
        max_upload_bytes=MAX_UPLOAD_BYTES,
        validator=validator,
    )
    with serve(app) as url:
        yield RestWorld(
            url=url,
            clock=clock,
            storage=storage,
            sessions=sessions,
            tokens=tokens,
            alice_model=alice_model,
            bob_model=bob_model,
            live_ids=live_ids,
            max_upload_bytes=MAX_UPLOAD_BYTES,
        )
