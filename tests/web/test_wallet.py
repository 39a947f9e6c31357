"""The wallet page: balances and the ledger history in plain words, newest first, in pages."""

from __future__ import annotations

import html
import re

from crowdquant.db.session import transaction
from crowdquant.tournament.accounts import get_account
from crowdquant.tournament.staking import grant_nmr

from .site import Site
from .test_dashboard import new_model
from .test_models import grant, nmr

ROW = re.compile(r"<tr>\s*<td>(.*?)</td>\s*</tr>", re.S)
CELL = re.compile(r"\s*</td>\s*<td[^>]*>\s*")


def rows(page: str) -> list[list[str]]:
    """The statement's rows: time, kind, amount, from, to, balance after, memo."""
    body = page[page.index('<table class="statement">') :]
    return [CELL.split(html.unescape(found)) for found in ROW.findall(body)]


def test_a_fresh_wallet_is_empty(site: Site) -> None:
    page = site.signed_up("alice").get("/wallet")
    assert page.status_code == 200
    assert "0 NMR" in page.text and "$0.00" in page.text and "Nothing yet" in page.text


def test_the_history_says_where_each_amount_came_from_and_went(site: Site) -> None:
    browser = site.signed_up("alice")
    model = new_model(site, browser, "alice_model")
    grant(site, "alice", 100)
    stake_page = f"/models/{model}/stake"
    browser.submit(stake_page, {"change": "increase", "amount": "12.5"})
    page = browser.get("/wallet").text
    assert "87.5 NMR" in page
    found = rows(page)
    assert [line[1:] for line in found] == [
        [
            "stake",
            "-12.5 NMR",
            "your wallet",
            "stake of alice_model",
            "87.5 NMR",
            "stake 12.5 NMR on alice_model",
        ],
        ["grant", "+100 NMR", "treasury", "your wallet", "100 NMR", "grant to alice"],
    ]
    assert found[0][0].endswith(" UTC")


def test_the_history_comes_in_pages_of_fifty(site: Site) -> None:
    browser = site.signed_up("alice")
    with transaction(site.sessions) as session:
        alice = get_account(session, "alice")
        for number in range(1, 56):
            grant_nmr(session, site.ledger, alice, nmr(number), f"gift-{number}")
    first = browser.get("/wallet").text
    lines = rows(first)
    assert len(lines) == 50 and lines[0][2] == "+55 NMR"  # newest first
    assert "Page 1 of 2" in first and 'href="/wallet?page=2"' in first
    second = browser.get("/wallet?page=2").text
    assert [line[2] for line in rows(second)] == [f"+{n} NMR" for n in range(5, 0, -1)]
    assert 'href="/wallet?page=1"' in second
    for page in ("3", "0", "abc", "²", "9" * 30):
        assert browser.get(f"/wallet?page={page}").status_code == 404
