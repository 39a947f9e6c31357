"""The site in a real browser: Debian's Chromium driven by Playwright, on PostgreSQL.

A participant's whole week (sign up → model → API key → download the live file → a bad
upload, then a good one → stake → the operator closes and scores the round → the scores
on the chart and the leaderboard → resolution pays into the wallet), and the operator's
round controls; the front page and a profile at desktop and phone width, and the front
page's countdown by the tournament's clock. Screenshots of the main pages go to
`artifacts/screenshots/` (the folder to collect as CI artefacts), at desktop and at phone
width.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from crowdquant.clock import ManualClock
from crowdquant.compute.sandbox import SandboxLimits
from crowdquant.data.pipeline import MAIN_TARGET
from crowdquant.db import migrate
from crowdquant.db.models import Account, Cadence, Model, Round, Rules
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.compute_jobs import ComputeWorker
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import FeedPublisher, open_round
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scoring import FeedTargets
from crowdquant.tournament.staking import grant_nmr
from crowdquant.tournament.submissions import live_ids_of_round, submit_predictions
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from ..api.server import serve
from ..conftest import PostgresServer
from ..mail.mailbox import Mailbox, links_in
from ..tournament.live_market import TUESDAY_NOON, local_storage
from ..tournament.scored_round import market_feed
from .conftest import CHEAP
from .site import PASSWORD

SCREENSHOTS = Path(__file__).parents[2] / "artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
QUICK = SandboxLimits(memory_bytes=2 << 30, cpu_seconds=60, wall_seconds=60, processes=32)


def chromium_path() -> str:
    found = os.environ.get("CROWDQUANT_TEST_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("no Chromium: install Debian's chromium (.ci/run does) or set"
                    " CROWDQUANT_TEST_CHROMIUM")  # fmt: skip
    return found


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Stage:
    url: str
    clock: ManualClock
    sessions: object
    ledger: SqlLedger
    round_id: object
    targets: FeedTargets
    mailbox: Mailbox
    storage: LocalStorage

    def grant(self, username: str, nmr: int) -> None:
        with transaction(self.sessions) as session:  # type: ignore[arg-type]
            account = session.scalars(select(Account).where(Account.username == username)).one()
            grant_nmr(session, self.ledger, account, nmr * NMR_UNIT, f"welcome-{username}")


@pytest.fixture
def stage(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[Stage]:
    """Tournament 8 with round 1 open on the synthetic market, two other participants who
    uploaded, the operator `olivia`, the books started; served with the market's targets."""
    clock = ManualClock(TUESDAY_NOON + timedelta(minutes=5))
    storage = local_storage(tmp_path / "files")
    ledger = SqlLedger(clock)
    feed = market_feed()
    with postgres_server.database() as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        sessions = session_factory(engine)
        try:
            with transaction(sessions) as session:
                ledger.genesis(session)
                create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
                sign_up(
                    session, clock, "olivia", "olivia@example.org", PASSWORD, hasher=CHEAP
                ).is_operator = True
                publisher = FeedPublisher(feed, storage)
                round_ = open_round(session, clock, get_tournament(session, 8), publisher)
                ids = live_ids_of_round(storage, round_)
                for seed, name in enumerate(("bob", "carol")):
                    owner = sign_up(
                        session, clock, name, f"{name}@example.org", PASSWORD, hasher=CHEAP
                    )
                    model = create_model(session, clock, owner, 8, f"{name}_model")
                    values = np.random.default_rng(seed).uniform(0.05, 0.95, len(ids))
                    frame = pd.DataFrame({"id": ids.astype(str), "prediction": values})
                    submit_predictions(
                        session, clock, storage, owner, model.id, round_, "p.csv",
                        frame.to_csv(index=False).encode(), live_ids=ids,
                    )  # fmt: skip
                round_id = round_.id
            targets = FeedTargets(feed)
            mailbox = Mailbox()
            app = create_app(
                Settings(home=tmp_path / "home"),
                clock=clock,
                sessions=sessions,
                storage=storage,
                ledger=ledger,
                hasher=CHEAP,
                mailer=mailbox,
                runtimes={8: TournamentRuntime(publisher, targets, targets)},
            )
            with serve(app) as served:
                yield Stage(served, clock, sessions, ledger, round_id, targets, mailbox, storage)
        finally:
            engine.dispose()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def fits_the_screen(page: Page) -> bool:
    """No sideways scrolling of the page itself (wide tables scroll inside their box)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def log_in(browser: Browser, url: str, username: str) -> Page:
    page = browser.new_page(viewport=DESKTOP, base_url=url)  # type: ignore[arg-type]
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page).to_have_url(f"{url}/dashboard")
    return page


def operator_step(page: Page, round_number: int, button: str) -> None:
    """Tick the confirmation of the round's control and press it."""
    form = page.locator("form.control", has=page.locator(f"button:has-text('{button}')"))
    form.locator("input[name=confirm]").check()
    form.locator("button").click()
    expect(page.locator(".notice")).to_contain_text(f"{round_number}")


