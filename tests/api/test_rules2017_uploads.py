"""A 2017 upload's figures: validation log-loss, consistency and originality shown to the
participant in the upload's answer; the test-set log-loss stored for the operator and never
shown through GraphQL, REST or the pages."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import (
    ApiScope,
    Submission,
    SubmissionCheck,
    SubmissionStatus,
)
from crowdquant.db.session import transaction
from crowdquant.tournament.accounts import create_api_key, get_account

from ..tournament.live_market import build_dataset_version
from ..web.conftest import legacy_upload, make_legacy_model, served_legacy_site
from ..web.site import Site

SHOWN = {"validation_logloss", "consistency", "originality", "concordance"}


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    return build_dataset_version(tmp_path_factory.mktemp("legacy"), version="v2")


@pytest.fixture
def site(
    sessions: sessionmaker[Session], tmp_path: Path, version: DatasetVersion
) -> Iterator[Site]:
    with served_legacy_site(sessions, tmp_path, version) as found:
        yield found


def hidden_value(site: Site, submission_id: str) -> float:
    with transaction(site.sessions) as session:
        found = session.scalar(
            select(SubmissionCheck.value).where(
                SubmissionCheck.submission_id == uuid.UUID(submission_id),
                SubmissionCheck.metric == "test_logloss",
            )
        )
    assert found is not None
    return found


def assert_hidden(text: str, value: float) -> None:
    assert "test_logloss" not in text
    for shown in (repr(value), f"{value:.6f}", f"{value:.5f}"):
        assert shown not in text


def test_figures_shown_at_upload_and_test_logloss_never(site: Site) -> None:
    browser = site.signed_up("alice")
    model = make_legacy_model(site, browser, "alice_legacy")
    with transaction(site.sessions) as session:
        alice = get_account(session, "alice")
        token = create_api_key(
            session, site.clock, alice, "k", [ApiScope.READ, ApiScope.UPLOAD]
        ).token
    headers = {"Authorization": f"Token {token}"}
    api = httpx.Client(base_url=f"{site.url}/api/v1", headers=headers, timeout=30)

    # REST: the upload's answer shows its figures, less the test-set log-loss
    answer = api.post(
        f"/models/{model}/submissions",
        files={"file": ("preds.csv", io.BytesIO(legacy_upload(site, 5)))},
    )
    assert answer.status_code == 201, answer.text
    posted = answer.json()
    assert posted["status"] == SubmissionStatus.VALID
    assert set(posted["checks"]) == SHOWN
    assert posted["checks"]["originality"] == 1.0
    assert posted["checks"]["concordance"] in (0.0, 1.0)
    assert 0 <= posted["checks"]["consistency"] <= 1
    assert posted["checks"]["validation_logloss"] == pytest.approx(np.log(2), abs=0.05)
    value = hidden_value(site, posted["id"])  # stored for the operator
    assert_hidden(answer.text, value)
    listed = api.get(f"/models/{model}/submissions")
    assert set(listed.json()[0]["checks"]) == SHOWN
    assert_hidden(listed.text, value)
    assert_hidden(api.get(f"/submissions/{posted['id']}").text, value)

    # the pages: the upload form's answer, and every page of the participant's
    uploaded = browser.submit(
        "/submit", {"model": model}, files={"file": ("p.csv", legacy_upload(site, 5), "text/csv")}
    )
    assert uploaded.status_code == 200, uploaded.text
    with transaction(site.sessions) as session:
        newest = session.scalars(
            select(Submission).order_by(Submission.created_at.desc(), Submission.id)
        ).first()
        assert newest is not None and newest.status is SubmissionStatus.VALID
        newest_id = str(newest.id)
    second = hidden_value(site, newest_id)
    for page in (
        uploaded.text,
        *(browser.get(p).text for p in ("/dashboard", "/models", "/submit")),
    ):
        assert_hidden(page, value)
        assert_hidden(page, second)

    # GraphQL: the participant's submissions
    graphql = httpx.post(
        site.url + "/",
        json={"query": f'{{ submissions(modelId: "{model}") {{ id filename selected }} }}'},
        headers=headers,
    )
    assert graphql.status_code == 200 and len(graphql.json()["data"]["submissions"]) == 2
    assert_hidden(graphql.text, value)
    assert_hidden(graphql.text, second)
    api.close()


def test_an_invalid_or_classic_upload_has_no_figures(site: Site) -> None:
    browser = site.signed_up("bob")
    model = make_legacy_model(site, browser, "bob_legacy")
    content = legacy_upload(site, 5).replace(b"probability", b"prediction", 1)
    refused = browser.submit(
        "/submit", {"model": model}, files={"file": ("p.csv", content, "text/csv")}
    )
    assert refused.status_code == 200
    with transaction(site.sessions) as session:
        found = session.scalars(select(Submission)).one()
        assert found.status is SubmissionStatus.INVALID
        assert found.error is not None and "a 2017 round takes columns" in found.error
        assert session.scalars(select(SubmissionCheck)).all() == []
