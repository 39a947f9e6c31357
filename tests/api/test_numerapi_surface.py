"""Every public method of numerapi 3.1.1's `NumerAPI` against the served app: each answers
with real data or with a refusal that names what a crowdquant server does not do.

`COVERAGE` names, for each method, the test module that calls it against a served app; a
numerapi release with a method it does not name fails `test_every_numerapi_method_is_tested`.
"""

from __future__ import annotations

import inspect
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numerapi
import pytest
from sqlalchemy import event

from crowdquant.db.models import DatasetFile, Model
from crowdquant.db.session import transaction
from crowdquant.tournament.datasets import set_dataset_alias

from ..tournament.live_market import stored_bytes
from .test_numerapi import World, _predictions, world

__all__ = ["world"]

HERE = "test_numerapi_surface"
COVERAGE = {
    "check_new_round": HERE,
    "check_round_open": "test_numerapi",
    "daily_model_performances": "test_numerapi_scores",
    "diagnostics": "test_numerapi_diagnostics",
    "download_dataset": "test_numerapi",
    "download_submission": HERE,
    "get_account": "test_numerapi_stakes",
    "get_account_leaderboard": "test_numerapi_scores",
    "get_competitions": HERE,
    "get_current_round": "test_numerapi",
    "get_leaderboard": "test_numerapi_scores",
    "get_models": "test_numerapi",
    "get_submission_filenames": HERE,
    "intra_round_scores": "test_numerapi_scores",
    "list_datasets": "test_numerapi",
    "list_rounds": HERE,
    "model_upload": "test_numerapi_model_upload",
    "model_upload_data_versions": "test_numerapi_model_upload",
    "model_upload_docker_images": "test_numerapi_model_upload",
    "modelid_to_modelname": HERE,
    "models_of_account": HERE,
    "pending_model_payouts": "test_numerapi_payouts",
    "pipeline_status": HERE,
    "public_user_profile": "test_numerapi_scores",
    "raw_query": "test_numerapi_stakes",
    "round_model_performances": "test_numerapi_scores",
    "round_model_performances_v2": "test_numerapi_scores",
    "set_bio": HERE,
    "set_global_data_dir": HERE,
    "set_link": HERE,
    "set_submission_webhook": "test_numerapi_webhooks",
    "stake_change": "test_numerapi_stakes",
    "stake_decrease": "test_numerapi_stakes",
    "stake_drain": "test_numerapi_stakes",
    "stake_get": "test_numerapi_stakes",
    "stake_increase": "test_numerapi_stakes",
    "stake_set": "test_numerapi_stakes",
    "submission_ids": "test_numerapi",
    "submission_scores": "test_numerapi_scores",
    "upload_diagnostics": "test_numerapi_diagnostics",
    "upload_predictions": "test_numerapi",
    "v3_stake_auth": HERE,
    "v3_stake_claim": HERE,
    "v3_stake_config": HERE,
    "v3_stake_round": HERE,
    "wallet_transactions": "test_numerapi_stakes",
}


def test_every_numerapi_method_is_tested() -> None:
    methods = {
        name
        for name, _ in inspect.getmembers(numerapi.NumerAPI, inspect.isfunction)
        if not name.startswith("_")
    }
    assert methods == set(COVERAGE), "a numerapi method without a test (or a test of none)"
    for method, module in COVERAGE.items():
        source = (Path(__file__).parent / f"{module}.py").read_text()
        assert f".{method}(" in source, f"{module} does not call {method}"


