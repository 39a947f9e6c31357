"""The front page (`/`): a tournament at a glance, for everyone.

The open round with its countdown by the tournament's clock, the last resolved round's
results, the top of the model leaderboard and a chart of the meta model's CORR over the
resolved rounds; read through `tournament.overview` as the public sees it. `?tournament=N`
shows another tournament; with none yet, the page says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import Response

from crowdquant.tournament.overview import MetaModelCorr, tournament_overview
from crowdquant.tournament.tournaments import list_tournaments
from crowdquant.web.charts import line_chart
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.leaderboard import leaderboard_table, page_tournament, tournament_choices
from crowdquant.web.rounds import round_link
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)

CORR_TITLE = "The meta model's CORR, by resolved round"


@router.get("/")
def home(
    request: Request, session: PageSession, services: ServicesDep, tournament: str | None = None
) -> Response:
    if tournament is None and not list_tournaments(session):
        return render(request, "public/home.html", {"overview": None})
    shown = page_tournament(session, tournament)
    overview = tournament_overview(
        session, services.storage, shown, services.clock.now(), ledger=services.ledger
    )
    columns, rows = leaderboard_table(shown, overview.leaders, "models")
    last = overview.last_resolved
    context = {
        "overview": overview,
        "tournament": shown,
        "tournaments": tournament_choices(session, shown, "/"),
        "leader_columns": columns,
        "leader_rows": rows,
        "last_link": round_link(shown, last) if last is not None else None,
        "corr_chart": corr_chart(overview.meta_model_corr),
    }
    return render(request, "public/home.html", context)


def corr_chart(corr: Sequence[MetaModelCorr]) -> str:
    """The meta model's CORR per resolved round."""
    return line_chart(
        {"meta model": [(line.round, line.corr) for line in corr]},
        title=CORR_TITLE,
        y_label="CORR",
        empty="no CORR of a resolved round yet",
    )
