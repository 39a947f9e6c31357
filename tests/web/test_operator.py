"""The operator's pages: the books audited, a tournament's settings edited, its rounds moved
on with an explicit confirmation and scored by hand when the server holds the market feed,
the meta model's CORR checked against numerai-tools, and every page and form closed to
participants and visitors."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher
from numerai_tools import scoring as nt
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import (
    Account,
    DatasetFile,
    FundBook,
    LedgerBalance,
    MetaModel,
    Round,
    RoundResult,
    RoundScore,
    RoundStake,
    RoundStatus,
    Tournament,
)
from crowdquant.db.session import transaction
from crowdquant.fund.rounds import equity_curve
from crowdquant.ledger import wallet
from crowdquant.money import GENESIS_SUPPLY, NMR_UNIT, Currency, format_amount
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.datasets import list_dataset_aliases, set_dataset_alias
from crowdquant.tournament.fund import update_fund
from crowdquant.tournament.models import create_model
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scoring import FeedTargets, days_recorded, score_round
from crowdquant.tournament.staking import StakeChangeKind, change_stake, grant_nmr
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.web.templating import CSRF_COOKIE

from ..tournament.live_market import market_feed
from ..tournament.scored_round import upload
from .conftest import served_site
from .site import PASSWORD, Browser, Site, field_errors

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
TOURNAMENT = "/operator/tournaments/8"
ROUND_1 = f"{TOURNAMENT}/rounds/1"
CONFIRM_ERROR = "Tick the box to confirm: nothing was changed."
NO_FEED = (
    "Scoring needs the market feed that reveals each day&#39;s targets, and this web server"
    " has none for tournament 8"
)
META_CORR = re.compile(r'class="num meta-corr[^"]*" data-value="([^"]*)"')
BEST_CORR = re.compile(r'class="num best-corr" data-value="([^"]*)"')


@pytest.fixture
def fed_site(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Site]:
    """conftest.py's `site`, its app also given tournament 8's market feed (as `crowdquant
    serve` gives it), so that its rounds can be scored from the page."""
    runtimes = {8: TournamentRuntime(targets=FeedTargets(market_feed()))}
    with served_site(sessions, tmp_path, runtimes=runtimes) as found:
        yield found


# --- helpers ------------------------------------------------------------------------------------


def log_in(site: Site, username: str) -> Browser:
    """A browser signed in as `username` (the redirect after signing in is not followed)."""
    browser = site.browser()
    token = browser.token("/login")
    answer = browser.client.post(
        "/login",
        data={"csrf": token, "username": username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return browser


def participant(site: Site, username: str) -> uuid.UUID:
    with transaction(site.sessions) as session:
        account = sign_up(
            session, site.clock, username, f"{username}@example.org", PASSWORD, hasher=CHEAP
        )
        return account.id


def settings_of(site: Site) -> dict[str, object]:
    with transaction(site.sessions) as session:
        return dict(get_tournament(session, 8).settings)


def round_1(site: Site) -> tuple[RoundStatus, list[tuple[uuid.UUID, int]]]:
    """Round 1's status and its frozen stakes (model, at risk)."""
    with transaction(site.sessions) as session:
        round_ = session.scalars(select(Round).where(Round.number == 1)).one()
        stakes = session.execute(
            select(RoundStake.model_id, RoundStake.at_risk).where(RoundStake.round_id == round_.id)
        ).all()
        return round_.status, sorted((model_id, at_risk) for model_id, at_risk in stakes)


def post(browser: Browser, path: str, data: dict[str, str]) -> httpx.Response:
    return browser.submit(path, data, page=TOURNAMENT)


def scores_of_round_1(site: Site) -> tuple[int, int]:
    """Round 1's stored scores and the last day of its recorded targets."""
    with transaction(site.sessions) as session:
        round_ = session.scalars(select(Round).where(Round.number == 1)).one()
        count = session.scalar(
            select(func.count()).select_from(RoundScore).where(RoundScore.round_id == round_.id)
        )
        return int(count or 0), days_recorded(session, round_)


def notice_of(page: httpx.Response) -> str:
    found = re.search(r'class="notice"[^>]*>\s*([^<]*?)\s*<', page.text)
    assert found is not None, page.text
    return found[1]


# --- the books ----------------------------------------------------------------------------------