def good_predictions(stage: Stage, ids: pd.Index) -> pd.DataFrame:
    """Predictions that know the answer: the round's final target plus a little noise."""
    with transaction(stage.sessions) as session:  # type: ignore[arg-type]
        round_ = session.get_one(Round, stage.round_id)
        target = stage.targets.targets(round_, stage.targets.horizon)[MAIN_TARGET]
    noise = np.random.default_rng(5).normal(0, 0.05, len(ids))
    values = target.reindex(ids).fillna(0.5).to_numpy() + noise
    return pd.DataFrame({"id": ids.astype(str), "prediction": values.clip(0.01, 0.99)})


def test_a_participants_week(chromium: Browser, stage: Stage, tmp_path: Path) -> None:
    page = chromium.new_page(viewport=DESKTOP, base_url=stage.url)  # type: ignore[arg-type]
    page.set_default_timeout(15_000)

    # sign up, then follow the mailed link
    page.goto("/signup")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=email]", "alice@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign up')")
    expect(page.locator("main")).to_contain_text("Check your inbox to finish signing up")
    (link,) = links_in(stage.mailbox.receive())
    page.goto(link)
    expect(page.locator("main")).to_contain_text("Create the account alice?")
    page.click("button:has-text('Create my account')")
    expect(page).to_have_url(f"{stage.url}/dashboard")
    expect(page.locator("header")).to_contain_text("TOURNAMENT 8")
    # the countdown follows the tournament's clock (stopped here), not the browser's
    expect(page.locator("header")).to_contain_text("0D 0H 55M 0S REMAIN")
    shot(page, "dashboard-new")

    # a model
    page.goto("/models")
    page.fill("input[name=name]", "alice_model")
    page.click("button:has-text('Create model')")
    expect(page.locator("table.models")).to_contain_text("alice_model")
    shot(page, "models")

    # an API key, shown once
    page.goto("/settings")
    page.fill("#new-key input[name=name]", "laptop")
    page.check("#new-key input[value=upload]")
    page.click("button:has-text('Create key')")
    expect(page.locator("body")).to_contain_text("will not be shown again")
    shot(page, "settings-new-key")
    page.goto("/settings")
    expect(page.locator("body")).not_to_contain_text("will not be shown again")

    # the live file
    page.goto("/datasets")
    with page.expect_download() as download:
        page.locator("a.button[download]").first.click()
    live = tmp_path / "live.parquet"
    download.value.save_as(live)
    ids = pd.read_parquet(live).index
    shot(page, "datasets")

    # a bad upload, then a good one
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": ["nobody"], "prediction": [0.5]}).to_csv(bad, index=False)
    page.goto("/submit")
    page.set_input_files("input[name=file]", str(bad))
    page.click("button:has-text('Upload')")
    expect(page.locator(".negative")).to_contain_text("Invalid")
    shot(page, "submit-invalid")
    good = tmp_path / "predictions.csv"
    good_predictions(stage, ids).to_csv(good, index=False)
    page.goto("/submit")
    page.set_input_files("input[name=file]", str(good))
    page.click("button:has-text('Upload')")
    expect(page.locator(".positive")).to_contain_text(f"Valid: {len(ids):,} rows")

    # stake, with payouts to the wallet
    stage.grant("alice", 100)
    page.goto("/models")
    page.click("table.models a:has-text('Stake')")
    page.fill("#change-stake input[name=amount]", "500")
    page.click("#change-stake button")
    expect(page.locator("#change-stake .field-error")).to_be_visible()  # more than the wallet
    page.fill("#change-stake input[name=amount]", "50")
    page.click("#change-stake button")
    page.check("#payout-mode input[value=wallet]")
    page.click("#payout-mode button")
    expect(page.locator("body")).to_contain_text("50 NMR")
    shot(page, "stake")

    # the operator closes the round, starts its scoring and scores it
    operator = log_in(chromium, stage.url, "olivia")
    operator.goto("/operator/tournaments/8")
    operator_step(operator, 1, "Close round 1")
    operator_step(operator, 1, "Start scoring round 1")
    stage.clock.advance(timedelta(days=40))  # the market reveals all twenty days
    operator = log_in(chromium, stage.url, "olivia")  # sign-ins last two weeks
    operator.goto("/operator/tournaments/8")
    operator_step(operator, 1, "Score round 1 now")
    shot(operator, "operator-tournament")

    # the participant sees the scores on the chart and the round on the leaderboard
    page = log_in(chromium, stage.url, "alice")
    page.goto("/profiles/alice_model")
    daily = page.locator(".chart", has_text="round 1, score by scoring day")
    expect(daily.locator("svg")).to_be_visible()
    expect(daily).to_contain_text("CORR")  # the legend: a line of CORR by day
    shot(page, "profile-scored")
    page.goto("/rounds/8/1")
    expect(page.locator("body")).to_contain_text("alice_model")
    shot(page, "round-scored")

    # resolution pays into the wallet: 5 % of 50 NMR, the clip of a winning round
    operator_step(operator, 1, "Resolve round 1")
    page.goto("/wallet")
    expect(page.locator("body")).to_contain_text("2.5 NMR")
    expect(page.locator("body")).to_contain_text("payout")
    shot(page, "wallet")
    page.goto("/leaderboard")
    row = page.locator("tr", has=page.locator("a:has-text('alice_model')"))
    expect(row).to_contain_text("2.5 NMR")  # career NMR
    shot(page, "leaderboard")
    page.goto("/rounds")
    expect(page.locator("body")).to_contain_text("Results")
    shot(page, "past-tournaments")
    front_page_and_profile(page)
    operator.goto("/operator")
    expect(operator.locator("body")).to_contain_text("sound")
    shot(operator, "operator-overview")
    operator.click("a:has-text('The fund')")
    expect(operator.locator("h1")).to_have_text("The fund")
    shot(operator, "operator-fund")


