"""The `evm` ledger backend: the books in the database, the token's supply on chain.

A first, custodial cut of the chain-backed ledger: the journal, balances, statements and
hash chain are the database's (`SqlLedger`, the same tables), and the token on chain holds
the supply, the operator's key holding what the books hold for the treasury and the
participants. Every NMR transaction that burns queues a `burn` of the same amount from the
operator's key, in the caller's transaction and under the business key ``burn:<event
key>`` (so a retried post queues nothing more); `dispatch` sends the queued calls once
the transaction has committed. The audit adds the chain to the books' own checks: the
token's fixed supply, every chain call settled, and the supply on chain equal to the fixed
supply less the books' burns; once the contracts' events are mirrored (`index`), also
every balance, the escrow and the supply against the mirror.

A payout of a round staked on chain (one with a `ChainRound`) queues no burn: the round's
`resolveRound` burns its stakes' burns there.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.models.evm import ChainEvent, ChainRound, EvmTransaction
from crowdquant.db.session import session_factory
from crowdquant.ledger.accounts import BURNED, AccountId
from crowdquant.ledger.audit import AuditReport, Problem
from crowdquant.ledger.evm.deploy import Deployment, bind
from crowdquant.ledger.evm.errors import ChainConfigError
from crowdquant.ledger.evm.indexer import Indexed, index_events, mirror_audit
from crowdquant.ledger.evm.node import ChainConfig, chain_config, connect, operator_account
from crowdquant.ledger.evm.sender import SentTransaction, TransactionSender
from crowdquant.ledger.evm.tournament import TournamentChain
from crowdquant.ledger.interface import Entry, NewTransaction, Posting, Transaction
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import GENESIS_SUPPLY, Currency
from crowdquant.settings import Settings

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3
    from web3.contract import Contract


class EvmLedger:
    """The `Ledger` protocol with the token's supply kept on an EVM chain."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.config: ChainConfig = chain_config(settings)
        self._account: LocalAccount = operator_account(settings)
        self._clock = clock
        self._books = SqlLedger(clock)
        self._w3: Web3 | None = None
        self._senders: dict[int, TransactionSender] = {}
        self._token: Contract | None = None
        self._tournament: Contract | None = None

    # -- the chain, connected when first needed ---------------------------------------------

    @property
    def w3(self) -> Web3:
        if self._w3 is None:
            self._w3 = connect(self.config)
        return self._w3

    @property
    def token(self) -> Contract:
        if self._token is None:
            self._token = bind(self.w3, "Token", self.config.token_address)
        return self._token

    @property
    def tournament(self) -> Contract:
        if self._tournament is None:
            self._tournament = bind(self.w3, "Tournament", self.config.tournament_address)
        return self._tournament

    def chain(self, session: Session) -> TournamentChain:
        """The operator's moves on the tournament contract, recorded in `session`'s database."""
        return TournamentChain(self.sender(session), self.deployment)

    def sender(self, session: Session) -> TransactionSender:
        """The sender on the operator's key that records in `session`'s database."""
        engine = session.get_bind().engine
        if id(engine) not in self._senders:
            self._senders[id(engine)] = TransactionSender(
                self.w3,
                self._account,
                session_factory(engine),
                self._clock,
                confirmations=self.config.confirmations,
                receipt_timeout_seconds=self.config.receipt_timeout_seconds,
            )
        return self._senders[id(engine)]

    @property
    def deployment(self) -> Deployment:
        return Deployment(token=self.token, tournament=self.tournament)

    def index(self, session: Session) -> Indexed:
        """Mirror the contracts' new events into the database (the caller commits)."""
        return index_events(
            session,
            self.w3,
            self.deployment,
            self._clock,
            confirmations=self.config.confirmations,
        )

    def dispatch(self, session: Session) -> list[SentTransaction]:
        """Send every queued chain call (run after the posts that queued them commit)."""
        return self.sender(session).dispatch()

    # -- the protocol -----------------------------------------------------------------------

    def genesis(self, session: Session) -> Transaction:
        supply = int(self.token.functions.SUPPLY().call())
        if supply != GENESIS_SUPPLY:
            raise ChainConfigError(
                f"the token at {self.config.token_address} has a supply of {supply}, "
                f"not {GENESIS_SUPPLY}"
            )
        return self._books.genesis(session)

    def hold(self, session: Session) -> None:
        self._books.hold(session)

    def post(
        self,
        session: Session,
        event_key: str,
        currency: Currency,
        postings: Iterable[Posting],
        *,
        memo: str = "",
    ) -> Transaction:
        recorded = self._books.post(session, event_key, currency, postings, memo=memo)
        self._burn_on_chain(session, event_key, currency, recorded)
        return recorded

    def post_many(
        self, session: Session, transactions: Sequence[NewTransaction]
    ) -> list[Transaction]:
        recorded = self._books.post_many(session, transactions)
        for new, transaction in zip(transactions, recorded, strict=True):
            self._burn_on_chain(session, new.event_key, new.currency, transaction)
        return recorded

    def _burn_on_chain(
        self, session: Session, event_key: str, currency: Currency, recorded: Transaction
    ) -> None:
        """Queue the token's burn of what `recorded` burned in the books (NMR only; a
        payout of a round on chain is burned by the round's resolution there)."""
        burned = recorded.amount(BURNED)
        if currency is Currency.NMR and burned > 0 and not _burned_by_root(session, event_key):
            burn = self.token.functions.burn(burned)
            self.sender(session).enqueue(
                session, f"burn:{event_key}", self.token.address, burn._encode_transaction_data()
            )

    def find(self, session: Session, event_key: str) -> Transaction | None:
        return self._books.find(session, event_key)

    def balance(self, session: Session, account: AccountId, currency: Currency) -> int:
        return self._books.balance(session, account, currency)

    def balances(self, session: Session, currency: Currency) -> dict[AccountId, int]:
        return self._books.balances(session, currency)

    def balances_of(
        self, session: Session, accounts: Iterable[AccountId], currency: Currency
    ) -> dict[AccountId, int]:
        return self._books.balances_of(session, accounts, currency)

    def history(
        self, session: Session, account: AccountId, currency: Currency | None = None
    ) -> list[Entry]:
        return self._books.history(session, account, currency)

    def verify(self, session: Session) -> AuditReport:
        report = self._books.verify(session)
        problems = list(report.problems)
        try:
            supply = int(self.token.functions.totalSupply().call())
        except (ChainConfigError, OSError) as exc:
            problems.append(Problem("chain", f"the chain cannot be read: {exc}"))
            return replace(report, problems=tuple(problems))
        unsettled = list(
            session.execute(
                select(EvmTransaction.business_key, EvmTransaction.status)
                .where(EvmTransaction.status != "mined")
                .order_by(EvmTransaction.created_at)
            )
        )
        for business_key, status in unsettled:
            problems.append(Problem("chain", f"the chain call {business_key!r} is {status}"))
        expected = GENESIS_SUPPLY - report.burned if report.minted else GENESIS_SUPPLY
        if not unsettled and supply != expected:
            problems.append(
                Problem(
                    "chain",
                    f"the token's supply on chain is {supply}, the books say {expected} "
                    f"({GENESIS_SUPPLY} less {report.burned} burned)",
                )
            )
        indexed = session.scalar(
            select(ChainEvent.id).where(ChainEvent.contract == self.token.address).limit(1)
        )
        if indexed is not None:  # the chain against its mirror, once indexed
            problems += [
                Problem("chain", message) for message in mirror_audit(session, self.deployment)
            ]
        return replace(report, problems=tuple(problems))


def _burned_by_root(session: Session, event_key: str) -> bool:
    """Whether `event_key` is a payout of a round on chain, whose burns the round's
    `resolveRound` burns there (a payout's key: ``payout:<round id>:<model id>``)."""
    kind, _, rest = event_key.partition(":")
    if kind != "payout":
        return False
    try:
        round_id = uuid.UUID(rest.partition(":")[0])
    except ValueError:
        return False
    return session.get(ChainRound, round_id) is not None
