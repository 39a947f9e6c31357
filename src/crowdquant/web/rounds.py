"""Past tournaments and the round page: the seeds' "Tournament 56 Results".

`/rounds` lists a tournament's resolved rounds with their "Results" summary (participants,
controlling capital, USD and NMR paid out, NMR burned, resolved date), newest first, and
its unresolved rounds with their state. `/rounds/{tournament}/{number}` shows one round:
its times and a live countdown while it is open, the day-by-day scoring (the ranked table
of the latest day scored, `tournament.leaderboard.round_table`, read as the public sees
it), and once resolved its results and ranked payouts. A 2017 round's payouts table is the
seeds' "Tournament 56 Results": live logloss, validation logloss, round USD, round NMR and
consistency, the validation logloss and consistency being the figures of each model's
counting upload (`rules2017_record.counting_checks`, as the public sees them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from crowdquant.db.models import Round, RoundPayout, RoundResult, RoundStatus, Tournament
from crowdquant.payouts import ScoreConfig
from crowdquant.tournament.chain_records import payout_hashes, round_root
from crowdquant.tournament.leaderboard import (
    Duplicate,
    RoundRow,
    Standing,
    model_leaderboard,
    rank_metric,
    round_table,
)
from crowdquant.tournament.live_mode import is_closed_live
from crowdquant.tournament.resolution import round_payouts, round_result
from crowdquant.tournament.rounds import get_round, is_open, list_rounds, round_score_configs
from crowdquant.tournament.rules import ruleset_of
from crowdquant.tournament.rules2017_record import counting_checks
from crowdquant.tournament.scoring import days_recorded
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.visibility import Viewer, scores_visible
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.errors import PageError
from crowdquant.web.leaderboard import (
    PUBLIC,
    Cell,
    Column,
    metric_cell,
    metric_label,
    nmr_cell,
    number_cell,
    ordered_metrics,
    page_tournament,
    parse_number,
    percent_cell,
    profile_link,
    tournament_choices,
    usd_cell,
)
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import explorer_url, render, short_hash, when

router = APIRouter(route_class=PageRoute)


@dataclass(frozen=True)
class Resolved:
    round: Round
    result: RoundResult | None
    """None while its payouts are not recorded (a round resolved without them)."""


@router.get("/rounds")
def rounds_page(
    request: Request,
    session: PageSession,
    services: ServicesDep,
    tournament: str | None = None,
) -> Response:
    shown = page_tournament(session, tournament)
    newest_first = list(reversed(list_rounds(session, shown)))
    resolved = [
        Resolved(round_, round_result(session, round_))
        for round_ in newest_first
        if round_.status is RoundStatus.RESOLVED
    ]
    now = services.clock.now()
    context = {
        "tournament": shown,
        "closed_live": is_closed_live(shown),
        "tournaments": tournament_choices(session, shown, "/rounds"),
        "columns": RESULT_COLUMNS,
        "rows": [results_row(shown, entry) for entry in resolved],
        "unresolved": [
            (round_, is_open(round_, now))
            for round_ in newest_first
            if round_.status is not RoundStatus.RESOLVED
        ],
    }
    return render(request, "public/rounds.html", context)


RESULT_COLUMNS = [
    Column("Round"),
    Column("Participants"),
    Column("Controlling capital"),
    Column("USD paid out"),
    Column("NMR paid out"),
    Column("NMR burned"),
    Column("Resolved", numeric=False),
]


def results_row(tournament: Tournament, entry: Resolved) -> list[Cell]:
    round_, result = entry.round, entry.result
    link = Cell(str(round_.number), str(round_.number), round_link(tournament, round_), "num")
    if result is None:
        return [link, *(Cell("-", css="num") for _ in range(5)), Cell("payouts pending")]
    return [
        link,
        number_cell(str(result.participants), result.participants),
        number_cell(str(result.stakers), result.stakers),
        usd_cell(result.usd_paid),
        nmr_cell(result.nmr_paid),
        nmr_cell(result.nmr_burned),
        Cell(when(result.resolved_at), result.resolved_at.isoformat()),
    ]


def round_link(tournament: Tournament, round_: Round) -> str:
    return f"/rounds/{tournament.number}/{round_.number}"


@router.get("/rounds/{tournament}/{number}")
def round_page(
    request: Request,
    session: PageSession,
    services: ServicesDep,
    tournament: str,
    number: str,
) -> Response:
    tournament_number = parse_number(tournament, "tournament")
    round_number = parse_number(number, "round")
    if tournament_number is None or round_number is None:  # pragma: no cover - paths have both
        raise PageError(404, "No such round.")
    shown = get_tournament(session, tournament_number)
    round_ = get_round(session, shown, round_number)  # RoundNotFound: 404
    now = services.clock.now()
    table = round_table(session, round_, PUBLIC) if scores_visible(round_) else []
    result = round_result(session, round_)
    context = {
        "tournament": shown,
        "closed_live": is_closed_live(shown),
        "round": round_,
        "open": is_open(round_, now),
        "scores_visible": scores_visible(round_),
        "days": days_recorded(session, round_),
        "latest_day": max((row.day for row in table), default=None),
        "result": result,
    }
    context["columns"], context["rows"] = scores_table(shown, table)
    context["config_columns"], context["config_rows"] = score_configs_table(
        round_score_configs(round_)
    )
    if result is not None:
        standings = model_leaderboard(session, shown, now, PUBLIC, ledger=services.ledger)
        payouts = round_payouts(session, round_)
        figures = (
            counting_checks(session, round_, Viewer.public())
            if ruleset_of(shown).publishes_2017_files
            else None
        )
        context["payout_columns"], context["payout_rows"] = payouts_table(
            shown,
            table,
            payouts,
            standings,
            figures,
            transactions=payout_hashes(session, payouts),
            explorer=services.settings.explorer_tx_url,
        )
        context["root"] = round_root(session, round_.number)
    return render(request, "public/round.html", context)


def score_configs_table(configs: list[ScoreConfig]) -> tuple[list[Column], list[list[Cell]]]:
    """The scores the round is measured by, as recorded when it opened, and what each pays."""
    columns = [
        Column("Score", numeric=False),
        Column("Version", numeric=False),
        Column("Canon", numeric=False),
        Column("Pays", numeric=False),
        Column("Multiplier"),
        Column("Clip"),
        Column("Stake threshold"),
        Column("Payout factor"),
        Column("Hurdle"),
        Column("Score days"),
    ]

    def decimal(value: object) -> Cell:
        return Cell("-") if value is None else number_cell(f"{value}", float(str(value)))

    rows = [
        [
            Cell(metric_label(config.name)),
            Cell(config.version),
            Cell("canon" if config.is_canon_score else ""),
            Cell("pays" if config.is_payout else ""),
            decimal(config.default_multiplier),
            decimal(config.clip_threshold),
            Cell("-") if config.stake_threshold is None else nmr_cell(config.stake_threshold),
            Cell("by stake")
            if config.is_payout
            and config.payout_factor is None
            and (config.stake_threshold is not None)
            else decimal(config.payout_factor),
            decimal(config.hurdle),
            number_cell(str(config.total_score_days), config.total_score_days),
        ]
        for config in configs
    ]
    return columns, rows


def scores_table(
    tournament: Tournament, table: list[RoundRow]
) -> tuple[list[Column], list[list[Cell]]]:
    """The round's models ranked by their latest scores; late ones last, unranked."""
    metrics = ordered_metrics({metric for row in table for metric in row.scores})
    metric = rank_metric(tournament)[0]
    columns = [Column("#"), Column("Model", numeric=False)]
    columns += [Column(metric_label(m)) for m in metrics]
    columns += [Column(f"{metric_label(metric)} percentile"), Column("Late", numeric=False)]
    flagged = any(row.duplicate is not None for row in table)
    if flagged:
        columns.append(Column("Duplicate", numeric=False))
    rows = []
    for row in table:
        cells = [
            number_cell("-" if row.rank is None else str(row.rank), row.rank),
            Cell(row.model, row.model, profile_link(tournament, row.model)),
        ]
        cells += [metric_cell(m, row.scores.get(m)) for m in metrics]
        cells += [percent_cell(row.percentiles.get(metric)), Cell("late" if row.late else "")]
        if flagged:
            cells.append(duplicate_cell(row.duplicate))
        rows.append(cells)
    return columns, rows


