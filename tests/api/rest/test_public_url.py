"""Signed URLs point at the configured public URL, or the address the server is bound to;
never at the Host header a caller sends."""

from __future__ import annotations

import httpx
import pytest

from .helpers import RestWorld, predictions_csv

EVIL = {"Host": "evil.example"}
DATASET = """{ dataset(round: 1, tournament: 8, filename: "live.parquet") }"""


def _submission_link(world: RestWorld, headers: dict[str, str]) -> str:
    with world.client("alice") as api:
        path = f"/models/{world.alice_model}/submissions"
        made = api.post(path, files={"file": ("p.csv", predictions_csv(world.live_ids))})
        assert made.status_code == 201, made.text
        answer = api.get(f"/submissions/{made.json()['id']}/download", headers=headers)
    assert answer.status_code == 200, answer.text
    url: str = answer.json()["url"]
    return url


def _dataset_url(world: RestWorld, headers: dict[str, str]) -> str:
    answer = httpx.post(world.url + "/", json={"query": DATASET}, headers=headers, timeout=30)
    url: str = answer.json()["data"]["dataset"]
    return url


def test_signed_urls_ignore_the_host_header(world: RestWorld) -> None:
    link = _submission_link(world, EVIL)
    assert link.startswith(f"{world.url}/files/submissions/")
    assert httpx.get(link, timeout=30).status_code == 200
    assert _dataset_url(world, EVIL).startswith(f"{world.url}/files/")


@pytest.fixture
def public(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CROWDQUANT_PUBLIC_URL", "https://crowd.example/base/")
    return "https://crowd.example/base"


def test_signed_urls_are_built_from_the_public_url(public: str, world: RestWorld) -> None:
    assert _submission_link(world, EVIL).startswith(f"{public}/files/submissions/")
    assert _dataset_url(world, {}).startswith(f"{public}/files/")
