"""Published dataset files: what participants may list and download, per dataset version.

One row per file of a published version (`train.parquet`, `features.json`, ...), with the
checksum from the version's manifest and the key under which storage serves it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crowdquant.db.base import Base, HasId


class DatasetFile(HasId, Base):
    __tablename__ = "dataset_files"
    __table_args__ = (
        UniqueConstraint("version", "filename"),
        CheckConstraint("size >= 0", name="size_not_negative"),
        CheckConstraint("length(sha256) = 64", name="sha256_hex"),
    )

    version: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512))
    published_at: Mapped[datetime]


class DatasetAlias(HasId, Base):
    """Another name under which a published version is served (``v5.2`` for ``v5.3``)."""

    __tablename__ = "dataset_aliases"

    alias: Mapped[str] = mapped_column(String(64), unique=True)
    version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
