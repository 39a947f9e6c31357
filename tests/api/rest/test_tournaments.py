"""GET /tournaments, /tournaments/{n}, /tournaments/{n}/rounds[/{round}]."""

from __future__ import annotations

from datetime import timedelta

from .helpers import RestWorld, refused


def test_tournaments(world: RestWorld) -> None:
    with world.client(None) as api:
        listed = api.get("/tournaments").json()
        assert [found["number"] for found in listed] == [8, 11]
        eight = api.get("/tournaments/8").json()
    assert eight == listed[0]
    assert eight["name"] == "classic"
    assert eight["rules"] == "classic"
    assert eight["cadence"] == "daily"
    assert eight["dataset_version"] == "v1"
    assert eight["created_at"].endswith("Z")


def test_rounds_current_and_by_number(world: RestWorld) -> None:
    with world.client(None) as api:
        rounds = api.get("/tournaments/8/rounds").json()
        assert [found["number"] for found in rounds] == [1]
        first = rounds[0]
        assert first["status"] == "open"
        assert first["is_open"] is True
        assert first["tournament"] == 8
        assert first["dataset_version"] == "v1"
        assert first["open_time"] == "2001-01-09T12:00:00Z"
        assert first["close_time"] == "2001-01-09T13:00:00Z"
        configs = {config["name"]: config for config in first["score_configs"]}
        assert [config["name"] for config in first["score_configs"]] == [
            "corr",
            "mmc",
            "bmc",
            "fnc",
        ]
        corr = configs["corr"]
        assert (corr["is_canon_score"], corr["is_payout"]) == (True, True)
        assert (corr["default_multiplier"], configs["mmc"]["default_multiplier"]) == ("0.5", "2")
        assert (corr["clip_threshold"], corr["payout_factor"]) == ("0.05", None)
        assert (corr["hurdle"], configs["fnc"]["hurdle"]) == ("0.001", None)
        assert corr["stake_threshold"] == "72000"
        assert corr["scoring_start"] == first["close_time"]
        assert configs["fnc"]["is_payout"] is False
        assert configs["fnc"]["default_multiplier"] is None
        for ref in ("current", "0", "1"):
            assert api.get(f"/tournaments/8/rounds/{ref}").json() == first
        assert api.get("/tournaments/8/rounds", params={"status": "resolved"}).json() == []
        only_open = api.get("/tournaments/8/rounds", params={"status": ["open", "closed"]})
        assert only_open.json() == rounds
        assert api.get("/tournaments/11/rounds").json() == []

        world.clock.advance(timedelta(hours=1))  # past the close: not open, status unchanged
        late = api.get("/tournaments/8/rounds/current").json()
    assert late["status"] == "open"
    assert late["is_open"] is False


def test_unknown_tournaments_and_rounds(world: RestWorld) -> None:
    with world.client(None) as api:
        refused(api.get("/tournaments/99"), 404, "tournament_not_found")
        refused(api.get("/tournaments/99/rounds"), 404, "tournament_not_found")
        refused(api.get("/tournaments/8/rounds/2"), 404, "round_not_found")
        message = refused(api.get("/tournaments/11/rounds/current"), 404, "round_not_found")
        assert "no round yet" in message["message"]


def test_bad_input_is_422_never_500(world: RestWorld) -> None:
    with world.client(None) as api:
        for path in (
            "/tournaments/0",
            "/tournaments/-1",
            "/tournaments/eight",
            "/tournaments/99999999999999999999999",
            "/tournaments/8/rounds/-1",
            "/tournaments/8/rounds/latest",
            "/tournaments/8/rounds/9999999999999",
        ):
            refused(api.get(path), 422, "invalid_request")
        refused(api.get("/tournaments/8/rounds", params={"status": "nope"}), 422, "invalid_request")
        refused(api.get("/tournaments/8/rounds", params={"limit": 0}), 422, "invalid_request")


def test_unknown_endpoints_and_methods(world: RestWorld) -> None:
    with world.client(None) as api:
        refused(api.get("/nothing/here"), 404, "not_found")
        wrong_method = api.delete("/tournaments/8")
        refused(wrong_method, 405, "method_not_allowed")
        assert wrong_method.headers["allow"] == "GET"