def test_models_profiles_and_submissions(world: World, tmp_path: Path) -> None:
    napi = numerapi.NumerAPI(world.public_id, world.secret)
    public = numerapi.NumerAPI()

    assert public.models_of_account("alice") == {"alice_model": world.model_id}
    assert public.models_of_account("ALICE") == {"alice_model": world.model_id}
    with pytest.raises(ValueError, match="there is no account 'nobody'"):
        public.models_of_account("nobody")
    assert napi.modelid_to_modelname(world.model_id) == "alice_model"

    # bio and link: stored on the model, the bio read back by anyone
    assert napi.set_bio(world.model_id, "Gradient boosted trees.") is True
    assert public.public_user_profile("alice_model")["bio"] == "Gradient boosted trees."
    assert napi.set_link(world.model_id, "my code", "https://example.org/alice") is True
    with pytest.raises(ValueError, match=r"an http:// or https:// URL, not 'javascript:x\(\)'"):
        napi.set_link(world.model_id, "bad", "javascript:x()")
    with pytest.raises(ValueError, match="at most 1000 characters"):
        napi.set_bio(world.model_id, "x" * 1001)
    with pytest.raises(ValueError, match="no model has that id"):
        napi.set_bio(str(uuid.uuid4()), "whose?")
    anonymous = f'mutation {{ setUserBio(value: "anon", modelId: "{world.model_id}") }}'
    refused = httpx.post(world.base_url, json={"query": anonymous}).json()
    assert "needs an API key" in refused["errors"][0]["message"]
    with world.sessions() as session:
        model = session.get(Model, uuid.UUID(world.model_id))
        assert model is not None
        assert (model.bio, model.link_text, model.link_url) == (
            "Gradient boosted trees.",
            "my code",
            "https://example.org/alice",
        )

    # uploads read back: the newest submission's file, or one by id
    first = tmp_path / "first.csv"
    _predictions(world.live_ids).to_csv(first, index=False)
    first_id = napi.upload_predictions(str(first), model_id=world.model_id)
    world.clock.advance(timedelta(seconds=5))
    second = tmp_path / "second.csv"
    _predictions(world.live_ids[::-1]).to_csv(second, index=False)
    napi.upload_predictions(str(second), model_id=world.model_id)

    newest = napi.download_submission(model_id=world.model_id, dest_path=str(tmp_path / "n.csv"))
    assert Path(newest).read_bytes() == second.read_bytes()
    older = napi.download_submission(submission_id=first_id, dest_path=str(tmp_path / "o.csv"))
    assert Path(older).read_bytes() == first.read_bytes()
    with pytest.raises(ValueError, match="no submission has that id"):
        napi.download_submission(submission_id=str(uuid.uuid4()), dest_path=str(tmp_path / "x"))

    # the submission that counts for the round (the newest valid one)
    assert napi.get_submission_filenames(model_id=world.model_id) == [
        {"round_num": 1, "tournament": 8, "filename": "second.csv"}
    ]
    assert napi.get_submission_filenames(round_num=2, model_id=world.model_id) == []


def test_rounds_pipeline_and_data_dir(world: World, tmp_path: Path) -> None:
    napi = numerapi.NumerAPI()
    now = world.clock.now()

    competitions = napi.get_competitions()
    assert [entry["number"] for entry in competitions] == [1]
    assert competitions[0]["openTime"] == now - timedelta(hours=1)
    assert competitions[0]["resolvedGeneral"] is False

    rounds = napi.list_rounds()
    assert [(entry["number"], entry["tournament"]) for entry in rounds] == [(1, 8)]
    assert napi.list_rounds(status="open")[0]["number"] == 1
    assert napi.list_rounds(status="resolved") == []

    assert napi.check_new_round(hours=2) is True  # opened an hour ago
    assert napi.check_new_round(hours=0) is False

    opened = now - timedelta(hours=1)  # its date is not today's just after midnight
    opening_day = napi.pipeline_status(opened.date().isoformat())
    assert opening_day["tournament"] == "classic"
    assert opening_day["dataReadyAt"] == opened
    steps = ("startedAt", "scoredAt", "resolvedAt")
    assert [opening_day[step] for step in steps] == [None, None, None]
    assert opening_day["isScoringDay"] is False  # nothing scored, no round waits to be scored
    week_ago = napi.pipeline_status((opened - timedelta(days=7)).date().isoformat())
    assert week_ago["dataReadyAt"] is None
    for day, tournament, refusal in (
        ("05/12/2026", "classic", "a date is YYYY-MM-DD, not '05/12/2026'"),
        ("2026-01-01", "nope", "there is no tournament named 'nope'"),
    ):
        document = f'{{ pipelineStatus(date: "{day}", tournament: "{tournament}") {{ scoredAt }} }}'
        answer = httpx.post(world.base_url, json={"query": document})
        assert answer.status_code == 200
        assert answer.json()["errors"][0]["message"] == refusal

    # set_global_data_dir: downloads land in that folder
    napi.set_global_data_dir(str(tmp_path / "data"))
    path = napi.download_dataset("v1/live.parquet")
    assert Path(path).parent.parent == tmp_path / "data"
    assert Path(path).stat().st_size > 0


def test_what_a_crowdquant_server_refuses_is_named(world: World) -> None:
    napi = numerapi.NumerAPI(world.public_id, world.secret)
    on_chain = r"no on-chain \(v3\) staking: stake with stake_increase"
    submission = str(uuid.uuid4())
    with pytest.raises(ValueError, match=on_chain):
        napi.v3_stake_auth(submission, "0x" + "1" * 40, amount="1")
    with pytest.raises(ValueError, match=on_chain):
        napi.v3_stake_config()
    with pytest.raises(ValueError, match=on_chain):
        napi.v3_stake_round(1)
    with pytest.raises(ValueError, match=on_chain):
        napi.v3_stake_claim(1, world.model_id, "0x" + "1" * 40)


