"""Reading a finished simulation's books into a `SimulationRecord`, through the services'
tables: stakes frozen at close, payouts, final-day scores, round results, the fund."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.db.models import (
    Account,
    MetaModel,
    Model,
    Round,
    RoundPayout,
    RoundResult,
    RoundScore,
    RoundStake,
    Submission,
    SubmissionStatus,
    Tournament,
)
from crowdquant.ledger import AccountId, AccountKind, Ledger
from crowdquant.money import Currency, nmr_float, usd_float
from crowdquant.scoring.metamodel import blend_concentration
from crowdquant.simulate.record import (
    FUND_COLUMNS,
    HOLDING_COLUMNS,
    MODEL_COLUMNS,
    RESULT_COLUMNS,
    ROUND_COLUMNS,
)
from crowdquant.storage import FileStorage
from crowdquant.tournament.meta_model import fund_equity, meta_model_performance


def models_table(
    session: Session, tournament: Tournament, archetypes: Mapping[str, str]
) -> pd.DataFrame:
    """The models of the accounts in `archetypes` (username → archetype)."""
    rows = session.execute(
        select(Model.id, Model.name, Account.username)
        .join(Account, Account.id == Model.account_id)
        .where(Model.tournament_id == tournament.id, Account.username.in_(list(archetypes)))
        .order_by(Account.username, Model.name)
    ).all()
    return pd.DataFrame(
        [(str(id_), name, user, archetypes[user]) for id_, name, user in rows],
        columns=list(MODEL_COLUMNS),
    )


def holdings(
    session: Session, ledger: Ledger, tournament: Tournament, archetypes: Mapping[str, str]
) -> list[tuple[str, str, float]]:
    """Each account's NMR now: wallet, plus its models' stakes and pending releases. One query
    reads the accounts, one their models, and `Ledger.balances_of` every balance at once."""
    accounts = session.execute(
        select(Account.id, Account.username).where(Account.username.in_(list(archetypes)))
    ).all()
    owned: dict[uuid.UUID, list[AccountId]] = {
        account_id: [AccountId(AccountKind.WALLET, account_id)] for account_id, _ in accounts
    }
    for account_id, model_id in session.execute(
        select(Model.account_id, Model.id).where(
            Model.account_id.in_(list(owned)), Model.tournament_id == tournament.id
        )
    ):
        owned[account_id] += [
            AccountId(AccountKind.STAKE, model_id),
            AccountId(AccountKind.RELEASE, model_id),
        ]
    balances = ledger.balances_of(
        session, [held for ids in owned.values() for held in ids], Currency.NMR
    )
    return [
        (
            username,
            archetypes[username],
            nmr_float(sum(balances[held] for held in owned[account_id])),
        )
        for account_id, username in accounts
    ]


def results_table(session: Session, tournament: Tournament, models: pd.DataFrame) -> pd.DataFrame:
    """One row per (resolved round, model in `models`)."""
    resolved = dict(
        session.execute(
            select(Round.id, Round.number)
            .join(RoundResult, RoundResult.round_id == Round.id)
            .where(Round.tournament_id == tournament.id)
        ).all()
    )
    ids = [uuid.UUID(model) for model in models["model_id"]]
    if not resolved or not ids:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    in_scope = (RoundStake.round_id.in_(list(resolved)), RoundStake.model_id.in_(ids))
    at_risk = {
        (r, m): nmr_float(v)
        for r, m, v in session.execute(
            select(RoundStake.round_id, RoundStake.model_id, RoundStake.at_risk).where(*in_scope)
        )
    }
    payouts = {
        (r, m): (nmr_float(v), usd_float(usd))
        for r, m, v, usd in session.execute(
            select(
                RoundPayout.round_id, RoundPayout.model_id, RoundPayout.nmr, RoundPayout.usd
            ).where(RoundPayout.round_id.in_(list(resolved)), RoundPayout.model_id.in_(ids))
        )
    }
    on_time: dict[tuple[uuid.UUID, uuid.UUID], bool] = {}
    for r, m, late in session.execute(
        select(Submission.round_id, Submission.model_id, Submission.late).where(
            Submission.round_id.in_(list(resolved)),
            Submission.model_id.in_(ids),
            Submission.status == SubmissionStatus.VALID,
        )
    ):
        on_time[(r, m)] = on_time.get((r, m), False) or not late
    scores = _final_scores(session, list(resolved), ids)
    rows = []
    for round_id, number in sorted(resolved.items(), key=lambda item: item[1]):
        for model_id in ids:
            key = (round_id, model_id)
            paid, usd = payouts.get(key, (0.0, 0.0))
            corr, mmc = scores.get(key, (float("nan"), float("nan")))
            submitted = key in on_time
            late = submitted and not on_time[key]
            rows.append(
                (
                    number,
                    str(model_id),
                    submitted,
                    late,
                    at_risk.get(key, 0.0),
                    paid,
                    usd,
                    corr,
                    mmc,
                )
            )
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _final_scores(
    session: Session, rounds: Sequence[uuid.UUID], models: Sequence[uuid.UUID]
) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[float, float]]:
    """(round, model) → the CORR and MMC of the round's last scored day."""
    last = (
        select(RoundScore.round_id, func.max(RoundScore.day).label("day"))
        .where(RoundScore.round_id.in_(rounds), RoundScore.metric == "corr")
        .group_by(RoundScore.round_id)
        .subquery()
    )
    found: dict[tuple[uuid.UUID, uuid.UUID], dict[str, float]] = {}
    for r, m, metric, value in session.execute(
        select(RoundScore.round_id, RoundScore.model_id, RoundScore.metric, RoundScore.value)
        .join(last, (last.c.round_id == RoundScore.round_id) & (last.c.day == RoundScore.day))
        .where(RoundScore.model_id.in_(models), RoundScore.metric.in_(("corr", "mmc")))
    ):
        found.setdefault((r, m), {})[metric] = float("nan") if value is None else value
    nan = float("nan")
    return {key: (v.get("corr", nan), v.get("mmc", nan)) for key, v in found.items()}