def test_the_operators_round_controls_need_a_confirmation(chromium: Browser, stage: Stage) -> None:
    page = log_in(chromium, stage.url, "olivia")
    page.goto("/operator/tournaments/8")
    form = page.locator("form.control", has=page.locator("button:has-text('Close round 1')"))
    form.locator("input[name=confirm]").evaluate("box => box.removeAttribute('required')")
    form.locator("button").click()
    expect(page.locator(".field-error")).to_be_visible()  # next to the checkbox
    with transaction(stage.sessions) as session:  # type: ignore[arg-type]
        assert str(session.get_one(Round, stage.round_id).status) == "open"
    operator_step(page, 1, "Close round 1")
    with transaction(stage.sessions) as session:  # type: ignore[arg-type]
        assert str(session.get_one(Round, stage.round_id).status) == "closed"

    stage.clock.advance(timedelta(hours=1))  # past round 1's window
    page.goto("/operator/tournaments/8")
    opening = page.locator("form.open")
    opening.locator("input[name=confirm]").check()
    opening.locator("button").click()
    expect(page.locator(".notice")).to_contain_text("Round 2 is open")
    expect(page.locator("#round-2 .status")).to_have_text("open")
    shot(page, "operator-opened")
    page.goto("/operator/tournaments/8/meta-model")
    shot(page, "operator-meta-model")


def ranks_features(live: pd.DataFrame) -> pd.DataFrame:
    features = live[[c for c in live.columns if str(c).startswith("feature")]]
    return pd.DataFrame({"prediction": features.sum(axis=1).rank(pct=True)}, index=live.index)


