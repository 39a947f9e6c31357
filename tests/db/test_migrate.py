"""Migrations build exactly the schema the models describe, on both backends, and take it away."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Engine, inspect, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from crowdquant.db import migrate, models  # noqa: F401  (registers every table)
from crowdquant.db.base import Base, TokenAmount, UTCDateTime
from crowdquant.db.migrations.rendering import render_item
from crowdquant.db.models import RoundResult
from crowdquant.db.session import make_engine
from crowdquant.payouts import ClassicV1Rule, default_rule, rule_from_data, rule_to_data

SQLITE = make_engine("sqlite://").dialect
POSTGRESQL = make_engine("postgresql://nobody@localhost/nothing").dialect  # never connects

SERVER_TABLES = {  # revision 0001
    "accounts",
    "api_keys",
    "web_sessions",
    "tournaments",
    "rounds",
    "models",
    "submissions",
    "dataset_files",
}
TABLES = SERVER_TABLES | {
    "round_scores",
    "meta_models",
    "round_targets",
    "diagnostics",
    "model_uploads",
    "compute_jobs",
    "model_webhooks",
    "webhook_deliveries",
    "fund_books",
    "fund_returns",
    "ledger_transactions",
    "ledger_postings",
    "ledger_balances",
    "stake_changes",
    "round_stakes",
    "round_payouts",
    "round_results",
    "evm_transactions",
    "chain_rounds",
    "chain_events",
    "chain_cursors",
    "submission_checks",
    "leases",
    "rate_limit_hits",
    "sign_in_failures",
    "dataset_aliases",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _check_constraints(engine: Engine) -> dict[str, set[str]]:
    inspector = inspect(engine)
    return {
        table: {check["name"] or "?" for check in inspector.get_check_constraints(table)}
        for table in TABLES
    }


MOMENT = datetime(2026, 1, 6, 13, tzinfo=UTC)
TOURNAMENTS = sqlalchemy.table(
    "tournaments",
    *(sqlalchemy.column(name) for name in ("number", "name", "rules", "cadence")),
    sqlalchemy.column("id", sqlalchemy.Uuid()),
    sqlalchemy.column("dataset_version"),
    sqlalchemy.column("settings", sqlalchemy.JSON()),
    sqlalchemy.column("created_at", sqlalchemy.DateTime(timezone=True)),
)
ROUNDS = sqlalchemy.table(
    "rounds",
    *(sqlalchemy.column(name) for name in ("number", "status", "live_era", "dataset_version")),
    sqlalchemy.column("id", sqlalchemy.Uuid()),
    sqlalchemy.column("tournament_id", sqlalchemy.Uuid()),
    *(
        sqlalchemy.column(name, sqlalchemy.DateTime(timezone=True))
        for name in ("open_time", "close_staking_time", "close_time")
    ),
)


def _open_rounds(
    connection: sqlalchemy.Connection, number: int, rules: str, rounds: int
) -> list[uuid.UUID]:
    """A tournament with `rounds` open rounds, as the tables stand at revision 0004."""
    tournament_id = uuid.uuid4()
    connection.execute(
        TOURNAMENTS.insert().values(
            id=tournament_id,
            number=number,
            name=rules,
            rules=rules,
            cadence="weekly",
            dataset_version="v1",
            settings={},
            created_at=MOMENT,
        )
    )
    round_ids = [uuid.uuid4() for _ in range(rounds)]
    for round_number, round_id in enumerate(round_ids, start=1):
        connection.execute(
            ROUNDS.insert().values(
                id=round_id,
                tournament_id=tournament_id,
                number=round_number,
                status="open",
                live_era="0001",
                dataset_version="v1",
                open_time=MOMENT,
                close_staking_time=MOMENT,
                close_time=MOMENT,
            )
        )
    return round_ids


def test_the_models_are_the_tables_the_migrations_make() -> None:
    assert set(Base.metadata.tables) == TABLES


def test_upgrade_builds_the_models_schema(database_url: str) -> None:
    assert migrate.current(database_url) is None
    migrate.upgrade(database_url)

    assert migrate.current(database_url) == migrate.head()
    assert _tables(database_url) == TABLES | {"alembic_version"}
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            # Columns, types, nullability, keys, foreign keys with their ON DELETE, unique
            # constraints and indexes: none differ.
            assert compare_metadata(context, Base.metadata) == []
        # Alembic does not compare CHECK constraints; their names must match at least.
        expected = {
            table.name: {
                str(check.name) for check in table.constraints if isinstance(check, CheckConstraint)
            }
            for table in Base.metadata.tables.values()
        }
        assert _check_constraints(engine) == expected
    finally:
        engine.dispose()


def test_downgrade_to_base_drops_everything_and_upgrade_rebuilds(database_url: str) -> None:
    migrate.upgrade(database_url)
    migrate.downgrade(database_url, "base")

    assert migrate.current(database_url) is None
    assert _tables(database_url) <= {"alembic_version"}

    migrate.upgrade(database_url)
    assert _tables(database_url) == TABLES | {"alembic_version"}


def test_upgrade_is_idempotent(database_url: str) -> None:
    migrate.upgrade(database_url)
    migrate.upgrade(database_url)
    assert migrate.current(database_url) == migrate.head() == "0019"


def test_downgrade_to_0001_keeps_the_server_schema(database_url: str) -> None:
    migrate.upgrade(database_url)
    migrate.downgrade(database_url, "0001")

    assert migrate.current(database_url) == "0001"
    assert _tables(database_url) == SERVER_TABLES | {"alembic_version"}


def test_revisions_spell_out_the_models_types() -> None:
    """Autogenerated revisions store the same types without importing the models' classes."""
    context = SimpleNamespace(imports=set())
    namespace = {"sa": sqlalchemy, "postgresql": postgresql}
    for model_type in (UTCDateTime(), TokenAmount(), postgresql.JSONB()):
        rendered = render_item("type", model_type, context)  # type: ignore[arg-type]
        assert rendered, model_type
        plain = eval(rendered, namespace)
        for dialect in (SQLITE, POSTGRESQL):
            assert str(plain.compile(dialect=dialect)) == str(model_type.compile(dialect=dialect))
    assert render_item("type", sqlalchemy.Integer(), context) is False  # type: ignore[arg-type]
    assert context.imports == {"from sqlalchemy.dialects import postgresql"}


