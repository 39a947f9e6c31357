"""What the REST API reads and answers, kept apart from the database models.

Times are UTC, ISO 8601 with ``Z``. Ids are UUID strings. Token amounts, when they appear,
are decimal strings in NMR (the database keeps integers of 10^-18 NMR). Inputs refuse
fields they do not know.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from crowdquant.api.wallet import amount_text, usd_text
from crowdquant.db.models import (
    Account,
    ApiKey,
    ApiScope,
    Cadence,
    DatasetFile,
    Diagnostics,
    DiagnosticsStatus,
    Model,
    PayoutMode,
    Round,
    RoundPayout,
    RoundResult,
    RoundStake,
    RoundStatus,
    Rules,
    StakeChange,
    StakeChangeKind,
    StakeChangeStatus,
    Submission,
    SubmissionStatus,
    Tournament,
)
from crowdquant.ledger import Currency
from crowdquant.tournament.leaderboard import DailyScore, RoundRow, Standing
from crowdquant.tournament.staking import (
    InvalidStakeAmount,
    RoundAtRisk,
    StakeView,
    due_date,
    parse_nmr,
)
from crowdquant.tournament.wallet import StatementLine


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

MAX_INT32 = 2**31 - 1  # tournament and round numbers are INTEGER columns
TOKEN_DECIMALS = 18


def nmr(units: int) -> str:
    """An amount of 10^-18 NMR units as a decimal string of NMR: 1500000000000000000 → "1.5"."""
    whole, fraction = divmod(abs(units), 10**TOKEN_DECIMALS)
    digits = f"{fraction:0{TOKEN_DECIMALS}d}".rstrip("0")
    return (
        ("-" if units < 0 else "") + str(whole) + (f".{digits}" if digits else "")
    )  # tournament and round numbers are INTEGER columns


class Output(BaseModel):
    model_config = ConfigDict(frozen=True)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- tournaments and rounds ------------------------------------------------------------------


class TournamentOut(Output):
    number: int
    name: str
    rules: Rules
    cadence: Cadence
    dataset_version: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, tournament: Tournament) -> TournamentOut:
        return cls(
            number=tournament.number,
            name=tournament.name,
            rules=tournament.rules,
            cadence=tournament.cadence,
            dataset_version=tournament.dataset_version,
            created_at=tournament.created_at,
        )


class RoundOut(Output):
    tournament: int
    number: int
    status: RoundStatus
    open_time: UtcDatetime
    close_staking_time: UtcDatetime
    close_time: UtcDatetime
    resolve_time: UtcDatetime | None
    dataset_version: str
    is_open: bool = Field(description="Whether on-time submissions and stakes are taken now.")

    @classmethod
    def of(cls, round_: Round, *, is_open: bool) -> RoundOut:
        return cls(
            tournament=round_.tournament.number,
            number=round_.number,
            status=round_.status,
            open_time=round_.open_time,
            close_staking_time=round_.close_staking_time,
            close_time=round_.close_time,
            resolve_time=round_.resolve_time,
            dataset_version=round_.dataset_version,
            is_open=is_open,
        )


# --- datasets --------------------------------------------------------------------------------


class DatasetFileOut(Output):
    filename: str
    size: int
    sha256: str
    published_at: UtcDatetime

    @classmethod
    def of(cls, row: DatasetFile) -> DatasetFileOut:
        return cls(
            filename=row.filename, size=row.size, sha256=row.sha256, published_at=row.published_at
        )


class DatasetVersionOut(Output):
    version: str
    files: list[DatasetFileOut]


class DownloadOut(Output):
    url: str = Field(description="An absolute signed URL: GET it without any header.")
    expires_at: UtcDatetime


class DatasetDownloadOut(DownloadOut):
    version: str
    filename: str
    size: int
    sha256: str


class SubmissionDownloadOut(DownloadOut):
    submission_id: uuid.UUID
    filename: str


# --- the caller's account and models ---------------------------------------------------------


class ApiKeyOut(Output):
    """A key as its owner sees it later: never its secret."""

    name: str
    public_id: str
    scopes: list[ApiScope]
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            name=key.name,
            public_id=key.public_id,
            scopes=sorted(ApiScope(scope) for scope in key.scopes),
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class AccountOut(Output):
    id: uuid.UUID
    username: str
    email: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id,
            username=account.username,
            email=account.email,
            created_at=account.created_at,
        )


class ModelOut(Output):
    id: uuid.UUID
    name: str
    tournament: int
    created_at: UtcDatetime

    @classmethod
    def of(cls, model: Model) -> ModelOut:
        return cls(
            id=model.id,
            name=model.name,
            tournament=model.tournament.number,
            created_at=model.created_at,
        )


class ModelIn(Input):
    tournament: int = Field(ge=1, le=MAX_INT32, description="The tournament to enter.")
    name: str = Field(
        max_length=64, description="3 to 32 characters a-z, 0-9 or _, unique in the tournament."
    )


# --- submissions -----------------------------------------------------------------------------


class SubmissionOut(Output):
    id: uuid.UUID
    model_id: uuid.UUID
    tournament: int
    round: int
    filename: str
    status: SubmissionStatus
    error: str | None = Field(description="Why the file is invalid, when it is.")
    late: bool = Field(description="Uploaded after the round closed: scored, never staked.")
    selected: bool = Field(description="The upload that counts for the model in its round.")
    n_rows: int | None
    created_at: UtcDatetime
    validated_at: UtcDatetime | None
    checks: dict[str, float | None] = Field(
        default_factory=dict,
        description="A 2017 upload's figures, computed when it was uploaded:"
        " validation_logloss, consistency (share of validation eras beating ln 2),"
        " originality and concordance (1 pass, 0 fail). Empty for other uploads.",
    )

    @classmethod
    def of(
        cls,
        submission: Submission,
        *,
        selected: bool,
        checks: dict[str, float | None] | None = None,
    ) -> SubmissionOut:
        return cls(
            id=submission.id,
            model_id=submission.model_id,
            tournament=submission.round.tournament.number,
            round=submission.round.number,
            filename=submission.filename,
            status=submission.status,
            error=submission.error,
            late=submission.late,
            selected=selected,
            n_rows=submission.n_rows,
            created_at=submission.created_at,
            validated_at=submission.validated_at,
            checks=checks or {},
        )


# --- scores ----------------------------------------------------------------------------------


class StandingOut(Output):
    """A leaderboard row: a model (with its account) or an account."""

    rank: int
    name: str
    account: str | None
    reputation: dict[str, float]
    consistency: float | None
    rounds: int
    latest_round: int | None
    latest: dict[str, float]
    stake: str = Field(description="NMR staked now.")
    career_nmr: str = Field(description="NMR paid minus NMR burned over its resolved rounds.")
    career_usd: str = Field(description="USD paid over its resolved rounds.")

    @classmethod
    def of(cls, row: Standing) -> StandingOut:
        return cls(
            rank=row.rank,
            name=row.name,
            account=row.account,
            reputation=row.reputation,
            consistency=row.consistency,
            rounds=row.rounds,
            latest_round=row.latest_round,
            latest=row.latest,
            stake=nmr(row.stake),
            career_nmr=nmr(row.career_nmr),
            career_usd=usd_text(row.career_usd),
        )


class RoundRowOut(Output):
    rank: int | None
    model: str
    late: bool
    day: int
    scores: dict[str, float]
    percentiles: dict[str, float]


class RoundScoresOut(Output):
    round: RoundOut
    models: list[RoundRowOut]

    @classmethod
    def of(cls, round_: Round, rows: list[RoundRow]) -> RoundScoresOut:
        return cls(
            round=RoundOut.of(round_, is_open=False),
            models=[
                RoundRowOut(
                    rank=row.rank,
                    model=row.model,
                    late=row.late,
                    day=row.day,
                    scores=row.scores,
                    percentiles=row.percentiles,
                )
                for row in rows
            ],
        )


class DailyScoreOut(Output):
    round: int
    day: int
    metric: str
    value: float | None
    percentile: float | None
    late: bool

    @classmethod
    def of(cls, score: DailyScore) -> DailyScoreOut:
        return cls(
            round=score.round,
            day=score.day,
            metric=score.metric,
            value=score.value,
            percentile=score.percentile,
            late=score.late,
        )


# --- diagnostics -----------------------------------------------------------------------------


class DiagnosticsOut(Output):
    """A diagnostics request and, once `done`, its report (`per_era` and `summary`);
    `request_number` counts this model's requests: repeated looks overfit validation."""

    id: uuid.UUID
    request_number: int
    status: DiagnosticsStatus
    error: str | None
    dataset_version: str
    filename: str
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    report: dict[str, Any] | None

    @classmethod
    def of(cls, row: Diagnostics) -> DiagnosticsOut:
        return cls(
            id=row.id,
            request_number=row.request_number,
            status=row.status,
            error=row.error,
            dataset_version=row.dataset_version,
            filename=row.filename,
            created_at=row.created_at,
            finished_at=row.finished_at,
            report=row.result if row.status is DiagnosticsStatus.DONE else None,
        )


