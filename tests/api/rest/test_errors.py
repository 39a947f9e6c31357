"""The one table from service and ledger refusals to HTTP statuses (no server, no database)."""

from __future__ import annotations

import pytest

from crowdquant import ledger
from crowdquant.api.rest.errors import STATUS_BY_ERROR, Refusal, status_for
from crowdquant.db.models import ApiScope, RoundStatus
from crowdquant.tournament import (
    accounts,
    datasets,
    models,
    rounds,
    staking,
    submissions,
    tournaments,
)
from crowdquant.tournament.errors import ServiceError


def _all_subclasses(cls: type[Refusal]) -> list[type[Refusal]]:
    found: list[type[Refusal]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (accounts.MalformedToken(), 401),
        (accounts.InvalidApiKey(), 401),
        (accounts.KeyRevoked(), 401),
        (accounts.WebSessionExpired(), 401),
        (accounts.MissingScope(ApiScope.READ), 403),
        (models.NotYourModel(), 403),
        (models.UnknownModel(), 404),
        (submissions.UnknownSubmission(), 404),
        (tournaments.TournamentNotFound(), 404),
        (rounds.RoundNotFound(), 404),
        (datasets.UnknownDatasetFile("v1", "x"), 404),
        (submissions.RoundNotOpen(), 409),
        (rounds.RoundStateError(8, 1, RoundStatus.RESOLVED, RoundStatus.CLOSED), 409),
        (models.ModelNameTaken(), 409),
        (submissions.UploadTooLarge(), 413),
        (models.InvalidModelName(), 422),
        (accounts.InvalidScopes(), 422),
        (submissions.WrongTournament(), 422),
        (submissions.NoLiveFile(), 503),
        (ServiceError(), 422),
        (staking.NotEnoughNmr(), 409),
        (staking.InvalidStakeAmount(), 422),
        (staking.NoRoundToStake(), 409),
        (staking.StakeError(), 409),
        (ledger.InsufficientFunds(), 409),
        (ledger.InvalidPosting(), 422),
        (ledger.Unbalanced(), 422),
        (ledger.NoGenesis(), 503),
        (ledger.LedgerTampered(), 503),
        (ledger.IdempotencyConflict(), 409),
        (ledger.MintingRefused(), 422),
        (ledger.LedgerError(), 422),
    ],
)
def test_statuses(error: Refusal, status: int) -> None:
    assert status_for(error) == status


def test_stake_refusals_keep_their_codes() -> None:
    assert [
        cls.code
        for cls in (
            staking.NotEnoughNmr,
            staking.InvalidStakeAmount,
            staking.NoRoundToStake,
            staking.StakeError,
        )
    ] == ["insufficient_funds", "invalid_stake_amount", "no_round_to_stake", "stake_refused"]


def test_every_refusal_is_a_client_error_or_unavailable() -> None:
    families: list[type[Refusal]] = [ServiceError, ledger.LedgerError]
    for cls in [*families, *(sub for family in families for sub in _all_subclasses(family))]:
        status = next(STATUS_BY_ERROR[c] for c in cls.__mro__ if c in STATUS_BY_ERROR)
        assert 400 <= status < 500 or status == 503, cls
