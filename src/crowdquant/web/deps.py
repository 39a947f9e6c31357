"""Typed dependencies of the pages: the request's session, and the app's services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from crowdquant.http.services import Services, ServicesDep
from crowdquant.http.transaction_route import request_session

SESSION_STATE = "page_session"


def page_session(request: Request) -> Session:
    return request_session(request, SESSION_STATE)


PageSession = Annotated[Session, Depends(page_session)]

__all__ = ["SESSION_STATE", "PageSession", "Services", "ServicesDep", "page_session"]
