"""The shared column types: UTC datetimes and exact token amounts, on both backends."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, select
from sqlalchemy.exc import StatementError

from crowdquant.db.base import (
    NAMING_CONVENTION,
    TokenAmount,
    UTCDateTime,
    time_ordered_id,
    time_ordered_ids,
)
from crowdquant.db.session import make_engine

SQLITE = make_engine("sqlite://").dialect
POSTGRESQL = make_engine("postgresql://nobody@localhost/nothing").dialect  # never connects
ONE_NMR = 10**18
TOTAL_SUPPLY = 11_000_000 * ONE_NMR

scratch = MetaData(naming_convention=NAMING_CONVENTION)
amounts = Table(
    "amounts",
    scratch,
    Column("id", Integer, primary_key=True),
    Column("amount", TokenAmount),
    Column("at", UTCDateTime),
)


@pytest.fixture
def scratch_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    scratch.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def test_token_amounts_are_exact_beyond_64_bits(scratch_engine: Engine) -> None:
    values = [0, 1, -1, ONE_NMR + 1, TOTAL_SUPPLY + 7, -(TOTAL_SUPPLY + 7), 10**38 - 1, None]
    with scratch_engine.begin() as connection:
        connection.execute(insert(amounts), [{"id": i, "amount": v} for i, v in enumerate(values)])
    with scratch_engine.connect() as connection:
        got = connection.execute(select(amounts.c.amount).order_by(amounts.c.id)).scalars().all()
    assert got == values
    assert all(type(value) is int for value in got if value is not None)


@pytest.mark.parametrize("bad", [10**38, 1.5, True, "5"])
def test_token_amounts_refuse_what_is_not_an_exact_count(
    scratch_engine: Engine, bad: object
) -> None:
    with pytest.raises(StatementError), scratch_engine.begin() as connection:
        connection.execute(insert(amounts), {"id": 1, "amount": bad})


def test_datetimes_round_trip_as_utc(scratch_engine: Engine) -> None:
    tokyo = datetime(2026, 6, 1, 9, 30, 15, 250, tzinfo=timezone(timedelta(hours=9)))
    with scratch_engine.begin() as connection:
        connection.execute(insert(amounts), {"id": 1, "at": tokyo})
    with scratch_engine.connect() as connection:
        got = connection.execute(select(amounts.c.at)).scalar_one()
    assert got == tokyo and got.tzinfo is UTC
    assert got.isoformat() == "2026-06-01T00:30:15.000250+00:00"


def test_utc_datetime_binds_naive_utc_on_sqlite_and_aware_elsewhere() -> None:
    column = UTCDateTime()
    summer = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert column.process_bind_param(summer, SQLITE) == datetime(2026, 6, 1, 10, 0)
    bound_pg = column.process_bind_param(summer, POSTGRESQL)
    assert bound_pg == summer and bound_pg is not None and bound_pg.tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2026, 6, 1), SQLITE)
    assert column.process_result_value(datetime(2026, 6, 1), SQLITE) == datetime(
        2026, 6, 1, tzinfo=UTC
    )


def test_time_ordered_ids_are_uuid7s_that_sort_by_when_they_were_made() -> None:
    before = time.time_ns() // 1_000_000
    first = time_ordered_ids(10_000)
    after = time.time_ns() // 1_000_000
    assert len(set(first)) == 10_000
    assert all(id_.version == 7 and id_.variant == uuid.RFC_4122 for id_ in first)
    assert all(before <= id_.int >> 80 <= after for id_ in first)  # the millisecond made
    time.sleep(0.002)
    later = time_ordered_id()
    assert later > max(first) and later.hex > max(id_.hex for id_ in first)  # CHAR(32) too
    assert len({id_.int & ((1 << 62) - 1) for id_ in first}) == 10_000  # random below
