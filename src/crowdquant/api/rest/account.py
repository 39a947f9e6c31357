"""The caller's own account and API keys (scope `read`); key secrets are never shown."""

from __future__ import annotations

from fastapi import APIRouter

from crowdquant.api.rest.auth import ReadAccount
from crowdquant.api.rest.deps import SessionDep
from crowdquant.api.rest.errors import responses
from crowdquant.api.rest.routing import RestRoute
from crowdquant.api.rest.schemas.account import AccountOut, ApiKeyOut
from crowdquant.tournament.accounts import list_api_keys

router = APIRouter(tags=["account"], route_class=RestRoute)


@router.get("/account", responses=responses(401, 403))
def get_account(account: ReadAccount) -> AccountOut:
    return AccountOut.model_validate(account)


@router.get("/account/api-keys", responses=responses(401, 403))
def get_api_keys(account: ReadAccount, session: SessionDep) -> list[ApiKeyOut]:
    """Every key of the account, revoked ones included, oldest first."""
    return [ApiKeyOut.model_validate(key) for key in list_api_keys(session, account)]
