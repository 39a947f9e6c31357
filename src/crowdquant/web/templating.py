"""Rendering pages: the Jinja2 environment, its filters, and what every page gets.

Every page is rendered by `render`, which adds the signed-in account (`viewer`, or None),
the form token (`csrf`, see `forms`), the tournament's clock's time (`now`: the app's clock,
which a demo may run faster than the wall), and the header's round banner: the tournament's
number, its open round and the time it has left. Countdowns carry the seconds left by that
clock (`seconds_left`), which the page's script counts down from. Amounts stay integers
until a filter writes them for a person: `nmr` (10^-18 units), `usd` (cents), `when` (UTC
times), `remaining` (a time left), `score` and `percent`. The page's body carries the
clock's time and rate (`clock`), so the countdowns follow a simulated clock, not the
browser's.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from crowdquant.clock import rate_of
from crowdquant.db.models import Account, Round
from crowdquant.http.services import services
from crowdquant.money import Currency, format_amount, usd_dollars
from crowdquant.tournament.rounds import first_open_round, time_left
from crowdquant.web.deps import page_session

TEMPLATES = Path(__file__).parent / "templates"
CSRF_COOKIE = "crowdquant_csrf"
VIEWER_STATE = "viewer"

templates = Jinja2Templates(directory=TEMPLATES)


def nmr(units: int | None) -> str:
    """10^-18 NMR units for a person: "1,234.5 NMR"."""
    return "-" if units is None else format_amount(int(units), Currency.NMR)


def usd(cents: int | None) -> str:
    """US cents for a person: "$1,234.50"."""
    return "-" if cents is None else usd_dollars(int(cents))


def when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def score(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def percent(value: float | Decimal | None) -> str:
    return "-" if value is None else f"{float(value):.2%}"


def remaining(left: timedelta) -> str:
    """A time left as the countdowns write it: "2D 9H 53M 17S REMAIN", or "CLOSED"."""
    seconds = max(0, int(left.total_seconds()))
    if seconds == 0:
        return "CLOSED"
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{days}D {hours}H {minutes}M {seconds}S REMAIN"


def seconds_left(round_: Round, now: datetime) -> int:
    """Whole seconds `round_` has left at `now`, for a countdown's `data-seconds-left`."""
    return int(time_left(round_, now).total_seconds())


def explorer_url(pattern: str | None, tx_hash: str) -> str | None:
    """A transaction's page on the operator's block explorer (None when none is set)."""
    return None if pattern is None else pattern.replace("{hash}", tx_hash)


def short_hash(tx_hash: str) -> str:
    """A hash as a page shows it: its start and its end."""
    return f"{tx_hash[:10]}…{tx_hash[-4:]}" if len(tx_hash) > 16 else tx_hash


templates.env.globals.update(explorer_url=explorer_url)
templates.env.filters.update(
    short_hash=short_hash,
    nmr=nmr,
    usd=usd,
    when=when,
    score=score,
    percent=percent,
    remaining=remaining,
    seconds_left=seconds_left,
)


@dataclass(frozen=True)
class Banner:
    """The header's round: "TOURNAMENT 8 · ROUND 3 · 2D 9H 53M 17S REMAIN"."""

    tournament: int
    round: int
    status: str
    closes: datetime
    time_left: timedelta
    """By the tournament's clock."""


def banner(session: Session, now: datetime) -> Banner | None:
    """The newest open round of the lowest-numbered tournament that has one."""
    found = first_open_round(session)
    if found is None:
        return None
    return Banner(
        found.tournament.number,
        found.number,
        str(found.status),
        found.close_time,
        time_left(found, now),
    )


@dataclass(frozen=True)
class PageClock:
    """The tournament's time when the page was made, and how many of its seconds pass per
    real second (None: unknown), for the page's countdowns."""

    now: datetime
    rate: float | None


def csrf_token(request: Request) -> str:
    """The browser's form token (double-submit: a cookie, echoed by every form)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return str(token)


def viewer(request: Request) -> Account | None:
    found = getattr(request.state, VIEWER_STATE, None)
    return found if isinstance(found, Account) else None


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    """Page `name` with `context`, the viewer, the form token, the clock's time and the round
    banner."""
    session = page_session(request)
    clock = services(request).clock
    now = clock.now()
    values = {
        "viewer": viewer(request),
        "csrf": csrf_token(request),
        "now": now,
        "banner": banner(session, now),
        "clock": PageClock(now, rate_of(clock)),
        "explorer_tx_url": services(request).settings.explorer_tx_url,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, values, status_code=status)
    return _with_csrf_cookie(request, response)


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    """The error page; rendered without the database (it may be what failed)."""
    values: dict[str, Any] = {
        "viewer": viewer(request),
        "csrf": csrf_token(request),
        "banner": None,
        "status": status,
        "message": message,
    }
    response = templates.TemplateResponse(request, "error.html", values, status_code=status)
    return _with_csrf_cookie(request, response)


def _with_csrf_cookie(request: Request, response: HTMLResponse) -> HTMLResponse:
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="lax", path="/")
    return response