def test_the_overview_lists_tournaments_and_says_whether_the_books_are_sound(site: Site) -> None:
    alice = participant(site, "alice")
    granted = 1_000 * NMR_UNIT
    with transaction(site.sessions) as session:
        grant_nmr(session, site.ledger, session.get_one(Account, alice), granted, "welcome")
    operator = log_in(site, "olivia")

    page = operator.get("/operator")
    assert page.status_code == 200
    assert "The books are sound" in page.text and "NOT sound" not in page.text
    minted = format_amount(GENESIS_SUPPLY, Currency.NMR)
    assert re.search(rf'id="minted">{re.escape(minted)}<', page.text)
    assert re.search(rf'id="circulating">{re.escape(minted)}<', page.text)
    treasury = format_amount(GENESIS_SUPPLY - granted, Currency.NMR)
    assert re.search(rf'id="treasury">{re.escape(treasury)}<', page.text)
    assert re.search(r'id="burned">0 NMR<', page.text)
    assert "Journal: 2 transactions" in page.text
    assert f'href="{TOURNAMENT}"' in page.text and f'href="{TOURNAMENT}/meta-model"' in page.text
    assert "classic" in page.text and "daily" in page.text and "v1" in page.text
    assert "also served as" not in page.text
    with transaction(site.sessions) as session:
        set_dataset_alias(session, site.clock, "v5.2", "v1")
        set_dataset_alias(session, site.clock, "v5.1", "v1")
    assert '<td>v1<br><span class="muted aliases">also served as v5.1, v5.2</span></td>' in (
        operator.get("/operator").text
    )

    # someone edits a balance behind the ledger's back
    with transaction(site.sessions) as session:
        session.execute(
            update(LedgerBalance)
            .where(LedgerBalance.account == str(wallet(alice)))
            .values(balance=granted + 5 * NMR_UNIT)
        )
    tampered = operator.get("/operator")
    assert tampered.status_code == 200
    assert "The books are NOT sound" in tampered.text
    assert "The books are sound" not in tampered.text
    assert "in the balances table, but the journal gives" in tampered.text
    assert "Conservation: in circulation" in tampered.text and "≠" in tampered.text


# --- settings -----------------------------------------------------------------------------------


def test_settings_are_edited_as_json_and_refused_next_to_the_textarea(site: Site) -> None:
    operator = log_in(site, "olivia")
    before = settings_of(site)
    page = operator.get(TOURNAMENT)
    assert page.status_code == 200 and 'name="settings"' in page.text

    wanted = {"calendar": {"window_minutes": 90}, "payout_rule": {"clip": "0.1"}}
    saved = post(operator, f"{TOURNAMENT}/settings", {"settings": json.dumps(wanted)})
    assert saved.status_code == 200 and saved.url.path == TOURNAMENT
    assert "The settings are saved" in saved.text
    assert settings_of(site) == wanted
    assert "&#34;window_minutes&#34;: 90" in saved.text or '"window_minutes": 90' in saved.text

    refusals = {
        "{not json": "settings are not JSON",
        "[1, 2]": "settings must be a JSON object",
        '{"calendar": {"window_minutes": -5}}': "invalid calendar settings",
        '{"calendar": {"open_days": ["someday"]}}': "invalid calendar settings",
        '{"payout_rule": {"clip": "2"}}': "payout_rule: ",
        '{"payout_rule": {"version": "nope"}}': "payout_rule: ",
        '{"x": NaN}': "settings must be plain JSON",
    }
    for typed, message in refusals.items():
        refused = post(operator, f"{TOURNAMENT}/settings", {"settings": typed})
        assert refused.status_code == 422, typed
        errors = field_errors(refused)
        assert len(errors) == 1 and errors[0].startswith(message), (typed, errors)
        assert 'id="settings-error"' in refused.text
        typed_back = re.search(r'<textarea name="settings"[^>]*>([^<]*)</textarea>', refused.text)
        assert typed_back is not None
        assert typed_back[1].replace("&#34;", '"').replace("&#39;", "'") == typed
        assert settings_of(site) == wanted, typed
    assert before != wanted


def test_the_settings_aliases_are_served_and_a_taken_one_is_refused(site: Site) -> None:
    operator = log_in(site, "olivia")
    with transaction(site.sessions) as session:
        for version in ("v1", "v2"):
            session.add(
                DatasetFile(
                    version=version,
                    filename="features.json",
                    size=2,
                    sha256="0" * 64,
                    storage_key=f"{version}/features.json",
                    published_at=site.clock.now(),
                )
            )
        set_dataset_alias(session, site.clock, "old", "v2")
    saved = post(operator, f"{TOURNAMENT}/settings", {"settings": '{"aliases": ["v5.2"]}'})
    assert saved.status_code == 200 and "The settings are saved" in saved.text
    with transaction(site.sessions) as session:
        assert list_dataset_aliases(session) == {"old": "v2", "v5.2": "v1"}
    typed = '{"aliases": ["v5.3", "old"]}'
    refused = post(operator, f"{TOURNAMENT}/settings", {"settings": typed})
    assert refused.status_code == 422
    assert field_errors(refused) == ["aliases: &#39;old&#39; is already an alias of &#39;v2&#39;"]
    assert settings_of(site) == {"aliases": ["v5.2"]}
    with transaction(site.sessions) as session:
        assert list_dataset_aliases(session) == {"old": "v2", "v5.2": "v1"}


