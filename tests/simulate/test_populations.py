"""The named populations: who is in them and who holds the stake at the start; and how
`--population` is read."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from crowdquant.simulate.bots import (
    ARCHETYPES,
    Bot,
    ExampleFits,
    analyst_model,
    linear_model,
    population,
)
from crowdquant.simulate.populations import POPULATIONS, parse_population

STAKE = Decimal(100)


def stake_by_archetype(bots: list[Bot]) -> dict[str, Decimal]:
    """Each archetype's NMR staked at the start (a sybil's stake is split, not multiplied)."""
    found: dict[str, Decimal] = {}
    for bot in bots:
        total = bot.stake if bot.archetype.split_stake else bot.stake * bot.archetype.models
        found[bot.archetype.name] = found.get(bot.archetype.name, Decimal(0)) + total
    return found


def test_the_realistic_population_is_dozens_of_participants_spammers_and_copiers_a_minority() -> (
    None
):
    bots = population(POPULATIONS["realistic"], STAKE, seed=1)
    assert len(bots) >= 24 and len({bot.username for bot in bots}) == len(bots)
    stakes = stake_by_archetype(bots)
    total = sum(stakes.values())
    assert stakes["spammer"] / total < Decimal("0.1") and stakes["copier"] / total < Decimal("0.1")
    assert stakes["spammer"] > 0 and stakes["copier"] > 0 and stakes["sybil"] > 0
    assert len({bot.stake for bot in bots if bot.archetype.name == "analyst"}) > 1


def test_the_spam_population_holds_half_the_stake_at_the_start() -> None:
    stakes = stake_by_archetype(population(POPULATIONS["spam"], STAKE, seed=1))
    total = sum(stakes.values())
    assert stakes["spammer"] * 2 == pytest.approx(total, rel=Decimal("1e-9"))


def test_the_sybil_population_has_many_sybils_and_the_copier_one_copies_the_top_model() -> None:
    sybils = [bot for bot in population(POPULATIONS["sybils"], STAKE) if bot.archetype.split_stake]
    assert len(sybils) >= 10
    copiers = [bot for bot in population(POPULATIONS["copier"], STAKE) if "copier" in bot.username]
    assert [bot.archetype.strategy for bot in copiers] == [linear_model]


def test_analysts_differ_by_seed_and_repeat_with_it() -> None:
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(300, 12)), columns=[f"feature_{i}" for i in range(12)])
    train = features.assign(target=features.sum(axis=1) + rng.normal(size=300))
    live = features.iloc[:50]
    first, again, other = (
        analyst_model(train, ("a",), seed, ExampleFits())(live)["a"] for seed in (1, 1, 2)
    )
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_a_population_is_named_or_counted_per_archetype() -> None:
    assert parse_population("spam") == POPULATIONS["spam"]
    counted = parse_population("spammer=2, linear=1")
    assert [(c.archetype, c.count, c.stake_share) for c in counted] == [
        (ARCHETYPES["spammer"], 2, 1),
        (ARCHETYPES["linear"], 1, 1),
    ]
    with pytest.raises(ValueError, match="unknown archetype 'crowd' \\(populations: realistic"):
        parse_population("crowd")


def test_a_populations_bots_share_one_example_fit_cache_and_another_run_has_its_own() -> None:
    first, second = (population(POPULATIONS["realistic"], STAKE) for _ in range(2))
    assert len({id(bot.fits) for bot in first}) == 1
    assert first[0].fits is not second[0].fits
