"""The caller's own account and API keys (scope `read`); key secrets are never shown. The
wallet address the account stakes from is set with scope `stake`."""

from __future__ import annotations

from fastapi import APIRouter

from crowdquant.api.rest.auth import ReadAccount, StakeAccount
from crowdquant.api.rest.deps import SessionDep
from crowdquant.api.rest.errors import responses
from crowdquant.api.rest.routing import RestRoute
from crowdquant.api.rest.schemas.account import AccountOut, ApiKeyOut, WalletAddressIn
from crowdquant.tournament.accounts import list_api_keys, set_wallet_address

router = APIRouter(tags=["account"], route_class=RestRoute)


@router.get("/account", responses=responses(401, 403))
def get_account(account: ReadAccount) -> AccountOut:
    return AccountOut.model_validate(account)


@router.put("/account/wallet-address", responses=responses(401, 403, 409, 422))
def put_wallet_address(
    wallet: WalletAddressIn, account: StakeAccount, session: SessionDep
) -> AccountOut:
    """Register the EVM address the account stakes from (checksummed), or forget it."""
    return AccountOut.model_validate(set_wallet_address(session, account, wallet.address))


@router.get("/account/api-keys", responses=responses(401, 403))
def get_api_keys(account: ReadAccount, session: SessionDep) -> list[ApiKeyOut]:
    """Every key of the account, revoked ones included, oldest first."""
    return [ApiKeyOut.model_validate(key) for key in list_api_keys(session, account)]
