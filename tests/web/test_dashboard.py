"""The dashboard, the dataset downloads and uploading predictions through the pages.

Also the helpers the other tests of a participant's pages share: a model made through the
page, its id, the open round's live ids and a predictions file built from them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from starlette.requests import Request

from crowdquant.db.models import Model, Round, RoundStatus, Submission, SubmissionStatus
from crowdquant.db.session import transaction
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.tournament.rounds import current_round
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import get_tournament, update_settings

from ..api.server import serve
from ..tournament.live_market import stored_bytes
from .conftest import CHEAP
from .site import Browser, Site, field_errors

LINK = re.compile(r'href="([^"]*/files/[^"]+)"')


# --- helpers shared by the tests of a participant's pages ----------------------------------------


def new_model(site: Site, browser: Browser, name: str, tournament: int = 8) -> str:
    """A model made through the page; its id."""
    made = browser.submit("/models", {"tournament": str(tournament), "name": name})
    assert made.status_code == 200 and made.url.path == "/models", made.text
    return model_id(site, name, tournament)


def model_id(site: Site, name: str, tournament: int = 8) -> str:
    with transaction(site.sessions) as session:
        found = session.scalar(
            select(Model.id).where(
                Model.name == name, Model.tournament_id == get_tournament(session, tournament).id
            )
        )
    assert found is not None
    return str(found)


def live_ids(site: Site, tournament: int = 8) -> pd.Index:
    """The ids of the tournament's current round's live era."""
    with transaction(site.sessions) as session:
        round_ = current_round(session, get_tournament(session, tournament))
        assert round_ is not None
        return live_ids_of_round(site.storage, round_)


def predictions_csv(ids: pd.Index, seed: int = 0) -> bytes:
    values = np.random.default_rng(seed).uniform(0.05, 0.95, len(ids))
    return pd.DataFrame({"id": ids.astype(str), "prediction": values}).to_csv(index=False).encode()


def upload(browser: Browser, model: str, content: bytes, name: str = "predictions.csv") -> str:
    """Upload through the form; the answer page's text (unescaped)."""
    answer = browser.submit(
        "/submit", {"model": model}, files={"file": (name, content, "text/csv")}
    )
    assert answer.status_code == 200, answer.text
    return html.unescape(answer.text)


def submissions(site: Site) -> list[tuple[str, SubmissionStatus, int | None, str | None]]:
    with transaction(site.sessions) as session:
        rows = session.execute(
            select(Model.name, Submission.status, Submission.n_rows, Submission.error)
            .join(Model, Model.id == Submission.model_id)
            .order_by(Submission.created_at)
        ).all()
    return [(name, status, rows_, error) for name, status, rows_, error in rows]


# --- the dashboard -------------------------------------------------------------------------------


def test_a_visitor_is_sent_to_sign_in_from_every_participant_page(site: Site) -> None:
    browser = site.browser()
    for path in ("/dashboard", "/datasets", "/submit", "/models", "/wallet", "/settings"):
        answer = browser.get(path)
        assert answer.url.path == "/login" and answer.url.params["next"] == path
    token = browser.token("/login")
    posted = browser.client.post("/submit", data={"csrf": token, "model": "x"})
    assert posted.url.path == "/login"


