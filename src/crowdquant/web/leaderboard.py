"""The public leaderboard: models or accounts of a tournament, ranked by reputation.

Read through `tournament.leaderboard` as the public sees it (`Viewer.public()`, as the REST
routers do): a hidden metric never reaches a public page, whoever is signed in. Also the
small pieces the other public pages (`profiles`, `rounds`) share: which tournament a page
is about, how a metric is named and written, and the cells of a sortable table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from crowdquant.db.models import Tournament
from crowdquant.tournament.leaderboard import (
    Standing,
    account_leaderboard,
    model_leaderboard,
    rank_metric,
)
from crowdquant.tournament.rules import RULESETS, ruleset_of
from crowdquant.tournament.tournaments import get_tournament, list_tournaments
from crowdquant.tournament.visibility import Viewer
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.errors import PageError
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import nmr, percent, render, score, usd

router = APIRouter(route_class=PageRoute)

DEFAULT_TOURNAMENT = 8
PUBLIC = Viewer.public()
"""Who the public pages read scores as: hidden metrics are the operator's, never a page's."""

METRIC_LABELS = {
    "corr": "CORR",
    "mmc": "MMC",
    "fnc": "FNC",
    "bmc": "BMC",
    "cwmm": "CWMM",
    "logloss": "Logloss",
    "benchmark_logloss": "Benchmark logloss",
    "originality_2017": "Originality",
    "concordance": "Concordance",
    "consistency": "Consistency",
    "max_corr_others": "Max CORR with others",
    "mean_corr_others": "Mean CORR with others",
}
METRIC_ORDER = list(METRIC_LABELS)
DIGITS = {"logloss": 6, "benchmark_logloss": 6}
GATES = frozenset(gate for ruleset in RULESETS.values() for gate in ruleset.gates)
ORIGINAL = 0.5
"""A 2017 gate's reputation (the share of rounds passed) at or above which it shows ✓."""


# --- shared by the public pages ------------------------------------------------------------------


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.upper())


def metric_text(metric: str, value: float | None) -> str:
    """A score as the pages write it; a 2017 gate of one round as ✓ or ✗ (a share of rounds
    as a percentage)."""
    if metric in GATES and value in (0.0, 1.0):
        return "✓" if value == 1.0 else "✗"
    if metric in GATES:
        return percent(value)
    return score(value, DIGITS.get(metric, 4))


def ordered_metrics(metrics: set[str]) -> list[str]:
    """The metrics as the pages show them: the known ones first, in their order."""
    known = [metric for metric in METRIC_ORDER if metric in metrics]
    return known + sorted(metrics - set(known))


def parse_number(text: str | None, what: str) -> int | None:
    """A positive number from a URL, or None when not given; a 404 when it is no number."""
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise PageError(404, f"there is no {what} {text!r}")
    return int(text)


def page_tournament(session: Session, number: str | None) -> Tournament:
    """The tournament a page is about: `number`, or 8 when not given (else the first)."""
    wanted = parse_number(number, "tournament")
    if wanted is not None:
        return get_tournament(session, wanted)  # TournamentNotFound: 404
    tournaments = list_tournaments(session)
    if not tournaments:
        raise PageError(404, "There is no tournament yet.")
    return next((t for t in tournaments if t.number == DEFAULT_TOURNAMENT), tournaments[0])


@dataclass(frozen=True)
class Choice:
    """A link of a selector: the tournament (or view) and whether it is the one shown."""

    label: str
    href: str
    current: bool


def tournament_choices(session: Session, shown: Tournament, path: str) -> list[Choice]:
    """Links to `path` for every tournament; empty when there is only one."""
    tournaments = list_tournaments(session)
    if len(tournaments) < 2:
        return []
    separator = "&" if "?" in path else "?"
    return [
        Choice(
            f"Tournament {t.number} · {t.name}",
            f"{path}{separator}tournament={t.number}",
            t.id == shown.id,
        )
        for t in tournaments
    ]


@dataclass(frozen=True)
class Cell:
    """A cell of a sortable table: its text, the raw number it sorts by, a link."""

    text: str
    value: str | None = None
    href: str | None = None
    css: str = ""


@dataclass(frozen=True)
class Column:
    label: str
    numeric: bool = True