# --- rounds -------------------------------------------------------------------------------------


def test_a_round_is_closed_scored_and_resolved_from_the_pages_with_confirmation(
    site: Site,
) -> None:
    stakes = {"alice": 10, "bob": 30}
    predictions: dict[str, pd.Series] = {}
    models: dict[str, uuid.UUID] = {}
    rng = np.random.default_rng(11)
    with transaction(site.sessions) as session:
        round_ = session.scalars(select(Round).where(Round.number == 1)).one()
        ids = live_ids_of_round(site.storage, round_)
        for name, amount in stakes.items():
            account = sign_up(
                session, site.clock, name, f"{name}@example.org", PASSWORD, hasher=CHEAP
            )
            model = create_model(session, site.clock, account, 8, f"{name}_model")
            grant_nmr(session, site.ledger, account, 100 * NMR_UNIT, name)
            change_stake(
                session,
                site.ledger,
                site.clock,
                model,
                StakeChangeKind.INCREASE,
                amount * NMR_UNIT,
            )
            values = pd.Series(rng.uniform(0, 1, len(ids)), index=ids).round(6)
            upload(session, site.clock, site.storage, round_, account, model.id, values)
            predictions[name], models[name] = values, model.id
    operator = log_in(site, "olivia")
    page = operator.get(TOURNAMENT)
    assert f'action="{ROUND_1}/close"' in page.text
    assert "crowdquant round open --tournament 8 --now" in page.text
    assert "crowdquant serve" in page.text

    # without the box ticked: refused beside it, nothing changes
    refused = post(operator, f"{ROUND_1}/close", {})
    assert refused.status_code == 422
    assert field_errors(refused) == [CONFIRM_ERROR]
    assert 'id="confirm-1-close-error"' in refused.text
    assert round_1(site) == (RoundStatus.OPEN, [])

    # from the wrong state: a readable refusal, nothing changes
    wrong = post(operator, f"{ROUND_1}/resolve", {"confirm": "yes"})
    assert wrong.status_code == 409
    assert "Round 1 is open: it cannot become resolved. Nothing was changed." in wrong.text
    assert round_1(site) == (RoundStatus.OPEN, [])

    closed = post(operator, f"{ROUND_1}/close", {"confirm": "yes"})
    assert closed.status_code == 200 and closed.url.path == TOURNAMENT
    assert "Round 1 is closed: its stakes are frozen." in closed.text
    status, frozen = round_1(site)
    assert status is RoundStatus.CLOSED
    assert frozen == sorted((models[name], amount * NMR_UNIT) for name, amount in stakes.items())
    assert f'action="{ROUND_1}/start-scoring"' in closed.text
    again = post(operator, f"{ROUND_1}/close", {"confirm": "yes"})
    assert again.status_code == 200 and "was already closed" in again.text

    scoring = post(operator, f"{ROUND_1}/start-scoring", {"confirm": "yes"})
    assert scoring.status_code == 200 and "Round 1 is scoring." in scoring.text
    assert round_1(site)[0] is RoundStatus.SCORING

    # this server holds no market feed: no "Score now", and posting anyway is refused
    assert f'action="{ROUND_1}/score"' not in scoring.text
    assert "cannot be run from this server: it needs the market feed" in scoring.text
    by_hand = post(operator, f"{ROUND_1}/score", {"confirm": "yes"})
    assert by_hand.status_code == 409
    assert NO_FEED in by_hand.text and "Nothing was changed." in by_hand.text
    assert scores_of_round_1(site) == (0, 0)

    # the scheduler's part: a week on, the first days of the round are scored
    site.clock.set(site.clock.now() + timedelta(days=7))
    source = FeedTargets(market_feed())
    with transaction(site.sessions) as session:
        round_ = session.scalars(select(Round).where(Round.number == 1)).one()
        assert score_round(session, site.clock, site.storage, round_, source) is not None
        day = days_recorded(session, round_)
        market_date = round_.market_date
        live_era = round_.live_era
        # and the fund trades the meta model's book, then books its days
        assert update_fund(session, site.clock, site.storage, round_.tournament, source)[0] == 1
        update_fund(session, site.clock, site.storage, round_.tournament, source)
        book = session.scalars(select(FundBook)).one()
        curve = equity_curve(session, round_.tournament)
    assert day >= 1 and market_date is not None and len(curve) >= 1

    meta_page = operator.get(f"{TOURNAMENT}/meta-model")
    assert meta_page.status_code == 200
    # numerai-tools: the stake-weighted meta model, scored against the market's targets
    era = market_feed().live_era(1, live_era, pd.Timestamp(market_date))
    targets = market_feed().targets(era, day)["target"].astype(np.float64)
    frame = pd.DataFrame(predictions).sort_index()
    meta = nt.stake_weight(
        nt.gaussian(nt.tie_kept_rank(frame)), pd.Series(stakes, dtype=np.float64)
    )
    expected = nt.numerai_corr(meta.to_frame("meta_model"), targets)["meta_model"]
    shown = META_CORR.findall(meta_page.text)
    assert len(shown) == 1 and shown[0], meta_page.text
    assert abs(float(shown[0]) - expected) < 1e-9
    best = nt.numerai_corr(frame, targets).max()
    assert abs(float(BEST_CORR.findall(meta_page.text)[0]) - best) < 1e-9
    assert ">stake<" in meta_page.text  # weighted by the stakes at risk
    assert f"{book.status}, trades {book.trade_date}" in meta_page.text
    days = "day" if len(curve) == 1 else "days"
    assert f"Equity after {len(curve)} market {days}, from 1:" in meta_page.text
    equity = re.findall(
        r'<td class="num" data-value="([^"]+)">', meta_page.text.split("Equity after")[1]
    )
    assert abs(float(equity[0]) - curve.iloc[-1]) < 1e-12  # newest first

    resolved = post(operator, f"{ROUND_1}/resolve", {"confirm": "yes"})
    assert resolved.status_code == 200
    assert "Round 1 is resolved: its payouts are recorded." in resolved.text
    with transaction(site.sessions) as session:
        round_ = session.scalars(select(Round).where(Round.number == 1)).one()
        assert round_.status is RoundStatus.RESOLVED
        result = session.scalars(select(RoundResult).where(RoundResult.round_id == round_.id))
        recorded = result.one()
        assert (recorded.participants, recorded.stakers) == (2, 2)
        assert recorded.at_risk == 40 * NMR_UNIT
    assert "Every round is resolved." in resolved.text
    assert "The books are sound" in operator.get("/operator").text


