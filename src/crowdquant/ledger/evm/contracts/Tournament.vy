# pragma version 0.4.3
"""
@title Per-round stakes with Merkle claims
@notice A participant authorises a stake for a round, tied to the hash of one submission
        (sending it, or signing it for anyone to send: EIP-712);
        the stake is pulled into escrow before the round closes and stays locked until the
        round resolves. At resolution the operator posts one Merkle root of the claims
        (model, stake returned, reward, burn), burns the round's burns and funds its
        rewards; each claim is then paid once against its proof, always to the model's
        staker. Nothing here can move escrowed stakes anywhere else: the owner may only
        recover tokens sent to this contract beyond what it holds for stakers. If a round is
        not resolved within RESCUE_DELAY of its resolution time, each staker may take their
        stake back in full. No upgradability: a new version is a new deployment.
"""

interface Token:
    def transfer(receiver: address, amount: uint256) -> bool: nonpayable
    def transferFrom(sender: address, receiver: address, amount: uint256) -> bool: nonpayable
    def burn(amount: uint256): nonpayable
    def balanceOf(owner: address) -> uint256: view

struct Round:
    closeTime: uint256
    resolveTime: uint256
    totalStaked: uint256
    merkleRoot: bytes32
    resolved: bool
    totalBurn: uint256
    totalReward: uint256
    remainingPayout: uint256
    remainingBurn: uint256

struct Stake:
    staker: address
    submissionHash: bytes32
    amount: uint256
    locked: bool
    claimed: bool

struct Claim:
    model: bytes32
    stakeReturned: uint256
    reward: uint256
    burn: uint256
    proof: DynArray[bytes32, MAX_PROOF]

event RoundCreated:
    roundId: indexed(uint256)
    closeTime: uint256
    resolveTime: uint256

event StakeAuthorized:
    roundId: indexed(uint256)
    model: indexed(bytes32)
    staker: indexed(address)
    submissionHash: bytes32
    amount: uint256

event Staked:
    roundId: indexed(uint256)
    model: indexed(bytes32)
    staker: indexed(address)
    submissionHash: bytes32
    amount: uint256

event RoundResolved:
    roundId: indexed(uint256)
    merkleRoot: bytes32
    totalBurn: uint256
    totalReward: uint256

event Claimed:
    roundId: indexed(uint256)
    model: indexed(bytes32)
    staker: indexed(address)
    stakeReturned: uint256
    reward: uint256
    burn: uint256

event StakeRescued:
    roundId: indexed(uint256)
    model: indexed(bytes32)
    staker: indexed(address)
    amount: uint256

event Paused:
    account: address

event Unpaused:
    account: address

event OperatorChanged:
    previous: indexed(address)
    operator: indexed(address)

event OwnershipTransferStarted:
    previous: indexed(address)
    pending: indexed(address)

event OwnershipTransferred:
    previous: indexed(address)
    owner: indexed(address)

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
AUTHORIZATION_TYPEHASH: constant(bytes32) = keccak256(
    "StakeAuthorization(uint256 roundId,bytes32 model,bytes32 submissionHash,uint256 amount,address staker,uint256 nonce,uint256 deadline)"
)
NAME_HASH: constant(bytes32) = keccak256("crowdquant Tournament")
VERSION_HASH: constant(bytes32) = keccak256("1")
MAX_PROOF: constant(uint256) = 32
MAX_BATCH: constant(uint256) = 256
RESCUE_DELAY: public(constant(uint256)) = 180 * 86400

TOKEN: public(immutable(Token))

owner: public(address)
pendingOwner: public(address)
operator: public(address)
paused: public(bool)

rounds: public(HashMap[uint256, Round])
stakes: public(HashMap[uint256, HashMap[bytes32, Stake]])
lastRoundId: public(uint256)
nonces: public(HashMap[address, uint256])
# tokens held for stakers: the stakes of unresolved rounds and the unclaimed payouts
totalHeld: public(uint256)


