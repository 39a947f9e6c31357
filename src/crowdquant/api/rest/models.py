"""The caller's models: list and read them (scope `read`), enter a tournament with a new one
(scope `upload`, the key's write permission)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from crowdquant.api.rest.auth import ReadAccount, UploadAccount
from crowdquant.api.rest.deps import SessionDep
from crowdquant.api.rest.errors import responses
from crowdquant.api.rest.routing import RestRoute
from crowdquant.api.rest.schemas.base import MAX_INT32
from crowdquant.api.rest.schemas.models import ModelIn, ModelOut
from crowdquant.http.services import ServicesDep
from crowdquant.tournament.models import create_model, get_own_model, list_models

router = APIRouter(tags=["models"], route_class=RestRoute)


@router.get("/models", responses=responses(401, 403, 404))
def get_models(
    account: ReadAccount,
    session: SessionDep,
    tournament: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
) -> list[ModelOut]:
    """The caller's models, by tournament then name; optionally of one tournament."""
    return [ModelOut.model_validate(model) for model in list_models(session, account, tournament)]


@router.post("/models", status_code=201, responses=responses(401, 403, 404, 409))
def post_model(
    new: ModelIn, account: UploadAccount, session: SessionDep, services: ServicesDep
) -> ModelOut:
    """A new model of the caller's in a tournament."""
    return ModelOut.model_validate(
        create_model(session, services.clock, account, new.tournament, new.name)
    )


@router.get("/models/{model_id}", responses=responses(401, 403, 404))
def get_model(model_id: uuid.UUID, account: ReadAccount, session: SessionDep) -> ModelOut:
    return ModelOut.model_validate(get_own_model(session, account, model_id))
