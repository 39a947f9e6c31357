"""Stakes: tokens a model puts at risk, and the participant's requests to change them.

Under the classic rules a model has one running stake (ledger account `stake:<model>`):

- an increase moves NMR from the owner's wallet into the stake at once; it is at risk from
  the next round that closes, since a round's stake at risk is the stake at its close
  (`freeze_stakes`, only for models with a valid on-time submission);
- a decrease moves NMR from the stake to the model's pending release (`release:<model>`) at
  once, so it earns nothing more; it was at risk in every round closed and unresolved, so
  it is paid back to the wallet when the last of them resolves (`release_due`) and can still
  be burned until then. With no such round it goes straight back to the wallet.

Under the 2017 rules a model stakes on one round with a confidence (`stake_on_round`)
while the round is open; the stake is returned or burned when that round resolves. The
per-round-stake rules (Numerai's 2026 ones) stake the same way, at confidence 1.

Every movement is one ledger transaction, posted in the caller's database transaction
beside the row that records it, so a request is applied exactly once or not at all.
Functions flush, never commit; a refusal (`StakeError`) changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant import money
from crowdquant.clock import Clock
from crowdquant.db.models import (
    Account,
    ChainRound,
    Model,
    PayoutMode,
    Round,
    RoundStake,
    RoundStatus,
    StakeChange,
    StakeChangeKind,
    StakeChangeStatus,
    Submission,
    SubmissionStatus,
    Tournament,
)
from crowdquant.ledger import (
    InsufficientFunds,
    Ledger,
    Posting,
    Transaction,
    release,
    stake,
    transfer,
    wallet,
)
from crowdquant.ledger.accounts import TREASURY
from crowdquant.money import GENESIS_SUPPLY, Currency, format_amount
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.rounds import current_round, is_open
from crowdquant.tournament.rules import ruleset_of

MAX_STAKE = GENESIS_SUPPLY
CONFIDENCE_STEP = Decimal("1e-10")  # what `RoundStake.confidence` stores exactly


class StakeError(ServiceError):
    """A refused stake request."""

    code = "stake_refused"


class InvalidStakeAmount(StakeError):  # noqa: N818
    code = "invalid_stake_amount"
    default_message = "a stake amount is a positive number of NMR, at most 18 decimals"


class NotEnoughNmr(StakeError):  # noqa: N818
    code = "insufficient_funds"


class NoRoundToStake(StakeError):  # noqa: N818
    code = "no_round_to_stake"


class RoundClosing(StakeError):  # noqa: N818
    code = "round_closing"


# --- amounts at the edge -----------------------------------------------------------------------


def parse_nmr(text: str | int | float | Decimal) -> int:
    """A positive NMR amount written by a person in 10^-18 units (`money.parse_nmr`);
    `InvalidStakeAmount` saying what is wrong with it otherwise."""
    try:
        return money.parse_nmr(text)
    except money.AmountError as exc:
        raise InvalidStakeAmount(str(exc)) from None


def check_confidence(confidence: Decimal) -> Decimal:
    """A 2017 confidence: a number in (0, 1] with at most 10 decimals, kept exactly."""
    if (
        not confidence.is_finite()
        or not (0 < confidence <= 1)
        or confidence != confidence.quantize(CONFIDENCE_STEP, rounding=ROUND_DOWN)
    ):
        raise InvalidStakeAmount(
            f"a confidence is a number in (0, 1] with at most 10 decimals, not {confidence}"
        )
    return confidence


# --- wallets -------------------------------------------------------------------------------------


def grant_nmr(
    session: Session, ledger: Ledger, account: Account, amount: int, reference: str
) -> Transaction:
    """The operator gives `account` NMR from the treasury (idempotent on `reference`)."""
    if amount <= 0:
        raise InvalidStakeAmount("a grant is a positive amount")
    try:
        return ledger.post(
            session,
            f"grant:{reference}",
            Currency.NMR,
            transfer(TREASURY, wallet(account.id), amount),
            memo=f"grant to {account.username}",
        )
    except InsufficientFunds as exc:
        raise NotEnoughNmr(f"the treasury cannot grant that much: {exc.message}") from exc


# --- classic: one running stake per model --------------------------------------------------------


def change_stake(
    session: Session,
    ledger: Ledger,
    clock: Clock,
    model: Model,
    kind: StakeChangeKind,
    amount: int,
) -> StakeChange:
    """Increase or decrease `model`'s stake by `amount` (10^-18 NMR); the recorded request.

    Tournaments that stake per round (2017 and per-round-stake rules): there an increase or
    decrease changes the stake on the open round (`stake_on_round`), at its confidence (1 if
    none yet).
    """
    if amount <= 0 or amount > MAX_STAKE:
        raise InvalidStakeAmount()
    ledger.hold(session)  # what is at risk cannot change until this change is posted
    if ruleset_of(model.tournament).round_stakes:
        return _change_round_stake(session, ledger, clock, model, kind, amount)
    now = clock.now()
    _refuse_before_the_freeze(session, model.tournament, now)
    change = _new_change(model, kind, amount, now)
    if kind is StakeChangeKind.INCREASE:
        postings = transfer(wallet(model.account_id), stake(model.id), amount)
        memo = f"stake {format_amount(amount, Currency.NMR)} on {model.name}"
    else:
        due = _last_round_at_risk(session, model)
        change.due_round_id = None if due is None else due.id
        if due is None:  # nothing at risk: straight back to the wallet
            change.status, change.released_at, change.released = (
                StakeChangeStatus.RELEASED,
                now,
                amount,
            )
            postings = transfer(stake(model.id), wallet(model.account_id), amount)
        else:
            change.status = StakeChangeStatus.PENDING
            postings = transfer(stake(model.id), release(model.id), amount)
        memo = f"unstake {format_amount(amount, Currency.NMR)} from {model.name}"
    _post(session, ledger, change.event_key, postings, memo)
    session.add(change)
    session.flush()
    return change


def drain_stake(session: Session, ledger: Ledger, clock: Clock, model: Model) -> StakeChange:
    """Decrease `model`'s stake by all of it (2017 rules: its stake on the open round)."""
    ledger.hold(session)
    if ruleset_of(model.tournament).round_stakes:
        round_ = _open_round(session, clock, model.tournament)
        row = session.scalar(
            select(RoundStake).where(
                RoundStake.round_id == round_.id, RoundStake.model_id == model.id
            )
        )
        whole = 0 if row is None else row.at_risk
    else:
        whole = ledger.balance(session, stake(model.id), Currency.NMR)
    if whole == 0:
        raise NotEnoughNmr(f"{model.name} has no stake to drain")
    return change_stake(session, ledger, clock, model, StakeChangeKind.DECREASE, whole)