def number_cell(text: str, value: float | int | None, *, signed: bool = False) -> Cell:
    css = "num"
    if signed and value is not None and value != 0:
        css += " positive" if value > 0 else " negative"
    return Cell(text, None if value is None else repr(value), css=css)


def metric_cell(metric: str, value: float | None) -> Cell:
    return number_cell(metric_text(metric, value), value)


def nmr_cell(units: int | None, *, signed: bool = False) -> Cell:
    return number_cell(nmr(units), units, signed=signed)


def usd_cell(cents: int | None) -> Cell:
    return number_cell(usd(cents), cents)


def percent_cell(share: float | None) -> Cell:
    return number_cell(percent(share), share)


def profile_link(tournament: Tournament, model: str) -> str:
    return f"/profiles/{quote(model)}?tournament={tournament.number}"


# --- the leaderboard -----------------------------------------------------------------------------


Board = Literal["models", "accounts"]


@router.get("/leaderboard")
def leaderboard_page(
    request: Request,
    session: PageSession,
    services: ServicesDep,
    tournament: str | None = None,
    by: str = "models",
) -> Response:
    if by not in ("models", "accounts"):
        raise PageError(404, "The leaderboard ranks models or accounts.")
    board: Board = "models" if by == "models" else "accounts"
    shown = page_tournament(session, tournament)
    ranked = model_leaderboard if board == "models" else account_leaderboard
    standings = ranked(session, shown, services.clock.now(), PUBLIC, ledger=services.ledger)
    columns, rows = leaderboard_table(shown, standings, board)
    metric, higher_better = rank_metric(shown)
    base = f"/leaderboard?tournament={shown.number}"
    context = {
        "tournament": shown,
        "rank_metric": metric_label(metric),
        "lowest_first": not higher_better,
        "gates": ruleset_of(shown).gates,
        "board": board,
        "views": [
            Choice("Models", f"{base}&by=models", board == "models"),
            Choice("Accounts", f"{base}&by=accounts", board == "accounts"),
        ],
        "tournaments": tournament_choices(session, shown, f"/leaderboard?by={board}"),
        "columns": columns,
        "rows": rows,
    }
    return render(request, "public/leaderboard.html", context)


def leaderboard_table(
    tournament: Tournament, standings: list[Standing], board: Board
) -> tuple[list[Column], list[list[Cell]]]:
    """The columns and rows: today's (CORR and MMC reputations, the rank metric, stake) or,
    under rules with gates (2017), the seeds' (logloss and the gates' marks)."""
    gates = ruleset_of(tournament).gates
    metric = rank_metric(tournament)[0]
    name_label = "Model" if board == "models" else "Account"
    columns = [Column("#"), Column(name_label, numeric=False)]
    if gates:
        columns += [
            Column(metric_label(metric)),
            Column("Career USD"),
            Column("Consistency"),
            *[Column(metric_label(gate)) for gate in gates],
            Column("Career NMR"),
        ]
    else:
        shown = ["corr", "mmc"] + ([] if metric in ("corr", "mmc") else [metric])
        columns += [Column(metric_label(m)) for m in shown]
        columns += [
            Column("Consistency"),
            Column("Career USD"),
            Column("Career NMR"),
            Column("Stake"),
        ]
    rows = []
    for row in standings:
        href = profile_link(tournament, row.name) if board == "models" else None
        cells = [number_cell(str(row.rank), row.rank), Cell(row.name, row.name, href)]
        if gates:
            cells += [
                metric_cell(metric, row.reputation.get(metric)),
                usd_cell(row.career_usd),
                percent_cell(row.consistency),
                *[gate_cell(row.reputation.get(gate)) for gate in gates],
                nmr_cell(row.career_nmr, signed=True),
            ]
        else:
            cells += [metric_cell(m, row.reputation.get(m)) for m in shown]
            cells += [
                percent_cell(row.consistency),
                usd_cell(row.career_usd),
                nmr_cell(row.career_nmr, signed=True),
                nmr_cell(row.stake),
            ]
        rows.append(cells)
    return columns, rows


def gate_cell(share: float | None) -> Cell:
    """A 2017 gate as the seeds marked it: ✓ passed (in most rounds), ✗ not, - unknown."""
    if share is None:
        return Cell("-", css="num")
    passed = share >= ORIGINAL
    return Cell(
        "✓" if passed else "✗", repr(share), css="num " + ("positive" if passed else "negative")
    )
