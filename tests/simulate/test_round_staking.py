"""A bot's stakes against a stand-in for the API. Where stakes are placed per round
(`RoundStaking`): the stake value compounds with net payouts (or stays put, for a fixed
stake), the wallet caps it, and a retry after a failure part way stakes no model twice.
Under classic rules: a stake placed once and left to compound, or a fixed one, its payouts
sent to the wallet and the stake topped back up each round."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from crowdquant.simulate.bots import ARCHETYPES, Bot, Participant, RoundStaking, Wealth

ROUND = 7
IDS = pd.Index([f"id{i}" for i in range(10)])


class Api:
    """What `Bot.act` asks of a `Participant`, answered from memory."""

    def __init__(self, available: Decimal, staked: Decimal, fail_after: int | None = None):
        self.available, self.staked, self.fail_after = available, staked, fail_after
        self.stakes: list[tuple[str, Decimal]] = []
        self.uploads = 0
        self.round = ROUND
        self.classic: list[tuple[str, str, Decimal]] = []  # ("wallet" | "stake to", id, NMR)

    def round_now(self) -> tuple[int | None, bool]:
        return self.round, True

    def pay_to_wallet(self, model_id: str) -> None:
        self.classic.append(("wallet", model_id, Decimal(0)))

    def stake_to(self, model_name: str, model_id: str, amount: Decimal) -> None:
        self.classic.append(("stake to", model_id, amount))

    def download(
        self, filename: str, folder: object, round_number: int | None = None
    ) -> pd.DataFrame:
        spread = np.linspace(0, 1, len(IDS))
        return pd.DataFrame({"feature_a": spread, "target": spread}, index=IDS)

    def models(self, names: Sequence[str]) -> dict[str, str]:
        return {name: f"model-{name}" for name in names}

    def upload(self, model_id: str, ids: pd.Index, values: object, folder: object) -> None:
        self.uploads += 1

    def wealth(self, model_ids: Sequence[str], round_number: int) -> Wealth:
        assert round_number == self.round
        on_round = frozenset(model for model, _ in self.stakes if model in model_ids)
        return Wealth(self.available, self.staked, on_round)

    def stake_on_round(self, model_id: str, amount: Decimal) -> None:
        if self.fail_after is not None and len(self.stakes) == self.fail_after:
            self.fail_after = None
            raise RuntimeError("the server was busy")
        self.stakes.append((model_id, amount))
        self.available -= amount
        self.staked += amount


def _spammer(stake: Decimal, fixed: bool = False) -> Bot:
    staking = RoundStaking(rounds_at_risk=20, grant=Decimal(1000))
    return Bot(
        "spammer_1", ARCHETYPES["spammer"], stake, seed=1, round_staking=staking, fixed_stake=fixed
    )


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


def test_a_fixed_stake_per_round_stays_at_the_stake_at_the_start() -> None:
    api = Api(Decimal(900), Decimal(300))  # won 200: a compounding bot stakes 6.25 each
    _spammer(Decimal(100), fixed=True).act(api)  # type: ignore[arg-type]
    assert api.stakes == [(f"model-spammer_1_{i}", Decimal(5)) for i in range(1, 9)]


def _classic(archetype: str, fixed: bool) -> Bot:
    return Bot(f"{archetype}_1", ARCHETYPES[archetype], Decimal(50), seed=1, fixed_stake=fixed)


def _play_rounds(bot: Bot, rounds: int) -> list[tuple[str, str, Decimal]]:
    api = Api(Decimal(1000), Decimal(0))
    for number in range(ROUND, ROUND + rounds):
        api.round = number
        assert bot.act(api) is not None  # type: ignore[arg-type]
    return api.classic


def test_a_classic_stake_is_placed_once_and_left_to_compound() -> None:
    assert _play_rounds(_classic("linear", fixed=False), 3) == [
        ("stake to", "model-linear_1", Decimal(50))
    ]


def test_a_fixed_classic_stake_takes_its_payouts_and_is_topped_up_each_round() -> None:
    wallet, topped = ("wallet", "model-linear_1", 0), ("stake to", "model-linear_1", 50)
    assert _play_rounds(_classic("linear", fixed=True), 3) == [wallet, topped, topped, topped]


def test_a_fixed_latecomer_stakes_once_as_it_is_never_at_risk() -> None:
    # uploads after the close, so nothing it stakes is at risk: no payout, no burn to top up
    bot = _classic("latecomer", fixed=True)
    api = Api(Decimal(1000), Decimal(0))
    api.round_now = lambda: (api.round, False)  # type: ignore[method-assign]
    for number in (ROUND, ROUND + 1):
        api.round = number
        assert bot.act(api) is not None  # type: ignore[arg-type]
    assert api.classic == [
        ("wallet", "model-latecomer_1", 0),
        ("stake to", "model-latecomer_1", 50),
    ]


class Napi:
    """numerapi's stake calls, answered from memory."""

    def __init__(self, held: str | None, available: str) -> None:
        self.held, self.available = held, available
        self.increases: list[tuple[str, str]] = []

    def stake_get(self, name: str) -> Decimal | None:
        return None if self.held is None else Decimal(self.held)

    def get_account(self) -> dict[str, str]:
        return {"availableNmr": self.available}

    def stake_increase(self, nmr: str, model_id: str) -> None:
        self.increases.append((nmr, model_id))


@pytest.mark.parametrize(
    ("held", "available", "increases"),
    [
        (None, "1000", [("50", "m")]),  # the first stake
        ("42.5", "1000", [("7.5", "m")]),  # topped up after a burn
        ("42.5", "3.25", [("3.25", "m")]),  # as far as the wallet allows
        ("42.5", "0", []),  # an empty wallet: nothing to stake
        ("61", "1000", []),  # never lowered
    ],
)
def test_stake_to_raises_the_stake_as_far_as_the_wallet_allows(
    held: str | None, available: str, increases: list[tuple[str, str]]
) -> None:
    client = Participant.__new__(Participant)  # only its numerapi client is used
    client.napi = Napi(held, available)
    client.stake_to("linear_1", "m", Decimal(50))
    assert client.napi.increases == increases
