"""Stakes, the wallet, and rounds' payouts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AliasPath,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crowdquant.api.rest.schemas.amounts import NmrAmount, NmrAmountOrZero, NmrText, UsdText
from crowdquant.api.rest.schemas.base import Input, Output, Overlay, UtcDatetime
from crowdquant.db.models import (
    PayoutMode,
    Round,
    RoundStatus,
    StakeChange,
    StakeChangeKind,
    StakeChangeStatus,
)
from crowdquant.money import Currency, amount_text
from crowdquant.tournament.staking import due_date


def _confidence(confidence: Decimal | None) -> str | None:
    return None if confidence is None else str(confidence.normalize())


def _number(round_: Round | None) -> int | None:
    return None if round_ is None else round_.number


Confidence = Annotated[str | None, BeforeValidator(_confidence)]
RoundNumber = Annotated[int | None, BeforeValidator(_number)]


class StakeChangeIn(Input):
    change: StakeChangeKind = Field(description="Put more NMR at risk, or take some back.")
    amount: NmrAmount


class RoundStakeIn(Input):
    """The 2017 rules: a stake on the open round, at a confidence."""

    amount: NmrAmountOrZero
    confidence: Decimal = Field(
        gt=0,
        le=1,
        max_digits=11,
        decimal_places=10,
        description="In (0, 1]: the share of the round's payout the stake bids for.",
    )


class PayoutModeIn(Input):
    mode: PayoutMode = Field(
        description="`compound`: rewards go into the stake; `wallet`: to the owner's wallet."
    )


class RoundAtRiskOut(Output):
    round: int
    at_risk: NmrText
    confidence: Confidence
    status: RoundStatus


class _ChangeOut(Output):
    """Read from a stake change, with the date it is due back (`staking.due_date`)."""

    @model_validator(mode="before")
    @classmethod
    def _with_due_date(cls, change: Any) -> Any:
        if isinstance(change, StakeChange):
            return Overlay(change, due_date=due_date(change))
        return change


class PendingReleaseOut(_ChangeOut):
    id: uuid.UUID
    amount: NmrText
    requested_at: UtcDatetime
    due_round: RoundNumber = Field(description="The round whose resolution releases it.")
    due_date: UtcDatetime | None = Field(description="That round's resolve time.")


# read from a `StakeView` overlaid with its `model`
class StakeOut(Output):
    """A model's stake as its owner sees it; amounts in NMR."""

    model_id: uuid.UUID = Field(validation_alias=AliasPath("model", "id"))
    model: str = Field(validation_alias=AliasPath("model", "name"))
    tournament: int = Field(validation_alias=AliasPath("model", "tournament", "number"))
    staked: NmrText = Field(
        description="In the stake now: at risk from the next round that closes."
    )
    pending_release: NmrText = Field(
        description="Unstaked, waiting for the last round it was at risk in to resolve."
    )
    at_risk: list[RoundAtRiskOut] = Field(
        description="The unresolved rounds the model has NMR at risk in, oldest first."
    )
    releases: list[PendingReleaseOut]
    payout_mode: PayoutMode = Field(validation_alias=AliasPath("model", "payout_mode"))


class StakeChangeOut(_ChangeOut):
    """A stake request: an increase is `done` at once; a decrease is `pending` until the
    last round its NMR was at risk in resolves (`due_round`), then `released`."""

    id: uuid.UUID
    model_id: uuid.UUID
    change: StakeChangeKind = Field(validation_alias="kind")
    amount: NmrText
    status: StakeChangeStatus
    requested_at: UtcDatetime
    due_round: RoundNumber
    due_date: UtcDatetime | None
    released: NmrText | None = Field(description="What went back to the wallet, after any burns.")
    released_at: UtcDatetime | None


class RoundStakeOut(Output):
    model_id: uuid.UUID
    tournament: int = Field(validation_alias=AliasPath("round", "tournament", "number"))
    round: int = Field(validation_alias=AliasPath("round", "number"))
    at_risk: NmrText
    confidence: Confidence
    staked_at: UtcDatetime


class WalletEntryOut(Output):
    """One transaction of the wallet; `amount` is signed (negative: it left the wallet)."""

    sequence: int = Field(description="The ledger transaction's number.")
    kind: str = Field(description="grant, stake, release, payout, payout-usd, ...")
    currency: Currency
    amount: str
    balance: str = Field(description="The wallet's balance in this currency right after.")
    source: str
    target: str
    memo: str
    time: UtcDatetime

    @field_validator("amount", "balance", mode="before")
    @classmethod
    def _in_its_currency(cls, units: int, info: ValidationInfo) -> str:
        return amount_text(units, info.data["currency"])


class WalletOut(Output):
    nmr: str = Field(description="The NMR balance, free to stake.")
    usd: str = Field(description='The USD balance, in dollars (`"12.34"`).')
    total: int = Field(description="How many transactions the whole statement has.")
    statement: list[WalletEntryOut] = Field(description="Newest first, one page of it.")


# The rule inputs a participant may see beside a payout: the scores it was paid on (public
# once the round resolved), the 2017 rules' rank, gates and confidence.
VISIBLE_PAYOUT_INPUTS = ("corr", "mmc", "live_logloss", "rank", "eligible", "confidence")


# read from a payout overlaid with its `rank`
class RoundPayoutOut(Output):
    rank: int
    model: str = Field(validation_alias=AliasPath("model", "name"))
    at_risk: NmrText
    nmr: NmrText = Field(description="Paid (positive) or burned (negative).")
    usd: UsdText
    inputs: dict[str, Any] = Field(description="What the payout rule was given.")

    @field_validator("inputs", mode="before")
    @classmethod
    def _visible(cls, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return {key: inputs[key] for key in VISIBLE_PAYOUT_INPUTS if key in inputs}


# read from a round's result overlaid with its `round`, `rule_version` and ranked `payouts`
class RoundResultsOut(Output):
    """A resolved round's "Results": who took part, what was at risk, what was paid."""

    tournament: int = Field(validation_alias=AliasPath("round", "tournament", "number"))
    round: int = Field(validation_alias=AliasPath("round", "number"))
    rule_version: str
    participants: int = Field(description="Models with an on-time valid submission.")
    controlling_capital: int = Field(
        validation_alias="stakers", description="The participants with NMR at risk."
    )
    at_risk: NmrText
    nmr_paid: NmrText
    nmr_burned: NmrText
    usd_paid: UsdText
    payout_factor: str | None = Field(description="Classic rules: min(1, threshold / at risk).")
    scale: str = Field(
        description="`full`, or what the treasury (or prize pool) could pay when it was short."
    )
    resolved_at: UtcDatetime
    payouts: list[RoundPayoutOut] = Field(description="Ranked by the score the rule pays on.")