@deploy
def __init__(token: address, operator: address):
    assert token != empty(address), "token is the zero address"
    TOKEN = Token(token)
    self.owner = msg.sender
    self.operator = operator
    log OwnershipTransferred(previous=empty(address), owner=msg.sender)
    log OperatorChanged(previous=empty(address), operator=operator)


# -- roles ------------------------------------------------------------------------------

@internal
@view
def _only_owner():
    assert msg.sender == self.owner, "caller is not the owner"


@internal
@view
def _only_operator():
    assert msg.sender == self.operator, "caller is not the operator"


@internal
@view
def _not_paused():
    assert not self.paused, "paused"


@external
def transferOwnership(pending: address):
    """@notice Name the next owner; they become owner when they accept."""
    self._only_owner()
    self.pendingOwner = pending
    log OwnershipTransferStarted(previous=self.owner, pending=pending)


@external
def acceptOwnership():
    assert msg.sender == self.pendingOwner, "caller is not the pending owner"
    previous: address = self.owner
    self.owner = msg.sender
    self.pendingOwner = empty(address)
    log OwnershipTransferred(previous=previous, owner=msg.sender)


@external
def setOperator(operator: address):
    self._only_owner()
    log OperatorChanged(previous=self.operator, operator=operator)
    self.operator = operator


@external
def pause():
    """@notice Stop staking, resolving and claiming (the owner or the operator)."""
    assert msg.sender == self.owner or msg.sender == self.operator, "caller may not pause"
    self.paused = True
    log Paused(account=msg.sender)


@external
def unpause():
    self._only_owner()
    self.paused = False
    log Unpaused(account=msg.sender)


@external
def recover(receiver: address, amount: uint256):
    """@notice Send tokens sent here by mistake; never those held for stakers."""
    self._only_owner()
    surplus: uint256 = staticcall TOKEN.balanceOf(self) - self.totalHeld
    assert amount <= surplus, "amount is held for stakers"
    assert extcall TOKEN.transfer(receiver, amount)


# -- rounds and stakes ------------------------------------------------------------------

@external
def createRound(roundId: uint256, closeTime: uint256, resolveTime: uint256):
    self._only_operator()
    self._not_paused()
    assert roundId > self.lastRoundId, "round ids must increase"
    assert closeTime > block.timestamp, "close time has passed"
    assert closeTime <= resolveTime, "resolution before close"
    self.lastRoundId = roundId
    self.rounds[roundId] = Round(
        closeTime=closeTime,
        resolveTime=resolveTime,
        totalStaked=0,
        merkleRoot=empty(bytes32),
        resolved=False,
        totalBurn=0,
        totalReward=0,
        remainingPayout=0,
        remainingBurn=0,
    )
    log RoundCreated(roundId=roundId, closeTime=closeTime, resolveTime=resolveTime)


@internal
@view
def _before_close(roundId: uint256):
    closeTime: uint256 = self.rounds[roundId].closeTime
    assert closeTime != 0, "no such round"
    assert block.timestamp < closeTime, "round is closed"


@internal
def _authorize(
    roundId: uint256, model: bytes32, submissionHash: bytes32, amount: uint256, staker: address
):
    self._not_paused()
    self._before_close(roundId)
    assert amount > 0, "stake is zero"
    assert submissionHash != empty(bytes32), "no submission hash"
    current: Stake = self.stakes[roundId][model]
    assert not current.locked, "stake already locked"
    assert current.staker == empty(address) or current.staker == staker, "model staked by another"
    self.stakes[roundId][model] = Stake(
        staker=staker, submissionHash=submissionHash, amount=amount, locked=False, claimed=False
    )
    log StakeAuthorized(
        roundId=roundId, model=model, staker=staker, submissionHash=submissionHash, amount=amount
    )


@external
def authorizeStake(roundId: uint256, model: bytes32, submissionHash: bytes32, amount: uint256):
    """@notice Authorise a stake of `amount` on `model` for a round, tied to one submission's
            hash; the tokens move when the stake is pulled (the caller approves this
            contract for them)."""
    self._authorize(roundId, model, submissionHash, amount, msg.sender)


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """@notice The EIP-712 domain of stake authorisations signed for this contract."""
    return self._domain_separator()


