"""Stakes, payouts and the wallet, as numerapi asks for them (protocol §5.5, §5.7, §5.8).

- `v2ChangeStake` (`stake_change`, `stake_increase`, `stake_decrease`, `stake_set`) and
  `releaseStake` (`stake_drain`) need a key with scope `stake` and change the caller's own
  model's stake through `tournament.staking`; a drain decreases by the whole stake.
- `pendingModelPayouts` lists the caller's resolved payouts (`actual`) and the unresolved
  rounds they have NMR at risk in (`pending`).
- `Account.availableNmr` / `walletTxns` and `Round.payoutFactor` / `resolvedStaking` are
  resolved here, lazily, wherever an account or a round is rendered.

Every amount is a decimal string of NMR (`nmr_text`), dates UTC strings (`iso`).
"""

from __future__ import annotations

from typing import Any

from ariadne import MutationType, ObjectType, QueryType
from graphql import GraphQLResolveInfo

from crowdquant.api.graphql.context import ApiError, RequestContext, context_of, iso, required
from crowdquant.db.models import (
    Account,
    ApiScope,
    Model,
    Round,
    RoundResult,
    StakeChange,
    StakeChangeKind,
)
from crowdquant.money import Currency, nmr_text, plain_digits, usd_text
from crowdquant.tournament.models import get_own_model, list_models
from crowdquant.tournament.resolution import paid_rounds, tournament_results
from crowdquant.tournament.staking import (
    change_stake,
    drain_stake,
    due_date,
    parse_nmr,
    unresolved_stakes,
)
from crowdquant.tournament.wallet import wallet_balance, wallet_statement

query = QueryType()
mutation = MutationType()
account_type = ObjectType("Account")
round_type = ObjectType("Round")

NMR = "NMR"
CONFIRMED = "confirmed"


# --- changing a stake ----------------------------------------------------------------------------


def staking_model(
    context: RequestContext, account: Account, model_id: str | None, tournament: int | None
) -> Model:
    """The caller's model `model_id`, or their only model (of `tournament`, when given).

    numerapi sends ``""`` as well as null for "not given"."""
    if not model_id:
        models = list_models(context.session, account, tournament)
        if len(models) != 1:
            have = "no model" if not models else "several models"
            where = "" if tournament is None else f" in tournament {tournament}"
            raise ApiError(f"you have {have}{where}: pass modelId")
        return models[0]
    model = get_own_model(context.session, account, model_id)
    if tournament is not None and model.tournament.number != tournament:
        raise ApiError(
            f"model {model.name!r} is in tournament {model.tournament.number}, not {tournament}"
        )
    return model


def change_kind(value: str | None) -> StakeChangeKind:
    text = str(required(value, "type")).strip().lower()
    try:
        return StakeChangeKind(text)
    except ValueError:
        raise ApiError(f"type is 'increase' or 'decrease', not {value!r}") from None


def render_stake_request(change: StakeChange, *, drain: bool = False) -> dict[str, Any]:
    return {
        "id": str(change.id),
        "dueDate": iso(due_date(change)),
        "requestedAmount": nmr_text(change.amount),
        "status": change.status.value,
        "type": change.kind.value,
        "drain": drain,
    }


@mutation.field("v2ChangeStake")
def resolve_change_stake(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    value: str | None = None,
    type: str | None = None,  # numerapi's argument name
    modelId: str | None = None,
    tournamentNumber: int | None = None,
) -> dict[str, Any]:
    context = context_of(info)
    account = context.account(ApiScope.STAKE)
    model = staking_model(context, account, modelId, tournamentNumber)
    kind = change_kind(type)
    amount = parse_nmr(plain_digits(required(value, "value")))
    change = change_stake(context.session, context.ledger, context.clock, model, kind, amount)
    return render_stake_request(change)


