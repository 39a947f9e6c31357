"""numerapi's v3 staking calls (per-round stakes on chain, `tournament.chain_stakes`):
`v3StakeConfig`, `v3StakeRound`, `v3StakeAuth` (scope `stake`) and `v3StakeClaim`.

They answer when the ledger is the `evm` backend; on the database's ledger each is refused
by name (`NotOnChain`). Amounts are integer strings of 10^-18 NMR (wei) as the contract
holds them, except `maxAmount`'s argument, NMR as a person writes it; hashes and keys are
0x-prefixed hex. `v3StakeAuth`'s `signature` is null: the staker's wallet signs
`authorizationDigest` (EIP-712, `authorizationSigner` is the staker) and sends the
authorisation to the contract's `authorizeStakeBySig`.
"""

from __future__ import annotations

from typing import Any

from ariadne import QueryType
from graphql import GraphQLResolveInfo
from sqlalchemy import select

from crowdquant.api.graphql.context import context_of, iso, required
from crowdquant.db.models import ApiScope, RoundResult
from crowdquant.tournament.chain_stakes import (
    evm_ledger,
    round_on_chain,
    stake_authorization,
    stake_claim,
)
from crowdquant.tournament.models import get_own_model
from crowdquant.tournament.staking import parse_nmr
from crowdquant.tournament.submissions import get_own_submission

query = QueryType()


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


@query.field("v3StakeConfig")
def resolve_v3_stake_config(_obj: Any, info: GraphQLResolveInfo[Any]) -> dict[str, Any]:
    context = context_of(info)
    chain = evm_ledger(context.ledger)
    context.account(ApiScope.READ)
    contract = chain.tournament.functions
    return {
        "address": chain.config.tournament_address,
        "authorizationSigner": None,  # each staker signs their own authorisations
        "nmrAddress": chain.config.token_address,
        "owner": contract.owner().call(),
        "paused": bool(contract.paused().call()),
        "pendingOwner": contract.pendingOwner().call(),
        "serviceWallet": contract.operator().call(),
    }


@query.field("v3StakeRound")
def resolve_v3_stake_round(
    _obj: Any, info: GraphQLResolveInfo[Any], roundId: str | None = None
) -> dict[str, Any]:
    context = context_of(info)
    chain = evm_ledger(context.ledger)
    context.account(ApiScope.READ)
    session = context.session
    found, round_ = round_on_chain(session, required(roundId, "roundId"))
    on_chain = chain.chain(session).round(found.chain_round_id)
    result = session.scalar(select(RoundResult).where(RoundResult.round_id == round_.id))
    payout = on_chain.total_staked - on_chain.total_burn + on_chain.total_reward
    return {
        "closeTime": iso(round_.close_time),
        "merkleRoot": _hex(on_chain.merkle_root) if on_chain.resolved else None,
        "openTime": iso(round_.open_time),
        "payoutFactor": None if result is None else result.payout_factor,
        "remainingBurn": str(on_chain.remaining_burn),
        "remainingPayout": str(on_chain.remaining_payout),
        "resolveTime": iso(round_.resolve_time),
        "resolved": on_chain.resolved,
        "roundId": str(found.chain_round_id),
        "stakeCap": None,
        "stakeThreshold": None,
        "state": round_.status.value,
        "totalPayout": str(payout) if on_chain.resolved else None,
        "totalStaked": str(on_chain.total_staked),
        "tournamentId": str(round_.tournament.number),
    }


@query.field("v3StakeAuth")
def resolve_v3_stake_auth(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    submissionId: str | None = None,
    staker: str | None = None,
    maxAmount: str | None = None,
) -> dict[str, Any]:
    context = context_of(info)
    evm_ledger(context.ledger)
    account = context.account(ApiScope.STAKE)
    session = context.session
    submission = get_own_submission(session, account, required(submissionId, "submissionId"))
    amount = parse_nmr(required(maxAmount, "maxAmount"))
    auth = stake_authorization(
        session,
        context.ledger,
        context.clock,
        account,
        submission,
        required(staker, "staker"),
        amount,
    )
    message = auth.message
    return {
        "authorizationSigner": message.staker,
        "authorizationDigest": _hex(auth.digest),
        "chainId": str(auth.chain_id),
        "deadline": str(message.deadline),
        "maxAmount": str(message.amount),
        "modelId": _hex(message.model),
        "nmrAddress": auth.token_address,
        "nonce": str(message.nonce),
        "roundId": str(message.round_id),
        "signature": None,
        "staker": message.staker,
        "stakingAddress": auth.tournament_address,
        "submissionId": str(submission.id),
        "submissionHash": _hex(message.submission_hash),
        "tournamentId": str(auth.tournament_number),
    }


@query.field("v3StakeClaim")
def resolve_v3_stake_claim(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    roundId: str | None = None,
    modelId: str | None = None,
    staker: str | None = None,
) -> dict[str, Any]:
    context = context_of(info)
    evm_ledger(context.ledger)
    account = context.account(ApiScope.READ)
    session = context.session
    model = get_own_model(session, account, required(modelId, "modelId"))
    found = stake_claim(
        session, context.ledger, required(roundId, "roundId"), model.id, required(staker, "staker")
    )
    claim = found.claim
    return {
        "apiModelId": str(model.id),
        "burnAmountWei": str(claim.burn),
        "merkleRoot": _hex(found.root),
        "modelId": _hex(claim.model),
        "payoutAmountWei": str(claim.paid),
        "proof": [_hex(sibling) for sibling in found.proof],
        "roundId": str(claim.round_id),
        "staker": found.staker,
        "submissionId": None if found.submission_id is None else str(found.submission_id),
        "tournamentId": str(found.tournament_number),
    }
