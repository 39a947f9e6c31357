"""A tournament's settings JSON as one typed model."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import Cadence, Rules, Tournament
from crowdquant.db.session import transaction
from crowdquant.fund.costs import CostModel
from crowdquant.fund.portfolio import PortfolioLimits
from crowdquant.tournament.settings_model import (
    DEFAULT_REPUTATION_DAYS,
    SettingsError,
    parsed_settings,
    settings_of,
)
from crowdquant.tournament.tournaments import InvalidTournament, create_tournament, update_settings

from .live_market import MONDAY


def test_absent_and_null_keys_take_the_defaults() -> None:
    for stored in ({}, {key: None for key in ("calendar", "meta_model", "fund")}):
        settings = parsed_settings(stored)
        assert settings.calendar == {} and settings.payout_rule == {}
        assert settings.meta_model.weights == "stake"
        assert settings.benchmark_models == ()
        assert settings.reputation_days == DEFAULT_REPUTATION_DAYS
        assert settings.duplicate_threshold == 0.95
        assert settings.fund.limits == PortfolioLimits()
        assert settings.fund.costs == CostModel()
        assert settings.live == "open"


def test_every_key_is_read_typed() -> None:
    settings = parsed_settings(
        {
            "calendar": {"window_minutes": 90},
            "payout_rule": {"clip": "0.1"},
            "meta_model": {"weights": "stake_x_test"},
            "benchmark_models": ["bench"],
            "reputation_days": 30,
            "fund": {"limits": {"max_position": 0.05}, "costs": {"half_spread_bps": 2}},
            "live": "closed",
        }
    )
    assert settings.live == "closed"
    assert settings.calendar == {"window_minutes": 90}
    assert settings.payout_rule == {"clip": "0.1"}
    assert settings.meta_model.weights == "stake_x_test"
    assert settings.benchmark_models == ("bench",)
    assert settings.reputation_days == 30
    assert settings.fund.limits == PortfolioLimits(max_position=0.05)
    assert settings.fund.costs == CostModel(half_spread_bps=2)


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"payout": {"clip": "0.05"}}, "payout: Extra inputs are not permitted"),
    ({"fund": {"limit": {}}}, "fund.limit: Extra inputs"),
    ({"fund": {"limits": {"max_position": 0}}}, "fund.limits.max_position: .*greater than 0"),
    ({"fund": {"costs": {"spread_bps": 1}}}, "fund.costs.spread_bps: Extra inputs"),
    ({"reputation_days": 0}, "reputation_days: .*greater than or equal to 1"),
    ({"duplicate_threshold": 1.5}, "duplicate_threshold: .*less than or equal to 1"),
    ({"duplicate_threshold": 0}, "duplicate_threshold: .*greater than 0"),
    ({"benchmark_models": "bench"}, "benchmark_models: "),
    ({"calendar": "daily"}, "calendar: .*dictionary"),
    ({"meta_model": {"weights": "equal"}}, "meta_model: weights is one of 'stake'"),
    ({"live": "sealed"}, "live: Input should be 'open' or 'closed'"),
]


@pytest.mark.parametrize(("stored", "message"), REFUSED)
def test_a_bad_key_is_refused_by_name(stored: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        parsed_settings(stored)
    assert raised.value.code == "invalid_settings"


def test_writes_are_refused_as_invalid_tournaments(
    sessions: sessionmaker[Session],
) -> None:
    clock = ManualClock(MONDAY)
    fund = {"fund": {"costs": {"commission_bps": 3}}}
    with transaction(sessions) as session:
        tournament = create_tournament(
            session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1", fund
        )
        with pytest.raises(InvalidTournament, match=r"fund\.costs\.commision_bps: Extra"):
            update_settings(session, tournament, {"fund": {"costs": {"commision_bps": 3}}})
        assert tournament.settings == fund
        assert settings_of(tournament).fund.costs.commission_bps == 3
    with transaction(sessions) as session:
        stored = session.query(Tournament).one()
        assert stored.settings == fund  # the operator's own JSON, as written
        update_settings(session, stored, {})
        assert settings_of(stored).fund.costs == CostModel()