def test_a_scoring_round_is_scored_by_hand_when_the_server_holds_the_market_feed(
    fed_site: Site,
) -> None:
    site = fed_site
    rng = np.random.default_rng(5)
    with transaction(site.sessions) as session:
        round_ = session.scalars(select(Round).where(Round.number == 1)).one()
        ids = live_ids_of_round(site.storage, round_)
        for name in ("alice", "bob"):
            account = sign_up(
                session, site.clock, name, f"{name}@example.org", PASSWORD, hasher=CHEAP
            )
            model = create_model(session, site.clock, account, 8, f"{name}_model")
            values = pd.Series(rng.uniform(0, 1, len(ids)), index=ids).round(6)
            upload(session, site.clock, site.storage, round_, account, model.id, values)
    operator = log_in(site, "olivia")
    page = operator.get(TOURNAMENT)
    assert f'action="{ROUND_1}/score"' not in page.text  # only a scoring round is scored
    assert "cannot be run from this server" not in page.text
    early = post(operator, f"{ROUND_1}/score", {"confirm": "yes"})
    assert early.status_code == 409
    assert "Round 1 is open: only a scoring round is scored. Nothing was changed." in early.text

    post(operator, f"{ROUND_1}/close", {"confirm": "yes"})
    scoring = post(operator, f"{ROUND_1}/start-scoring", {"confirm": "yes"})
    assert f'action="{ROUND_1}/score"' in scoring.text and "Score round 1 now" in scoring.text
    assert scores_of_round_1(site) == (0, 0)

    # without the box ticked: refused beside it, nothing scored
    refused = post(operator, f"{ROUND_1}/score", {})
    assert refused.status_code == 422
    assert field_errors(refused) == [CONFIRM_ERROR]
    assert 'id="confirm-1-score-error"' in refused.text
    assert scores_of_round_1(site) == (0, 0)

    # at the close: the similarity figures of day 0, and the meta model fixed
    at_close = post(operator, f"{ROUND_1}/score", {"confirm": "yes"})
    assert at_close.status_code == 200  # the tournament's page, shown with what was added
    assert 'id="rounds"' in at_close.text
    scored, day = scores_of_round_1(site)
    assert scored > 0 and day == 0
    assert notice_of(at_close) == "Scored round 1: 2 new daily scores (days 0)."
    again = post(operator, f"{ROUND_1}/score", {"confirm": "yes"})
    assert notice_of(again) == "Round 1: nothing new to score."
    assert scores_of_round_1(site) == (scored, 0)

    # a week on, the market has revealed the first days
    site.clock.set(site.clock.now() + timedelta(days=7))
    week_on = post(operator, f"{ROUND_1}/score", {"confirm": "yes"})
    more, day = scores_of_round_1(site)
    assert day >= 1 and more > scored
    days = ", ".join(str(k) for k in range(1, day + 1))
    assert notice_of(week_on) == f"Scored round 1: {2 * day} new daily scores (days {days})."
    with transaction(site.sessions) as session:
        assert session.scalars(select(MetaModel.weighting)).one() == "equal"

    meta_page = operator.get(f"{TOURNAMENT}/meta-model")
    assert meta_page.status_code == 200
    shown = META_CORR.findall(meta_page.text)
    assert len(shown) == 1 and shown[0], meta_page.text
    assert '<svg role="img" aria-label="CORR on the last day recorded, by round"' in meta_page.text


