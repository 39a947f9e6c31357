"""What the REST API reads and answers, kept apart from the database models.

Times are UTC, ISO 8601 with ``Z``. Ids are UUID strings. Token amounts, when they appear,
are decimal strings in NMR (the database keeps integers of 10^-18 NMR). Inputs refuse
fields they do not know.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from crowdquant.db.models import (
    Account,
    ApiKey,
    ApiScope,
    Cadence,
    DatasetFile,
    Diagnostics,
    DiagnosticsStatus,
    Model,
    Round,
    RoundStatus,
    Rules,
    Submission,
    SubmissionStatus,
    Tournament,
)
from crowdquant.tournament.leaderboard import DailyScore, RoundRow, Standing


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

    @classmethod
    def of(cls, submission: Submission, *, selected: bool) -> SubmissionOut:
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
    stake: str

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
