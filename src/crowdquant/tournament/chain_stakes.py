"""Per-round stakes on an EVM chain (numerapi's v3 staking calls), for tournaments staking
per round (`round_stakes` rules) when the ledger is the `evm` backend.

A round opened on chain takes the next id of the tournament contract (`ChainRound`); its
close and resolution times are the round's. A participant registers the wallet they stake
from (`accounts.set_wallet_address`), asks for a stake authorisation tied to one of their
submissions (`stake_authorization`: the EIP-712 message their wallet signs, for anyone to
send to `authorizeStakeBySig`), and after the resolution reads the Merkle proof of their
model's claim (`stake_claim`). A round's claims are its recorded payouts: the stake
returned (at risk less the burn), the reward and the burn of each staked model.

A submission's hash on chain is the keccak-256 of its id's 16 bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from eth_hash.auto import keccak
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock
from crowdquant.db.models import (
    Account,
    ChainRound,
    Model,
    Round,
    RoundPayout,
    RoundResult,
    RoundStake,
    RoundStatus,
    Submission,
    SubmissionStatus,
    Tournament,
)
from crowdquant.db.session import transaction
from crowdquant.ledger import Ledger, stake, transfer, wallet
from crowdquant.ledger.evm.authorization import StakeAuthorization
from crowdquant.ledger.evm.tournament import model_key
from crowdquant.money import Currency
from crowdquant.payouts.merkle import ClaimTree, StakeClaim, claim_tree
from crowdquant.tournament.accounts import checksum_address
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.rounds import is_open
from crowdquant.tournament.rules import ruleset_of

if TYPE_CHECKING:
    from crowdquant.ledger.evm.backend import EvmLedger

ZERO_ADDRESS = "0x" + "0" * 40


class ChainStakeError(ServiceError):
    """A refused request about stakes on chain."""

    code = "chain_stake_refused"


class NotOnChain(ChainStakeError):  # noqa: N818
    code = "not_on_chain"
    default_message = (
        "a crowdquant server has no on-chain (v3) staking: stake with stake_increase,"
        " stake_decrease and stake_drain"
    )


class NoWallet(ChainStakeError):  # noqa: N818
    code = "no_wallet_address"


class NoChainRound(ChainStakeError):  # noqa: N818
    code = "no_chain_round"


class NoClaim(ChainStakeError):  # noqa: N818
    code = "no_claim"


def evm_ledger(ledger: Ledger) -> EvmLedger:
    """`ledger` if it keeps its stakes on chain; `NotOnChain` otherwise."""
    from crowdquant.ledger.evm.backend import EvmLedger

    if not isinstance(ledger, EvmLedger):
        raise NotOnChain()
    return ledger


def on_chain(ledger: Ledger | None) -> EvmLedger | None:
    """`ledger` if it keeps its stakes on chain (the `evm` backend); None otherwise."""
    from crowdquant.ledger.evm.backend import EvmLedger

    return ledger if isinstance(ledger, EvmLedger) else None


def submission_hash(submission: Submission) -> bytes:
    """The 32 bytes tying a stake on chain to `submission`."""
    return bytes(keccak(submission.id.bytes))


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


# --- rounds on chain -----------------------------------------------------------------------------


def chain_round_of(session: Session, round_: Round) -> ChainRound | None:
    return session.get(ChainRound, round_.id)


def open_chain_round(session: Session, ledger: Ledger, clock: Clock, round_: Round) -> int:
    """Give `round_` the contract's next round id and queue its creation on chain (sent by
    the ledger's `dispatch` after the caller commits); its id. Again: the same id, nothing
    more queued."""
    chain = evm_ledger(ledger)
    if not ruleset_of(round_.tournament).round_stakes:
        raise NotOnChain(
            f"tournament {round_.tournament.number} does not stake per round: its stakes stay"
            " in the books"
        )
    found = chain_round_of(session, round_)
    if found is not None:
        return found.chain_round_id
    ledger.hold(session)  # one id per round, in order
    chain_round_id = (session.scalar(select(func.max(ChainRound.chain_round_id))) or 0) + 1
    session.add(
        ChainRound(round_id=round_.id, chain_round_id=chain_round_id, created_at=clock.now())
    )
    resolve_time = round_.resolve_time or round_.close_time
    create = chain.tournament.functions.createRound(
        chain_round_id, _seconds(round_.close_time), _seconds(resolve_time)
    )
    chain.sender(session).enqueue(
        session,
        f"round:{chain_round_id}:create",
        chain.tournament.address,
        create._encode_transaction_data(),
    )
    session.flush()
    return chain_round_id


def rounds_to_open_on_chain(
    session: Session, tournament: Tournament, now: datetime
) -> list[uuid.UUID]:
    """The open rounds of `tournament` (one staking per round) not yet on chain, oldest
    first (none for another tournament)."""
    if not ruleset_of(tournament).round_stakes:
        return []
    return list(
        session.scalars(
            select(Round.id)
            .where(
                Round.tournament_id == tournament.id,
                Round.status == RoundStatus.OPEN,
                Round.close_time > now,
                Round.id.not_in(select(ChainRound.round_id)),
            )
            .order_by(Round.number)
        )
    )


def round_on_chain(session: Session, chain_round_id: str | int) -> tuple[ChainRound, Round]:
    """The round with id `chain_round_id` on the contract; `NoChainRound` for none."""
    try:
        number = int(chain_round_id)
    except (TypeError, ValueError):
        raise NoChainRound(
            f"a round id on chain is a whole number, not {chain_round_id!r}"
        ) from None
    found = session.scalar(select(ChainRound).where(ChainRound.chain_round_id == number))
    round_ = None if found is None else session.get(Round, found.round_id)
    if found is None or round_ is None:
        raise NoChainRound(f"no round has id {number} on the tournament contract")
    return found, round_


# --- authorisations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    """A stake authorisation to sign, with where it goes."""

    message: StakeAuthorization
    digest: bytes
    chain_id: int
    tournament_address: str
    token_address: str
    submission: Submission
    tournament_number: int


def stake_authorization(
    session: Session,
    ledger: Ledger,
    clock: Clock,
    account: Account,
    submission: Submission,
    staker: str,
    amount: int,
) -> Authorization:
    """The authorisation `account`'s wallet `staker` signs to stake `amount` on the round of
    `submission` (the account's own, valid and on time, in an open round on chain), valid
    until the round closes, with the wallet's next nonce on the contract."""
    chain = evm_ledger(ledger)
    round_ = submission.round
    tournament = round_.tournament
    if not ruleset_of(tournament).round_stakes:
        raise NotOnChain(
            f"tournament {tournament.number} does not stake per round: stake with stake_increase"
        )
    wallet = checksum_address(staker)
    if account.wallet_address is None:
        raise NoWallet("register your wallet address first (PUT /api/v1/account/wallet-address)")
    if wallet != account.wallet_address:
        raise NoWallet(f"{wallet} is not your registered wallet address ({account.wallet_address})")
    if submission.status is not SubmissionStatus.VALID or submission.late:
        raise ChainStakeError("only a valid, on-time submission can be staked on")
    if not is_open(round_, clock.now()):
        raise ChainStakeError(f"round {round_.number} is closed: its stakes are locked")
    found = chain_round_of(session, round_)
    if found is None:
        raise NoChainRound(f"round {round_.number} is not open on chain yet: ask again soon")
    nonce = int(chain.tournament.functions.nonces(wallet).call())
    message = StakeAuthorization(
        round_id=found.chain_round_id,
        model=model_key(submission.model_id),
        submission_hash=submission_hash(submission),
        amount=amount,
        staker=wallet,
        nonce=nonce,
        deadline=_seconds(round_.close_time),
    )
    return Authorization(
        message=message,
        digest=message.digest(chain.config.chain_id, chain.config.tournament_address),
        chain_id=chain.config.chain_id,
        tournament_address=chain.config.tournament_address,
        token_address=chain.config.token_address,
        submission=submission,
        tournament_number=tournament.number,
    )


# --- claims --------------------------------------------------------------------------------------


def round_claims(session: Session, round_: Round, chain_round_id: int) -> list[StakeClaim]:
    """The resolved round's claims, from its recorded payouts: one per model with a stake
    at risk."""
    payouts = session.scalars(
        select(RoundPayout)
        .where(RoundPayout.round_id == round_.id, RoundPayout.at_risk > 0)
        .order_by(RoundPayout.model_id)
    )
    claims = []
    for payout in payouts:
        burn = max(-payout.nmr, 0)
        claims.append(
            StakeClaim(
                round_id=chain_round_id,
                model=model_key(payout.model_id),
                stake_returned=payout.at_risk - burn,
                reward=max(payout.nmr, 0),
                burn=burn,
            )
        )
    return claims


def round_claim_tree(session: Session, round_: Round, chain_round_id: int) -> ClaimTree | None:
    """The resolved round's claim tree (None before the resolution, or with no stakes)."""
    if round_.status is not RoundStatus.RESOLVED:
        return None
    resolved = session.scalar(select(RoundResult.id).where(RoundResult.round_id == round_.id))
    claims = round_claims(session, round_, chain_round_id) if resolved is not None else []
    return claim_tree(claims) if claims else None


@dataclass(frozen=True)
class Claim:
    """A model's claim of a resolved round on chain, with its proof."""

    claim: StakeClaim
    proof: tuple[bytes, ...]
    root: bytes
    staker: str
    submission_id: uuid.UUID | None
    tournament_number: int


def stake_claim(
    session: Session,
    ledger: Ledger,
    chain_round_id: str | int,
    model_id: uuid.UUID,
    staker: str,
) -> Claim:
    """The claim of `model_id`'s stake by `staker` in round `chain_round_id` on chain, once
    the round has resolved."""
    chain = evm_ledger(ledger)
    found, round_ = round_on_chain(session, chain_round_id)
    wallet = checksum_address(staker)
    tree = round_claim_tree(session, round_, found.chain_round_id)
    if tree is None:
        raise NoClaim(f"round {found.chain_round_id} on chain has not resolved with stakes")
    key = model_key(model_id)
    claim = next((c for c in tree.claims if c.model == key), None)
    on_chain = chain.tournament.functions.stakes(found.chain_round_id, key).call()
    if claim is None or str(on_chain[0]).lower() != wallet.lower():
        raise NoClaim(
            f"{wallet} staked nothing on this model in round {found.chain_round_id} on chain"
        )
    submissions = session.scalars(
        select(Submission).where(Submission.round_id == round_.id, Submission.model_id == model_id)
    )
    staked = next((s.id for s in submissions if submission_hash(s) == bytes(on_chain[1])), None)
    return Claim(
        claim=claim,
        proof=tree.proof(key),
        root=tree.root,
        staker=wallet,
        submission_id=staked,
        tournament_number=round_.tournament.number,
    )


# --- the round's stakes through the contract ----------------------------------------------------


def pull_chain_stakes(
    sessions: sessionmaker[Session], ledger: Ledger, clock: Clock, round_id: uuid.UUID
) -> int:
    """Before the round closes: pull every authorised stake of its models into escrow on
    chain (each batch sent once; none once the chain's time has passed the close, when it
    refuses them), then mirror each stake locked on chain into the books
    (`mirror_chain_stakes`), each step in a transaction of its own (the chain's calls are
    recorded by the sender's). How many stakes were mirrored."""
    chain = evm_ledger(ledger)
    with transaction(sessions) as session:
        round_ = session.get(Round, round_id)
        found = None if round_ is None else chain_round_of(session, round_)
        if round_ is None or found is None:
            return 0
        chain_round_id, models = found.chain_round_id, _round_model_keys(session, round_)
        close = _seconds(round_.close_time)
    if int(chain.w3.eth.get_block("latest")["timestamp"]) < close:
        with sessions() as session:
            chain.chain(session).pull_stakes(chain_round_id, models)
    with transaction(sessions) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        return mirror_chain_stakes(session, ledger, clock, round_)


def _round_model_keys(session: Session, round_: Round) -> list[bytes]:
    models = session.scalars(
        select(Submission.model_id)
        .where(
            Submission.round_id == round_.id,
            Submission.status == SubmissionStatus.VALID,
            Submission.late.is_(False),
        )
        .distinct()
    )
    return [model_key(model_id) for model_id in sorted(models)]


def mirror_chain_stakes(session: Session, ledger: Ledger, clock: Clock, round_: Round) -> int:
    """Record each stake of `round_` locked in escrow on chain as the model's stake at risk,
    moved in the books from its owner's wallet to the model's stake; stakes recorded before
    are left as they are (a replay after a crash records only what is missing). A stake
    whose staker is not the model owner's registered wallet is left out."""
    chain = evm_ledger(ledger)
    found = chain_round_of(session, round_)
    if found is None:
        return 0
    ledger.hold(session)
    recorded = set(
        session.scalars(select(RoundStake.model_id).where(RoundStake.round_id == round_.id))
    )
    stakes = chain.tournament.functions.stakes
    now = clock.now()
    mirrored = 0
    models = session.scalars(
        select(Model).where(
            Model.id.in_(select(Submission.model_id).where(Submission.round_id == round_.id))
        )
    )
    for model in sorted(models, key=lambda m: m.id):
        if model.id in recorded:
            continue
        staker, _, amount, locked, _ = stakes(found.chain_round_id, model_key(model.id)).call()
        owner_wallet = model.account.wallet_address
        if not locked or owner_wallet is None or str(staker).lower() != owner_wallet.lower():
            continue
        ledger.post(
            session,
            f"chain-stake:{round_.id}:{model.id}",
            Currency.NMR,
            transfer(wallet(model.account_id), stake(model.id), int(amount)),
            memo=f"{model.name}'s stake on round {round_.number}, locked on chain",
        )
        session.add(
            RoundStake(
                round_id=round_.id,
                model_id=model.id,
                at_risk=int(amount),
                confidence=Decimal(1),
                staked_at=now,
            )
        )
        mirrored += 1
    session.flush()
    return mirrored


def queue_chain_resolution(session: Session, ledger: Ledger, round_: Round) -> ClaimTree | None:
    """In the resolution's transaction: queue, for a round on chain, the allowance of its
    rewards and the posting of its claims' root with its burns (`resolveRound`, which burns
    them on chain); sent by `dispatch` after the commit. The tree queued (None: nothing to
    do, the round is not on chain or staked nothing)."""
    from crowdquant.ledger.evm.backend import EvmLedger

    if not isinstance(ledger, EvmLedger):
        return None
    found = chain_round_of(session, round_)
    tree = None if found is None else round_claim_tree(session, round_, found.chain_round_id)
    if found is None or tree is None:
        return None
    contract, sender = ledger.tournament, ledger.sender(session)
    chain_round_id = found.chain_round_id
    if tree.total_reward:
        approve = ledger.token.functions.approve(contract.address, tree.total_reward)
        sender.enqueue(
            session,
            f"round:{chain_round_id}:approve-rewards",
            ledger.token.address,
            approve._encode_transaction_data(),
        )
    resolve = contract.functions.resolveRound(
        chain_round_id, tree.root, tree.total_burn, tree.total_reward
    )
    sender.enqueue(
        session,
        f"round:{chain_round_id}:resolve",
        contract.address,
        resolve._encode_transaction_data(),
    )
    return tree


def pay_chain_claims(sessions: sessionmaker[Session], ledger: Ledger, round_id: uuid.UUID) -> int:
    """After the root is posted: pay, in batches by the operator, every claim of the round
    still unpaid on chain. How many batches were sent."""
    chain = evm_ledger(ledger)
    with transaction(sessions) as session:
        round_ = session.get(Round, round_id)
        found = None if round_ is None else chain_round_of(session, round_)
        if round_ is None or found is None:
            return 0
        tree = round_claim_tree(session, round_, found.chain_round_id)
    if tree is None:
        return 0
    with sessions() as session:
        return len(chain.chain(session).pay_claims(tree))
