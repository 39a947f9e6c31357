"""Creating and finding tournaments, on both backends."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import Cadence, DatasetFile, Rules, Tournament
from crowdquant.db.session import transaction
from crowdquant.payouts import rule_from_data
from crowdquant.tournament.datasets import (
    DatasetError,
    list_dataset_aliases,
    remove_dataset_alias,
    set_dataset_alias,
)
from crowdquant.tournament.rounds import (
    FeedPublisher,
    get_round,
    open_round,
    tournament_payout_rule,
)
from crowdquant.tournament.tournaments import (
    InvalidTournament,
    TournamentError,
    TournamentNameTaken,
    TournamentNotFound,
    TournamentNumberTaken,
    UnknownDatasetVersion,
    create_tournament,
    get_tournament,
    list_tournaments,
    update_settings,
)

from .live_market import MONDAY, TUESDAY_NOON, local_storage, market_feed


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY)


def classic(session: Session, clock: ManualClock, **overrides: Any) -> Tournament:
    arguments: dict[str, Any] = {
        "number": 8,
        "name": "classic",
        "rules": Rules.CLASSIC,
        "cadence": Cadence.DAILY,
        "dataset_version": "v1",
        **overrides,
    }
    return create_tournament(session, clock, **arguments)


def test_create_get_and_list(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    settings = {"calendar": {"window_minutes": 90}, "payout_rule": {"clip": "0.05"}}
    with transaction(sessions) as session:
        weekly = classic(
            session,
            clock,
            number=11,
            name="legacy-2017",
            rules="legacy2017",
            cadence="weekly",
            dataset_version=DatasetVersion("v0", Path("published"), Path("private")),
        )
        daily = classic(session, clock, settings=settings, known_versions={"v1", "v2"})
        assert (weekly.rules, weekly.cadence, weekly.dataset_version) == (
            Rules.RULES2017,
            Cadence.WEEKLY,
            "v0",
        )
    with transaction(sessions) as session:
        found = get_tournament(session, 8)
        assert found.id == daily.id
        assert (found.name, found.rules, found.cadence) == ("classic", Rules.CLASSIC, Cadence.DAILY)
        assert found.settings == settings
        assert found.created_at == MONDAY
        assert [t.number for t in list_tournaments(session)] == [8, 11]


def test_numbers_and_names_are_unique(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    with transaction(sessions) as session:
        classic(session, clock)
        with pytest.raises(TournamentNumberTaken, match="number 8 is taken"):
            classic(session, clock, name="other")
        with pytest.raises(TournamentNameTaken, match="'classic' is taken"):
            classic(session, clock, number=9)
        classic(session, clock, number=9, name="signals")  # the session is still usable
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Tournament)) == 2


def test_unknown_dataset_versions_are_refused(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    with transaction(sessions) as session:
        with pytest.raises(UnknownDatasetVersion, match=r"no dataset version 'v9'.*v1, v2"):
            classic(session, clock, dataset_version="v9", known_versions=["v2", "v1"])
        with pytest.raises(UnknownDatasetVersion, match="known: none"):
            classic(session, clock, known_versions=[])
        assert list_tournaments(session) == []


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"number": 0}, "positive integer"),
    ({"number": True}, "positive integer"),
    ({"name": ""}, "tournament name"),
    ({"name": "Classic Tournament"}, "tournament name"),
    ({"name": "x" * 65}, "tournament name"),
    ({"rules": "poker"}, "poker"),
    ({"cadence": "hourly"}, "hourly"),
    ({"dataset_version": "../v1"}, "not a dataset version"),
    ({"settings": {"calendar": {"window_minutes": -5}}}, "window_minutes"),
    ({"settings": {"calendar": {"open_days": ["mon"], "window_minutes": 10081}}}, "next one"),
    ({"settings": {"when": object()}}, "plain JSON"),
    ({"settings": {"nan": float("nan")}}, "plain JSON"),
    ({"settings": {1: "x"}}, "keys must be strings"),
    ({"settings": ["x"]}, "JSON object"),
    ({"settings": {"payout_rule": {"clip": "0"}}}, "payout_rule: .*clip"),
    ({"settings": {"payout_rule": {"stake_threshold": "-1"}}}, "payout_rule: .*stake_threshold"),
    ({"settings": {"payout_rule": {"rank_prize_places": "3"}}}, "payout_rule: .*rank_prize"),
    ({"settings": {"payout_rule": "classic-v2"}}, "payout_rule"),
]


def test_invalid_tournaments_are_refused(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    with transaction(sessions) as session:
        for overrides, message in INVALID:
            with pytest.raises(InvalidTournament, match=message) as raised:
                classic(session, clock, **overrides)
            assert isinstance(raised.value, TournamentError | ValueError)
            assert raised.value.code == "invalid_tournament"
        assert list_tournaments(session) == []
        classic(session, clock, settings={"calendar": {"open_days": ["mon", "wed"]}})


def test_a_missing_tournament_is_reported(sessions: sessionmaker[Session]) -> None:
    with (
        transaction(sessions) as session,
        pytest.raises(TournamentNotFound, match="no tournament 8"),
    ):
        get_tournament(session, 8)


# --- changing the settings -------------------------------------------------------------------


def test_settings_are_replaced_and_open_rounds_keep_their_payout_rule(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    clock = ManualClock(TUESDAY_NOON + timedelta(minutes=5))
    publisher = FeedPublisher(market_feed(), local_storage(tmp_path / "files"))
    with transaction(sessions) as session:
        tournament = classic(session, clock, settings={"payout_rule": {"clip": "0.05"}})
        opened = open_round(session, clock, tournament, publisher)
        opened_rule = dict(opened.payout_rule)
    assert rule_from_data(opened_rule).clip == Decimal("0.05")  # type: ignore[attr-defined]

    wanted: dict[str, Any] = {
        "calendar": {"window_minutes": 90},
        "payout_rule": {"clip": "0.1"},
        "benchmark_models": ["bench"],
    }
    with transaction(sessions) as session:
        tournament = get_tournament(session, 8)
        assert update_settings(session, tournament, wanted) is tournament
        assert tournament.settings == wanted and tournament.settings is not wanted
    wanted["benchmark_models"].append("changed after the call")  # a copy was kept
    with transaction(sessions) as session:
        found = get_tournament(session, 8)
        assert found.settings == {**wanted, "benchmark_models": ["bench"]}
        assert get_round(session, found, 1).payout_rule == opened_rule  # the open round's
        assert tournament_payout_rule(found).clip == Decimal("0.1")  # type: ignore[attr-defined]
        update_settings(session, found, {})  # back to the defaults
    with transaction(sessions) as session:
        assert get_tournament(session, 8).settings == {}


def test_settings_are_validated_for_the_tournament_s_own_rules(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    legacy = {"payout_rule": {"rank_prize_places": "3"}}
    with transaction(sessions) as session:
        classic(session, clock)
        weekly = classic(session, clock, number=11, name="legacy", rules="legacy2017")
        update_settings(session, weekly, legacy)
        with pytest.raises(InvalidTournament, match=r"payout_rule: .*rank_prize"):
            update_settings(session, get_tournament(session, 8), legacy)
    with transaction(sessions) as session:
        assert get_tournament(session, 11).settings == legacy
        assert get_tournament(session, 8).settings == {}


INVALID_SETTINGS = [
    (overrides["settings"], message) for overrides, message in INVALID if "settings" in overrides
]


def test_invalid_settings_are_refused_as_at_creation_and_nothing_changes(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    kept = {"calendar": {"window_minutes": 90}, "payout_rule": {"clip": "0.1"}}
    with transaction(sessions) as session:
        classic(session, clock, settings=kept)
    for settings, message in INVALID_SETTINGS:
        with transaction(sessions) as session:  # committed after the refusal
            tournament = get_tournament(session, 8)
            with pytest.raises(InvalidTournament, match=message) as raised:
                update_settings(session, tournament, settings)
            assert raised.value.code == "invalid_tournament"
            assert tournament.settings == kept, settings
        with transaction(sessions) as session:
            assert get_tournament(session, 8).settings == kept, settings
            with pytest.raises(InvalidTournament, match=message):  # the same rule at creation
                classic(session, clock, number=9, name="other", settings=settings)
            assert [found.number for found in list_tournaments(session)] == [8]


def published(session: Session, clock: ManualClock, *versions: str) -> None:
    """Record one file of each version as published (all the aliases look at)."""
    for version in versions:
        session.add(
            DatasetFile(
                version=version,
                filename="features.json",
                size=2,
                sha256="0" * 64,
                storage_key=f"{version}/features.json",
                published_at=clock.now(),
            )
        )
    session.flush()


def test_the_settings_aliases_are_served_and_a_bad_one_changes_nothing(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    with transaction(sessions) as session:
        published(session, clock, "v1", "v2")
        classic(session, clock, settings={"aliases": ["v0.9"]})
        classic(session, clock, number=9, name="other", dataset_version="v2")
        classic(session, clock, number=10, name="unpublished", dataset_version="v3")
        set_dataset_alias(session, clock, "v5.1", "v1")  # an alias made by hand is adopted
        set_dataset_alias(session, clock, "old", "v2")
        update_settings(session, get_tournament(session, 8), {"aliases": ["v5.2", "v5.1"]})
        assert list_dataset_aliases(session) == {"old": "v2", "v5.1": "v1", "v5.2": "v1"}
    kept = {"old": "v2", "v5.1": "v1", "v5.2": "v1"}
    refusals = (
        (8, ["v5.3", "v2"], "aliases: 'v2' is a dataset version's own name, not free for an alias"),
        (8, ["v3"], "aliases: 'v3' is a dataset version's own name"),
        (9, ["v5.2"], "aliases: 'v5.2' is an alias of tournament 8"),
        (8, ["old"], "aliases: 'old' is already an alias of 'v2'"),
        (8, ["v5.3", "v5.3"], "aliases: 'v5.3' is listed twice"),
        (8, ["a/b"], "aliases: 'a/b' is not a dataset version name"),
        (10, ["v3.1"], "aliases: the dataset version 'v3' is not published yet"),
        (8, "v5.3", "aliases: Input should be a valid"),
    )
    for number, aliases, message in refusals:
        with transaction(sessions) as session:
            tournament = get_tournament(session, number)
            before = dict(tournament.settings)
            with pytest.raises(InvalidTournament, match=re.escape(message)):
                update_settings(session, tournament, {"aliases": aliases})
            assert tournament.settings == before
        with transaction(sessions) as session:
            assert list_dataset_aliases(session) == kept, aliases
    with transaction(sessions) as session:  # the settings' other rules refuse the aliases too
        with pytest.raises(InvalidTournament, match="payout_rule"):
            update_settings(
                session,
                get_tournament(session, 8),
                {"aliases": ["v5.4"], "payout_rule": {"clip": "-1"}},
            )
        assert list_dataset_aliases(session) == kept
        with pytest.raises(InvalidTournament, match=r"'v5\.1' is an alias of tournament 8"):
            classic(
                session,
                clock,
                number=11,
                name="late",
                dataset_version="v2",
                settings={"aliases": ["v5.4", "v5.1"]},
            )
        assert list_dataset_aliases(session) == kept
    listed = "'v5.1' is listed in tournament 8's settings (\"aliases\"): change it there"
    with transaction(sessions) as session:  # nor are the listed ones moved or dropped by hand
        with pytest.raises(DatasetError, match=re.escape(listed)):
            set_dataset_alias(session, clock, "v5.1", "v2")
        with pytest.raises(DatasetError, match=re.escape(listed)):
            remove_dataset_alias(session, "v5.1")
        set_dataset_alias(session, clock, "v5.1", "v1")  # as it is: nothing to refuse
        assert list_dataset_aliases(session) == kept
    with transaction(sessions) as session:
        tournament = get_tournament(session, 8)
        update_settings(session, tournament, {"aliases": ["v5.1", "v5.3"]}, clock=clock)
        assert tournament.settings == {"aliases": ["v5.1", "v5.3"]}
        assert list_dataset_aliases(session) == {"old": "v2", "v5.1": "v1", "v5.3": "v1"}
        update_settings(session, get_tournament(session, 9), {"aliases": ["v5.2"]})
        update_settings(session, tournament, {})
        assert list_dataset_aliases(session) == {"old": "v2", "v5.2": "v2"}