def test_rounds_opened_before_0005_get_their_rules_default_payout_rule(
    database_url: str,
) -> None:
    migrate.upgrade(database_url, "0004")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            for number, rules in ((8, "classic"), (1, "legacy2017")):
                _open_rounds(connection, number, rules, 1)
        migrate.upgrade(database_url)
        with engine.connect() as connection:
            found = connection.execute(
                sqlalchemy.text(
                    "SELECT tournaments.rules, rounds.payout_rule FROM rounds"
                    " JOIN tournaments ON tournaments.id = rounds.tournament_id"
                )
            ).all()
    finally:
        engine.dispose()
    recorded = {
        rules: rule if isinstance(rule, dict) else json.loads(rule) for rules, rule in found
    }
    classic_then = {k: v for k, v in rule_to_data(ClassicV1Rule()).items() if k != "hurdle"}
    assert recorded == {
        "classic": classic_then,  # the classic rule's default at 0005: no hurdle yet
        "legacy2017": rule_to_data(default_rule("legacy2017")),
    }
    assert rule_from_data(recorded["classic"]) == ClassicV1Rule()


RESULTS = sqlalchemy.table(
    "round_results",
    sqlalchemy.column("id", sqlalchemy.Uuid()),
    sqlalchemy.column("round_id", sqlalchemy.Uuid()),
    *(sqlalchemy.column(name) for name in ("participants", "stakers", "usd_paid", "scale")),
    *(sqlalchemy.column(name, TokenAmount()) for name in ("at_risk", "nmr_paid", "nmr_burned")),
    sqlalchemy.column("resolved_at", sqlalchemy.DateTime(timezone=True)),
)
SCALES = ["full", f"nmr:{10**24 + 7}", "usd:12345", f"nmr:{123456789 * 10**16},usd:0"]


def test_results_scaled_before_0008_keep_what_they_were_scaled_to(database_url: str) -> None:
    migrate.upgrade(database_url, "0004")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            round_ids = _open_rounds(connection, 8, "classic", len(SCALES))
        migrate.upgrade(database_url, "0007")
        with engine.begin() as connection:
            for round_id, scale in zip(round_ids, SCALES, strict=True):
                connection.execute(
                    RESULTS.insert().values(
                        id=uuid.uuid4(),
                        round_id=round_id,
                        participants=2,
                        stakers=1,
                        usd_paid=0,
                        scale=scale,
                        at_risk=10**18,
                        nmr_paid=0,
                        nmr_burned=0,
                        resolved_at=MOMENT,
                    )
                )
        migrate.upgrade(database_url)
        with Session(engine) as session:
            results = {row.round_id: row for row in session.scalars(select(RoundResult))}
            migrated = [results[round_id] for round_id in round_ids]
            assert [row.scale for row in migrated] == SCALES
            assert [(row.nmr_scaled_to, row.usd_scaled_to) for row in migrated] == [
                (None, None),
                (10**24 + 7, None),
                (None, 12345),
                (123456789 * 10**16, 0),
            ]
        migrate.downgrade(database_url, "0007")
        with engine.connect() as connection:
            restored = dict(
                connection.execute(sqlalchemy.select(RESULTS.c.round_id, RESULTS.c.scale)).all()
            )
    finally:
        engine.dispose()
    assert [restored[round_id] for round_id in round_ids] == SCALES


def test_0009_adds_and_drops_when_a_submission_was_purged(database_url: str) -> None:
    def columns() -> set[str]:
        engine = make_engine(database_url)
        try:
            return {column["name"] for column in inspect(engine).get_columns("submissions")}
        finally:
            engine.dispose()

    migrate.upgrade(database_url)
    assert "purged_at" in columns()
    migrate.downgrade(database_url, "0008")
    assert "purged_at" not in columns()
    assert {"file_key", "filename", "created_at"} <= columns()


def test_0011_adds_score_configs_and_the_round_stake_rules(database_url: str) -> None:
    def add_tournament(engine: Engine, number: int, rules: str) -> None:
        with engine.begin() as connection:
            connection.execute(
                sqlalchemy.text(
                    "INSERT INTO tournaments (id, number, name, rules, cadence,"
                    " dataset_version, settings, created_at)"
                    " VALUES (:id, :number, :name, :rules, 'daily', 'v1', '{}', :now)"
                ),
                {
                    "id": uuid.uuid4().hex if engine.dialect.name == "sqlite" else uuid.uuid4(),
                    "number": number,
                    "name": f"t{number}",
                    "rules": rules,
                    "now": datetime(2026, 1, 1, tzinfo=UTC),
                },
            )

    migrate.upgrade(database_url, "0010")
    engine = make_engine(database_url)
    try:
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            add_tournament(engine, 1, "round-stake")
        migrate.upgrade(database_url)
        add_tournament(engine, 2, "round-stake")
        rounds = {column["name"] for column in inspect(engine).get_columns("rounds")}
        assert "score_configs" in rounds
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("DELETE FROM tournaments"))
        migrate.downgrade(database_url, "0010")
        rounds = {column["name"] for column in inspect(engine).get_columns("rounds")}
        assert "score_configs" not in rounds and "payout_rule" in rounds
    finally:
        engine.dispose()
