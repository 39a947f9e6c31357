"""The fund in the operator's section: its backtest reports, and each tournament's live
equity curve.

`crowdquant fund backtest VERSION` writes a report (equity curves and drawdowns of the
meta model, the best single model, the equal-weight blend and the example model, the
figures, the P&L per era) into the settings' fund reports folder; these pages list the
reports and show each one, as written, to operators only.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from crowdquant.fund.report import METRICS, formatted, stored_reports
from crowdquant.tournament.meta_model import fund_equity
from crowdquant.tournament.tournaments import list_tournaments
from crowdquant.web.charts import line_chart
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.errors import PageError
from crowdquant.web.guards import OperatorAccount
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)
FIGURES = ("annual_return", "annual_volatility", "sharpe", "max_drawdown", "hit_rate")


@router.get("/operator/fund")
def fund_page(
    request: Request, session: PageSession, services: ServicesDep, operator: OperatorAccount
) -> Response:
    reports = stored_reports(services.settings.fund_reports_dir)
    live = []
    for tournament in list_tournaments(session):
        equity = fund_equity(session, tournament)
        chart = line_chart(
            {"equity": [(day, value) for day, (_, value) in enumerate(equity, start=1)]},
            title=f"tournament {tournament.number}: the fund's equity (net of costs)",
            y_label="equity",
            x_label="market day",
            empty="no day booked yet",
        )
        live.append((tournament, equity[-1][1] if equity else None, chart))
    tables = [
        (
            report,
            [
                (curve, [formatted(key, _figure(figures, key)) for key in FIGURES])
                for curve, figures in report.curves.items()
            ],
        )
        for report in reports
    ]
    labels = [METRICS[key][0] for key in FIGURES]
    context = {"reports": tables, "labels": labels, "live": live}
    return render(request, "operator/fund.html", context)


def _figure(figures: dict[str, object], key: str) -> float:
    value = figures.get(key)
    return float(value) if isinstance(value, int | float) else math.nan


@router.get("/operator/fund/{name}/report.html")
def fund_report(name: str, services: ServicesDep, operator: OperatorAccount) -> Response:
    """A backtest report as written (one self-contained HTML file)."""
    for report in stored_reports(services.settings.fund_reports_dir):
        if report.name == name:
            return HTMLResponse(report.html.read_text())
    raise PageError(404, f"There is no fund report named {name!r}.")
