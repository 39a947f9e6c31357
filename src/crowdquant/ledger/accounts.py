"""Who holds what: the ledger's two currencies and its accounts, named by kind and owner.

Amounts are integers in a currency's smallest unit: 10^-18 NMR, or US cents. Decimals
appear only when an amount is shown to a person (`crowdquant.money.format_amount`).

| account                   | holds    | what it is                                                |
|---------------------------|----------|-----------------------------------------------------------|
| `genesis`                 | NMR      | contra account: its balance is minus everything minted    |
| `treasury`                | NMR      | the operator's reward pool; the genesis supply lands here |
| `burned`                  | NMR      | the sink: its balance is everything ever burned           |
| `wallet:<account uuid>`   | NMR, USD | a participant's free balance                              |
| `stake:<model uuid>`      | NMR      | a model's stake, at risk in its rounds                    |
| `release:<model uuid>`    | NMR      | unstaked, waiting for release; still burnable             |
| `prize_pool:<tournament>` | USD      | a tournament's prize money                                |
| `operator_funding`        | USD      | where prize money comes from: the world outside the books |

Only two accounts may go negative: `genesis` (NMR, and only the genesis transaction ever
touches it, so it stays at minus the fixed supply) and `operator_funding` (USD: its
balance is minus the dollars the operator has put in, net of any taken out). `burned`
only ever receives: taking NMR out of it would mint.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from crowdquant.money import Currency


class AccountKind(enum.StrEnum):
    GENESIS = "genesis"
    TREASURY = "treasury"
    BURNED = "burned"
    OPERATOR_FUNDING = "operator_funding"
    WALLET = "wallet"
    STAKE = "stake"
    RELEASE = "release"
    PRIZE_POOL = "prize_pool"


@dataclass(frozen=True)
class _Rule:
    currencies: frozenset[Currency]
    owned: bool
    may_go_negative: frozenset[Currency] = frozenset()


_NMR = frozenset({Currency.NMR})
_USD = frozenset({Currency.USD})
_RULES: dict[AccountKind, _Rule] = {
    AccountKind.GENESIS: _Rule(_NMR, owned=False, may_go_negative=_NMR),
    AccountKind.TREASURY: _Rule(_NMR, owned=False),
    AccountKind.BURNED: _Rule(_NMR, owned=False),
    AccountKind.OPERATOR_FUNDING: _Rule(_USD, owned=False, may_go_negative=_USD),
    AccountKind.WALLET: _Rule(_NMR | _USD, owned=True),
    AccountKind.STAKE: _Rule(_NMR, owned=True),
    AccountKind.RELEASE: _Rule(_NMR, owned=True),
    AccountKind.PRIZE_POOL: _Rule(_USD, owned=True),
}


@dataclass(frozen=True)
class AccountId:
    """One account: a kind, and for per-owner kinds the owner's id (account, model or
    tournament uuid). Written `kind` or `kind:<uuid>` (`str()`; `AccountId.parse` reads it)."""

    kind: AccountKind
    owner: uuid.UUID | None = None

    def __post_init__(self) -> None:
        kind = AccountKind(self.kind)
        object.__setattr__(self, "kind", kind)
        owned = _RULES[kind].owned
        if owned and not isinstance(self.owner, uuid.UUID):
            raise ValueError(f"a {kind} account belongs to an owner: give its uuid")
        if not owned and self.owner is not None:
            raise ValueError(f"there is one {kind} account; it has no owner")

    def __str__(self) -> str:
        return self.kind.value if self.owner is None else f"{self.kind.value}:{self.owner}"

    @classmethod
    def parse(cls, text: str) -> AccountId:
        """The account written `text`; ValueError if it names none."""
        kind, sep, owner = text.partition(":")
        try:
            account_kind = AccountKind(kind)
            parsed = cls(account_kind, uuid.UUID(owner) if sep else None)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an account: {exc}") from None
        if str(parsed) != text:
            raise ValueError(f"{text!r} is not an account's canonical name ({parsed})")
        return parsed

    def holds(self, currency: Currency) -> bool:
        """Whether the account may hold `currency` at all."""
        return currency in _RULES[self.kind].currencies

    def may_go_negative(self, currency: Currency) -> bool:
        """Whether a balance below zero is allowed: genesis (NMR), operator funding (USD)."""
        return currency in _RULES[self.kind].may_go_negative


GENESIS = AccountId(AccountKind.GENESIS)
TREASURY = AccountId(AccountKind.TREASURY)
BURNED = AccountId(AccountKind.BURNED)
OPERATOR_FUNDING = AccountId(AccountKind.OPERATOR_FUNDING)


def wallet(account_id: uuid.UUID) -> AccountId:
    """A participant's wallet (`crowdquant.db.models.Account.id`)."""
    return AccountId(AccountKind.WALLET, account_id)


def stake(model_id: uuid.UUID) -> AccountId:
    """A model's stake (`crowdquant.db.models.Model.id`)."""
    return AccountId(AccountKind.STAKE, model_id)


def release(model_id: uuid.UUID) -> AccountId:
    """NMR a model has unstaked and is waiting to get back."""
    return AccountId(AccountKind.RELEASE, model_id)


def prize_pool(tournament_id: uuid.UUID) -> AccountId:
    """A tournament's USD prize pool (`crowdquant.db.models.Tournament.id`)."""
    return AccountId(AccountKind.PRIZE_POOL, tournament_id)
