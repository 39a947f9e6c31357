"""A 2017 upload's figures on the participant's pages, on both backends: the upload form's
answer and the listing of recent uploads show the validation log-loss, consistency, and
originality and concordance as pass or fail; the test-set log-loss is on no page."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import ApiScope, Submission, SubmissionCheck
from crowdquant.db.session import transaction
from crowdquant.tournament.accounts import create_api_key, get_account

from ..tournament.live_market import build_dataset_version
from .conftest import LEGACY, legacy_upload, make_legacy_model, served_legacy_site
from .site import Site

FIGURE = re.compile(r'data-figure="(\w+)">(.*?)</dd>')


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    return build_dataset_version(tmp_path_factory.mktemp("legacy"), version="v2")


@pytest.fixture
def legacy_site(
    sessions: sessionmaker[Session], tmp_path: Path, version: DatasetVersion
) -> Iterator[Site]:
    with served_legacy_site(sessions, tmp_path, version) as found:
        yield found


def stored(site: Site, submission: uuid.UUID) -> dict[str, float | None]:
    with transaction(site.sessions) as session:
        rows = session.scalars(
            select(SubmissionCheck).where(SubmissionCheck.submission_id == submission)
        )
        return {row.metric: row.value for row in rows}


def newest(site: Site) -> uuid.UUID:
    with transaction(site.sessions) as session:
        found = session.scalars(select(Submission.id).order_by(Submission.created_at.desc()))
        return found.first() or uuid.uuid4()


def assert_no_test_logloss(text: str, value: float) -> None:
    assert "test_logloss" not in text and "Test logloss" not in text
    for shown in (repr(value), f"{value:.6f}", f"{value:.5f}", f"{value:.4f}"):
        assert shown not in text


def expected(figures: dict[str, float | None]) -> dict[str, str]:
    def passed(value: float | None) -> str:
        if value is None:
            return "-"
        word = "pass" if value >= 0.5 else "fail"
        return f'<span class="{"positive" if value >= 0.5 else "negative"}">{word}</span>'

    loss, consistency = figures["validation_logloss"], figures["consistency"]
    assert loss is not None and consistency is not None
    return {
        "validation_logloss": f"{loss:.6f}",
        "consistency": f"{consistency:.2%}",
        "originality": passed(figures["originality"]),
        "concordance": passed(figures["concordance"]),
    }


def test_a_2017_upload_shows_its_figures_and_never_the_test_logloss(legacy_site: Site) -> None:
    site = legacy_site
    alice, bob = site.signed_up("alice"), site.signed_up("bob")
    model = make_legacy_model(site, alice, "alice_legacy")
    other = make_legacy_model(site, bob, "bob_legacy")
    content = legacy_upload(site, 5)

    first = alice.submit(
        "/submit", {"model": model}, files={"file": ("p.csv", content, "text/csv")}
    )
    assert first.status_code == 200, first.text
    first_id = newest(site)
    figures = stored(site, first_id)
    assert set(figures) == {
        "validation_logloss",
        "consistency",
        "originality",
        "concordance",
        "test_logloss",
    }
    answer = first.text[first.text.index('role="status"') : first.text.index("</section>")]
    assert dict(FIGURE.findall(answer)) == expected(figures)
    assert "Validation logloss" in answer and "Originality" in answer

    # bob's copy of alice's file is not original: his answer says it fails
    site.clock.advance(timedelta(minutes=1))
    copied = bob.submit("/submit", {"model": other}, files={"file": ("c.csv", content, "text/csv")})
    assert copied.status_code == 200, copied.text
    copy_figures = stored(site, newest(site))
    assert copy_figures["originality"] == 0.0
    answer = copied.text[copied.text.index('role="status"') : copied.text.index("</section>")]
    assert dict(FIGURE.findall(answer))["originality"] == '<span class="negative">fail</span>'

    # a second upload of alice's: both are listed with their own figures
    site.clock.advance(timedelta(minutes=1))
    again = alice.submit(
        "/submit",
        {"model": model},
        files={"file": ("q.csv", legacy_upload(site, 6), "text/csv")},
    )
    assert again.status_code == 200, again.text
    second = stored(site, newest(site))
    listing = alice.get("/submit").text
    recent = listing[listing.index("Your recent uploads") :]
    rows = [dict(FIGURE.findall(row)) for row in recent.split("<tr>")[2:]]
    assert rows == [expected(second), expected(figures)]  # newest first

    hidden = [figures["test_logloss"], second["test_logloss"], copy_figures["test_logloss"]]
    pages = [first.text, again.text, listing]
    pages += [alice.get(path).text for path in ("/dashboard", "/models", "/datasets")]
    pages += [copied.text, bob.get("/submit").text, bob.get("/dashboard").text]
    pages += [alice.get(f"/models/{model}/stake").text, bob.get(f"/models/{other}/stake").text]
    for value in hidden:
        assert value is not None
        for page in pages:
            assert_no_test_logloss(page, value)


def test_the_operator_alone_sees_the_test_set_record(legacy_site: Site) -> None:
    site = legacy_site
    alice, bob = site.signed_up("alice"), site.signed_up("bob")
    models = {"alice_legacy": make_legacy_model(site, alice, "alice_legacy")}
    models["bob_legacy"] = make_legacy_model(site, bob, "bob_legacy")
    values: dict[str, float] = {}
    for seed, (browser, name) in enumerate(((alice, "alice_legacy"), (bob, "bob_legacy"))):
        content = legacy_upload(site, 10 + seed)
        sent = browser.submit(
            "/submit", {"model": models[name]}, files={"file": ("p.csv", content, "text/csv")}
        )
        assert sent.status_code == 200, sent.text
        found = stored(site, newest(site))["test_logloss"]
        assert found is not None
        values[name] = found
        site.clock.advance(timedelta(minutes=1))

    operator = site.logged_in(site.operator)
    page = operator.get(f"/operator/tournaments/{LEGACY}/test-set")
    assert page.status_code == 200, page.text
    assert "The test-set record of tournament 11" in page.text
    assert 'data-weighting="stake"' in page.text  # the default weighting
    body = page.text[page.text.index('aria-label="Test-set logloss"') :]
    rows = {
        found[0]: found[1:]
        for found in re.findall(
            r"<tr>\s*<td>(\w+)</td>\s*<td[^>]*>([^<]*)</td>\s*<td[^>]*>([^<]*)</td>", body
        )
    }
    assert rows == {name: (f"{value:.6f}", f"{value:.6f}") for name, value in values.items()}
    assert "Round 1" in body
    linked = operator.get(f"/operator/tournaments/{LEGACY}").text
    assert f'href="/operator/tournaments/{LEGACY}/test-set"' in linked
    classic = operator.get("/operator/tournaments/8/test-set")
    assert classic.status_code == 200 and "Only a tournament under the 2017 rules" in classic.text

    # participants are refused the page; visitors are sent to sign in
    refused = alice.get(f"/operator/tournaments/{LEGACY}/test-set")
    assert refused.status_code == 403
    sent = site.browser().get(f"/operator/tournaments/{LEGACY}/test-set")
    assert sent.url.path == "/login"

    # no participant page shows a test-set figure
    paths = ["/dashboard", "/models", "/submit", "/datasets", f"/rounds?tournament={LEGACY}"]
    paths += [f"/rounds/{LEGACY}/1", f"/leaderboard?tournament={LEGACY}"]
    paths += [f"/models/{models['alice_legacy']}/stake"]
    paths += [f"/profiles/{name}?tournament={LEGACY}" for name in models]
    for path in paths:
        shown = alice.get(path)
        assert shown.status_code == 200, path
        for value in values.values():
            assert_no_test_logloss(shown.text, value)
    for value in values.values():
        assert_no_test_logloss(refused.text, value)

    # nor does the REST or the GraphQL API, to the model's owner
    with transaction(site.sessions) as session:
        key = create_api_key(
            session, site.clock, get_account(session, "alice"), "k", [ApiScope.READ]
        )
        headers = {"Authorization": f"Token {key.token}"}
    model = models["alice_legacy"]
    rest = httpx.Client(base_url=f"{site.url}/api/v1", headers=headers, timeout=30)
    listed = rest.get(f"/models/{model}/submissions")
    assert listed.status_code == 200 and len(listed.json()) == 1
    assert set(listed.json()[0]["checks"]) == {
        "validation_logloss",
        "consistency",
        "originality",
        "concordance",
    }
    answers = [listed, rest.get(f"/submissions/{listed.json()[0]['id']}")]
    rest.close()
    query = f'{{ submissions(modelId: "{model}") {{ id filename selected }} }}'
    answers.append(httpx.post(f"{site.url}/", json={"query": query}, headers=headers))
    for answer in answers:
        assert answer.status_code == 200, answer.text
        for value in values.values():
            assert_no_test_logloss(answer.text, value)
