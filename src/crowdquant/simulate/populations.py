"""Named populations of bots for `crowdquant simulate --population NAME`.

Stakes are shares of the run's `--stake` (NMR per model; a sybil's is split between its
models). A latecomer's stake is never at risk.

- realistic (the default): 36 participants of varied skill (analysts of drawn skill, the
  example, ridge and boosting recipes); spammers, copiers and sybils a small minority of the
  stake (spammers about 4 %, copiers about 3 %);
- spam: the realistic population with four spammers holding half of all the stake at the
  start;
- sybils: the realistic population with twelve sybils (60 models);
- copier: the realistic population with one copier, holding as much stake as the linear
  bot whose predictions it copies (the ridge on every feature, the crowd's consensus);
- one-each: one bot of each archetype, each at the whole stake.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from crowdquant.simulate.bots import ARCHETYPES, Cohort

DEFAULT_POPULATION = "realistic"


def _cohorts(*spec: tuple[str, int, str]) -> list[Cohort]:
    return [Cohort(ARCHETYPES[name], count, Decimal(share)) for name, count, share in spec]


REALISTIC = _cohorts(
    ("analyst", 8, "0.5"),
    ("analyst", 8, "2"),
    ("example", 3, "1"),
    ("linear", 3, "1.5"),
    ("boosting", 4, "1"),
    ("spammer", 2, "0.1"),
    ("copier", 2, "0.5"),
    ("sybil", 2, "1"),
    ("latecomer", 2, "1"),
)


def staked(cohorts: Sequence[Cohort]) -> Decimal:
    """The stake of `cohorts` at the start, in shares of `--stake`."""
    return sum(
        (
            cohort.count
            * cohort.stake_share
            * (1 if cohort.archetype.split_stake else cohort.archetype.models)
            for cohort in cohorts
        ),
        Decimal(0),
    )


def _spam_half(cohorts: Sequence[Cohort], spammers: int) -> list[Cohort]:
    """`cohorts` with their spammers replaced by `spammers` holding as much as all the rest."""
    rest = [cohort for cohort in cohorts if cohort.archetype.name != "spammer"]
    spammer = ARCHETYPES["spammer"]
    share = staked(rest) / (spammers * spammer.models)
    return [*rest, Cohort(spammer, spammers, share)]


def _with(cohorts: Sequence[Cohort], name: str, replacement: Cohort) -> list[Cohort]:
    return [replacement if cohort.archetype.name == name else cohort for cohort in cohorts]


POPULATIONS: dict[str, list[Cohort]] = {
    "realistic": REALISTIC,
    "spam": _spam_half(REALISTIC, 4),
    "sybils": _with(REALISTIC, "sybil", Cohort(ARCHETYPES["sybil"], 12)),
    "copier": _with(REALISTIC, "copier", Cohort(ARCHETYPES["copier"], 1, Decimal("1.5"))),
    "one-each": [Cohort(archetype, 1) for archetype in ARCHETYPES.values()],
}


def parse_population(text: str) -> list[Cohort]:
    """A population's name ("realistic", "spam", ...), or bots per archetype:
    "spammer=2,linear=1" (each at the whole stake)."""
    if text.strip() in POPULATIONS:
        return POPULATIONS[text.strip()]
    cohorts: list[Cohort] = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, sep, count = part.partition("=")
        if name not in ARCHETYPES:
            raise ValueError(
                f"unknown archetype {name!r} (populations: {', '.join(POPULATIONS)};"
                f" archetypes: {', '.join(ARCHETYPES)})"
            )
        if not sep or not count.isdigit():
            raise ValueError(f"{part!r}: write archetype=count, e.g. {name}=1")
        cohorts.append(Cohort(ARCHETYPES[name], int(count)))
    if not any(cohort.count for cohort in cohorts):
        raise ValueError("the population has no bot")
    return cohorts
