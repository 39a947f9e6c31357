"""How the meta model performs, round by round, for the operator.

A round's meta model is fixed when its scoring starts (`tournament.scoring`). Per round
that has one, `meta_model_performance` tells its weighting and contributors, its CORR
against the targets of the last day recorded (computed from the stored meta model and the
stored targets, as every submission is scored; or why it cannot be), the best single
on-time model's CORR that day, and the fund's book traded on it (`fund.rounds`) with its
compounded net return so far. `fund_equity` is the fund's equity by market day. Functions
only read, inside the caller's transaction; the stored files are operator-only.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.data.pipeline import MAIN_TARGET
from crowdquant.db.models import (
    FundBook,
    FundReturn,
    MetaModel,
    Model,
    Round,
    RoundScore,
    RoundStatus,
    Tournament,
)
from crowdquant.fund.rounds import equity_curve
from crowdquant.scoring.corr import numerai_corr
from crowdquant.storage import FileStorage, StorageError
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.scoring import days_recorded, stored_meta_model, stored_targets

NO_TARGETS = "no targets recorded yet"


@dataclass(frozen=True)
class FundBookSummary:
    """The fund's book traded on a round's meta model."""

    status: str
    trade_date: date
    gross: float
    net: float
    turnover: float
    days: int
    """Market days booked so far."""
    net_return: float | None
    """The compounded net return over the days booked (None before the first)."""


@dataclass(frozen=True)
class MetaModelPerformance:
    """A round's meta model and how it did on the last day whose targets are recorded."""

    round: int
    status: RoundStatus
    weighting: str
    """How its contributors are weighted: by their stakes at risk, or equally."""
    contributors: int
    day: int
    """The last day whose targets are recorded (0: none yet)."""
    corr: float | None
    """The meta model's CORR against that day's targets (None: see `corr_missing`)."""
    corr_missing: str | None
    """Why there is no CORR (no targets yet, no meta model file, a file that fails...)."""
    best_model: str | None
    best_corr: float | None
    """The on-time model with the highest CORR that day, and that CORR."""
    book: FundBookSummary | None


def meta_model_performance(
    session: Session, storage: FileStorage, tournament: Tournament, *, limit: int
) -> list[MetaModelPerformance]:
    """The newest `limit` rounds of the tournament with a meta model, newest first.

    Each round reads two stored files (its meta model and its last day's targets)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    fixed = session.execute(
        select(Round, MetaModel)
        .join(MetaModel, MetaModel.round_id == Round.id)
        .where(Round.tournament_id == tournament.id)
        .order_by(Round.number.desc())
        .limit(limit)
    ).all()
    books = _books(session, [round_.id for round_, _ in fixed])
    found = []
    for round_, meta in fixed:
        day = days_recorded(session, round_)
        corr, missing = meta_model_corr(session, storage, round_, day)
        best_model, best_corr = _best_model(session, round_, day)
        found.append(
            MetaModelPerformance(
                round=round_.number,
                status=round_.status,
                weighting=meta.weighting,
                contributors=len(meta.weights),
                day=day,
                corr=corr,
                corr_missing=missing,
                best_model=best_model,
                best_corr=best_corr,
                book=books.get(round_.id),
            )
        )
    return found


def meta_model_rounds(session: Session, tournament: Tournament) -> int:
    """How many rounds of the tournament have a meta model."""
    count = session.scalar(
        select(func.count())
        .select_from(MetaModel)
        .join(Round, Round.id == MetaModel.round_id)
        .where(Round.tournament_id == tournament.id)
    )
    return int(count or 0)


def meta_model_corr(
    session: Session, storage: FileStorage, round_: Round, day: int
) -> tuple[float | None, str | None]:
    """The round's meta model's CORR against the stored targets of `day` (numerai-tools'
    `numerai_corr` on the main target), or None and why it cannot be computed."""
    if day == 0:
        return None, NO_TARGETS
    try:
        meta = stored_meta_model(session, storage, round_)
        if meta is None:
            return None, "no meta model"
        targets = stored_targets(session, storage, round_, day)
        scores = numerai_corr(meta, targets[MAIN_TARGET].astype(np.float64))
    except (ServiceError, StorageError, OSError, ValueError, KeyError) as exc:
        return None, f"cannot be computed: {exc}"
    value = _finite(float(scores.iloc[0]))
    return (value, None) if value is not None else (None, "not a number")


def fund_equity(session: Session, tournament: Tournament) -> list[tuple[date, float]]:
    """The fund's equity by market day, oldest first, starting from 1 (net of costs)."""
    curve = equity_curve(session, tournament)
    days = pd.DatetimeIndex(curve.index).date
    return [(day, float(value)) for day, value in zip(days, curve.tolist(), strict=True)]


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _best_model(session: Session, round_: Round, day: int) -> tuple[str | None, float | None]:
    """The on-time model with the highest CORR on `day` (ties: the later name), and that
    CORR."""
    if day == 0:
        return None, None
    rows = session.execute(
        select(Model.name, RoundScore.value)
        .join(Model, Model.id == RoundScore.model_id)
        .where(
            RoundScore.round_id == round_.id,
            RoundScore.metric == "corr",
            RoundScore.day == day,
            RoundScore.late.is_(False),
        )
    ).all()
    scored = [(value, name) for name, value in rows if _finite(value) is not None]
    if not scored:
        return None, None
    value, name = max(scored)
    return name, value


def _books(session: Session, round_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, FundBookSummary]:
    """Per round, the fund's book traded on its meta model, with its returns so far."""
    books = list(session.scalars(select(FundBook).where(FundBook.round_id.in_(round_ids))))
    returns: dict[uuid.UUID, list[float]] = defaultdict(list)
    for book_id, net in session.execute(
        select(FundReturn.book_id, FundReturn.net_return)
        .where(FundReturn.book_id.in_([book.id for book in books]))
        .order_by(FundReturn.date)
    ):
        returns[book_id].append(net)
    return {
        book.round_id: FundBookSummary(
            status=book.status,
            trade_date=book.trade_date,
            gross=book.gross,
            net=book.net,
            turnover=book.turnover,
            days=len(returns[book.id]),
            net_return=(
                math.prod(1.0 + net for net in returns[book.id]) - 1.0 if returns[book.id] else None
            ),
        )
        for book in books
    }