# --- stakes, payouts and the wallet ----------------------------------------------------------


def _positive_nmr(text: str) -> str:
    try:
        parse_nmr(text)
    except InvalidStakeAmount as exc:
        raise ValueError(exc.message) from None
    return text


def _is_zero(text: str) -> bool:
    try:
        return Decimal(text.replace(",", "").strip()) == 0
    except ArithmeticError:
        return False  # parse_nmr says what is wrong with it


def _nmr_or_zero(text: str) -> str:
    return text if _is_zero(text) else _positive_nmr(text)


def nmr_units(text: str) -> int:
    """A validated amount of NMR (`NmrAmount`, `NmrAmountOrZero`) in 10^-18 units."""
    return 0 if _is_zero(text) else parse_nmr(text)


NMR_AMOUNT = 'A decimal string of NMR with at most 18 decimals, e.g. `"1.5"`.'
NmrAmount = Annotated[
    str,
    Field(min_length=1, max_length=64, description="A positive amount. " + NMR_AMOUNT),
    AfterValidator(_positive_nmr),
]
NmrAmountOrZero = Annotated[
    str,
    Field(min_length=1, max_length=64, description="An amount, or 0. " + NMR_AMOUNT),
    AfterValidator(_nmr_or_zero),
]


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
    at_risk: str
    confidence: str | None
    status: RoundStatus

    @classmethod
    def of(cls, row: RoundAtRisk) -> RoundAtRiskOut:
        return cls(
            round=row.round,
            at_risk=nmr(row.at_risk),
            confidence=None if row.confidence is None else str(row.confidence.normalize()),
            status=row.status,
        )


