"""A bot's stakes where stakes are placed per round (`RoundStaking`), against a stand-in for
the API: the stake value compounds with net payouts, the wallet caps it, and a retry after a
failure part way stakes no model twice."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from crowdquant.simulate.bots import ARCHETYPES, Bot, RoundStaking, Wealth

ROUND = 7
IDS = pd.Index([f"id{i}" for i in range(10)])


class Api:
    """What `Bot.act` asks of a `Participant`, answered from memory."""

    def __init__(self, available: Decimal, staked: Decimal, fail_after: int | None = None):
        self.available, self.staked, self.fail_after = available, staked, fail_after
        self.stakes: list[tuple[str, Decimal]] = []
        self.uploads = 0

    def round_now(self) -> tuple[int | None, bool]:
        return ROUND, True

    def download(
        self, filename: str, folder: object, round_number: int | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame({"target": np.zeros(len(IDS))}, index=IDS)

    def models(self, names: Sequence[str]) -> dict[str, str]:
        return {name: f"model-{name}" for name in names}

    def upload(self, model_id: str, ids: pd.Index, values: object, folder: object) -> None:
        self.uploads += 1

    def wealth(self, model_ids: Sequence[str], round_number: int) -> Wealth:
        assert round_number == ROUND
        on_round = frozenset(model for model, _ in self.stakes if model in model_ids)
        return Wealth(self.available, self.staked, on_round)

    def stake_on_round(self, model_id: str, amount: Decimal) -> None:
        if self.fail_after is not None and len(self.stakes) == self.fail_after:
            self.fail_after = None
            raise RuntimeError("the server was busy")
        self.stakes.append((model_id, amount))
        self.available -= amount
        self.staked += amount


def _spammer(stake: Decimal) -> Bot:
    staking = RoundStaking(rounds_at_risk=20, grant=Decimal(1000))
    return Bot("spammer_1", ARCHETYPES["spammer"], stake, seed=1, round_staking=staking)


@pytest.mark.parametrize(
    ("available", "staked", "each"),
    [
        (Decimal(1000), Decimal(0), Decimal(5)),  # 8 × 100 ÷ 20 ÷ 8
        (Decimal(900), Decimal(300), Decimal("6.25")),  # won 200: (800 + 200) ÷ 20 ÷ 8
        (Decimal(8), Decimal(792), Decimal(1)),  # broke even, but the wallet holds only 8
        (Decimal(0), Decimal(100), Decimal(0)),  # lost 900: nothing left to stake
    ],
)
def test_the_stake_value_compounds_and_the_wallet_caps_it(
    available: Decimal, staked: Decimal, each: Decimal
) -> None:
    api = Api(available, staked)
    _spammer(Decimal(100)).act(api)  # type: ignore[arg-type]
    assert api.stakes == (
        [] if each == 0 else [(f"model-spammer_1_{i}", each) for i in range(1, 9)]
    )


def test_a_retry_after_a_failure_part_way_stakes_no_model_twice() -> None:
    api, bot = Api(Decimal(1000), Decimal(0), fail_after=3), _spammer(Decimal(100))
    with pytest.raises(RuntimeError):
        bot.act(api)  # type: ignore[arg-type]
    assert bot.act(api) is not None  # the driver's retry: uploads again, stakes the rest
    staked = [model for model, _ in api.stakes]
    assert sorted(staked) == sorted(f"model-spammer_1_{i}" for i in range(1, 9))
    assert api.uploads == 16
