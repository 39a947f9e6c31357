"""A model's public profile: its owner's words and link, its standing, charts of its scores
and payouts, its rounds.

The bio and link (numerapi's `set_bio`, `set_link`) are the owner's text: escaped like every
value on the pages, and the link is a link only when it is an http(s) URL with a host
(`link_href`), marked ``rel="nofollow noopener"``.

Scores come from `tournament.leaderboard.model_score_history` as the public sees them (a
hidden metric never appears); the standing (rank, reputation, stake, career totals) from
the model leaderboard with the ledger; payouts from the resolved rounds' `RoundPayout` rows.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from crowdquant.db.models import Model, Round, RoundPayout, RoundStatus, Tournament
from crowdquant.money import nmr_float, usd_float
from crowdquant.tournament.leaderboard import (
    DailyScore,
    model_leaderboard,
    model_score_history,
    rank_metric,
)
from crowdquant.tournament.models import find_model
from crowdquant.tournament.resolution import model_payouts
from crowdquant.tournament.rounds import list_rounds
from crowdquant.tournament.rules import ruleset_of
from crowdquant.web.charts import bar_chart, cumulative, line_chart
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.leaderboard import (
    PUBLIC,
    Cell,
    Column,
    metric_cell,
    metric_label,
    metric_text,
    nmr_cell,
    number_cell,
    ordered_metrics,
    page_tournament,
    percent_cell,
    usd_cell,
)
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)

CUMULATIVE_METRICS = ("corr", "mmc")


@dataclass
class RoundScores:
    """A model's scores in one round: per metric the value of the last day scored."""

    round: Round
    day: int = 0
    values: dict[str, float | None] = field(default_factory=dict)
    percentiles: dict[str, float | None] = field(default_factory=dict)
    late: bool = False

    @property
    def final(self) -> bool:
        """Whether these are final scores that count: resolved, and on time."""
        return self.round.status is RoundStatus.RESOLVED and not self.late


def by_round(history: list[DailyScore], rounds: dict[uuid.UUID, Round]) -> list[RoundScores]:
    """The model's latest score per round and metric, newest round first."""
    latest: dict[uuid.UUID, dict[str, DailyScore]] = defaultdict(dict)
    for score in history:
        kept = latest[score.round_id].get(score.metric)
        if kept is None or score.day >= kept.day:
            latest[score.round_id][score.metric] = score
    out = []
    for round_id, metrics in latest.items():
        scores = RoundScores(rounds[round_id])
        for metric, score in metrics.items():
            scores.values[metric] = score.value
            scores.percentiles[metric] = score.percentile
            scores.day = max(scores.day, score.day)
            scores.late = scores.late or score.late
        out.append(scores)
    return sorted(out, key=lambda scores: -scores.round.number)


def link_href(url: str | None) -> str | None:
    """`url` where the page may link to it (an http or https URL with a host), else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    return url


@router.get("/profiles/{model_name}")
def profile_page(
    request: Request,
    session: PageSession,
    services: ServicesDep,
    model_name: str,
    tournament: str | None = None,
) -> Response:
    shown = page_tournament(session, tournament)
    model = find_model(session, shown.number, model_name)  # unknown: a 404 page
    board = model_leaderboard(session, shown, services.clock.now(), PUBLIC, ledger=services.ledger)
    standing = next(row for row in board if row.model_id == model.id)
    history = model_score_history(session, model, PUBLIC)
    rounds = {round_.id: round_ for round_ in list_rounds(session, shown)}
    scored = by_round(history, rounds)
    payouts = model_payouts(session, model)
    columns, rows = rounds_table(shown, scored, payouts, rounds)
    context = {
        "tournament": shown,
        "model": model,
        "link_href": link_href(model.link_url),
        "standing": standing,
        "entries": len(board),
        "reputation": [
            (metric_label(m), metric_text(m, standing.reputation[m]))
            for m in ordered_metrics(set(standing.reputation))
        ],
        "rank_metric": metric_label(rank_metric(shown)[0]),
        "charts": [
            newest_round_chart(shown, model, history),
            *profile_charts(shown, model, scored, payouts, rounds),
        ],
        "columns": columns,
        "rows": rows,
    }
    return render(request, "public/profile.html", context)


def final_metrics(tournament: Tournament) -> tuple[str, ...]:
    """The metrics of the per-round chart: CORR and MMC, or the 2017 rules' logloss."""
    return ruleset_of(tournament).payout_metrics


