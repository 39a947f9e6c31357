"""Payout rules as versioned data: each round records the rule it pays by.

A rule is a frozen dataclass whose fields are its parameters; `rule_to_data` writes it as a
JSON-safe dict (every value a string, so nothing loses precision) tagged with its `version`,
and `rule_from_data` reads one back, checking every field. A rule outside its valid ranges
cannot be built at all: the checks run on construction too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, ClassVar

from crowdquant.money import NMR_UNIT

_INTEGER = re.compile(r"[+-]?\d+")


class PayoutRuleError(ValueError):
    """A payout rule that cannot be read or is out of range; the message names the field."""


def _check(ok: bool, name: str, why: str, value: object) -> None:
    if not ok:
        raise PayoutRuleError(f"{name}: {why}, got {value!r}")


def _finite(name: str, value: Decimal) -> None:
    _check(value.is_finite(), name, "must be a finite number", value)


@dataclass(frozen=True)
class PayoutTerms:
    """What a rule pays on, as a round's score configs show it."""

    multipliers: dict[str, Decimal | None]
    """Each paying score and its multiplier (None: the rule does not multiply it)."""
    clip: Decimal | None = None
    stake_threshold: int | None = None
    payout_factor: Decimal | None = None
    """The fixed payout factor; None where it depends on the stakes at risk."""
    hurdle: Decimal | None = None
    """What Σ multiplier × score must beat to earn, once per payout; None: none (or 0)."""


def _check_hurdle(rule: ClassicRule | RoundStakeRule) -> None:
    _finite("hurdle", rule.hurdle)
    _check(0 <= rule.hurdle <= rule.clip, "hurdle", "must be in [0, clip]", rule.hurdle)


@dataclass(frozen=True)
class ClassicRule:
    """The classic rule: stake_at_risk × clip(payout_factor × (c·CORR + m·MMC − hurdle), ±clip),
    payout_factor = min(1, stake_threshold / total stake at risk).

    classic-v2 is Numerai's classic rule (`ClassicV1Rule`) with a hurdle: the score a stake
    must beat to earn. Without one, predictions of no skill break even: their CORR and MMC
    average 0, so their payouts do, and spraying random models costs nothing. With it they
    lose payout_factor × hurdle per NMR at risk a round. The default, 0.001, is a CORR of
    0.002 at these multipliers: a tenth of a skilled model's.
    """

    corr_multiplier: Decimal = Decimal("0.5")
    mmc_multiplier: Decimal = Decimal("2")
    clip: Decimal = Decimal("0.05")
    stake_threshold: int = 72_000 * NMR_UNIT
    hurdle: Decimal = Decimal("0.001")
    version: ClassVar[str] = "classic-v2"
    kind: ClassVar[str] = "classic"

    def __post_init__(self) -> None:
        for name in ("corr_multiplier", "mmc_multiplier", "clip"):
            _finite(name, getattr(self, name))
        _check(
            self.corr_multiplier >= 0,
            "corr_multiplier",
            "must not be negative",
            self.corr_multiplier,
        )
        _check(
            self.mmc_multiplier >= 0, "mmc_multiplier", "must not be negative", self.mmc_multiplier
        )
        _check(0 < self.clip <= 1, "clip", "must be in (0, 1]", self.clip)
        _check(
            self.stake_threshold > 0, "stake_threshold", "must be positive", self.stake_threshold
        )
        _check_hurdle(self)

    def factor_for(self, total_at_risk: int) -> Fraction:
        """min(1, stake_threshold / total_at_risk); 1 when nothing is at risk."""
        if total_at_risk == 0:
            return Fraction(1)
        return min(Fraction(1), Fraction(self.stake_threshold, total_at_risk))

    def terms(self) -> PayoutTerms:
        return PayoutTerms(
            {"corr": self.corr_multiplier, "mmc": self.mmc_multiplier},
            clip=self.clip,
            stake_threshold=self.stake_threshold,
            hurdle=self.hurdle or None,
        )


@dataclass(frozen=True)
class ClassicV1Rule(ClassicRule):
    """Numerai's classic rule, with no hurdle: the rule of the rounds recorded before
    classic-v2."""

    hurdle: Decimal = Decimal("0")
    version: ClassVar[str] = "classic-v1"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.hurdle == 0, "hurdle", "classic-v1 has none (classic-v2 has)", self.hurdle)


@dataclass(frozen=True)
class Rules2017Rule:
    """The 2017 rule: beat the logloss benchmark, a confidence auction, and rank prizes."""

    benchmark_logloss: Decimal = Decimal("0.69314718")
    consistency_threshold: Decimal = Decimal("0.75")
    staking_pool_usd: int = 100_000
    rank_prize_usd: Decimal = Decimal("1000")
    rank_prize_decay: Decimal = Decimal("1.2")
    rank_prize_places: int = 100
    nmr_per_usd: Decimal = Decimal("4")
    version: ClassVar[str] = "legacy2017-v1"
    kind: ClassVar[str] = "legacy2017"

    def __post_init__(self) -> None:
        for name in (
            "benchmark_logloss",
            "consistency_threshold",
            "rank_prize_usd",
            "rank_prize_decay",
            "nmr_per_usd",
        ):
            _finite(name, getattr(self, name))
        _check(
            self.benchmark_logloss > 0,
            "benchmark_logloss",
            "must be positive",
            self.benchmark_logloss,
        )
        _check(
            0 <= self.consistency_threshold <= 1,
            "consistency_threshold",
            "must be in [0, 1]",
            self.consistency_threshold,
        )
        for name in (
            "staking_pool_usd",
            "rank_prize_usd",
            "rank_prize_decay",
            "rank_prize_places",
            "nmr_per_usd",
        ):
            value = getattr(self, name)
            _check(value >= 0, name, "must not be negative", value)

    def terms(self) -> PayoutTerms:
        return PayoutTerms({"logloss": None})