@internal
@view
def _domain_separator() -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@external
def authorizeStakeBySig(
    roundId: uint256,
    model: bytes32,
    submissionHash: bytes32,
    amount: uint256,
    staker: address,
    deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """@notice `authorizeStake` for `staker`, who signed it (EIP-712 `StakeAuthorization`
            with their next nonce, valid until `deadline`); anyone may submit it, once."""
    assert block.timestamp <= deadline, "authorisation expired"
    nonce: uint256 = self.nonces[staker]
    digest: bytes32 = keccak256(
        concat(
            b"\x19\x01",
            self._domain_separator(),
            keccak256(
                abi_encode(
                    AUTHORIZATION_TYPEHASH,
                    roundId,
                    model,
                    submissionHash,
                    amount,
                    staker,
                    nonce,
                    deadline,
                )
            ),
        )
    )
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address) and signer == staker, "invalid signature"
    self.nonces[staker] = nonce + 1
    self._authorize(roundId, model, submissionHash, amount, staker)


@internal
def _pull(roundId: uint256, model: bytes32):
    stake: Stake = self.stakes[roundId][model]
    assert stake.staker != empty(address), "no authorised stake"
    assert not stake.locked, "stake already locked"
    assert msg.sender == stake.staker or msg.sender == self.operator, "caller may not pull"
    self.stakes[roundId][model].locked = True
    self.rounds[roundId].totalStaked += stake.amount
    self.totalHeld += stake.amount
    assert extcall TOKEN.transferFrom(stake.staker, self, stake.amount)
    log Staked(
        roundId=roundId,
        model=model,
        staker=stake.staker,
        submissionHash=stake.submissionHash,
        amount=stake.amount,
    )


@external
@nonreentrant
def pullStake(roundId: uint256, model: bytes32):
    """@notice Move an authorised stake into escrow (the staker or the operator)."""
    self._not_paused()
    self._before_close(roundId)
    self._pull(roundId, model)


@external
@nonreentrant
def pullStakes(roundId: uint256, models: DynArray[bytes32, MAX_BATCH]):
    """@notice `pullStake` for many models of one round."""
    self._not_paused()
    self._before_close(roundId)
    for model: bytes32 in models:
        self._pull(roundId, model)


# -- resolution and claims --------------------------------------------------------------

@external
@nonreentrant
def resolveRound(roundId: uint256, merkleRoot: bytes32, totalBurn: uint256, totalReward: uint256):
    """@notice Post the round's claims root, burn `totalBurn` of its stakes and pull
            `totalReward` from the operator to pay its rewards."""
    self._only_operator()
    self._not_paused()
    r: Round = self.rounds[roundId]
    assert r.closeTime != 0, "no such round"
    assert not r.resolved, "round already resolved"
    assert block.timestamp >= r.resolveTime, "round cannot resolve yet"
    assert block.timestamp < r.resolveTime + RESCUE_DELAY, "round expired"
    assert merkleRoot != empty(bytes32), "empty root"
    assert totalBurn <= r.totalStaked, "burn exceeds the stakes"
    payout: uint256 = r.totalStaked - totalBurn + totalReward
    self.rounds[roundId].resolved = True
    self.rounds[roundId].merkleRoot = merkleRoot
    self.rounds[roundId].totalBurn = totalBurn
    self.rounds[roundId].totalReward = totalReward
    self.rounds[roundId].remainingPayout = payout
    self.rounds[roundId].remainingBurn = totalBurn
    self.totalHeld = self.totalHeld - r.totalStaked + payout
    if totalReward > 0:
        assert extcall TOKEN.transferFrom(msg.sender, self, totalReward)
    if totalBurn > 0:
        extcall TOKEN.burn(totalBurn)
    log RoundResolved(
        roundId=roundId, merkleRoot=merkleRoot, totalBurn=totalBurn, totalReward=totalReward
    )