@mutation.field("releaseStake")
def resolve_release_stake(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    drain: bool | None = None,
    modelId: str | None = None,
    amount: str | None = None,
) -> dict[str, Any]:
    """A decrease; with `drain` (numerapi's `stake_drain`, which sends amount "11000000") by
    the model's whole stake (under the 2017 rules: its stake on the open round)."""
    context = context_of(info)
    account = context.account(ApiScope.STAKE)
    model = staking_model(context, account, modelId, None)
    if drain:
        change = drain_stake(context.session, context.ledger, context.clock, model)
    else:
        units = parse_nmr(plain_digits(required(amount, "amount")))
        change = change_stake(
            context.session, context.ledger, context.clock, model, StakeChangeKind.DECREASE, units
        )
    return render_stake_request(change, drain=bool(drain))


# --- payouts -------------------------------------------------------------------------------------


def _model_payout(
    round_: Round, model: Model, nmr: int, usd: int, currency: str = NMR
) -> dict[str, Any]:
    return {
        "roundId": str(round_.id),
        "roundNumber": round_.number,
        "roundResolveTime": iso(round_.resolve_time),
        "modelId": str(model.id),
        "modelName": model.name,
        "modelDisplayName": model.name,
        "payoutNmr": nmr_text(nmr),
        "payoutValue": usd_text(usd),
        "currencySymbol": currency,
    }


@query.field("pendingModelPayouts")
def resolve_pending_payouts(
    _obj: Any, info: GraphQLResolveInfo[Any], tournament: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """`actual`: every resolved payout of the caller's models (newest round first);
    `pending`: every unresolved round they have NMR at risk in, paying "0" so far."""
    context = context_of(info)
    account = context.account(ApiScope.READ)
    session = context.session
    models = {model.id: model for model in list_models(session, account, tournament)}
    return {
        "actual": [
            _model_payout(round_, models[payout.model_id], payout.nmr, payout.usd)
            for payout, round_ in paid_rounds(session, models)
        ],
        "pending": [
            _model_payout(round_, models[row.model_id], 0, 0)
            for row, round_ in unresolved_stakes(session, models)
        ],
    }


# --- the account's wallet ------------------------------------------------------------------------


@account_type.field("availableNmr")
def resolve_available_nmr(_obj: Any, info: GraphQLResolveInfo[Any]) -> str:
    context = context_of(info)
    account = context.account(ApiScope.READ)
    return nmr_text(wallet_balance(context.session, context.ledger, account, Currency.NMR))


@account_type.field("walletTxns")
def resolve_wallet_txns(_obj: Any, info: GraphQLResolveInfo[Any]) -> list[dict[str, Any]]:
    """The wallet's NMR statement, newest first; the amount is unsigned, `from` and `to`
    say which way it went ("wallet" on one side)."""
    context = context_of(info)
    account = context.account(ApiScope.READ)
    statement = wallet_statement(context.session, context.ledger, account, currency=Currency.NMR)
    return [
        {
            "amount": nmr_text(abs(line.amount)),
            "from": line.source,
            "to": line.target,
            "status": CONFIRMED,
            "time": iso(line.time),
            "tournament": None,
            "txHash": str(line.sequence),
            "type": line.kind,
        }
        for line in statement.lines
    ]


# --- rounds --------------------------------------------------------------------------------------


def round_results(context: RequestContext, tournament: int) -> dict[str, RoundResult]:
    """The recorded results of `tournament`'s rounds by round id, loaded once a request."""
    key = ("round_results", tournament)
    if key not in context.memo:
        results = tournament_results(context.session, tournament)
        context.memo[key] = {str(round_id): row for round_id, row in results.items()}
    found: dict[str, RoundResult] = context.memo[key]
    return found


@round_type.field("payoutFactor")
def resolve_round_payout_factor(obj: dict[str, Any], info: GraphQLResolveInfo[Any]) -> str | None:
    """The classic rules' payout factor, once the round's payouts are resolved."""
    result = round_results(context_of(info), obj["tournament"]).get(obj["id"])
    return None if result is None else result.payout_factor


@round_type.field("resolvedStaking")
def resolve_round_resolved_staking(obj: dict[str, Any], info: GraphQLResolveInfo[Any]) -> bool:
    """Whether the round's stakes have been paid and burned."""
    return obj["id"] in round_results(context_of(info), obj["tournament"])