@dataclass(frozen=True)
class RoundStakeRule:
    """Numerai's 2026 rule: a stake per round, round_stake × clip(payout_factor × (c·CORR +
    m·MMC − hurdle), ±clip), with clip 1, payout factor 1 (no stake threshold) and no hurdle
    by default (`ClassicRule` says what a hurdle does)."""

    corr_multiplier: Decimal = Decimal("5")
    mmc_multiplier: Decimal = Decimal("10")
    clip: Decimal = Decimal("1")
    payout_factor: Decimal = Decimal("1")
    hurdle: Decimal = Decimal("0")
    version: ClassVar[str] = "round-stake-v1"
    kind: ClassVar[str] = "round-stake"

    def __post_init__(self) -> None:
        for name in ("corr_multiplier", "mmc_multiplier", "clip", "payout_factor"):
            _finite(name, getattr(self, name))
        for name in ("corr_multiplier", "mmc_multiplier"):
            value = getattr(self, name)
            _check(value >= 0, name, "must not be negative", value)
        _check(0 < self.clip <= 1, "clip", "must be in (0, 1]", self.clip)
        _check(
            0 < self.payout_factor <= 1, "payout_factor", "must be in (0, 1]", self.payout_factor
        )
        _check_hurdle(self)

    def factor_for(self, total_at_risk: int) -> Fraction:
        """The rule's own payout factor, whatever is at risk."""
        del total_at_risk
        return Fraction(self.payout_factor)

    def terms(self) -> PayoutTerms:
        return PayoutTerms(
            {"corr": self.corr_multiplier, "mmc": self.mmc_multiplier},
            clip=self.clip,
            payout_factor=self.payout_factor,
            hurdle=self.hurdle or None,
        )


PayoutRule = ClassicRule | Rules2017Rule | RoundStakeRule
"""A payout rule of any version."""
MultiplierRule = ClassicRule | RoundStakeRule
"""The rules that pay stake × clip(payout_factor × (c·CORR + m·MMC − hurdle), ±clip)."""
_CURRENT = (ClassicRule, Rules2017Rule, RoundStakeRule)
"""Each kind's rule for rounds opening now; `RULES` also reads the versions before."""
RULES: dict[str, type[PayoutRule]] = {rule.version: rule for rule in (*_CURRENT, ClassicV1Rule)}
KINDS: dict[str, type[PayoutRule]] = {rule.kind: rule for rule in _CURRENT}


def parse_decimal(name: str, value: object) -> Decimal:
    """A finite Decimal from a string, an int, a float or a Decimal (never a bool)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PayoutRuleError(f"{name}: must be a number, got {value!r}")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise PayoutRuleError(f"{name}: must be a number, got {value!r}") from None
    _finite(name, number)
    return number


def parse_int(name: str, value: object) -> int:
    """An int from an int or a string of decimal digits (never a bool or a float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        try:
            return int(value.strip())
        except ValueError:  # more digits than int() reads
            pass
    raise PayoutRuleError(f"{name}: must be an integer, got {value!r}")


def _parsers(rule: type[PayoutRule]) -> dict[str, Callable[[str, object], Decimal | int]]:
    """Each field of a rule class and the parser for its type."""
    defaults = rule()
    return {
        field.name: parse_int if isinstance(getattr(defaults, field.name), int) else parse_decimal
        for field in fields(rule)
    }


def rule_to_data(rule: PayoutRule) -> dict[str, Any]:
    """A JSON-safe dict: the rule's version and each field as a string."""
    data: dict[str, Any] = {"version": rule.version}
    data.update({field.name: str(getattr(rule, field.name)) for field in fields(rule)})
    return data


def rule_from_data(data: Mapping[str, Any]) -> PayoutRule:
    """The rule a dict from `rule_to_data` describes; missing fields take their defaults."""
    if not isinstance(data, Mapping):
        raise PayoutRuleError(f"rule: must be a mapping, got {type(data).__name__}")
    version = data.get("version")
    if version is None:
        raise PayoutRuleError("version: missing")
    if not isinstance(version, str) or version not in RULES:
        raise PayoutRuleError(f"version: unknown, got {version!r} (known: {sorted(RULES)})")
    rule = RULES[version]
    parsers = _parsers(rule)
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "version":
            continue
        if name not in parsers:
            raise PayoutRuleError(f"{name}: unknown field for {version}")
        values[name] = parsers[name](name, value)
    return rule(**values)


def default_rule(kind: str) -> PayoutRule:
    """The default rule of a kind: "classic", "legacy2017" or "round-stake"."""
    if kind not in KINDS:
        raise PayoutRuleError(f"kind: unknown, got {kind!r} (known: {sorted(KINDS)})")
    return KINDS[kind]()


def rule_with(kind: str, overrides: Mapping[str, Any]) -> PayoutRule:
    """The default rule of `kind` with some fields replaced, checked as `rule_from_data` does."""
    data = rule_to_data(default_rule(kind))
    if not isinstance(overrides, Mapping):
        raise PayoutRuleError(f"overrides: must be a mapping, got {type(overrides).__name__}")
    if "version" in overrides and overrides["version"] != data["version"]:
        raise PayoutRuleError(
            f"version: {overrides['version']!r} does not match kind {kind!r} ({data['version']})"
        )
    return rule_from_data({**data, **overrides})
