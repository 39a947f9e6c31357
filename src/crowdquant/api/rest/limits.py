"""Rate limits on the costly REST endpoints (`http.throttle`): a dependency per action,
counted per client address and per account before the body is read."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from crowdquant.api.rest.auth import UploadAccount
from crowdquant.http.services import ServicesDep, client_address
from crowdquant.http.throttle import Action


def rate_limited(action: Action) -> Callable[[Request, ServicesDep, UploadAccount], None]:
    """A route dependency counting one `action` by the caller (a key with scope `upload`)."""

    def count(request: Request, services: ServicesDep, account: UploadAccount) -> None:
        services.throttle.hit(action, client_address(request), account.id)

    count.__name__ = f"{action.value}_rate_limit"
    return count