def test_a_participant_runs_an_uploaded_model_from_the_site(
    chromium: Browser, stage: Stage, tmp_path: Path
) -> None:
    page = log_in(chromium, stage.url, "bob")
    page.goto("/models")
    page.click("table.models a:has-text('Model upload')")
    expect(page.locator("h1")).to_contain_text("Model upload of bob_model")

    pickle = tmp_path / "predict.pkl"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        pickle.write_bytes(cloudpickle.dumps(ranks_features))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    page.set_input_files("#upload-pickle input[name=file]", str(pickle))
    page.click("#upload-pickle button")
    expect(page.locator(".notice")).to_contain_text("runs on every round")
    with page.expect_download() as download:
        page.locator("a:has-text('Download the pickle')").click()
    assert Path(download.value.path()).read_bytes() == pickle.read_bytes()

    page.click("#run-now button")
    expect(page.locator("details.job")).to_contain_text("pending")
    worker = ComputeWorker(stage.sessions, stage.clock, stage.storage, limits=QUICK)  # type: ignore[arg-type]
    assert worker.run_until_idle()
    page.reload()
    job = page.locator("details.job")
    expect(job).to_contain_text("success")
    expect(job).to_contain_text("validating")
    expect(job).to_contain_text("Ran under default (sha256:")
    shot(page, "model-upload")

    page.click("button:has-text('Disable')")
    expect(page.locator(".notice")).to_contain_text("no longer runs")
    page.click("#run-now button")
    expect(page.locator("#run-now .error")).to_contain_text("no enabled upload")


def front_page_and_profile(page: Page) -> None:
    """The front page after round 1 resolved, and alice_model's profile, at desktop and phone
    width: the meta model's CORR drawn in colour, and nothing wider than the screen (the
    profile's wide table scrolls inside its box)."""
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)  # type: ignore[arg-type]
        page.goto("/")
        expect(page.locator(".last-round")).to_contain_text("Round 1")
        expect(page.locator(".results")).to_contain_text("NMR paid out")
        expect(page.locator("table[aria-label^='Top of the leaderboard']")).to_contain_text(
            "alice_model"
        )
        line = page.locator(".meta-model-corr svg path[stroke='#1f77b4'][fill='none']").first
        expect(line).to_be_attached()  # the line (and its legend); the policy lets colours in
        assert line.evaluate("path => getComputedStyle(path).stroke") == "rgb(31, 119, 180)"
        assert fits_the_screen(page), width
        shot(page, f"{width}-front-page")
        page.goto("/profiles/alice_model")
        expect(page.locator(".chart svg").first).to_be_visible()
        assert fits_the_screen(page), width
        if width == "phone":
            box = page.locator(".table-wrap").last
            assert box.evaluate("box => getComputedStyle(box).overflowX") == "auto"
            assert box.evaluate("box => box.scrollWidth > box.clientWidth")  # scrolls inside
        shot(page, f"{width}-profile")


def test_the_front_page_counts_down_by_the_tournaments_clock(
    chromium: Browser, stage: Stage
) -> None:
    page = chromium.new_page(viewport=PHONE, base_url=stage.url)  # type: ignore[arg-type]
    with transaction(stage.sessions) as session:  # type: ignore[arg-type]
        closes = session.get_one(Round, stage.round_id).close_time
    left = int((closes - stage.clock.now()).total_seconds())  # the clock is in 2001
    page.goto("/")
    countdown = page.locator(".open-round .countdown")
    expect(countdown).to_contain_text("REMAIN")
    days, hours, minutes, seconds = map(int, re.findall(r"\d+", countdown.inner_text()))
    shown = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    assert left - 60 <= shown <= left  # counted from the tournament's time, then the wall's
    assert fits_the_screen(page)
    shot(page, "phone-front-page-open-round")


@pytest.mark.parametrize("path", ["/leaderboard", "/rounds", "/login"])
def test_public_pages_fit_a_phone(chromium: Browser, stage: Stage, path: str) -> None:
    page = chromium.new_page(viewport=PHONE, base_url=stage.url)  # type: ignore[arg-type]
    page.goto(path)
    assert fits_the_screen(page)
    shot(page, f"phone{path.replace('/', '-')}")


def test_a_participants_pages_fit_a_phone(chromium: Browser, stage: Stage) -> None:
    page = log_in(chromium, stage.url, "bob")
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    with transaction(stage.sessions) as session:  # type: ignore[arg-type]
        model = session.scalars(select(Model).where(Model.name == "bob_model")).one()
    for path in ("/dashboard", "/submit", f"/models/{model.id}/stake", "/wallet", "/settings"):
        page.goto(path)
        assert fits_the_screen(page), path
        shot(page, f"phone{path.replace('/', '-')}")