def _refuse_before_the_freeze(session: Session, tournament: Tournament, now: datetime) -> None:
    """A round's stakes at risk are the stakes at its close time: between that time and the
    close that freezes them (the scheduler's next tick), a change would count, so it is
    refused."""
    closing = session.scalar(
        select(Round)
        .where(
            Round.tournament_id == tournament.id,
            Round.status == RoundStatus.OPEN,
            Round.close_time <= now,
        )
        .order_by(Round.number)
        .limit(1)
    )
    if closing is not None:
        raise RoundClosing(
            f"round {closing.number} closed at {closing.close_time:%Y-%m-%d %H:%M} UTC and its"
            " stakes are being frozen: change the stake again in a moment"
        )


def _new_change(model: Model, kind: StakeChangeKind, amount: int, now: datetime) -> StakeChange:
    change_id = uuid.uuid4()
    return StakeChange(
        id=change_id,
        model_id=model.id,
        kind=kind,
        amount=amount,
        requested_at=now,
        status=StakeChangeStatus.DONE,
        event_key=f"stake:{change_id}",
    )


def _post(
    session: Session,
    ledger: Ledger,
    event_key: str,
    postings: Iterable[Posting],
    memo: str,
) -> Transaction:
    try:
        return ledger.post(session, event_key, Currency.NMR, postings, memo=memo)
    except InsufficientFunds as exc:
        holder = "the wallet" if exc.account.startswith("wallet:") else "the stake"
        raise NotEnoughNmr(
            f"{holder} holds {format_amount(exc.balance, Currency.NMR)}:"
            f" it cannot give {format_amount(exc.needed, Currency.NMR)}"
        ) from exc


