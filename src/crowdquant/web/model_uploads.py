"""A model's uploaded ``predict``, run by the platform every round (`tournament.model_uploads`).

- `GET /models/{id}/compute`: the model's uploads, the runtime each asks for, its scan, and
  every run: its status history and the end of its log (escaped, at most `LOG_SHOWN`
  characters);
- `POST /models/{id}/compute/upload`: a pickle (multipart, at most the smaller of the app's
  upload cap and `MAX_MODEL_BYTES`) made the model's upload;
- `POST /models/{id}/compute/{upload}/disable`, `.../enable`: stop running an upload, or
  make an earlier one the model's again;
- `GET /models/{id}/compute/{upload}/pickle`: the pickle back, as uploaded;
- `POST /models/{id}/compute/run`: a run of the model's upload queued on the open round.

Only the model's owner sees any of it (someone else's model answers the 404 page); a
refused form changes nothing and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from crowdquant.compute.runtime import runtime_names
from crowdquant.db.models import Account, Model, ModelUpload
from crowdquant.tournament.model_uploads import (
    LOG_SHOWN,
    MAX_MODEL_BYTES,
    ModelUploadRejected,
    RunRefused,
    UnknownModelUpload,
    model_uploads,
    own_model_upload,
    run_by_hand,
    set_upload_enabled,
    upload_jobs,
    upload_model,
)
from crowdquant.tournament.rounds import current_round, is_open
from crowdquant.tournament.uploads import safe_name
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.errors import PageError
from crowdquant.web.forms import FormErrors, checked_form
from crowdquant.web.guards import SignedIn, signed_in
from crowdquant.web.models import own_model
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)
NOTICES = {
    "uploaded": "The pickle is the model's upload: it runs on every round from now on.",
    "disabled": "The upload is disabled: it no longer runs.",
    "enabled": "The upload is the model's again: it runs on every round from now on.",
    "run": "A run on the open round is queued.",
}


def _path(model: Model) -> str:
    return f"/models/{model.id}/compute"


def _page(
    request: Request,
    session: Session,
    services: ServicesDep,
    model: Model,
    *,
    done: str = "",
    form: str = "",
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    uploads = model_uploads(session, model)
    round_ = current_round(session, model.tournament)
    context: dict[str, Any] = {
        "model": model,
        "uploads": uploads,
        "jobs": upload_jobs(session, uploads),
        "runtimes": runtime_names(),
        "open_round": round_ if round_ and is_open(round_, services.clock.now()) else None,
        "max_bytes": _limit(services),
        "log_shown": LOG_SHOWN,
        "form": form,
        "errors": errors or {},
        "notice": NOTICES.get(done),
    }
    return render(request, "participant/model_uploads.html", context, status=status)


def _limit(services: ServicesDep) -> int:
    return min(services.max_upload_bytes, MAX_MODEL_BYTES)


def _done(model: Model, what: str) -> RedirectResponse:
    return RedirectResponse(f"{_path(model)}?done={what}", status_code=303)


def _own_upload(session: Session, account: Account, model_id: str, upload_id: str) -> ModelUpload:
    own_model(session, account, model_id)
    try:
        return own_model_upload(session, account, model_id, upload_id)
    except UnknownModelUpload:
        raise PageError(404, "The model has no upload with that id.") from None


@router.get("/models/{model_id}/compute")
def uploads_page(
    request: Request,
    model_id: str,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    done: str = "",
) -> Response:
    model = own_model(session, account, model_id)
    return _page(request, session, services, model, done=done)


@dataclass(frozen=True)
class PickleForm:
    runtime: str
    file: UploadFile | None


async def pickle_form(request: Request) -> PickleForm:
    """The upload form, read once the sign-in and the form token are checked."""
    form = await request.form()
    runtime, file = form.get("runtime"), form.get("file")
    return PickleForm(
        runtime if isinstance(runtime, str) else "",
        file if isinstance(file, UploadFile) else None,
    )


@router.post(
    "/models/{model_id}/compute/upload", dependencies=[Depends(signed_in), Depends(checked_form)]
)
def upload(
    request: Request,
    model_id: str,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    form: Annotated[PickleForm, Depends(pickle_form)],
) -> Response:
    model = own_model(session, account, model_id)

    def refused(field: str, message: str, status: int) -> Response:
        session.rollback()
        errors: FormErrors = {field: message}
        return _page(request, session, services, model, form="upload", errors=errors, status=status)

    file = form.file
    if file is None or (not file.filename and not file.size):
        return refused("file", "choose a pickle of your model's predict function", 422)
    limit = _limit(services)
    too_large = f"the pickle is over the limit of {limit:,} bytes"
    if file.size is not None and file.size > limit:
        return refused("file", too_large, 413)
    content = file.file.read(limit + 1)
    if len(content) > limit:
        return refused("file", too_large, 413)
    try:
        upload_model(
            session,
            services.clock,
            services.storage,
            account,
            model.id,
            safe_name(file.filename),
            content,
            runtime=form.runtime or None,
        )
    except ModelUploadRejected as error:
        field = "runtime" if "runtime" in error.message else "file"
        return refused(field, error.message, 422)
    return _done(model, "uploaded")


@router.post("/models/{model_id}/compute/{upload_id}/disable", dependencies=[Depends(checked_form)])
def disable(model_id: str, upload_id: str, account: SignedIn, session: PageSession) -> Response:
    found = _own_upload(session, account, model_id, upload_id)
    set_upload_enabled(session, found, False)
    return _done(found.model, "disabled")


@router.post("/models/{model_id}/compute/{upload_id}/enable", dependencies=[Depends(checked_form)])
def enable(model_id: str, upload_id: str, account: SignedIn, session: PageSession) -> Response:
    found = _own_upload(session, account, model_id, upload_id)
    set_upload_enabled(session, found, True)
    return _done(found.model, "enabled")


@router.get("/models/{model_id}/compute/{upload_id}/pickle")
def download(
    model_id: str, upload_id: str, account: SignedIn, session: PageSession, services: ServicesDep
) -> Response:
    found = _own_upload(session, account, model_id, upload_id)
    if not services.storage.exists(found.file_key):
        raise PageError(404, "The upload's pickle is no longer kept.")
    headers = {
        "Content-Disposition": f'attachment; filename="{safe_name(found.filename)}"',
        "Content-Length": str(found.size),
        "Cache-Control": "private, no-store",
    }
    pickle = services.storage.read(found.file_key)
    return StreamingResponse(pickle, media_type="application/octet-stream", headers=headers)


@router.post("/models/{model_id}/compute/run", dependencies=[Depends(checked_form)])
def run(
    request: Request,
    model_id: str,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
) -> Response:
    model = own_model(session, account, model_id)
    try:
        run_by_hand(session, services.clock, account, model)
    except RunRefused as error:
        session.rollback()
        errors: FormErrors = {"form": error.message}
        return _page(request, session, services, model, form="run", errors=errors, status=409)
    return _done(model, "run")
