"""How the REST API refuses: one table from error class to HTTP status, one JSON shape.

Every refusal answers ``{"detail": {"code": ..., "message": ...}}``: `code` is the
service's or the ledger's stable code (`tournament.errors.ServiceError.code`,
`ledger.LedgerError.code`), `message` is written for the person. The status comes from
`STATUS_BY_ERROR`, looked up along the error's class hierarchy, so a new subclass of a
listed family gets its family's status.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from crowdquant.ledger import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidPosting,
    LedgerError,
    LedgerTampered,
    MintingRefused,
    NoGenesis,
)
from crowdquant.tournament.accounts import (
    AccountError,
    EmailTaken,
    InvalidApiKey,
    InvalidCredentials,
    InvalidWebSession,
    KeyRevoked,
    MissingScope,
    UnknownAccount,
    UnknownApiKey,
    UsernameTaken,
    WalletAddressTaken,
)
from crowdquant.tournament.datasets import DatasetError, DatasetFileConflict, UnknownDatasetFile
from crowdquant.tournament.diagnostics import NoValidationData, UnknownDiagnostics
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.live_mode import LiveClosed
from crowdquant.tournament.models import ModelNameTaken, NotYourModel, UnknownModel
from crowdquant.tournament.rounds import RoundError, RoundNotFound
from crowdquant.tournament.staking import (
    InvalidStakeAmount,
    NoRoundToStake,
    NotEnoughNmr,
    StakeError,
)
from crowdquant.tournament.submissions import (
    NoLiveFile,
    RoundNotOpen,
    SubmissionPurged,
    SubmissionRejected,
    SubmittedByRunsOnly,
    UnknownSubmission,
    UploadTooLarge,
)
from crowdquant.tournament.tournaments import (
    TournamentError,
    TournamentNameTaken,
    TournamentNotFound,
    TournamentNumberTaken,
)

Refusal = ServiceError | LedgerError
"""What a service or the ledger refuses: both carry a `code` and a `message`."""

STATUS_BY_ERROR: dict[type[Refusal], int] = {
    # who are you: a missing, malformed, unknown, wrong or revoked credential
    InvalidApiKey: 401,  # and MalformedToken
    KeyRevoked: 401,
    InvalidCredentials: 401,
    InvalidWebSession: 401,  # and WebSessionExpired
    # you may not: the key lacks the scope, the thing is someone else's
    MissingScope: 403,
    NotYourModel: 403,
    LiveClosed: 403,  # a closed-live tournament's live files
    SubmittedByRunsOnly: 403,  # a model whose uploaded model's runs alone submit
    # no such thing
    UnknownModel: 404,
    UnknownSubmission: 404,
    UnknownAccount: 404,
    UnknownApiKey: 404,
    TournamentNotFound: 404,
    RoundNotFound: 404,
    UnknownDatasetFile: 404,
    UnknownDiagnostics: 404,
    # not now, or not again: the round's state, a name already taken
    RoundNotOpen: 409,
    RoundError: 409,  # RoundStateError, NoRoundDue, RoundScheduleError
    ModelNameTaken: 409,
    UsernameTaken: 409,
    WalletAddressTaken: 409,
    EmailTaken: 409,
    TournamentNumberTaken: 409,
    TournamentNameTaken: 409,
    DatasetFileConflict: 409,
    NotEnoughNmr: 409,  # the wallet or the stake holds less than asked for
    NoRoundToStake: 409,
    StakeError: 409,
    InsufficientFunds: 409,
    IdempotencyConflict: 409,
    UploadTooLarge: 413,
    SubmissionPurged: 410,  # listed, but its file is gone
    # the operator's problem, not the caller's
    NoLiveFile: 503,
    NoValidationData: 503,
    NoGenesis: 503,
    LedgerTampered: 503,
    # the input breaks a rule (names, scopes, files, amounts): the families' default
    AccountError: 422,
    SubmissionRejected: 422,  # and WrongTournament
    TournamentError: 422,
    DatasetError: 422,
    InvalidStakeAmount: 422,
    InvalidPosting: 422,  # and Unbalanced
    MintingRefused: 422,
    ServiceError: 422,
    LedgerError: 422,
}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    """The body of every refusal."""

    detail: ErrorDetail


class RestError(Exception):
    """A request the REST layer itself refuses (a malformed upload, an unknown endpoint)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def status_for(error: Refusal) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 422  # unreachable: ServiceError and LedgerError are in the table


def code_for_status(status: int) -> str:
    """A code for refusals that carry none: the status's phrase, ``not_found``."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return phrase.lower().replace(" ", "_").replace("-", "_")


def refusal(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Token"}
    body = ErrorOut(detail=ErrorDetail(code=code, message=message))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the refusals a route may answer, plus 422 (bad input) always."""
    wanted = sorted({*statuses, 422})
    return {
        status: {"model": ErrorOut, "description": HTTPStatus(status).phrase} for status in wanted
    }