def test_a_visitors_upload_is_sent_to_sign_in_before_its_form_is_read(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    form = Request.form

    def reading(request: Request, **limits: Any) -> Any:
        read.append(request.url.path)
        return form(request, **limits)

    monkeypatch.setattr(Request, "form", reading)
    browser = site.browser()
    token = browser.token("/login")
    posted = browser.client.post(
        "/submit",
        data={"csrf": token, "model": "x"},
        files={"file": ("p.csv", b"id,prediction\n" * 50_000, "text/csv")},
    )
    assert posted.url.path == "/login"
    assert read == []


def test_a_fresh_participant_sees_the_open_round_and_an_empty_wallet(site: Site) -> None:
    browser = site.signed_up("alice")
    page = browser.get("/dashboard")
    assert page.status_code == 200
    with transaction(site.sessions) as session:
        round_ = current_round(session, get_tournament(session, 8))
        assert round_ is not None
        closes = round_.close_time.isoformat()
    assert "Tournament 8" in page.text and "Round 1" in page.text
    assert f'data-countdown="{closes}"' in page.text
    # the countdowns follow the tournament's clock: its time and rate (stopped, here)
    assert f'<body data-now="{site.clock.now().isoformat()}" data-rate="0.0">' in page.text
    assert "state-open" in page.text and "0 NMR" in page.text and "$0.00" in page.text
    assert "You have no model yet" in page.text
    for link in ("/datasets", "/submit", "/models", "/wallet"):
        assert f'href="{link}"' in page.text


def test_the_dashboard_shows_each_model_with_its_latest_upload_and_stake(site: Site) -> None:
    browser = site.signed_up("alice")
    first = new_model(site, browser, "alice_model")
    new_model(site, browser, "alice_second")
    ids = live_ids(site)
    upload(browser, first, predictions_csv(ids))
    page = browser.get("/dashboard").text
    row = page[page.index("<td>alice_model</td>") : page.index("<td>alice_second</td>")]
    assert "state-valid" in row and f">{len(ids)}<" in row and "0 NMR" in row
    second = page[page.index("<td>alice_second</td>") :]
    assert "none yet" in second.split("</tr>")[0]


# --- datasets ------------------------------------------------------------------------------------


def test_the_dataset_links_are_signed_downloads_of_the_files(site: Site) -> None:
    browser = site.signed_up("alice")
    page = browser.get("/datasets")
    assert page.status_code == 200 and "Live data of round 1" in page.text
    links = {html.unescape(found) for found in LINK.findall(page.text)}
    by_name = {link.split("?")[0].rsplit("/", 1)[-1]: link for link in links}
    assert "live.parquet" in page.text  # a link to the current round's own file
    assert set(by_name) == {"live_1.parquet"}
    for name, link in by_name.items():
        assert "signature=" in link and "expires=" in link
        answer = browser.get(link)
        assert answer.status_code == 200
        assert answer.content == stored_bytes(site.storage, f"v1/{name}")
    tampered = by_name["live_1.parquet"].replace("live_1", "live")
    assert browser.get(tampered).status_code == 403


# --- uploading predictions -----------------------------------------------------------------------


def test_a_good_upload_is_valid_and_a_bad_one_shows_why(site: Site) -> None:
    browser = site.signed_up("alice")
    model = new_model(site, browser, "alice_model")
    form = browser.get("/submit").text
    assert 'enctype="multipart/form-data"' in form and f'value="{model}"' in form
    ids = live_ids(site)

    good = upload(browser, model, predictions_csv(ids))
    assert f"Valid: {len(ids):,} rows" in good

    site.clock.advance(timedelta(minutes=1))
    bad = upload(browser, model, predictions_csv(ids[:-5], seed=1), "short.csv")
    recorded = submissions(site)
    assert [(name, status, rows) for name, status, rows, _ in recorded] == [
        ("alice_model", SubmissionStatus.VALID, len(ids)),
        ("alice_model", SubmissionStatus.INVALID, None),
    ]
    error = recorded[1][3]
    assert error and f"Invalid: {error}" in bad
    dashboard = browser.get("/dashboard").text  # the newest upload is the invalid one
    assert "state-invalid" in dashboard


def test_refused_uploads_show_the_error_next_to_the_field_and_store_nothing(
    site: Site,
) -> None:
    alice, bob = site.signed_up("alice"), site.signed_up("bob")
    model = new_model(site, alice, "alice_model")
    bobs = new_model(site, bob, "bob_model")
    content = predictions_csv(live_ids(site))

    no_file = alice.submit("/submit", {"model": model})
    assert no_file.status_code == 422
    assert field_errors(no_file) == ["choose a predictions file (CSV or Parquet) to upload"]

    not_mine = alice.submit(
        "/submit", {"model": bobs}, files={"file": ("p.csv", content, "text/csv")}
    )
    assert not_mine.status_code == 422
    assert field_errors(not_mine) == ["choose one of your models"]
    assert "bob_model" not in not_mine.text

    with transaction(site.sessions) as session:
        round_ = session.scalars(select(Round)).one()
        round_.status = RoundStatus.RESOLVED
    resolved = alice.submit(
        "/submit", {"model": model}, files={"file": ("p.csv", content, "text/csv")}
    )
    assert resolved.status_code == 409
    assert field_errors(resolved) == ["round 1 is resolved and takes no more submissions"]
    assert submissions(site) == []
    assert not any(site.storage.root.joinpath("submissions").rglob("*.*"))


def test_the_site_takes_no_uploads_for_a_closed_live_tournament_and_shows_no_live_file(
    site: Site,
) -> None:
    alice = site.signed_up("alice")
    model = new_model(site, alice, "alice_model")
    content = predictions_csv(live_ids(site))
    with transaction(site.sessions) as session:
        update_settings(session, get_tournament(session, 8), {"live": "closed"})

    page = alice.get("/datasets").text
    assert "Closed live" in page and "live_1.parquet" not in page and "live.parquet" not in page
    refused = alice.submit(
        "/submit", {"model": model}, files={"file": ("p.csv", content, "text/csv")}
    )
    assert refused.status_code == 403
    [error] = field_errors(refused)
    assert "tournament 8 runs closed-live" in html.unescape(error)
    assert submissions(site) == []
    assert not any(site.storage.root.joinpath("submissions").rglob("*.*"))


@pytest.fixture
def small_uploads(site: Site, tmp_path: Path) -> Iterator[Site]:
    """The same site served by a second app that takes uploads of at most 1 KiB."""
    app = create_app(
        Settings(home=tmp_path / "small"),
        clock=site.clock,
        sessions=site.sessions,
        storage=site.storage,
        ledger=site.ledger,
        hasher=CHEAP,
        max_upload_bytes=1024,
        mailer=site.mailbox,
    )
    with serve(app) as url:
        small = Site(url, site.clock, site.storage, site.sessions, site.ledger, site.mailbox)
        try:
            yield small
        finally:
            for browser in small.browsers:
                browser.close()


def test_a_file_over_the_limit_is_refused_next_to_the_file_field(small_uploads: Site) -> None:
    site = small_uploads
    browser = site.signed_up("alice")
    model = new_model(site, browser, "alice_model")
    content = predictions_csv(live_ids(site))
    assert len(content) > 1024
    answer = browser.submit(
        "/submit", {"model": model}, files={"file": ("p.csv", content, "text/csv")}
    )
    assert answer.status_code == 413
    assert field_errors(answer) == ["the upload is over the limit of 1,024 bytes"]
    with transaction(site.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0