def rounds_table(session: Session, storage: FileStorage, tournament: Tournament) -> pd.DataFrame:
    resolved = session.execute(
        select(Round.number, RoundResult.resolved_at, RoundResult.nmr_paid, RoundResult.nmr_burned)
        .join(RoundResult, RoundResult.round_id == Round.id)
        .where(Round.tournament_id == tournament.id)
        .order_by(Round.number)
    ).all()
    if not resolved:
        return pd.DataFrame(columns=list(ROUND_COLUMNS))
    count = session.scalar(select(func.count(Round.id)).where(Round.tournament_id == tournament.id))
    meta = {
        row.round: float("nan") if row.corr is None else row.corr
        for row in meta_model_performance(session, storage, tournament, limit=max(1, count or 1))
    }
    blends = {
        number: blend_concentration(list(weights.values()))
        for number, weights in session.execute(
            select(Round.number, MetaModel.weights)
            .join(MetaModel, MetaModel.round_id == Round.id)
            .where(Round.tournament_id == tournament.id)
        )
    }
    nan = float("nan")
    return pd.DataFrame(
        [
            (
                number,
                at,
                meta.get(number, nan),
                *blends.get(number, (nan, nan)),
                nmr_float(paid),
                nmr_float(burned),
            )
            for number, at, paid, burned in resolved
        ],
        columns=list(ROUND_COLUMNS),
    )


def fund_table(session: Session, tournament: Tournament) -> pd.DataFrame:
    curve = fund_equity(session, tournament)
    return pd.DataFrame(curve, columns=list(FUND_COLUMNS))


def holdings_table(rows: Sequence[tuple[int, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(HOLDING_COLUMNS))