def newest_round_chart(tournament: Tournament, model: Model, history: list[DailyScore]) -> str:
    """The newest scored round's daily updates: its scores day by day, final or not."""
    daily = [score for score in history if score.day > 0]
    if not daily:
        return line_chart(
            {}, title=f"{model.name}: daily scores", y_label="score", empty="no scores yet"
        )
    newest = max(score.round for score in daily)
    series = {
        metric_label(metric): sorted(
            (score.day, score.value)
            for score in daily
            if score.round == newest and score.metric == metric
        )
        for metric in final_metrics(tournament)
    }
    return line_chart(
        series,
        title=f"{model.name}: round {newest}, score by scoring day",
        y_label="score",
        x_label="scoring day",
    )


def profile_charts(
    tournament: Tournament,
    model: Model,
    scored: list[RoundScores],
    payouts: dict[uuid.UUID, RoundPayout],
    rounds: dict[uuid.UUID, Round],
) -> list[str]:
    """Per-round final scores, cumulative CORR and MMC, and payouts per resolved round."""
    final = sorted((s for s in scored if s.final), key=lambda s: s.round.number)

    def points(metric: str) -> list[tuple[float, float | None]]:
        return [(s.round.number, s.values.get(metric)) for s in final if metric in s.values]

    charts = [
        line_chart(
            {metric_label(m): points(m) for m in final_metrics(tournament)},
            title=f"{model.name}: final score per round",
            y_label="score",
        ),
        line_chart(
            {metric_label(m): cumulative(points(m)) for m in CUMULATIVE_METRICS},
            title=f"{model.name}: cumulative score",
            y_label="sum of final scores",
        ),
    ]
    paid = sorted(
        ((rounds[row.round_id].number, row) for row in payouts.values() if row.round_id in rounds),
        key=lambda pair: pair[0],
    )
    charts.append(
        bar_chart(
            {"NMR": [(number, nmr_float(row.nmr)) for number, row in paid]},
            title=f"{model.name}: NMR paid (+) or burned (-) per round",
            y_label="NMR",
            signed_colors=True,
        )
    )
    if any(row.usd for _, row in paid):
        charts.append(
            bar_chart(
                {"USD": [(number, usd_float(row.usd)) for number, row in paid]},
                title=f"{model.name}: USD paid per round",
                y_label="USD",
            )
        )
    return charts


def rounds_table(
    tournament: Tournament,
    scored: list[RoundScores],
    payouts: dict[uuid.UUID, RoundPayout],
    rounds: dict[uuid.UUID, Round],
) -> tuple[list[Column], list[list[Cell]]]:
    """One row per round the model was scored or paid in, newest first."""
    metric = rank_metric(tournament)[0]
    metrics = ordered_metrics({m for s in scored for m in s.values})
    columns = [Column("Round"), Column("State", numeric=False), Column("Day")]
    columns += [Column(metric_label(m)) for m in metrics]
    columns += [
        Column(f"{metric_label(metric)} percentile"),
        Column("Round NMR"),
        Column("Round USD"),
        Column("Late", numeric=False),
    ]
    listed = {s.round.id: s for s in scored}
    for round_id in payouts:  # paid without a score (a stake on a missing submission)
        if round_id not in listed and round_id in rounds:
            listed[round_id] = RoundScores(rounds[round_id])
    rows = []
    for scores in sorted(listed.values(), key=lambda s: -s.round.number):
        round_ = scores.round
        paid = payouts.get(round_.id)
        cells = [
            Cell(
                str(round_.number),
                str(round_.number),
                f"/rounds/{tournament.number}/{round_.number}",
                "num",
            ),
            Cell(str(round_.status), str(round_.status)),
            number_cell(str(scores.day), scores.day),
        ]
        cells += [metric_cell(m, scores.values.get(m)) for m in metrics]
        cells += [
            percent_cell(scores.percentiles.get(metric)),
            nmr_cell(None if paid is None else paid.nmr, signed=True),
            usd_cell(None if paid is None else paid.usd),
            Cell("late" if scores.late else ""),
        ]
        rows.append(cells)
    return columns, rows
