"""POST/GET /models/{id}/submissions, GET /submissions/{id}[/download]."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import httpx
import pandas as pd
from sqlalchemy import select

from crowdquant.db.models import Submission, WebhookDelivery
from crowdquant.db.session import transaction
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.retention import Retention, sweep_submission_files
from crowdquant.tournament.rounds import current_round
from crowdquant.tournament.tournaments import get_tournament

from .helpers import RestWorld, predictions_csv, refused


def _upload(
    api: httpx.Client, model: str, content: bytes, filename: str = "predictions.csv"
) -> httpx.Response:
    return api.post(f"/models/{model}/submissions", files={"file": (filename, content)})


def _assert_nothing_recorded(world: RestWorld) -> None:
    assert world.count(Submission) == 0
    assert world.stored("submissions") == []


def test_upload_list_and_download(world: RestWorld) -> None:
    content = predictions_csv(world.live_ids)
    with world.client("alice") as api:
        answer = _upload(api, world.alice_model, content, "my predictions.csv")
        assert answer.status_code == 201, answer.text
        first = answer.json()
        assert first["status"] == "valid"
        assert first["error"] is None
        assert first["late"] is False
        assert first["selected"] is True
        assert first["n_rows"] == len(world.live_ids)
        assert (first["model_id"], first["tournament"], first["round"]) == (world.alice_model, 8, 1)
        assert first["filename"] == "my_predictions.csv"
        assert first["created_at"].endswith("Z")

        world.clock.advance(timedelta(minutes=1))
        second = _upload(api, world.alice_model, predictions_csv(world.live_ids, seed=1)).json()
        listed = api.get(f"/models/{world.alice_model}/submissions").json()
        assert [entry["id"] for entry in listed] == [second["id"], first["id"]]
        assert [entry["selected"] for entry in listed] == [True, False]
        assert api.get(f"/submissions/{first['id']}").json() == listed[1]

        link = api.get(f"/submissions/{first['id']}/download").json()
    assert link["submission_id"] == first["id"]
    assert link["filename"] == "my_predictions.csv"
    assert link["url"].startswith(f"{world.url}/files/submissions/")
    assert httpx.get(link["url"]).content == content


def test_parquet_upload(world: RestWorld) -> None:
    frame = pd.read_csv(io.BytesIO(predictions_csv(world.live_ids)), dtype={"id": str})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    with world.client("alice") as api:
        answer = _upload(api, world.alice_model, buffer.getvalue(), "predictions.parquet")
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "valid"
        link = api.get(f"/submissions/{answer.json()['id']}/download").json()
    assert httpx.get(link["url"]).content == buffer.getvalue()


def test_an_invalid_file_is_recorded_not_refused(world: RestWorld) -> None:
    half = world.live_ids[: len(world.live_ids) // 2]
    with world.client("alice") as api:
        answer = _upload(api, world.alice_model, predictions_csv(half))
        assert answer.status_code == 201, answer.text
        invalid = answer.json()
        assert invalid["status"] == "invalid"
        assert invalid["error"].startswith("invalid_submission_ids")
        assert invalid["selected"] is False
        assert invalid["n_rows"] is None
        assert api.get(f"/models/{world.alice_model}/submissions").json() == [invalid]
    assert world.count(Submission) == 1


def test_late_uploads_are_marked(world: RestWorld) -> None:
    world.clock.advance(timedelta(hours=1))  # the round closed at 13:00
    with world.client("alice") as api:
        late = _upload(api, world.alice_model, predictions_csv(world.live_ids)).json()
    assert late["status"] == "valid"
    assert late["late"] is True
    assert late["selected"] is False


def test_closed_or_missing_rounds_are_409(world: RestWorld) -> None:
    with world.client("alice") as api:
        created = api.post("/models", json={"tournament": 11, "name": "alice_weekly"}).json()
        detail = refused(
            _upload(api, created["id"], predictions_csv(world.live_ids)), 409, "round_not_open"
        )
        assert "no round yet" in detail["message"]
    with transaction(world.sessions) as session:
        round_ = current_round(session, get_tournament(session, 8))
        assert round_ is not None
        RoundLifecycle(None, world.clock).close(session, round_)
        RoundLifecycle(None, world.clock).start_scoring(session, round_)
        RoundLifecycle(None, world.clock).resolve(session, round_)
    with world.client("alice") as api:
        detail = refused(
            _upload(api, world.alice_model, predictions_csv(world.live_ids)), 409, "round_not_open"
        )
    assert "resolved" in detail["message"]
    _assert_nothing_recorded(world)


def test_too_large_uploads_are_413(world: RestWorld) -> None:
    just_over = b"id,prediction\n" + b"x" * (world.max_upload_bytes - 13)
    far_over = b"x" * (world.max_upload_bytes + 128 * 1024)
    with world.client("alice") as api:
        detail = refused(_upload(api, world.alice_model, just_over), 413, "upload_too_large")
        assert f"{world.max_upload_bytes:,}" in detail["message"]
        refused(_upload(api, world.alice_model, far_over), 413, "upload_too_large")
    _assert_nothing_recorded(world)


def test_another_accounts_model_is_refused(world: RestWorld) -> None:
    content = predictions_csv(world.live_ids)
    with world.client("alice") as api:
        refused(_upload(api, world.bob_model, content), 403, "not_your_model")
        refused(api.get(f"/models/{world.bob_model}/submissions"), 403, "not_your_model")
        refused(_upload(api, str(uuid.uuid4()), content), 404, "unknown_model")
        refused(api.get(f"/models/{uuid.uuid4()}/submissions"), 404, "unknown_model")
    _assert_nothing_recorded(world)
    with world.client("bob") as api:
        bobs = _upload(api, world.bob_model, content).json()
    with world.client("alice") as api:
        refused(api.get(f"/submissions/{bobs['id']}"), 403, "not_your_model")
        refused(api.get(f"/submissions/{bobs['id']}/download"), 403, "not_your_model")
        refused(api.get(f"/submissions/{uuid.uuid4()}"), 404, "unknown_submission")
        refused(api.get(f"/submissions/{uuid.uuid4()}/download"), 404, "unknown_submission")
        refused(api.get("/submissions/not-a-uuid"), 422, "invalid_request")


def test_scopes_and_keys(world: RestWorld) -> None:
    content = predictions_csv(world.live_ids)
    with world.client("reader") as api:
        refused(_upload(api, world.alice_model, content), 403, "missing_scope")
    with world.client("uploader") as api:
        refused(api.get(f"/models/{world.alice_model}/submissions"), 403, "missing_scope")
    with world.client(None) as api:
        refused(_upload(api, world.alice_model, content), 401, "malformed_token")
    with world.client("revoked") as api:
        refused(_upload(api, world.alice_model, content), 401, "key_revoked")
    _assert_nothing_recorded(world)
    with world.client("uploader") as api:
        assert _upload(api, world.alice_model, content).status_code == 201


def test_malformed_uploads(world: RestWorld) -> None:
    path = f"/models/{world.alice_model}/submissions"
    content = predictions_csv(world.live_ids)
    boundary = "----crowdquant"
    form = "multipart/form-data; boundary=" + boundary
    with world.client("alice") as api:
        refused(api.post(path, json={"file": "id,prediction"}), 415, "unsupported_media_type")
        refused(
            api.post(path, content=content, headers={"Content-Type": "text/csv"}),
            415,
            "unsupported_media_type",
        )
        refused(api.post(path, files={"other": ("p.csv", content)}), 422, "invalid_upload")
        two = [("file", ("a.csv", content)), ("file", ("b.csv", content))]
        refused(api.post(path, files=two), 422, "invalid_upload")
        refused(
            api.post(path, content=b"", headers={"Content-Type": "multipart/form-data"}),
            422,
            "invalid_upload",
        )
        unclosed = f"--{boundary}\r\nContent-Disposition: form-data; name=file\r\n\r\n".encode()
        refused(
            api.post(path, content=unclosed + content, headers={"Content-Type": form}),
            422,
            "invalid_upload",
        )
        headless = f"--{boundary}\r\n\r\n".encode() + content + f"\r\n--{boundary}--\r\n".encode()
        refused(
            api.post(path, content=headless, headers={"Content-Type": form}), 422, "invalid_upload"
        )
    _assert_nothing_recorded(world)


def test_hand_written_multipart_with_odd_filenames(world: RestWorld) -> None:
    content = predictions_csv(world.live_ids)
    boundary = "b0undary'()+_,-./:=?"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="..\\..\\pr\u00e9ds .csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    )
    body = head.encode() + content + f"\r\n--{boundary}--\r\nepilogue".encode()
    headers = {"Content-Type": f'multipart/form-data; boundary="{boundary}"'}
    with world.client("alice") as api:
        answer = api.post(f"/models/{world.alice_model}/submissions", content=body, headers=headers)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "valid"
    assert answer.json()["filename"] == "pr_ds_.csv"


def test_a_purged_upload_is_listed_and_its_download_answers_410(world: RestWorld) -> None:
    with world.client("alice") as api:
        first = _upload(api, world.alice_model, predictions_csv(world.live_ids)).json()
        world.clock.advance(timedelta(minutes=1))
        second = _upload(api, world.alice_model, predictions_csv(world.live_ids, seed=1)).json()
        swept = sweep_submission_files(
            world.sessions, world.storage, world.clock.now(), Retention(keep_newest=1)
        )
        assert swept.purged == 1
        listed = api.get(f"/models/{world.alice_model}/submissions").json()
        assert [entry["id"] for entry in listed] == [second["id"], first["id"]]
        answer = api.get(f"/submissions/{first['id']}/download")
        refused(answer, 410, "submission_purged")
        assert "was purged" in answer.json()["detail"]["message"]
        assert api.get(f"/submissions/{second['id']}/download").status_code == 200


def _delivery(world: RestWorld, model: str, trigger_id: str, round_number: int | None) -> None:
    """A webhook call to `model` that sent `trigger_id` (for round 1 of tournament 8, or none)."""
    with transaction(world.sessions) as session:
        round_ = current_round(session, get_tournament(session, 8))
        assert round_ is not None and round_.number == 1
        session.add(
            WebhookDelivery(
                trigger_id=trigger_id,
                model_id=uuid.UUID(model),
                round_id=round_.id if round_number == 1 else None,
                reason="by_hand",
                url="https://example.org/hook",
                next_attempt_at=world.clock.now(),
                created_at=world.clock.now(),
            )
        )


def _linked(world: RestWorld, trigger_id: str) -> uuid.UUID | None:
    with world.sessions() as session:
        return session.scalars(
            select(WebhookDelivery.submission_id).where(WebhookDelivery.trigger_id == trigger_id)
        ).one()


def test_an_upload_names_the_trigger_its_webhook_received_and_a_foreign_one_is_refused(
    world: RestWorld,
) -> None:
    _delivery(world, world.alice_model, "trg_alice", 1)
    _delivery(world, world.bob_model, "trg_bob", None)
    content = predictions_csv(world.live_ids)
    with world.client("alice") as api:

        def upload(trigger: str) -> httpx.Response:
            files = {"file": ("p.csv", content)}
            url = f"/models/{world.alice_model}/submissions"
            return api.post(url, params={"trigger_id": trigger}, files=files)

        for trigger in ("trg_bob", "trg_made_up"):
            detail = refused(upload(trigger), 422, "unknown_trigger")
            assert f"trigger id {trigger!r} was not sent to model" in detail["message"]
        for malformed in ("trg\x00", "t" * 65):
            assert "trigger_id" in refused(upload(malformed), 422, "invalid_request")["message"]
        _assert_nothing_recorded(world)
        assert _linked(world, "trg_bob") is None
        answer = upload("trg_alice")
        assert answer.status_code == 201, answer.text
    assert _linked(world, "trg_alice") == uuid.UUID(answer.json()["id"])
