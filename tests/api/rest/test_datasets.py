"""GET /datasets, and the datasets of a tournament and of a round: listings, signed URLs."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
import pytest

from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import DatasetFile, Rules
from crowdquant.db.session import transaction
from crowdquant.tournament.datasets import UnknownDatasetFile, set_dataset_alias
from crowdquant.tournament.rounds import FeedPublisher, open_round, open_round_now
from crowdquant.tournament.rules2017_files import Rules2017Rounds
from crowdquant.tournament.tournaments import get_tournament

from ...tournament.live_market import KEYS, build_dataset_version, market_feed, stored_bytes
from .helpers import RestWorld, refused


def _names(listing: dict[str, object]) -> list[str]:
    files = listing["files"]
    assert isinstance(files, list)
    return [entry["filename"] for entry in files]


def test_listings(world: RestWorld) -> None:
    with world.client(None) as api:
        versions = api.get("/datasets").json()
        assert [version["version"] for version in versions] == ["v1"]
        assert _names(versions[0]) == ["live.parquet", "live_1.parquet"]
        eight = api.get("/tournaments/8/datasets").json()
        assert eight == versions[0]
        entry = eight["files"][0]
        # live.parquet is the current round's own file
        assert entry["size"] == len(stored_bytes(world.storage, "v1/live_1.parquet"))
        assert len(entry["sha256"]) == 64
        assert entry["published_at"].endswith("Z")
        assert api.get("/tournaments/11/datasets").json() == {
            "version": "v2",
            "files": [],
            "alias_of": None,
            "aliases": [],
        }
        assert _names(api.get("/tournaments/8/rounds/current/datasets").json()) == [
            "live_1.parquet"
        ]


def test_aliases_are_listed_as_graphql_lists_them(world: RestWorld) -> None:
    with transaction(world.sessions) as session:
        set_dataset_alias(session, world.clock, "v5.2", "v1")
        set_dataset_alias(session, world.clock, "v5.1", "v1")
    with world.client(None) as api:
        versions = api.get("/datasets").json()
        assert [(v["version"], v["alias_of"], v["aliases"]) for v in versions] == [
            ("v1", None, ["v5.1", "v5.2"]),
            ("v5.1", "v1", []),
            ("v5.2", "v1", []),
        ]
        assert versions[1]["files"] == versions[2]["files"] == versions[0]["files"]
        assert api.get("/tournaments/8/datasets").json()["aliases"] == ["v5.1", "v5.2"]
    listed = httpx.post(world.url + "/", json={"query": "{ listDatasets }"}).json()
    assert sorted(listed["data"]["listDatasets"]) == sorted(
        f"{v['version']}/{f['filename']}" for v in versions for f in v["files"]
    )


def test_signed_download_urls(world: RestWorld) -> None:
    content = stored_bytes(world.storage, "v1/live_1.parquet")
    with world.client(None) as api:
        answer = api.get("/tournaments/8/datasets/live.parquet").json()
        round_file = api.get("/tournaments/8/rounds/1/datasets/live.parquet").json()
    assert answer["version"] == "v1"
    assert answer["filename"] == "live.parquet"
    assert answer["sha256"] == hashlib.sha256(content).hexdigest()
    assert answer["size"] == len(content)
    assert answer["url"].startswith(f"{world.url}/files/v1/live_1.parquet?")
    expires_at = answer["expires_at"]
    assert expires_at.endswith("Z")
    assert int(httpx.URL(answer["url"]).params["expires"]) == int(
        (world.clock.now() + timedelta(hours=6)).timestamp()
    )
    assert httpx.get(answer["url"]).content == content
    assert round_file["filename"] == "live_1.parquet"
    assert httpx.get(round_file["url"]).content == content


def test_each_round_has_its_own_live_file(world: RestWorld) -> None:
    world.clock.advance(timedelta(days=1))  # Wednesday: round 2 opens
    with transaction(world.sessions) as session:
        open_round(
            session,
            world.clock,
            get_tournament(session, 8),
            FeedPublisher(market_feed(), world.storage),
        )
    with world.client(None) as api:
        assert _names(api.get("/tournaments/8/datasets").json()) == [
            "live.parquet",
            "live_1.parquet",
            "live_2.parquet",
        ]
        assert _names(api.get("/tournaments/8/rounds/1/datasets").json()) == ["live_1.parquet"]
        assert _names(api.get("/tournaments/8/rounds/0/datasets").json()) == ["live_2.parquet"]
        first = api.get("/tournaments/8/rounds/1/datasets/live.parquet").json()
        assert first["filename"] == "live_1.parquet"
        assert httpx.get(first["url"]).content == stored_bytes(world.storage, "v1/live_1.parquet")
        other = api.get("/tournaments/8/rounds/1/datasets/live_2.parquet")
    refused(other, 404, UnknownDatasetFile.code)


def test_unknown_files_and_bad_names(world: RestWorld) -> None:
    with world.client(None) as api:
        unknown = refused(
            api.get("/tournaments/8/datasets/nope.parquet"), 404, UnknownDatasetFile.code
        )
        assert unknown["message"] == "no published dataset file v1/nope.parquet"
        refused(api.get("/tournaments/11/datasets/live.parquet"), 404, UnknownDatasetFile.code)
        refused(api.get("/tournaments/99/datasets"), 404, "tournament_not_found")
        refused(api.get("/tournaments/8/rounds/5/datasets"), 404, "round_not_found")
        refused(api.get("/tournaments/11/rounds/current/datasets"), 404, "round_not_found")
        refused(api.get("/tournaments/8/datasets/a%00b"), 422, "invalid_request")
        refused(api.get("/tournaments/8/datasets/" + "x" * 300), 422, "invalid_request")


def test_the_operators_files_are_never_listed_or_signed(world: RestWorld) -> None:
    with transaction(world.sessions) as session:
        for filename, key in (
            ("targets.parquet", "v1/targets.parquet"),
            ("x.parquet", "operator/x"),
        ):
            session.add(
                DatasetFile(
                    version="v1",
                    filename=filename,
                    size=1,
                    sha256="0" * 64,
                    storage_key=key,
                    published_at=world.clock.now(),
                )
            )
    with world.client(None) as api:
        assert _names(api.get("/tournaments/8/datasets").json()) == [
            "live.parquet",
            "live_1.parquet",
        ]
        for filename in ("targets.parquet", "x.parquet"):
            answer = api.get(f"/tournaments/8/datasets/{filename}")
            refused(answer, 404, UnknownDatasetFile.code)
            assert "url" not in answer.text


@pytest.fixture(scope="module")
def legacy_version(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    return build_dataset_version(tmp_path_factory.mktemp("legacy"), version="v2")


def test_a_2017_rounds_csv_files_are_its_own(
    world: RestWorld, legacy_version: DatasetVersion
) -> None:
    """Tournament 11 under the 2017 rules: each round lists its own two CSV files; the
    version's current names give the newest round's; the operator's id map is never listed."""
    publisher = FeedPublisher(
        market_feed(), world.storage, files_2017=Rules2017Rounds(legacy_version, KEYS)
    )
    for _ in range(2):
        with transaction(world.sessions) as session:
            tournament = get_tournament(session, 11)
            tournament.rules = Rules.RULES2017
            open_round_now(session, world.clock, tournament, publisher)
        world.clock.advance(timedelta(weeks=1))
    own = ["numerai_tournament_data_{n}.csv", "numerai_training_data_{n}.csv"]
    with world.client(None) as api:
        assert _names(api.get("/tournaments/11/datasets").json()) == [
            "live.parquet",
            "live_1.parquet",
            "live_2.parquet",
            "numerai_tournament_data.csv",
            "numerai_tournament_data_1.csv",
            "numerai_tournament_data_2.csv",
            "numerai_training_data.csv",
            "numerai_training_data_1.csv",
            "numerai_training_data_2.csv",
        ]
        for n in (1, 2):
            listed = _names(api.get(f"/tournaments/11/rounds/{n}/datasets").json())
            assert listed == [f"live_{n}.parquet", *(name.format(n=n) for name in own)]
        first = api.get("/tournaments/11/rounds/1/datasets/numerai_tournament_data.csv").json()
        assert first["filename"] == "numerai_tournament_data_1.csv"
        assert httpx.get(first["url"]).content == stored_bytes(
            world.storage, "v2/numerai_tournament_data_1.csv"
        )
        newest = api.get("/tournaments/11/datasets/numerai_tournament_data.csv").json()
        assert httpx.get(newest["url"]).content == stored_bytes(
            world.storage, "v2/numerai_tournament_data_2.csv"
        )
        other = api.get("/tournaments/11/rounds/1/datasets/numerai_training_data_2.csv")
        refused(other, 404, UnknownDatasetFile.code)
    # GraphQL, as numerapi's download_dataset asks: a bare 2017 name of the tournament's version
    query = (
        "query($f: String!, $r: Int, $t: Int) { dataset(filename: $f, round: $r, tournament: $t) }"
    )
    for filename, round_number, expected in (
        ("numerai_tournament_data.csv", 1, "v2/numerai_tournament_data_1.csv"),
        ("numerai_training_data.csv", None, "v2/numerai_training_data_2.csv"),
        ("v2/numerai_tournament_data.csv", 2, "v2/numerai_tournament_data_2.csv"),
    ):
        answer = httpx.post(
            world.url,
            json={"query": query, "variables": {"f": filename, "r": round_number, "t": 11}},
        ).json()
        url = answer["data"]["dataset"]
        assert httpx.get(url).content == stored_bytes(world.storage, expected)
    assert not any("ids" in f.key for f in world.storage.list("v2"))
