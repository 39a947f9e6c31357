"""A model's public profile over real rounds, on both backends: its standing, its charts,
its rounds with their payouts; empty charts for a new model; 404s; no hidden metric."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from crowdquant.db.models import Account, Model
from crowdquant.db.session import transaction
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.models import create_model, set_model_bio, set_model_link

from .conftest import CHEAP
from .site import PASSWORD, Site
from .test_leaderboard import (
    CLASSIC_SCORES,
    STAKES,
    assert_nothing_hidden,
    by_name,
    nmr_text,
    played,
    played_2017,
    table,
)

SVG_TEXT = "{http://www.w3.org/2000/svg}text"


def charts(page: str) -> list[list[str]]:
    """The texts of each chart of a page (each an inline SVG inside a div.chart)."""
    found = []
    for part in page.split('<div class="chart">')[1:]:
        svg = part[: part.index("</svg>") + len("</svg>")]
        found.append([element.text or "" for element in ET.fromstring(svg).iter(SVG_TEXT)])
    return found


def test_a_profile_shows_the_standing_the_charts_and_the_rounds(site: Site) -> None:
    world = played(site)
    payouts = world.payouts(site)
    page = site.browser().get("/profiles/alice_a?tournament=8")
    assert page.status_code == 200
    text = page.text
    career = payouts[(1, "alice_a")].nmr + payouts[(2, "alice_a")].nmr
    assert "<dt>Owner</dt><dd>alice</dd>" in text
    assert f'<dd data-value="{STAKES["alice_a"] * 10**18 + career}">' in text
    assert f'<dd data-value="{career}">{nmr_text(career)}</dd>' in text
    assert "<dt>CORR</dt><dd>0.0350</dd>" in text and "<dt>MMC</dt><dd>0.0070</dd>" in text
    assert "#1 of 3" in text

    drawn = charts(text)
    # the newest round by day, final scores, cumulative scores, NMR per round (no USD paid)
    assert len(drawn) == 4
    daily, finals, running, paid = drawn
    assert "alice_a: round 3, score by scoring day" in daily and {"CORR", "MMC"} <= set(daily)
    assert "alice_a: final score per round" in finals and {"CORR", "MMC"} <= set(finals)
    assert "alice_a: cumulative score" in running and {"CORR", "MMC"} <= set(running)
    assert any("NMR paid" in words for words in paid)

    headers, rows = table(text, "Rounds of alice_a")
    assert headers[:3] == ["Round", "State", "Day"]
    assert "CORR" in headers and "MMC" in headers and "Round NMR" in headers
    rounds = by_name(headers, rows, column=0)
    assert list(rounds) == ["3", "2", "1"]  # newest first, the scoring round included
    assert rounds["3"]["State"].text == "scoring" and rounds["3"]["Day"].text == "1"
    assert rounds["3"]["Round NMR"].text == "-"  # not resolved: nothing paid yet
    assert rounds["1"]["State"].text == "resolved" and rounds["1"]["Day"].text == "3"
    assert float(rounds["1"]["CORR"].value or "nan") == CLASSIC_SCORES[1]["alice_a"]["corr"]
    assert rounds["1"]["Round NMR"].value == str(payouts[(1, "alice_a")].nmr)
    assert rounds["2"]["Round NMR"].text == nmr_text(payouts[(2, "alice_a")].nmr)
    assert 'href="/rounds/8/2"' in text
    assert_nothing_hidden(text)


def test_a_new_model_has_charts_that_say_so_and_unknown_models_are_404(site: Site) -> None:
    with transaction(site.sessions) as session:
        account = sign_up(session, site.clock, "erin", "erin@example.org", PASSWORD, hasher=CHEAP)
        create_model(session, site.clock, account, 8, "fresh")
    page = site.browser().get("/profiles/fresh")  # tournament 8 by default
    assert page.status_code == 200
    assert "<dt>Owner</dt><dd>erin</dd>" in page.text
    daily, *finals = charts(page.text)
    assert "no scores yet" in daily
    assert all("no resolved rounds yet" in words for words in finals)
    assert "Not scored in any round yet." in page.text
    for path in (
        "/profiles/nobody",
        "/profiles/fresh?tournament=99",
        "/profiles/fresh?tournament=0",
    ):
        missing = site.browser().get(path)
        assert missing.status_code == 404, path
        assert "no model" in missing.text or "no tournament" in missing.text


def test_a_profile_shows_the_owners_bio_and_link_escaped(site: Site) -> None:
    with transaction(site.sessions) as session:
        account = sign_up(session, site.clock, "erin", "erin@example.org", PASSWORD, hasher=CHEAP)
        model = create_model(session, site.clock, account, 8, "fresh")
    plain = site.browser().get("/profiles/fresh")
    assert plain.status_code == 200 and 'class="card about"' not in plain.text
    with transaction(site.sessions) as session:
        account = session.get_one(Account, account.id)
        set_model_bio(session, account, model.id, "<script>alert(1)</script>\nTrees & ranks")
        set_model_link(session, account, model.id, "<b>my</b> site", 'https://example.org/?a="x"')
        model_id = model.id
    text = site.browser().get("/profiles/fresh").text
    assert '<p class="bio">&lt;script&gt;alert(1)&lt;/script&gt;\nTrees &amp; ranks</p>' in text
    assert "<script>alert(1)" not in text
    assert (
        '<a href="https://example.org/?a=&#34;x&#34;" rel="nofollow noopener">'
        "&lt;b&gt;my&lt;/b&gt; site</a>"
    ) in text
    # a stored link that is not http(s) (written behind the service's back) is text only
    for url in ("javascript:alert(1)", "data:text/html,hi", "https:///nohost", "ftp://x.org/"):
        with transaction(site.sessions) as session:
            stored = session.get_one(Model, model_id)
            stored.link_text, stored.link_url = None, url
        text = site.browser().get("/profiles/fresh").text
        assert '<p class="link">' in text and "<a href=" + '"' + url not in text, url
        assert 'rel="nofollow noopener"' not in text, url


def test_a_2017_profile_charts_logloss_and_usd(site: Site) -> None:
    world = played_2017(site)
    payouts = world.payouts(site)
    page = site.browser().get("/profiles/sharp?tournament=11")
    assert page.status_code == 200
    drawn = charts(page.text)
    assert "Logloss" in drawn[0] and "Logloss" in drawn[1]  # by scoring day, per round
    assert payouts[(1, "sharp")].usd > 0
    assert len(drawn) == 5 and any("USD paid" in words for words in drawn[4])
    headers, rows = table(page.text, "Rounds of sharp")
    rounds = by_name(headers, rows, column=0)
    assert rounds["1"]["Logloss"].text == "0.680000"
    assert rounds["1"]["Originality"].text == "✓"
    assert rounds["1"]["Round USD"].value == str(payouts[(1, "sharp")].usd)
    assert_nothing_hidden(page.text)
