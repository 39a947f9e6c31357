"""Stakes, the wallet and a round's results.

- A model's stake (scope `read` to look, `stake` to change): increase or decrease it, stake
  on the open round under the 2017 rules, choose where its rewards go.
- The caller's wallet (scope `read`): balances and statement, newest first.
- A round's results (public), once its payouts are resolved.

Every change goes through `tournament.staking`, in the request's transaction: a refusal
(not enough NMR, no open round, a bad amount) changes nothing. Amounts are decimal strings
of NMR (USD in dollars, ``"12.34"``).
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from fastapi import APIRouter

from crowdquant.api.rest.auth import ReadAccount, StakeAccount
from crowdquant.api.rest.deps import (
    LedgerDep,
    Limit,
    Offset,
    RoundRef,
    SessionDep,
    TournamentNumber,
)
from crowdquant.api.rest.errors import RestError, responses
from crowdquant.api.rest.routing import RestRoute
from crowdquant.api.rest.schemas.base import Overlay
from crowdquant.api.rest.schemas.stakes import (
    PayoutModeIn,
    RoundResultsOut,
    RoundStakeIn,
    RoundStakeOut,
    StakeChangeIn,
    StakeChangeOut,
    StakeOut,
    WalletOut,
)
from crowdquant.api.rest.tournaments import find_round
from crowdquant.db.models import RoundPayout
from crowdquant.http.services import ServicesDep
from crowdquant.money import Currency, amount_text, parse_nmr_or_zero
from crowdquant.tournament.models import get_own_model
from crowdquant.tournament.resolution import round_payouts, round_result, round_rule
from crowdquant.tournament.staking import (
    change_stake,
    set_payout_mode,
    stake_on_round,
    stake_view,
)
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.wallet import wallet_balances, wallet_statement

router = APIRouter(tags=["stakes"], route_class=RestRoute)


@router.get("/models/{model_id}/stake", responses=responses(401, 403, 404))
def get_stake(
    model_id: uuid.UUID, account: ReadAccount, session: SessionDep, ledger: LedgerDep
) -> StakeOut:
    """The model's stake: staked now, waiting for release, at risk in unresolved rounds."""
    model = get_own_model(session, account, model_id)
    return StakeOut.model_validate(Overlay(stake_view(session, ledger, model), model=model))


@router.post("/models/{model_id}/stake", status_code=201, responses=responses(401, 403, 404, 409))
def post_stake_change(
    model_id: uuid.UUID,
    body: StakeChangeIn,
    account: StakeAccount,
    session: SessionDep,
    ledger: LedgerDep,
    services: ServicesDep,
) -> StakeChangeOut:
    """Increase the stake from the wallet (at once), or decrease it (back to the wallet once
    the last round it is at risk in resolves; at once if none). Under the 2017 rules this
    changes the stake on the open round."""
    model = get_own_model(session, account, model_id)
    units = parse_nmr_or_zero(body.amount)
    change = change_stake(session, ledger, services.clock, model, body.change, units)
    return StakeChangeOut.model_validate(change)


@router.put("/models/{model_id}/round-stake", responses=responses(401, 403, 404, 409))
def put_round_stake(
    model_id: uuid.UUID,
    body: RoundStakeIn,
    account: StakeAccount,
    session: SessionDep,
    ledger: LedgerDep,
    services: ServicesDep,
) -> RoundStakeOut:
    """The 2017 rules: set the model's stake on the open round (0 takes it back) at a
    confidence; the model needs a valid on-time submission to the round first."""
    model = get_own_model(session, account, model_id)
    row = stake_on_round(
        session, ledger, services.clock, model, parse_nmr_or_zero(body.amount), body.confidence
    )
    return RoundStakeOut.model_validate(row)


@router.put("/models/{model_id}/payout-mode", responses=responses(401, 403, 404))
def put_payout_mode(
    model_id: uuid.UUID,
    body: PayoutModeIn,
    account: StakeAccount,
    session: SessionDep,
    ledger: LedgerDep,
) -> StakeOut:
    """Where the model's future rewards go: into its stake, or to the wallet."""
    model = set_payout_mode(session, get_own_model(session, account, model_id), body.mode)
    return StakeOut.model_validate(Overlay(stake_view(session, ledger, model), model=model))


@router.get("/account/wallet", responses=responses(401, 403))
def get_wallet(
    account: ReadAccount,
    session: SessionDep,
    ledger: LedgerDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> WalletOut:
    """The wallet's balances and its statement, newest first."""
    balances = wallet_balances(session, ledger, account)
    statement = wallet_statement(session, ledger, account, offset=offset, limit=limit)
    return WalletOut(
        nmr=amount_text(balances[Currency.NMR], Currency.NMR),
        usd=amount_text(balances[Currency.USD], Currency.USD),
        total=statement.total,
        statement=statement.lines,
    )


@router.get("/tournaments/{number}/rounds/{round}/results", responses=responses(404))
def get_round_results(
    number: TournamentNumber, round: RoundRef, session: SessionDep
) -> RoundResultsOut:
    """A resolved round's summary and its payouts, ranked by the score the rule paid on
    (CORR, or the 2017 rules' rank by live logloss). 404 until the round resolves."""
    found = find_round(session, get_tournament(session, number), round)
    result = round_result(session, found)
    if result is None:
        raise RestError(
            404,
            "round_not_resolved",
            f"round {found.number} of tournament {number} has not resolved yet:"
            " its results appear when it does",
        )
    rule = round_rule(found)
    payouts = sorted(round_payouts(session, found), key=_ranking)
    ranked = [Overlay(row, rank=rank) for rank, row in enumerate(payouts, start=1)]
    return RoundResultsOut.model_validate(
        Overlay(result, round=found, rule_version=rule.version, payouts=ranked)
    )


def _ranking(payout: RoundPayout) -> tuple[bool, float, float, str]:
    """Best first: by the 2017 rank, then the lowest live logloss; else the highest CORR.
    Missing scores go last."""
    inputs = payout.inputs
    if "live_logloss" in inputs:
        rank, logloss = _number(inputs.get("rank")), _number(inputs.get("live_logloss"))
        return (
            rank is None and logloss is None,
            rank or math.inf,
            logloss or 0.0,
            payout.model.name,
        )
    corr = _number(inputs.get("corr"))
    return (corr is None, 0.0, -(corr or 0.0), payout.model.name)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