@external
@pure
def leafOf(
    roundId: uint256, model: bytes32, stakeReturned: uint256, reward: uint256, burn: uint256
) -> bytes32:
    """@notice The Merkle leaf of one claim."""
    return self._leaf(roundId, model, stakeReturned, reward, burn)


@internal
@pure
def _leaf(
    roundId: uint256, model: bytes32, stakeReturned: uint256, reward: uint256, burn: uint256
) -> bytes32:
    return keccak256(keccak256(abi_encode(roundId, model, stakeReturned, reward, burn)))


@internal
@pure
def _verify(proof: DynArray[bytes32, MAX_PROOF], root: bytes32, leaf: bytes32) -> bool:
    node: bytes32 = leaf
    for sibling: bytes32 in proof:
        if convert(node, uint256) < convert(sibling, uint256):
            node = keccak256(concat(node, sibling))
        else:
            node = keccak256(concat(sibling, node))
    return node == root


@internal
def _claim(roundId: uint256, claim: Claim):
    r: Round = self.rounds[roundId]
    assert r.resolved, "round not resolved"
    stake: Stake = self.stakes[roundId][claim.model]
    assert stake.locked, "no stake on this model"
    assert not stake.claimed, "already claimed"
    assert msg.sender == stake.staker or msg.sender == self.operator, "caller may not claim"
    assert claim.stakeReturned + claim.burn == stake.amount, "claim does not match the stake"
    leaf: bytes32 = self._leaf(roundId, claim.model, claim.stakeReturned, claim.reward, claim.burn)
    assert self._verify(claim.proof, r.merkleRoot, leaf), "invalid proof"
    paid: uint256 = claim.stakeReturned + claim.reward
    self.stakes[roundId][claim.model].claimed = True
    self.rounds[roundId].remainingPayout = r.remainingPayout - paid
    self.rounds[roundId].remainingBurn = r.remainingBurn - claim.burn
    self.totalHeld -= paid
    if paid > 0:
        assert extcall TOKEN.transfer(stake.staker, paid)
    log Claimed(
        roundId=roundId,
        model=claim.model,
        staker=stake.staker,
        stakeReturned=claim.stakeReturned,
        reward=claim.reward,
        burn=claim.burn,
    )


@external
@nonreentrant
def claim(
    roundId: uint256,
    model: bytes32,
    stakeReturned: uint256,
    reward: uint256,
    burn: uint256,
    proof: DynArray[bytes32, MAX_PROOF],
):
    """@notice Pay one claim of a resolved round to the model's staker (the staker or the
            operator), once."""
    self._not_paused()
    self._claim(
        roundId,
        Claim(model=model, stakeReturned=stakeReturned, reward=reward, burn=burn, proof=proof),
    )


@external
@nonreentrant
def claimMany(roundId: uint256, claims: DynArray[Claim, MAX_BATCH]):
    """@notice `claim` for many models of one round (the operator, or a staker for their
            own models)."""
    self._not_paused()
    for c: Claim in claims:
        self._claim(roundId, c)


@external
@nonreentrant
def rescueStake(roundId: uint256, model: bytes32):
    """@notice Take back a whole stake of a round left unresolved RESCUE_DELAY past its
            resolution time (the staker)."""
    r: Round = self.rounds[roundId]
    assert r.closeTime != 0, "no such round"
    assert not r.resolved, "round already resolved"
    assert block.timestamp >= r.resolveTime + RESCUE_DELAY, "round may still resolve"
    stake: Stake = self.stakes[roundId][model]
    assert stake.locked and not stake.claimed, "no stake to rescue"
    assert msg.sender == stake.staker, "caller is not the staker"
    self.stakes[roundId][model].claimed = True
    self.rounds[roundId].totalStaked -= stake.amount
    self.totalHeld -= stake.amount
    assert extcall TOKEN.transfer(stake.staker, stake.amount)
    log StakeRescued(roundId=roundId, model=model, staker=stake.staker, amount=stake.amount)
