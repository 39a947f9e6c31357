"""The declarative base every table derives from, and the column types shared across tables.

Choices that hold for every table:

- Constraint names come from one naming convention, so a migration written today drops or
  alters the same names on SQLite and PostgreSQL tomorrow.
- Primary keys are UUID4s generated in Python (`Uuid`: native `uuid` on PostgreSQL,
  `CHAR(32)` on SQLite). numerapi treats every id as an opaque string (`modelId: String`,
  `ID`), participants paste model ids into their configs, and sequential integers would leak
  how many accounts, models and submissions exist. Tables of millions of rows that no
  participant sees (scores) take time-ordered UUID7s instead (`time_ordered_ids`).
- Datetimes are timezone-aware UTC in Python and in the database (`UTCDateTime`). No column
  defaults to the wall clock: times come from the caller's injectable clock.
- Enumerations are short strings with a CHECK constraint (`enum_type`), not native PostgreSQL
  enums: adding a value is then an ordinary batch migration on both backends.
- Token amounts are integers in the token's smallest unit (10^-18 NMR) (`TokenAmount`):
  `NUMERIC(38, 0)` on PostgreSQL, because `BIGINT` stops at about 9.2 NMR in those units.
"""

from __future__ import annotations

import enum
import os
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Dialect, Enum, MetaData, Numeric, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

ENUM_LENGTH = 32
MAX_TOKEN_DIGITS = 38


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime that comes back as UTC on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no such type, so the value is stored as naive
    UTC text (fixed width, so it still sorts and compares correctly) and re-labelled UTC when
    read. Naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class TokenAmount(TypeDecorator[int]):
    """An exact integer count of the token's smallest unit (10^-18 NMR), up to 38 digits.

    PostgreSQL: `NUMERIC(38, 0)`, so sums and comparisons in SQL are exact. SQLite's integers
    stop at 2^63 and its NUMERIC falls back to floating point, so there the amount is stored
    as its decimal text: exact, but SQL arithmetic and ordering on the column are not
    meaningful; sum such amounts in Python on SQLite.
    """

    impl = Numeric(MAX_TOKEN_DIGITS, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(MAX_TOKEN_DIGITS + 1))
        return dialect.type_descriptor(Numeric(MAX_TOKEN_DIGITS, 0, asdecimal=True))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"token amounts are int counts of 10^-18 units, not {value!r}")
        if abs(value) >= 10**MAX_TOKEN_DIGITS:
            raise ValueError(f"token amount {value} has more than {MAX_TOKEN_DIGITS} digits")
        return str(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


def enum_type(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A string column restricted to `enum_class`'s values by a CHECK named `ck_<table>_<name>`."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Every table. `Mapped[datetime]` maps to `UTCDateTime`, `Mapped[uuid.UUID]` to `Uuid`."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSON().with_variant(JSONB(), "postgresql"),
        list[str]: JSON().with_variant(JSONB(), "postgresql"),
    }


class HasId:
    """A UUID4 primary key, generated in Python when the row is first flushed."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, sort_order=-1)


def time_ordered_ids(count: int) -> list[uuid.UUID]:
    """`count` new UUID7s (RFC 9562): 48 bits of Unix time in milliseconds, the version, 74
    random bits. An id made later sorts after one made earlier (within a millisecond, at
    random), so rows keyed by them join the end of their primary key's index instead of a
    random page of it: inserting into a table of millions of rows then stays as cheap as into
    a small one, where UUID4 keys cost a page read and a page write per row. The prefix tells
    when a row was made: for rows no participant sees. Nothing reads the time back."""
    stamp = (time.time_ns() // 1_000_000) << 80 | 7 << 76 | 0b10 << 62  # time, version, variant
    noise = os.urandom(10 * count)
    ids = []
    for k in range(count):
        bits = int.from_bytes(noise[10 * k : 10 * k + 10], "big")  # 80 random bits, 74 kept
        ids.append(uuid.UUID(int=stamp | (bits >> 68) << 64 | bits & ((1 << 62) - 1)))
    return ids


def time_ordered_id() -> uuid.UUID:
    """One new UUID7 (`time_ordered_ids`)."""
    return time_ordered_ids(1)[0]