# --- access -------------------------------------------------------------------------------------


def test_participants_get_403_and_visitors_are_sent_to_sign_in(site: Site) -> None:
    participant(site, "mallory")
    mallory = log_in(site, "mallory")
    pages = ["/operator", TOURNAMENT, f"{TOURNAMENT}/meta-model", f"{TOURNAMENT}/test-set"]
    pages += [f"{ROUND_1}/close"]
    forms = {
        f"{TOURNAMENT}/settings": {"settings": '{"calendar": {"window_minutes": 90}}'},
        f"{ROUND_1}/close": {"confirm": "yes"},
        f"{ROUND_1}/start-scoring": {"confirm": "yes"},
        f"{ROUND_1}/resolve": {"confirm": "yes"},
        f"{ROUND_1}/score": {"confirm": "yes"},
    }
    for path in pages:
        refused = mallory.get(path)
        assert refused.status_code == 403, path
        assert "These pages are the operator&#39;s." in refused.text
    for path, data in forms.items():
        token = mallory.client.cookies[CSRF_COOKIE]
        refused = mallory.client.post(path, data={**data, "csrf": token})
        assert refused.status_code == 403, path
    assert settings_of(site) == {}
    assert round_1(site) == (RoundStatus.OPEN, [])

    visitor = site.browser()
    for path in pages:
        sent = visitor.get(path)
        assert sent.url.path == "/login" and sent.url.params["next"] == path
    token = visitor.token("/login")
    for path, data in forms.items():
        sent = visitor.client.post(path, data={**data, "csrf": token}, follow_redirects=False)
        assert sent.status_code == 303 and sent.headers["location"].startswith("/login?next=")
    assert round_1(site) == (RoundStatus.OPEN, [])
    with transaction(site.sessions) as session:
        assert session.scalars(select(Tournament.settings)).one() == {}
    # signing in after a refused post lands on the tournament's page, nothing posted
    token = visitor.token("/login")
    landed = visitor.client.post(
        "/login",
        data={
            "csrf": token,
            "username": "olivia",
            "password": PASSWORD,
            "next": f"{ROUND_1}/close",
        },
    )
    assert landed.status_code == 200 and landed.url.path == TOURNAMENT
    assert round_1(site) == (RoundStatus.OPEN, [])


def test_opening_a_round_needs_the_servers_publisher_and_a_confirmation(site: Site) -> None:
    """Without a live-era publisher (`crowdquant serve` has them) the page offers no opening
    and refuses one; the browser test opens a round on a server that has one."""
    browser = log_in(site, "olivia")
    page = browser.get("/operator/tournaments/8")
    assert "Open the next round now" not in page.text
    assert "crowdquant round open --tournament 8 --now" in page.text
    refused = browser.submit(
        "/operator/tournaments/8/rounds/open", {"confirm": "yes"}, page="/operator/tournaments/8"
    )
    assert refused.status_code == 409 and "no publisher for tournament 8" in refused.text
    with transaction(site.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Round)) == 1