def _publish(world: World, filename: str, content: bytes) -> None:
    stored = world.storage.write(f"v1/{filename}", content)
    with transaction(world.sessions) as session:
        session.add(
            DatasetFile(
                version="v1",
                filename=filename,
                size=stored.size,
                sha256=stored.sha256,
                storage_key=stored.key,
                published_at=world.clock.now(),
            )
        )


def test_aliases_and_round_copies(world: World, tmp_path: Path) -> None:
    _publish(world, "meta_model.parquet", b"the newest meta model")
    _publish(world, "meta_model_3.parquet", b"round 3's meta model")
    with transaction(world.sessions) as session:
        set_dataset_alias(session, world.clock, "v5.2", "v1")
    napi = numerapi.NumerAPI()

    listed = napi.list_datasets()
    assert {"v1/live.parquet", "v5.2/live.parquet", "v5.2/meta_model_3.parquet"} <= set(listed)
    assert len(listed) == 2 * len([name for name in listed if name.startswith("v1/")])

    def download(name: str, round_num: int | None = None) -> bytes:
        dest = tmp_path / uuid.uuid4().hex / "file"
        return Path(napi.download_dataset(name, str(dest), round_num=round_num)).read_bytes()

    live = stored_bytes(world.storage, "v1/live_1.parquet")
    assert download("v5.2/live.parquet") == download("v1/live.parquet") == live
    # round_num: the round's own copy, or the newest before it, or the plain file
    assert download("v5.2/live.parquet", round_num=1) == live
    assert download("v5.2/live.parquet", round_num=842) == live
    assert download("v5.2/meta_model.parquet", round_num=2) == b"the newest meta model"
    assert download("v5.2/meta_model.parquet", round_num=3) == b"round 3's meta model"
    assert download("v1/meta_model.parquet", round_num=842) == b"round 3's meta model"
    # a live file is never older than asked: before round 1 there is none
    with pytest.raises(ValueError, match=r"no published dataset file v1/live_0\.parquet"):
        download("v5.2/live.parquet", round_num=0)
    with pytest.raises(ValueError, match=r"no published dataset file v5\.3/live\.parquet"):
        download("v5.3/live.parquet")


def test_an_upload_answers_every_submission_field_asked_for(world: World) -> None:
    """The fields that read more than the row (`selected`, `round`, `triggerId`) are found
    when a request asks for them, in the upload's answer as in a listing."""
    napi = numerapi.NumerAPI(world.public_id, world.secret)
    auth = napi.raw_query(
        'query($model: String) { submission_upload_auth(filename: "p.csv", tournament: 8,'
        " modelId: $model) { filename url } }",
        {"model": world.model_id},
        authorization=True,
    )["data"]["submission_upload_auth"]
    body = _predictions(world.live_ids).to_csv(index=False).encode()
    assert httpx.put(auth["url"], content=body).status_code < 300
    fields = "id filename selected triggerId round { number }"
    created = napi.raw_query(
        f"mutation($key: String!, $model: String) {{ create_submission(filename: $key,"
        f" tournament: 8, modelId: $model) {{ {fields} }} }}",
        {"key": auth["filename"], "model": world.model_id},
        authorization=True,
    )["data"]["create_submission"]
    assert created == {
        "id": created["id"],
        "filename": "p.csv",
        "selected": True,
        "triggerId": None,
        "round": {"number": 1},
    }
    listed = napi.raw_query(
        f"query($model: String) {{ submissions(modelId: $model) {{ {fields} }} }}",
        {"model": world.model_id},
        authorization=True,
    )["data"]["submissions"]
    assert listed == [created]


def test_an_accounts_models_read_their_submissions_only_when_asked(world: World) -> None:
    """numerapi's `get_models` asks for each model's id, name and tournament alone: no
    submission is read for it, however many a model has; `get_account`, which asks for
    the models' submissions, gets them."""
    napi = numerapi.NumerAPI(world.public_id, world.secret)
    napi.upload_predictions("p.csv", model_id=world.model_id, df=_predictions(world.live_ids))
    engine = world.sessions.kw["bind"]
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        models = napi.get_models()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert list(models.values()) == [world.model_id]
    assert statements and not [s for s in statements if "FROM submissions" in s]
    account = napi.get_account()
    assert [
        (model["id"], [sub["filename"] for sub in model["submissions"]])
        for model in account["models"]
    ] == [(world.model_id, ["p.csv"])]
