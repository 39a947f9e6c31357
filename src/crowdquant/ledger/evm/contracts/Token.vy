# pragma version 0.4.3
"""
@title NMR-style token
@notice An ERC-20 with a fixed supply of 11,000,000 tokens (18 decimals), minted once to
        the treasury when deployed. Nothing mints afterwards; `burn` and `burnFrom` lower
        the supply. Every failed check reverts.
"""

from ethereum.ercs import IERC20

implements: IERC20

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

name: public(constant(String[32])) = "Numeraire"
symbol: public(constant(String[8])) = "NMR"
decimals: public(constant(uint8)) = 18
SUPPLY: public(constant(uint256)) = 11_000_000 * 10**18

totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(treasury: address):
    assert treasury != empty(address), "treasury is the zero address"
    self.totalSupply = SUPPLY
    self.balanceOf[treasury] = SUPPLY
    log Transfer(sender=empty(address), receiver=treasury, value=SUPPLY)


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "transfer to the zero address"
    assert receiver != self, "transfer to the token"
    assert self.balanceOf[sender] >= amount, "balance too low"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@internal
def _spend(owner: address, spender: address, amount: uint256):
    allowed: uint256 = self.allowance[owner][spender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "allowance too low"
        self.allowance[owner][spender] = allowed - amount


@internal
def _burn(owner: address, amount: uint256):
    assert self.balanceOf[owner] >= amount, "balance too low"
    self.balanceOf[owner] -= amount
    self.totalSupply -= amount
    log Transfer(sender=owner, receiver=empty(address), value=amount)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    self._spend(sender, msg.sender, amount)
    self._transfer(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def burn(amount: uint256):
    """@notice Destroy `amount` of the caller's tokens."""
    self._burn(msg.sender, amount)


@external
def burnFrom(owner: address, amount: uint256):
    """@notice Destroy `amount` of `owner`'s tokens, within the caller's allowance."""
    self._spend(owner, msg.sender, amount)
    self._burn(owner, amount)
