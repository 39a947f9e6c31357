"""The fund's books: one per scored round, built from its meta model, and their daily P&L.

Operator only: weights are by real ticker. A book is traded `trade_date` (the era's
market day plus the target's lag) and held until the tournament's next book trades; each
trading day it is held adds one `FundReturn` (the first pays the trade's cost).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crowdquant.db.base import Base, HasId

if TYPE_CHECKING:
    from crowdquant.db.models.tournaments import Round


class FundBook(HasId, Base):
    __tablename__ = "fund_books"

    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rounds.id", ondelete="RESTRICT"), unique=True
    )
    rule: Mapped[str] = mapped_column(String(32))
    """The portfolio construction's version (`fund.portfolio.PORTFOLIO_VERSION`)."""
    status: Mapped[str] = mapped_column(String(32))
    market_date: Mapped[date]
    trade_date: Mapped[date]
    weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    gross: Mapped[float] = mapped_column(Float)
    net: Mapped[float] = mapped_column(Float)
    turnover: Mapped[float] = mapped_column(Float)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    round: Mapped[Round] = relationship()


class FundReturn(HasId, Base):
    __tablename__ = "fund_returns"
    __table_args__ = (UniqueConstraint("book_id", "date"),)

    book_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fund_books.id", ondelete="RESTRICT"))
    date: Mapped[date]
    gross_return: Mapped[float] = mapped_column(Float)
    cost: Mapped[float] = mapped_column(Float)
    net_return: Mapped[float] = mapped_column(Float)
    cost_model: Mapped[str] = mapped_column(String(32))
    booked_at: Mapped[datetime]

    book: Mapped[FundBook] = relationship()
