"""A round's payout rule as the list of versioned score configs numerapi reads.

Each score a round is measured by gets one `ScoreConfig` (numerapi's `roundScoreConfigs`):
its name and version, the window it is computed over, whether it is the canonical score and
whether it pays, and, for the scores that pay, the multiplier, clip, stake threshold, payout
factor and hurdle of the round's rule (the clip and the hurdle apply once, to the sum of the
paying scores times their multipliers; every paying config repeats them). A round records
its configs when it opens (`configs_to_data`), so later settings changes leave it as it was;
`configs_from_data` reads them back, checking every field. Values are strings in the stored
data, as in `rules.rule_to_data`, so nothing loses precision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from crowdquant.payouts.rules import PayoutRule, PayoutRuleError, parse_decimal, parse_int

UNIVERSE = "all"
"""Every row of the live era is scored (the one universe the platform has)."""


@dataclass(frozen=True)
class ScoringWindow:
    """Over which days a round's scores are computed."""

    round_number: int
    total_score_days: int
    """Trading days the target spans."""
    returns_lag_days: int
    """Trading days from the live era's date to the first return."""
    data_delay_days: int
    """Calendar days from the target's last close to its score."""
    scoring_start: datetime
    scoring_end: datetime | None


@dataclass(frozen=True)
class ScoreConfig:
    """One score of a round, and what it pays (numerapi's `RoundScoreConfig`)."""

    score_config_id: str
    name: str
    version: str
    display_name: str
    round_number_start: int
    round_number_end: int
    universe: str
    is_canon_score: bool
    is_payout: bool
    total_score_days: int
    returns_lag_days: int
    data_delay_days: int
    scoring_start: datetime
    scoring_end: datetime | None
    default_multiplier: Decimal | None
    min_multiplier: Decimal | None
    max_multiplier: Decimal | None
    clip_threshold: Decimal | None
    stake_threshold: int | None
    """NMR units; None where the rule has no stake threshold."""
    payout_factor: Decimal | None
    """The rule's fixed payout factor; None where it depends on the stakes at risk."""
    hurdle: Decimal | None
    """What Σ multiplier × score must beat to earn; None where the rule has none (configs
    recorded before rules had hurdles read back with none)."""


def payout_multipliers(rule: PayoutRule) -> dict[str, Decimal | None]:
    """The scores `rule` pays on, each with its multiplier (None: not a multiple of it)."""
    return rule.terms().multipliers


def score_configs(
    rule: PayoutRule,
    metrics: Iterable[str],
    canon: str,
    window: ScoringWindow,
    scoring_version: str,
) -> list[ScoreConfig]:
    """The configs of a round scored by `metrics` (`canon` the one it ranks by) and paid by
    `rule`: the paying scores first, in the rule's order, then the others by name."""
    terms = rule.terms()
    paying = terms.multipliers
    names = list(paying) + sorted(set(metrics) - set(paying))
    clip, threshold, factor = terms.clip, terms.stake_threshold, terms.payout_factor
    configs = []
    for name in names:
        pays = name in paying
        multiplier = paying.get(name)
        configs.append(
            ScoreConfig(
                score_config_id=f"{name}-{scoring_version}",
                name=name,
                version=scoring_version,
                display_name=name,
                round_number_start=window.round_number,
                round_number_end=window.round_number,
                universe=UNIVERSE,
                is_canon_score=name == canon,
                is_payout=pays,
                total_score_days=window.total_score_days,
                returns_lag_days=window.returns_lag_days,
                data_delay_days=window.data_delay_days,
                scoring_start=window.scoring_start,
                scoring_end=window.scoring_end,
                default_multiplier=multiplier,
                min_multiplier=multiplier,
                max_multiplier=multiplier,
                clip_threshold=clip if pays else None,
                stake_threshold=threshold if pays else None,
                payout_factor=factor if pays else None,
                hurdle=terms.hurdle if pays else None,
            )
        )
    return configs


DECIMAL_FIELDS = (
    "default_multiplier",
    "min_multiplier",
    "max_multiplier",
    "clip_threshold",
    "payout_factor",
    "hurdle",
)
"""The fields of a `ScoreConfig` that are Decimals (or None)."""
_INTS = {
    "round_number_start",
    "round_number_end",
    "total_score_days",
    "returns_lag_days",
    "data_delay_days",
    "stake_threshold",
}
_BOOLS = {"is_canon_score", "is_payout"}
_TIMES = {"scoring_start", "scoring_end"}
_OPTIONAL = {*DECIMAL_FIELDS, "stake_threshold", "scoring_end"}


def config_to_data(config: ScoreConfig) -> dict[str, Any]:
    """A JSON-safe dict: booleans as they are, every other value a string (or None)."""
    data: dict[str, Any] = {}
    for field in fields(config):
        value = getattr(config, field.name)
        if value is None or isinstance(value, bool):
            data[field.name] = value
        elif isinstance(value, datetime):
            data[field.name] = value.isoformat()
        else:
            data[field.name] = str(value)
    return data


def configs_to_data(configs: Sequence[ScoreConfig]) -> list[dict[str, Any]]:
    return [config_to_data(config) for config in configs]


def _parsed(name: str, value: object) -> object:
    if value is None:
        if name not in _OPTIONAL:
            raise PayoutRuleError(f"{name}: missing")
        return None
    if name in DECIMAL_FIELDS:
        return parse_decimal(name, value)
    if name in _INTS:
        return parse_int(name, value)
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise PayoutRuleError(f"{name}: must be true or false, got {value!r}")
        return value
    if not isinstance(value, str):
        raise PayoutRuleError(f"{name}: must be a string, got {value!r}")
    if name in _TIMES:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise PayoutRuleError(f"{name}: must be an ISO time, got {value!r}") from None
    return value


def config_from_data(data: Mapping[str, Any]) -> ScoreConfig:
    """The config a dict from `config_to_data` describes; every field is required."""
    if not isinstance(data, Mapping):
        raise PayoutRuleError(f"score config: must be a mapping, got {type(data).__name__}")
    known = {field.name for field in fields(ScoreConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PayoutRuleError(f"{unknown[0]}: unknown field of a score config")
    values = {name: _parsed(name, data.get(name)) for name in sorted(known)}
    return ScoreConfig(**values)  # type: ignore[arg-type]


def configs_from_data(data: object) -> list[ScoreConfig]:
    """The configs a list from `configs_to_data` describes."""
    if not isinstance(data, list | tuple):
        raise PayoutRuleError(f"score configs: must be a list, got {type(data).__name__}")
    return [config_from_data(item) for item in data]
