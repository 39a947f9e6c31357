"""Typed dependencies of the pages: the request's session, and the app's services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from crowdquant.api.deps import Services, ServicesDep

SESSION_STATE = "page_session"


def page_session(request: Request) -> Session:
    session = getattr(request.state, SESSION_STATE, None)
    if not isinstance(session, Session):
        raise TypeError("pages run on PageRoute, which opens their session")
    return session


PageSession = Annotated[Session, Depends(page_session)]

__all__ = ["SESSION_STATE", "PageSession", "Services", "ServicesDep", "page_session"]