def _last_round_at_risk(
    session: Session,
    model: Model,
    *,
    closed_by: datetime | None = None,
    not_: Round | None = None,
) -> Round | None:
    """The newest unresolved round in which `model` has a stake at risk (closed by
    `closed_by`, other than `not_`, when given)."""
    query = (
        select(Round)
        .join(RoundStake, RoundStake.round_id == Round.id)
        .where(
            RoundStake.model_id == model.id,
            RoundStake.at_risk != 0,
            Round.status != RoundStatus.RESOLVED,
        )
        .order_by(Round.close_time.desc(), Round.number.desc())
        .limit(1)
    )
    if closed_by is not None:
        query = query.where(Round.close_time <= closed_by)
    if not_ is not None:
        query = query.where(Round.id != not_.id)
    return session.scalar(query)


def freeze_stakes(session: Session, ledger: Ledger, clock: Clock, round_: Round) -> int:
    """At `round_`'s close: each model's stake is its stake at risk in the round, for models
    with a valid on-time submission (classic rules; 2017 stakes were placed on the round).
    How many stakes were frozen; running it again freezes nothing new."""
    if ruleset_of(round_.tournament).round_stakes:
        return 0
    ledger.hold(session)  # the stakes read are the stakes at close: no change slips between
    already = set(
        session.scalars(select(RoundStake.model_id).where(RoundStake.round_id == round_.id))
    )
    submitted = session.scalars(
        select(Submission.model_id)
        .where(
            Submission.round_id == round_.id,
            Submission.status == SubmissionStatus.VALID,
            Submission.late.is_(False),
        )
        .distinct()
    )
    balances = ledger.balances(session, Currency.NMR)
    now = clock.now()
    frozen = 0
    for model_id in sorted(set(submitted) - already):
        at_risk = balances.get(stake(model_id), 0)
        if at_risk > 0:
            session.add(
                RoundStake(round_id=round_.id, model_id=model_id, at_risk=at_risk, staked_at=now)
            )
            frozen += 1
    session.flush()
    return frozen


def release_due(session: Session, ledger: Ledger, clock: Clock, round_: Round) -> int:
    """Pay back the pending releases due at `round_`'s resolution: what is left of each
    (after burns) goes from the model's release to its owner's wallet. A release still at
    risk in an older round that has not resolved (its resolution failed and was skipped)
    waits for that one instead. How many were paid."""
    pending = session.scalars(
        select(StakeChange)
        .where(
            StakeChange.due_round_id == round_.id,
            StakeChange.status == StakeChangeStatus.PENDING,
        )
        .order_by(StakeChange.requested_at, StakeChange.id)
    ).all()
    now = clock.now()
    paid = 0
    for change in pending:
        model = change.model
        older = _last_round_at_risk(session, model, closed_by=change.requested_at, not_=round_)
        if older is not None:
            change.due_round_id = older.id
            continue
        left = min(change.amount, ledger.balance(session, release(model.id), Currency.NMR))
        if left > 0:
            ledger.post(
                session,
                f"release:{change.id}",
                Currency.NMR,
                transfer(release(model.id), wallet(model.account_id), left),
                memo=f"release {format_amount(left, Currency.NMR)} to {model.name}'s owner",
            )
        change.status, change.released_at, change.released = StakeChangeStatus.RELEASED, now, left
        paid += 1
    session.flush()
    return paid