class PendingReleaseOut(Output):
    id: uuid.UUID
    amount: str
    requested_at: UtcDatetime
    due_round: int | None = Field(description="The round whose resolution releases it.")
    due_date: UtcDatetime | None = Field(description="That round's resolve time.")

    @classmethod
    def of(cls, change: StakeChange) -> PendingReleaseOut:
        return cls(
            id=change.id,
            amount=nmr(change.amount),
            requested_at=change.requested_at,
            due_round=None if change.due_round is None else change.due_round.number,
            due_date=due_date(change),
        )


class StakeOut(Output):
    """A model's stake as its owner sees it; amounts in NMR."""

    model_id: uuid.UUID
    model: str
    tournament: int
    staked: str = Field(description="In the stake now: at risk from the next round that closes.")
    pending_release: str = Field(
        description="Unstaked, waiting for the last round it was at risk in to resolve."
    )
    at_risk: list[RoundAtRiskOut] = Field(
        description="The unresolved rounds the model has NMR at risk in, oldest first."
    )
    releases: list[PendingReleaseOut]
    payout_mode: PayoutMode

    @classmethod
    def of(cls, model: Model, view: StakeView) -> StakeOut:
        return cls(
            model_id=model.id,
            model=model.name,
            tournament=model.tournament.number,
            staked=nmr(view.staked),
            pending_release=nmr(view.pending_release),
            at_risk=[RoundAtRiskOut.of(row) for row in view.at_risk],
            releases=[PendingReleaseOut.of(change) for change in view.releases],
            payout_mode=model.payout_mode,
        )


