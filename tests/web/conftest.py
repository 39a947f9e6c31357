"""The web site on each database backend (the `sessions` fixture), served by uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import Cadence, Model, Round, Rules
from crowdquant.db.session import transaction
from crowdquant.ledger.sql import SqlLedger
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.rounds import FeedPublisher, open_round, open_round_now
from crowdquant.tournament.rules2017_files import Rules2017Rounds, tournament_rows
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from ..api.server import serve
from ..mail.mailbox import Mailbox
from ..tournament.live_market import KEYS, TUESDAY_NOON, local_storage, market_feed
from .site import PASSWORD, Browser, Site

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@contextmanager
def served_site(
    sessions: sessionmaker[Session],
    tmp_path: Path,
    settings: Settings | None = None,
    *,
    mailbox: Mailbox | None = None,
    **app_options: Any,
) -> Iterator[Site]:
    """Tournament 8 with round 1 open, the operator `olivia`, the books started; the app
    built with `settings` (by default local ones in `tmp_path`) and `app_options` (e.g.
    `runtimes`), and served. The app mails to `mailbox` (a new one by default) unless
    `app_options` name its `mailer` (None: the one the settings choose)."""
    mailbox = Mailbox() if mailbox is None else mailbox
    app_options.setdefault("mailer", mailbox)
    clock = ManualClock(TUESDAY_NOON + timedelta(minutes=5))
    storage = local_storage(tmp_path / "files")
    ledger = SqlLedger(clock)
    with transaction(sessions) as session:
        ledger.genesis(session)
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        operator = sign_up(session, clock, "olivia", "olivia@example.org", PASSWORD, hasher=CHEAP)
        operator.is_operator = True
        publisher = FeedPublisher(market_feed(), storage)
        open_round(session, clock, get_tournament(session, 8), publisher)
    app = create_app(
        settings or Settings(home=tmp_path / "home"),
        clock=clock,
        sessions=sessions,
        storage=storage,
        ledger=ledger,
        hasher=CHEAP,
        **app_options,
    )
    with serve(app) as url:
        found = Site(url, clock, storage, sessions, ledger, mailbox)
        try:
            yield found
        finally:
            for browser in found.browsers:
                browser.close()


@pytest.fixture
def site(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Site]:
    with served_site(sessions, tmp_path) as found:
        yield found


LEGACY = 11
"""The 2017 tournament of `served_legacy_site`."""


@contextmanager
def served_legacy_site(
    sessions: sessionmaker[Session], tmp_path: Path, version: DatasetVersion
) -> Iterator[Site]:
    """`served_site` with tournament 11 under the 2017 rules, its first round open and
    published with the 2017 files of `version` (built as "v2")."""
    with served_site(sessions, tmp_path) as found:
        publisher = FeedPublisher(
            market_feed(), found.storage, files_2017=Rules2017Rounds(version, KEYS)
        )
        with transaction(found.sessions) as session:
            create_tournament(
                session, found.clock, LEGACY, "legacy", Rules.RULES2017, Cadence.WEEKLY, "v2"
            )
            open_round_now(session, found.clock, get_tournament(session, LEGACY), publisher)
        yield found


def legacy_upload(site: Site, seed: int) -> bytes:
    """A valid 2017 upload to the legacy round: a probability for every tournament row."""
    with transaction(site.sessions) as session:
        round_ = session.scalars(select(Round).where(Round.dataset_version == "v2")).one()
        rows = tournament_rows(session, site.storage, round_)
    assert rows is not None
    values = np.random.default_rng(seed).uniform(0.3, 0.7, len(rows)).round(6)
    return pd.DataFrame({"id": rows.index, "probability": values}).to_csv(index=False).encode()


def make_legacy_model(site: Site, browser: Browser, name: str) -> str:
    """A model of the browser's account in the legacy tournament, made through the site."""
    made = browser.submit("/models", {"tournament": str(LEGACY), "name": name})
    assert made.status_code == 200, made.text
    with transaction(site.sessions) as session:
        found = session.scalar(select(Model.id).where(Model.name == name))
    assert found is not None
    return str(found)
