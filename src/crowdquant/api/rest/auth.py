"""Who is calling: the API key in ``Authorization: Token PUBLIC_ID$SECRET_KEY``, per scope.

``ReadAccount``, ``UploadAccount`` and ``StakeAccount`` are the caller's account,
authenticated by the accounts service with a key holding that scope; a missing or bad key
answers 401, a key without the scope 403 (see `errors.STATUS_BY_ERROR`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader

from crowdquant.api.rest.deps import SessionDep
from crowdquant.db.models import Account, ApiScope
from crowdquant.http.services import ServicesDep
from crowdquant.tournament.accounts import (
    MalformedToken,
    authenticate_api_key,
    parse_token_header,
)

api_key_header = APIKeyHeader(
    name="Authorization",
    scheme_name="ApiKey",
    description="`Token PUBLIC_ID$SECRET_KEY`, the header numerapi sends.",
    auto_error=False,
)

TokenHeader = Annotated[str | None, Security(api_key_header)]


def account_with(scope: ApiScope) -> Callable[[SessionDep, ServicesDep, TokenHeader], Account]:
    """A dependency: the caller's account, if their API key has `scope`."""

    def caller(session: SessionDep, services: ServicesDep, authorization: TokenHeader) -> Account:
        if not authorization:
            raise MalformedToken("this request needs an API key: " + MalformedToken.default_message)
        public_id, secret = parse_token_header(authorization)
        return authenticate_api_key(session, services.clock, public_id, secret, scope)

    caller.__name__ = f"{scope.value}_account"
    return caller


ReadAccount = Annotated[Account, Depends(account_with(ApiScope.READ))]
UploadAccount = Annotated[Account, Depends(account_with(ApiScope.UPLOAD))]
StakeAccount = Annotated[Account, Depends(account_with(ApiScope.STAKE))]
