"""One bootstrap for the server and the CLI: the home, the migrated database, the backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from crowdquant.clock import SystemClock
from crowdquant.db import migrate
from crowdquant.db.session import transaction
from crowdquant.ledger import GENESIS_EVENT_KEY, TREASURY
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import Currency
from crowdquant.server.bootstrap import MigrationError, bootstrap
from crowdquant.settings import Settings
from crowdquant.storage import LocalStorage


def test_it_creates_the_home_migrates_and_opens_the_backends(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    infra = bootstrap(settings, SystemClock())
    try:
        assert settings.home.is_dir()
        assert migrate.current(settings.database) == migrate.head()
        assert isinstance(infra.storage, LocalStorage)
        assert infra.storage.root == settings.storage_dir
        assert isinstance(infra.ledger, SqlLedger)
        with transaction(infra.sessions) as session:
            assert infra.ledger.find(session, GENESIS_EVENT_KEY) is None  # not asked for
    finally:
        infra.close()


def test_it_records_the_genesis_once(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    for _ in range(2):
        infra = bootstrap(settings, SystemClock(), genesis=True)
        try:
            with transaction(infra.sessions) as session:
                assert infra.ledger.find(session, GENESIS_EVENT_KEY) is not None
                supply = infra.ledger.balance(session, TREASURY, Currency.NMR)
                assert len(infra.ledger.history(session, TREASURY)) == 1
                assert infra.ledger.verify(session).sound
        finally:
            infra.close()
    assert supply > 0


def test_a_database_it_cannot_migrate_is_named_without_its_password(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home", database_url="postgresql://crowdquant:hunter2@127.0.0.1:1/nowhere"
    )
    with pytest.raises(MigrationError) as raised:
        bootstrap(settings, SystemClock())
    message = str(raised.value)
    assert message.startswith("cannot migrate postgresql://crowdquant:***@127.0.0.1:1/nowhere: ")
    assert "hunter2" not in message