# --- 2017 rules: a stake on one round, with a confidence -----------------------------------------


def stake_on_round(
    session: Session,
    ledger: Ledger,
    clock: Clock,
    model: Model,
    amount: int,
    confidence: Decimal,
) -> RoundStake:
    """Set `model`'s stake on the open round to `amount` at `confidence` (2017 rules): the
    difference moves between wallet and stake now; the stake is at risk once the round
    closes. The model needs a valid on-time submission to the round first."""
    if not ruleset_of(model.tournament).round_stakes:
        raise StakeError(
            f"tournament {model.tournament.number} stakes continuously: increase or decrease"
            " the model's stake instead"
        )
    if amount < 0 or amount > MAX_STAKE:
        raise InvalidStakeAmount()
    check_confidence(confidence)
    ledger.hold(session)
    return _set_round_stake(session, ledger, clock, model, amount, confidence)[0]


def _set_round_stake(
    session: Session,
    ledger: Ledger,
    clock: Clock,
    model: Model,
    amount: int,
    confidence: Decimal | None,
) -> tuple[RoundStake, StakeChange | None]:
    """The open round's stake set to `amount` (`confidence` None keeps the one set, or 1)."""
    round_ = _open_round(session, clock, model.tournament)
    if session.get(ChainRound, round_.id) is not None:
        raise StakeError(
            f"round {round_.number} takes its stakes on chain: authorise one from your wallet"
            " (v3_stake_auth)"
        )
    _check_submitted(session, round_, model)
    row = session.scalar(
        select(RoundStake).where(RoundStake.round_id == round_.id, RoundStake.model_id == model.id)
    )
    before = 0 if row is None else row.at_risk
    if confidence is None:
        confidence = Decimal(1) if row is None or row.confidence is None else row.confidence
    now = clock.now()
    change = None
    if amount != before:
        kind = StakeChangeKind.INCREASE if amount > before else StakeChangeKind.DECREASE
        change = _new_change(model, kind, abs(amount - before), now)
        source, target = wallet(model.account_id), stake(model.id)
        if kind is StakeChangeKind.DECREASE:
            source, target = target, source
        memo = (
            f"{model.name}'s stake on round {round_.number}:"
            f" {format_amount(amount, Currency.NMR)} at confidence {confidence}"
        )
        _post(session, ledger, change.event_key, transfer(source, target, change.amount), memo)
        session.add(change)
    if row is None:
        row = RoundStake(round_id=round_.id, model_id=model.id, at_risk=amount, staked_at=now)
        session.add(row)
    row.at_risk, row.confidence = amount, confidence
    session.flush()
    return row, change


def _check_submitted(session: Session, round_: Round, model: Model) -> None:
    found = session.scalar(
        select(Submission.id)
        .where(
            Submission.round_id == round_.id,
            Submission.model_id == model.id,
            Submission.status == SubmissionStatus.VALID,
            Submission.late.is_(False),
        )
        .limit(1)
    )
    if found is None:
        raise NoRoundToStake(
            f"{model.name} has no valid submission to round {round_.number}: upload first,"
            " then stake on it"
        )


def _change_round_stake(
    session: Session,
    ledger: Ledger,
    clock: Clock,
    model: Model,
    kind: StakeChangeKind,
    amount: int,
) -> StakeChange:
    round_ = _open_round(session, clock, model.tournament)
    row = session.scalar(
        select(RoundStake).where(RoundStake.round_id == round_.id, RoundStake.model_id == model.id)
    )
    before = 0 if row is None else row.at_risk
    wanted = before + amount if kind is StakeChangeKind.INCREASE else before - amount
    if wanted < 0:
        raise NotEnoughNmr(
            f"{model.name}'s stake on round {round_.number} is"
            f" {format_amount(before, Currency.NMR)}: it cannot give"
            f" {format_amount(amount, Currency.NMR)}"
        )
    change = _set_round_stake(session, ledger, clock, model, wanted, None)[1]
    assert change is not None  # amount > 0, so the stake moved
    return change


