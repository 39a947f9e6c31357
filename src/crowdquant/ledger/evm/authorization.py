"""Stake authorisations a participant's wallet signs (EIP-712), for anyone to submit to the
tournament contract's `authorizeStakeBySig`: one stake on one model for one round, tied to
one submission's hash, with the signer's next nonce and a deadline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DOMAIN_NAME = "crowdquant Tournament"
DOMAIN_VERSION = "1"
STAKE_AUTHORIZATION = [
    {"name": "roundId", "type": "uint256"},
    {"name": "model", "type": "bytes32"},
    {"name": "submissionHash", "type": "bytes32"},
    {"name": "amount", "type": "uint256"},
    {"name": "staker", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


@dataclass(frozen=True)
class StakeAuthorization:
    round_id: int
    model: bytes
    submission_hash: bytes
    amount: int
    staker: str
    nonce: int
    deadline: int

    def typed_data(self, chain_id: int, tournament: str) -> dict[str, Any]:
        """The EIP-712 message a wallet signs (`eth_signTypedData_v4`)."""
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "StakeAuthorization": STAKE_AUTHORIZATION,
            },
            "primaryType": "StakeAuthorization",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": chain_id,
                "verifyingContract": tournament,
            },
            "message": {
                "roundId": self.round_id,
                "model": self.model,
                "submissionHash": self.submission_hash,
                "amount": self.amount,
                "staker": self.staker,
                "nonce": self.nonce,
                "deadline": self.deadline,
            },
        }

    def digest(self, chain_id: int, tournament: str) -> bytes:
        """The 32-byte EIP-712 hash the wallet signs (and the contract recovers from)."""
        from eth_account.messages import encode_typed_data
        from eth_hash.auto import keccak

        signable = encode_typed_data(full_message=self.typed_data(chain_id, tournament))
        return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))

    def sign(
        self, account: LocalAccount, chain_id: int, tournament: str
    ) -> tuple[int, bytes, bytes]:
        """`account`'s signature (v, r, s), as `authorizeStakeBySig` takes it."""
        from eth_account.messages import encode_typed_data

        signed = account.sign_message(
            encode_typed_data(full_message=self.typed_data(chain_id, tournament))
        )
        return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")

    def arguments(self, signature: tuple[int, bytes, bytes]) -> tuple[Any, ...]:
        """`authorizeStakeBySig`'s arguments for this authorisation and its signature."""
        v, r, s = signature
        return (
            self.round_id,
            self.model,
            self.submission_hash,
            self.amount,
            self.staker,
            self.deadline,
            v,
            r,
            s,
        )
