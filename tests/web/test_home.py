"""The front page over real rounds, on both backends: the open round with its countdown by
the tournament's clock, the last resolved round's results, the leaderboard's top and the
meta model's CORR chart; 404s for a tournament that is not there."""

from __future__ import annotations

import re
from datetime import timedelta
from html import escape
from pathlib import Path

import httpx
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import Round
from crowdquant.db.session import transaction
from crowdquant.ledger.sql import SqlLedger
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.web import STATIC_DIR
from crowdquant.web.home import CORR_TITLE
from crowdquant.web.templating import TEMPLATES, remaining

from ..api.server import serve
from ..mail.mailbox import Mailbox
from ..tournament.live_market import TUESDAY_NOON, local_storage
from .site import Site
from .test_leaderboard import by_name, played, table
from .test_rounds import results

SECONDS_LEFT = re.compile(r'data-seconds-left="(\d+)"')


def test_the_front_page_shows_the_tournament_at_a_glance(site: Site) -> None:
    world = played(site)
    with transaction(site.sessions) as session:
        closes = session.get_one(Round, world.rounds[4]).close_time
    page = site.browser().get("/")
    assert page.status_code == 200 and page.url.path == "/"  # no redirect, signed in or not
    glance = page.text[page.text.index("Open round") : page.text.index("Last resolved round")]
    assert "Round 4" in glance
    left = closes - site.clock.now()
    assert f'data-seconds-left="{int(left.total_seconds())}"' in glance
    assert remaining(left) in glance  # the same words the script counts down with

    assert "Round 2 Results" in page.text
    assert f"{results(site, world)[2].resolved_at:%Y-%m-%d %H:%M} UTC" in page.text

    headers, rows = table(page.text, "Top of the leaderboard of tournament 8")
    board = site.browser().get("/leaderboard?tournament=8").text
    _, full = table(board, "Leaderboard of tournament 8")
    assert list(by_name(headers, rows)) == list(by_name(headers, full))[: len(rows)]
    chart = page.text[page.text.index('<div class="chart card meta-model-corr">') :]
    assert chart.index(f'aria-label="{escape(CORR_TITLE, quote=True)}"') < chart.index("</div>")


def test_the_countdown_follows_the_tournaments_clock_not_the_wall(site: Site) -> None:
    browser = site.signed_up("alice")
    before = {int(s) for s in SECONDS_LEFT.findall(browser.get("/").text)}
    site.clock.advance(timedelta(minutes=20))
    after = {int(s) for s in SECONDS_LEFT.findall(browser.get("/").text)}
    assert len(before) == 1 and after == {before.pop() - 20 * 60}  # banner and card agree
    dashboard = SECONDS_LEFT.findall(browser.get("/dashboard").text)
    assert dashboard and {int(s) for s in dashboard} == after


def test_a_tournament_that_is_not_there_is_a_404(site: Site) -> None:
    browser = site.browser()
    assert browser.get("/?tournament=99").status_code == 404
    assert browser.get("/?tournament=eight").status_code == 404
    assert "Tournament 8" in browser.get("/?tournament=8").text


def test_every_table_on_the_site_scrolls_inside_its_box() -> None:
    """Each template's tables sit in a `.table-wrap` (overflow-x: auto), so a wide table
    scrolls on a phone instead of the page."""
    tables = 0
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for found in re.finditer(r"<table\b", text):
            tables += 1
            before = text[: found.start()].rstrip()
            assert before.endswith('<div class="table-wrap">'), f"{template.name}: {found}"
    assert tables > 10
    css = (STATIC_DIR / "site.css").read_text()
    assert re.search(r"\.table-wrap\s*\{[^}]*overflow-x:\s*auto", css)


def test_a_site_without_a_tournament_says_so(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    clock = ManualClock(TUESDAY_NOON)
    app = create_app(
        Settings(home=tmp_path / "home"),
        clock=clock,
        sessions=sessions,
        storage=local_storage(tmp_path / "files"),
        ledger=SqlLedger(clock),
        mailer=Mailbox(),
    )
    with serve(app) as url:
        page = httpx.get(f"{url}/")
        missing = httpx.get(f"{url}/?tournament=8")
    assert page.status_code == 200 and "There is no tournament yet." in page.text
    assert missing.status_code == 404