def duplicate_cell(duplicate: Duplicate | None) -> Cell:
    if duplicate is None:
        return Cell("")
    if duplicate.same_account:
        return Cell(f"copy of {duplicate.of}: counted once")
    return Cell(f"like {duplicate.of} (another account)")


def transaction_cell(tx_hash: str | None, explorer: str | None) -> Cell:
    """A transaction's hash, linked to its page on the block explorer where one is set."""
    if tx_hash is None:
        return Cell("")
    return Cell(short_hash(tx_hash), tx_hash, explorer_url(explorer, tx_hash))


def payouts_table(
    tournament: Tournament,
    table: list[RoundRow],
    payouts: list[RoundPayout],
    standings: list[Standing],
    figures: dict[uuid.UUID, dict[str, float | None]] | None = None,
    *,
    transactions: dict[uuid.UUID, str] | None = None,
    explorer: str | None = None,
) -> tuple[list[Column], list[list[Cell]]]:
    """The seeds' ranked table: #, model, live score, round USD, round NMR, consistency.

    With `figures` (a 2017 round: each model's counting upload's figures), a validation
    logloss column follows the live one, and the consistency is the upload's. With
    `transactions` (each payout's transaction hash on chain), a last column shows them,
    linked to the `explorer` pattern's page where one is set."""
    metric = rank_metric(tournament)[0]
    paid = {row.model_id: row for row in payouts}
    names = {row.model_id: row.name for row in standings}
    consistency: dict[uuid.UUID | None, float | None]
    validation: dict[uuid.UUID, float | None] = {}
    if figures is None:
        consistency = {row.model_id: row.consistency for row in standings}
    else:
        consistency = {key: found.get("consistency") for key, found in figures.items()}
        validation = {key: found.get("validation_logloss") for key, found in figures.items()}
    columns = [
        Column("#"),
        Column("Model", numeric=False),
        Column(f"Live {metric_label(metric)}"),
        *([Column("Validation Logloss")] if figures is not None else []),
        Column("Round USD"),
        Column("Round NMR"),
        Column("Consistency"),
        *([Column("On chain", numeric=False)] if transactions else []),
    ]
    ranked: list[tuple[int | None, uuid.UUID, str, float | None]] = [
        (row.rank, row.model_id, row.model, row.scores.get(metric)) for row in table if not row.late
    ]
    listed = {model_id for _, model_id, _, _ in ranked}
    ranked += [
        (None, model_id, names.get(model_id, str(model_id)), None)
        for model_id in paid
        if model_id not in listed
    ]
    rows = []
    for rank, model_id, name, live in ranked:
        payout = paid.get(model_id)
        rows.append(
            [
                number_cell("-" if rank is None else str(rank), rank),
                Cell(name, name, profile_link(tournament, name)),
                metric_cell(metric, live),
                *([metric_cell(metric, validation.get(model_id))] if figures is not None else []),
                usd_cell(None if payout is None else payout.usd),
                nmr_cell(None if payout is None else payout.nmr, signed=True),
                percent_cell(consistency.get(model_id)),
                *([transaction_cell(transactions.get(model_id), explorer)] if transactions else []),
            ]
        )
    return columns, rows
