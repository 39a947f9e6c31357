"""The contracts' events mirrored into the database, and the chain audited against them.

`index_events` reads, from the block after the cursor (`ChainCursor`) to the newest block
with the configured confirmations, the token's transfers and the tournament's stake, root,
claim and rescue events, and records each once (`ChainEvent`, unique per transaction and
log index), moving the cursor in the same transaction: a run again over the same blocks,
after a crash or not, records nothing twice. `mirror_audit` checks the chain against the
mirror: every address's balance is what its mirrored transfers leave it, the tournament
holds in escrow what they leave it, and the supply is 11,000,000 NMR less what was burned
(transfers to the zero address).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.models.evm import ChainCursor, ChainEvent
from crowdquant.ledger.evm.deploy import Deployment

if TYPE_CHECKING:
    from web3 import Web3

SUPPLY = 11_000_000 * 10**18
ZERO_ADDRESS = "0x" + "0" * 40
TOKEN_EVENTS = ("Transfer",)
TOURNAMENT_EVENTS = (
    "RoundCreated",
    "StakeAuthorized",
    "Staked",
    "RoundResolved",
    "Claimed",
    "StakeRescued",
)


@dataclass(frozen=True)
class Indexed:
    """One run of the indexer: the blocks read and the events recorded."""

    from_block: int
    to_block: int
    recorded: int


def cursor_name(chain_id: int, deployment: Deployment) -> str:
    return f"{chain_id}:{deployment.token.address}:{deployment.tournament.address}"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def _event_row(chain_id: int, log: Any) -> ChainEvent:
    args = dict(log["args"])
    name = str(log["event"])
    if name == "Transfer":
        account, counterparty, amount = args["sender"], args["receiver"], args["value"]
    elif name == "Claimed":
        account, counterparty = args["staker"], None
        amount = args["stakeReturned"] + args["reward"]
    elif name == "RoundResolved":
        account, counterparty, amount = None, None, args["totalBurn"]
    else:
        account, counterparty, amount = args.get("staker"), None, args.get("amount")
    model = args.get("model")
    return ChainEvent(
        chain_id=chain_id,
        block_number=int(log["blockNumber"]),
        tx_hash=_text(bytes(log["transactionHash"])),
        log_index=int(log["logIndex"]),
        contract=str(log["address"]),
        event=name,
        round_id=args.get("roundId"),
        model=None if model is None else _text(model),
        account=account,
        counterparty=counterparty,
        amount=None if amount is None else int(amount),
        args={key: _text(value) for key, value in args.items()},
    )


def index_events(
    session: Session,
    w3: Web3,
    deployment: Deployment,
    clock: Clock,
    *,
    confirmations: int = 1,
) -> Indexed:
    """Mirror the contracts' new events into `session`'s database (the caller commits)."""
    chain_id = int(w3.eth.chain_id)
    name = cursor_name(chain_id, deployment)
    cursor = session.get(ChainCursor, name, with_for_update=True)
    start = 0 if cursor is None else cursor.block_number + 1
    end = int(w3.eth.block_number) - (confirmations - 1)
    if end < start:
        return Indexed(start, end, 0)
    logs: list[Any] = []
    for contract, events in (
        (deployment.token, TOKEN_EVENTS),
        (deployment.tournament, TOURNAMENT_EVENTS),
    ):
        for event in events:
            logs += contract.events[event]().get_logs(from_block=start, to_block=end)
    logs.sort(key=lambda log: (log["blockNumber"], log["logIndex"]))
    recorded = 0
    for log in logs:
        row = _event_row(chain_id, log)
        known = session.scalar(
            select(ChainEvent.id).where(
                ChainEvent.tx_hash == row.tx_hash, ChainEvent.log_index == row.log_index
            )
        )
        if known is None:
            session.add(row)
            recorded += 1
    if cursor is None:
        session.add(ChainCursor(name=name, block_number=end, updated_at=clock.now()))
    else:
        cursor.block_number, cursor.updated_at = end, clock.now()
    session.flush()
    return Indexed(start, end, recorded)


def mirrored_balances(session: Session, token_address: str) -> dict[str, int]:
    """Every address's token balance as its mirrored transfers leave it (the zero address:
    minus what was minted, plus what was burned)."""
    balances: dict[str, int] = defaultdict(int)
    transfers = session.execute(
        select(ChainEvent.account, ChainEvent.counterparty, ChainEvent.amount).where(
            ChainEvent.contract == token_address, ChainEvent.event == "Transfer"
        )
    )
    for sender, receiver, amount in transfers:
        balances[str(sender)] -= int(amount or 0)
        balances[str(receiver)] += int(amount or 0)
    return dict(balances)


def mirror_audit(session: Session, deployment: Deployment) -> list[str]:
    """What on chain differs from the mirror (empty: they agree); run after `index_events`
    up to the newest block."""
    token = deployment.token
    mirrored = mirrored_balances(session, token.address)
    if not mirrored:
        return ["no transfer of the token is mirrored: run `crowdquant ledger index`"]
    problems = []
    for address, balance in sorted(mirrored.items()):
        if address == ZERO_ADDRESS:
            continue
        on_chain = int(token.functions.balanceOf(address).call())
        if on_chain != balance:
            problems.append(f"{address} holds {on_chain} on chain, the mirror says {balance}")
    escrow = deployment.tournament.address
    if escrow not in mirrored and int(token.functions.balanceOf(escrow).call()) != 0:
        problems.append(f"the tournament {escrow} holds tokens the mirror does not know of")
    burned = mirrored.get(ZERO_ADDRESS, 0) + SUPPLY
    supply = int(token.functions.totalSupply().call())
    if supply != SUPPLY - burned:
        problems.append(
            f"the token's supply on chain is {supply}, the mirror says {SUPPLY - burned}"
            f" ({SUPPLY} less {burned} burned)"
        )
    return problems
