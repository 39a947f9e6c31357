"""A model's uploaded ``predict`` through the pages: upload a pickle, download it again,
disable it and use it again, run it by hand on the open round, and read each run's history
and log (escaped, bounded); refusals change nothing, and only the owner sees any of it."""

from __future__ import annotations

import html
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from crowdquant.db.models import ComputeJob, ComputeJobStatus, ModelUpload
from crowdquant.db.session import transaction
from crowdquant.web.model_uploads import LOG_SHOWN

from .site import Browser, Site, field_errors
from .test_dashboard import new_model

PICKLE = b"\x80\x05\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01x\x94."


def uploads(site: Site, model: str) -> list[ModelUpload]:
    with site.sessions() as session:
        return list(
            session.scalars(
                select(ModelUpload)
                .where(ModelUpload.model_id == uuid.UUID(model))
                .order_by(ModelUpload.created_at, ModelUpload.size)
            )
        )


def send(
    browser: Browser, model: str, data: bytes, runtime: str = "default", name: str = "m.pkl"
) -> httpx.Response:
    return browser.submit(
        f"/models/{model}/compute/upload",
        {"runtime": runtime},
        files={"file": (name, data, "application/octet-stream")},
        page=f"/models/{model}/compute",
    )


def test_a_participant_uploads_downloads_disables_and_runs_a_model(site: Site) -> None:
    alice = site.signed_up("alice")
    model = new_model(site, alice, "alice_model")
    page = f"/models/{model}/compute"

    sent = send(alice, model, PICKLE, name="../predict.pkl")
    assert sent.status_code == 200 and sent.url.path == page, sent.text
    assert "runs every round" in sent.text and "predict.pkl" in sent.text
    (first,) = uploads(site, model)
    assert first.enabled and first.runtime == "default" and first.filename == "predict.pkl"

    got = alice.get(f"{page}/{first.id}/pickle")
    assert got.status_code == 200 and got.content == PICKLE
    assert "attachment" in got.headers["content-disposition"]

    ran = alice.submit(f"{page}/run", {}, page=page)
    assert ran.status_code == 200 and "A run on the open round is queued" in ran.text
    again = alice.submit(f"{page}/run", {}, page=page)
    assert again.status_code == 409 and "pending already" in html.unescape(again.text)

    with transaction(site.sessions) as session:
        job = session.scalars(select(ComputeJob)).one()
        job.status = ComputeJobStatus.FAILED
        job.message = "invalid output: <b>no ids</b>"
        job.log = "x" * (2 * LOG_SHOWN) + "<script>alert(1)</script>"
        job.history = [*job.history, {"status": "failed", "description": "bad", "at": "now"}]
    shown = alice.get(page).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "<script>alert" not in shown
    assert "&lt;b&gt;no ids&lt;/b&gt;" in shown
    assert shown.count("x" * 64) <= LOG_SHOWN // 64
    assert "run by hand by alice on round 1" in shown

    rerun = alice.submit(f"{page}/run", {}, page=page)
    assert rerun.status_code == 200
    with site.sessions() as session:
        job = session.scalars(select(ComputeJob)).one()
        assert job.status is ComputeJobStatus.PENDING and job.log is not None
        assert [entry["status"] for entry in job.history] == ["pending", "failed", "pending"]

    second = send(alice, model, PICKLE + b"\n")
    assert second.status_code == 200
    older, newer = uploads(site, model)
    assert not older.enabled and newer.enabled

    disabled = alice.submit(f"{page}/{newer.id}/disable", {}, page=page)
    assert disabled.status_code == 200 and "no longer runs" in disabled.text
    assert not any(found.enabled for found in uploads(site, model))
    refused = alice.submit(f"{page}/run", {}, page=page)
    assert refused.status_code == 409 and "no enabled upload" in refused.text

    used = alice.submit(f"{page}/{older.id}/enable", {}, page=page)
    assert used.status_code == 200
    assert [found.enabled for found in uploads(site, model)] == [True, False]


def test_bad_pickles_are_refused_next_to_their_field_and_change_nothing(site: Site) -> None:
    alice = site.signed_up("alice")
    model = new_model(site, alice, "alice_model")

    empty = send(alice, model, b"")
    unknown = send(alice, model, PICKLE, runtime="py27")

    assert empty.status_code == 422 and field_errors(empty)
    assert unknown.status_code == 422
    assert any("unknown runtime" in html.unescape(e) for e in field_errors(unknown))
    assert uploads(site, model) == []


def test_a_pickle_over_the_limit_is_refused(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crowdquant.web.model_uploads.MAX_MODEL_BYTES", 100)
    alice = site.signed_up("alice")
    model = new_model(site, alice, "alice_model")

    answer = send(alice, model, b"p" * 101)

    assert answer.status_code == 413 and "over the limit of 100 bytes" in answer.text
    assert uploads(site, model) == []


def test_only_the_owner_sees_or_changes_a_models_uploads(site: Site) -> None:
    alice = site.signed_up("alice")
    model = new_model(site, alice, "alice_model")
    send(alice, model, PICKLE)
    (upload,) = uploads(site, model)
    mallory = site.signed_up("mallory")
    page = f"/models/{model}/compute"
    mallory_model = new_model(site, mallory, "mallory_model")

    assert mallory.get(page).status_code == 404
    assert mallory.get(f"{page}/{upload.id}/pickle").status_code == 404
    own_page = f"/models/{mallory_model}/compute"
    assert mallory.get(f"{own_page}/{upload.id}/pickle").status_code == 404
    disabled = mallory.submit(f"{own_page}/{upload.id}/disable", {}, page=own_page)
    assert disabled.status_code == 404
    assert mallory.submit(f"{page}/run", {}, page=own_page).status_code == 404
    stolen = mallory.client.post(
        f"{page}/upload",
        data={"csrf": mallory.token(own_page)},
        files={"file": ("m.pkl", PICKLE, "application/octet-stream")},
    )
    assert stolen.status_code == 404
    visitor = site.browser()
    assert visitor.get(page).url.path == "/login"
    without_token = alice.client.post(f"{page}/{upload.id}/disable", data={})
    assert without_token.status_code == 403
    with site.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ComputeJob)) == 0
    assert [found.enabled for found in uploads(site, model)] == [True]