def _open_round(session: Session, clock: Clock, tournament: Tournament) -> Round:
    round_ = current_round(session, tournament)
    if round_ is None or not is_open(round_, clock.now()):
        raise NoRoundToStake(
            f"no round of tournament {tournament.number} is open: its stakes are placed on an"
            " open round"
        )
    return round_


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundAtRisk:
    round: int
    at_risk: int
    confidence: Decimal | None
    status: RoundStatus


@dataclass(frozen=True)
class StakeView:
    """A model's stake as its owner sees it."""

    staked: int
    """In the stake account now: at risk from the next close (classic)."""
    pending_release: int
    """Unstaked, waiting for its last round to resolve; still burnable."""
    at_risk: list[RoundAtRisk]
    """The unresolved rounds it has NMR at risk in, oldest first."""
    releases: list[StakeChange]
    """The pending releases, with the round each waits for."""


def stake_view(session: Session, ledger: Ledger, model: Model) -> StakeView:
    rows = session.execute(
        select(Round.number, RoundStake.at_risk, RoundStake.confidence, Round.status)
        .join(Round, Round.id == RoundStake.round_id)
        .where(RoundStake.model_id == model.id, Round.status != RoundStatus.RESOLVED)
        .order_by(Round.number)
    ).all()
    pending = session.scalars(
        select(StakeChange)
        .where(StakeChange.model_id == model.id, StakeChange.status == StakeChangeStatus.PENDING)
        .order_by(StakeChange.requested_at)
    ).all()
    return StakeView(
        staked=ledger.balance(session, stake(model.id), Currency.NMR),
        pending_release=ledger.balance(session, release(model.id), Currency.NMR),
        at_risk=[RoundAtRisk(n, a, c, s) for n, a, c, s in rows],
        releases=list(pending),
    )


def round_stakes(session: Session, model: Model) -> dict[uuid.UUID, int]:
    """`model`'s stake at risk in each round it had one in, by round id."""
    rows = session.execute(
        select(RoundStake.round_id, RoundStake.at_risk).where(RoundStake.model_id == model.id)
    ).all()
    return {round_id: at_risk for round_id, at_risk in rows}


def unresolved_stakes(
    session: Session, model_ids: Iterable[uuid.UUID]
) -> list[tuple[RoundStake, Round]]:
    """The stakes the models have at risk in unresolved rounds, with their rounds, newest
    round first."""
    rows = session.execute(
        select(RoundStake, Round)
        .join(Round, Round.id == RoundStake.round_id)
        .where(
            RoundStake.model_id.in_(list(model_ids)),
            RoundStake.at_risk > 0,
            Round.status != RoundStatus.RESOLVED,
        )
        .order_by(Round.number.desc(), RoundStake.model_id)
    ).all()
    return [(stake_, round_) for stake_, round_ in rows]


def stake_changes(session: Session, model: Model, limit: int = 100) -> list[StakeChange]:
    """`model`'s stake requests, newest first."""
    return list(
        session.scalars(
            select(StakeChange)
            .where(StakeChange.model_id == model.id)
            .order_by(StakeChange.requested_at.desc())
            .limit(limit)
        )
    )


def due_date(change: StakeChange) -> datetime | None:
    """When a pending release is expected back: its round's resolve time."""
    if change.status is StakeChangeStatus.RELEASED:
        return change.released_at
    return None if change.due_round is None else change.due_round.resolve_time


# --- where rewards go ----------------------------------------------------------------------------


def set_payout_mode(session: Session, model: Model, mode: PayoutMode) -> Model:
    """Send `model`'s future rewards into its stake (compounding) or to its owner's wallet;
    rounds already resolved keep where they paid."""
    model.payout_mode = PayoutMode(mode)
    session.flush()
    return model
