"""A tournament's settings JSON as one typed model, read through `settings_of`.

Every key a tournament may set is declared here; an unknown key (a typo) is refused with its
name. What depends on the tournament's rules and cadence (the calendar's schedule, the payout
rule's overrides, which meta-model weightings apply) is checked where the settings are
written, `tournament.tournaments`. The stored JSON is the operator's own: absent keys take
the defaults below, and a ``null`` value counts as absent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from crowdquant.db.models import Tournament
from crowdquant.fund.rounds import FundRules
from crowdquant.scoring.metamodel import DEFAULT_META_MODEL_WEIGHTS, META_MODEL_WEIGHTS
from crowdquant.tournament.errors import ServiceError

DEFAULT_REPUTATION_DAYS = 365


class SettingsError(ServiceError):
    """Settings JSON the model refuses; the message names the bad key."""

    code = "invalid_settings"


class MetaModelSettings(BaseModel):
    """``"meta_model"``: how the round's meta model weighs the on-time submissions
    (``"stake"``, ``"stake_x_reputation"``, or ``"stake_x_test"`` for 2017 tournaments, see
    `scoring.metamodel`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: str = DEFAULT_META_MODEL_WEIGHTS

    @model_validator(mode="before")
    @classmethod
    def _known_weighting(cls, data: Any) -> Any:
        if not isinstance(data, dict) or set(data) - {"weights"}:
            raise PydanticCustomError("meta_model", 'an object with one key, "weights"')
        weights = data.get("weights", DEFAULT_META_MODEL_WEIGHTS)
        if weights not in META_MODEL_WEIGHTS:
            raise PydanticCustomError(
                "meta_model",
                "weights is one of {known}, not {weights}",
                {
                    "known": ", ".join(repr(name) for name in META_MODEL_WEIGHTS),
                    "weights": repr(weights),
                },
            )
        return data


class TournamentSettings(BaseModel):
    """The keys of ``Tournament.settings``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the cadence's calendar (`calendar`)"
    )
    payout_rule: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the rules' default payout rule"
    )
    meta_model: MetaModelSettings = MetaModelSettings()
    benchmark_models: tuple[str, ...] = Field(
        (), description="names of the models whose submissions are the round's benchmarks"
    )
    duplicate_threshold: float = Field(
        0.95,
        gt=0,
        le=1,
        description="the Spearman correlation above which two submissions are near-duplicates"
        " (1: none are)",
    )
    reputation_days: int = Field(
        DEFAULT_REPUTATION_DAYS, ge=1, description="days of rounds a model's reputation spans"
    )
    fund: FundRules = FundRules()
    aliases: tuple[str, ...] = Field(
        (),
        description="other names the tournament's dataset version is served under"
        " (`tournament.tournaments` applies them as `tournament.datasets` aliases)",
    )
    live: Literal["open", "closed"] = Field(
        "open",
        description='"closed": live features are never published; only uploaded models see'
        " them, in the sandbox (`tournament.live_mode`)",
    )

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


def parsed_settings(settings: Any) -> TournamentSettings:
    """`settings` (a tournament's settings JSON) as the model; raises SettingsError."""
    try:
        return TournamentSettings.model_validate(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise SettingsError(problems) from None


def settings_of(tournament: Tournament) -> TournamentSettings:
    """The tournament's settings, parsed; raises SettingsError for JSON stored unchecked."""
    return parsed_settings(tournament.settings)