class StakeChangeOut(Output):
    """A stake request: an increase is `done` at once; a decrease is `pending` until the
    last round its NMR was at risk in resolves (`due_round`), then `released`."""

    id: uuid.UUID
    model_id: uuid.UUID
    change: StakeChangeKind
    amount: str
    status: StakeChangeStatus
    requested_at: UtcDatetime
    due_round: int | None
    due_date: UtcDatetime | None
    released: str | None = Field(description="What went back to the wallet, after any burns.")
    released_at: UtcDatetime | None

    @classmethod
    def of(cls, change: StakeChange) -> StakeChangeOut:
        return cls(
            id=change.id,
            model_id=change.model_id,
            change=change.kind,
            amount=nmr(change.amount),
            status=change.status,
            requested_at=change.requested_at,
            due_round=None if change.due_round is None else change.due_round.number,
            due_date=due_date(change),
            released=None if change.released is None else nmr(change.released),
            released_at=change.released_at,
        )


class RoundStakeOut(Output):
    model_id: uuid.UUID
    tournament: int
    round: int
    at_risk: str
    confidence: str | None
    staked_at: UtcDatetime

    @classmethod
    def of(cls, row: RoundStake) -> RoundStakeOut:
        return cls(
            model_id=row.model_id,
            tournament=row.round.tournament.number,
            round=row.round.number,
            at_risk=nmr(row.at_risk),
            confidence=None if row.confidence is None else str(row.confidence.normalize()),
            staked_at=row.staked_at,
        )


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

    @classmethod
    def of(cls, line: StatementLine) -> WalletEntryOut:
        return cls(
            sequence=line.sequence,
            kind=line.kind,
            currency=line.currency,
            amount=amount_text(line.amount, line.currency),
            balance=amount_text(line.balance, line.currency),
            source=line.source,
            target=line.target,
            memo=line.memo,
            time=line.time,
        )


class WalletOut(Output):
    nmr: str = Field(description="The NMR balance, free to stake.")
    usd: str = Field(description='The USD balance, in dollars (`"12.34"`).')
    total: int = Field(description="How many transactions the whole statement has.")
    statement: list[WalletEntryOut] = Field(description="Newest first, one page of it.")


# The rule inputs a participant may see beside a payout: the scores it was paid on (public
# once the round resolved), the 2017 rules' rank, gates and confidence.
VISIBLE_PAYOUT_INPUTS = ("corr", "mmc", "live_logloss", "rank", "eligible", "confidence")


class RoundPayoutOut(Output):
    rank: int
    model: str
    at_risk: str
    nmr: str = Field(description="Paid (positive) or burned (negative).")
    usd: str
    inputs: dict[str, Any] = Field(description="What the payout rule was given.")

    @classmethod
    def of(cls, rank: int, payout: RoundPayout) -> RoundPayoutOut:
        return cls(
            rank=rank,
            model=payout.model.name,
            at_risk=nmr(payout.at_risk),
            nmr=nmr(payout.nmr),
            usd=usd_text(payout.usd),
            inputs={
                key: payout.inputs[key] for key in VISIBLE_PAYOUT_INPUTS if key in payout.inputs
            },
        )


class RoundResultsOut(Output):
    """A resolved round's "Results": who took part, what was at risk, what was paid."""

    tournament: int
    round: int
    rule_version: str
    participants: int = Field(description="Models with an on-time valid submission.")
    controlling_capital: int = Field(description="The participants with NMR at risk.")
    at_risk: str
    nmr_paid: str
    nmr_burned: str
    usd_paid: str
    payout_factor: str | None = Field(description="Classic rules: min(1, threshold / at risk).")
    scale: str = Field(
        description="`full`, or what the treasury (or prize pool) could pay when it was short."
    )
    resolved_at: UtcDatetime
    payouts: list[RoundPayoutOut] = Field(description="Ranked by the score the rule pays on.")

    @classmethod
    def of(
        cls, round_: Round, result: RoundResult, rule_version: str, payouts: list[RoundPayout]
    ) -> RoundResultsOut:
        return cls(
            tournament=round_.tournament.number,
            round=round_.number,
            rule_version=rule_version,
            participants=result.participants,
            controlling_capital=result.stakers,
            at_risk=nmr(result.at_risk),
            nmr_paid=nmr(result.nmr_paid),
            nmr_burned=nmr(result.nmr_burned),
            usd_paid=usd_text(result.usd_paid),
            payout_factor=result.payout_factor,
            scale=result.scale,
            resolved_at=result.resolved_at,
            payouts=[RoundPayoutOut.of(rank, row) for rank, row in enumerate(payouts, start=1)],
        )
