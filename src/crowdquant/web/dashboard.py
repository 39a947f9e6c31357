"""A participant's dashboard, the dataset downloads, and uploading predictions.

- `GET /dashboard`: the current round of each tournament with its countdown, the
  participant's models with their latest upload to that round and their stake, the wallet.
- `GET /datasets`: each tournament's dataset files and the open round's live file, as signed
  download links to the app's file endpoint (as the REST API signs them).
- `GET /submit`, `POST /submit`: upload a predictions file for one of one's models to its
  tournament's current round, through `submit_predictions` (the same checks as the APIs):
  the page shows the validation result, or the refusal next to its field. An upload to a
  2017 round shows its figures (`rules2017_checks.visible_checks` as its owner sees them:
  validation log-loss, consistency, originality and concordance as pass or fail; never
  the test-set log-loss), in the answer and in the listing of recent uploads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from crowdquant.db.models import Account, DatasetFile, Model, Round, Submission, Tournament
from crowdquant.http.links import Links
from crowdquant.http.services import base_url
from crowdquant.money import Currency
from crowdquant.storage import FileStorage
from crowdquant.tournament.datasets import UnknownDatasetFile, get_dataset_file, list_dataset_files
from crowdquant.tournament.live_mode import (
    closed_live_versions,
    is_closed_live,
    served_file_facts,
)
from crowdquant.tournament.models import NotYourModel, UnknownModel, get_own_model, list_models
from crowdquant.tournament.rounds import current_round, is_open
from crowdquant.tournament.rules2017_checks import visible_checks
from crowdquant.tournament.staking import stake_view
from crowdquant.tournament.submissions import (
    NoLiveFile,
    RoundNotOpen,
    SubmissionRejected,
    SubmittedByRunsOnly,
    UploadTooLarge,
    WrongTournament,
    list_submissions,
    live_file_name,
    round_live_ids,
    submit_predictions,
)
from crowdquant.tournament.tournaments import list_tournaments
from crowdquant.tournament.uploads import safe_name
from crowdquant.tournament.visibility import Viewer, dataset_file_visible
from crowdquant.tournament.wallet import wallet_balances
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.forms import FormErrors, checked_form
from crowdquant.web.guards import SignedIn, signed_in
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)

_ROUND_LIVE_FILE = re.compile(r"(?:live|numerai_training_data|numerai_tournament_data)_\d+\.\w+")
RECENT_UPLOADS = 10


# --- the dashboard -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TournamentRound:
    """A tournament and its current round (None before its first)."""

    tournament: Tournament
    round: Round | None
    open: bool


@dataclass(frozen=True)
class ModelLine:
    """One of the participant's models: its latest upload to its current round, its stake."""

    model: Model
    round: Round | None
    latest: Submission | None
    staked: int


def tournament_rounds(session: Session, now: datetime) -> list[TournamentRound]:
    rows = []
    for tournament in list_tournaments(session):
        round_ = current_round(session, tournament)
        rows.append(
            TournamentRound(tournament, round_, round_ is not None and is_open(round_, now))
        )
    return rows


@router.get("/dashboard")
def dashboard(
    request: Request, account: SignedIn, session: PageSession, services: ServicesDep
) -> Response:
    rounds = tournament_rounds(session, services.clock.now())
    current = {row.tournament.id: row.round for row in rounds}
    lines = []
    for model in list_models(session, account):
        round_ = current.get(model.tournament_id)
        latest = None
        if round_ is not None:
            uploads = list_submissions(session, account, model.id, round_)
            latest = uploads[0] if uploads else None
        staked = stake_view(session, services.ledger, model).staked
        lines.append(ModelLine(model, round_, latest, staked))
    balances = wallet_balances(session, services.ledger, account)
    context = {
        "rounds": rounds,
        "lines": lines,
        "nmr_balance": balances[Currency.NMR],
        "usd_balance": balances[Currency.USD],
    }
    return render(request, "participant/dashboard.html", context)


# --- datasets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    file: DatasetFile
    url: str
    expires_at: datetime
    size: int
    sha256: str
    """The size and sha256 of the file as served (`live_mode.served_file_facts`)."""


@dataclass(frozen=True)
class TournamentFiles:
    tournament: Tournament
    files: list[Download]
    round: Round | None
    live: Download | None
    closed_live: bool = False


def _download(
    links: Links, storage: FileStorage, row: DatasetFile, closed: frozenset[str]
) -> Download:
    link = links.download(row.storage_key)
    size, sha256 = served_file_facts(storage, row, closed)
    return Download(row, link.url, link.expires_at, size, sha256)


@router.get("/datasets")
def datasets(
    request: Request, account: SignedIn, session: PageSession, services: ServicesDep
) -> Response:
    links = Links(services.signer, base_url(request))
    shown = []
    closed = closed_live_versions(session)
    for row in tournament_rounds(session, services.clock.now()):
        version = row.tournament.dataset_version
        files = [
            _download(links, services.storage, found, closed)
            for found in list_dataset_files(session, version)
            if dataset_file_visible(found, closed)
            and not _ROUND_LIVE_FILE.fullmatch(found.filename)
        ]
        live = None
        if row.round is not None and row.open:
            try:
                found = get_dataset_file(
                    session, row.round.dataset_version, live_file_name(row.round)
                )
            except UnknownDatasetFile:
                found = None
            if found is not None and dataset_file_visible(found, closed):
                live = _download(links, services.storage, found, closed)
        shown.append(
            TournamentFiles(
                row.tournament,
                files,
                row.round if row.open else None,
                live,
                is_closed_live(row.tournament),
            )
        )
    return render(request, "participant/datasets.html", {"tournaments": shown})


# --- uploading predictions -----------------------------------------------------------------------


def _submit_page(
    request: Request,
    session: PageSession,
    account: Account,
    *,
    chosen: str = "",
    errors: FormErrors | None = None,
    result: Submission | None = None,
    status: int = 200,
) -> Response:
    models = list_models(session, account)
    uploads = list_submissions(session, account)[:RECENT_UPLOADS]
    shown = uploads if result is None else [result, *uploads]
    context = {
        "models": models,
        "chosen": chosen,
        "errors": errors or {},
        "result": result,
        "uploads": uploads,
        "checks": visible_checks(session, shown, Viewer.participant(account)),
    }
    return render(request, "participant/submit.html", context, status=status)


@router.get("/submit")
def submit_page(
    request: Request, account: SignedIn, session: PageSession, model: str = ""
) -> Response:
    return _submit_page(request, session, account, chosen=model)


def _refusal(error: SubmissionRejected) -> tuple[str, int]:
    """The field a refused upload's message goes next to, and the page's status."""
    if isinstance(error, UploadTooLarge):
        return "file", 413
    if isinstance(error, RoundNotOpen | WrongTournament):
        return "model", 409
    if isinstance(error, SubmittedByRunsOnly):
        return "model", 403
    if isinstance(error, NoLiveFile):
        return "form", 409
    return "form", 422


@dataclass(frozen=True)
class SubmitForm:
    model: str
    file: UploadFile | None


async def submit_form(request: Request) -> SubmitForm:
    """The upload form, read only once the sign-in and the form token are checked (a form
    parameter would have it read before any check)."""
    form = await request.form()
    model, file = form.get("model"), form.get("file")
    return SubmitForm(
        model if isinstance(model, str) else "", file if isinstance(file, UploadFile) else None
    )


@router.post("/submit", dependencies=[Depends(signed_in), Depends(checked_form)])
def submit(
    request: Request,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    form: Annotated[SubmitForm, Depends(submit_form)],
) -> Response:
    model, file = form.model, form.file

    def refused(field: str, message: str, status: int) -> Response:
        session.rollback()
        errors: FormErrors = {field: message}
        return _submit_page(request, session, account, chosen=model, errors=errors, status=status)

    if not model:
        return refused("model", "choose one of your models", 422)
    try:
        own = get_own_model(session, account, model)
    except (UnknownModel, NotYourModel):
        return refused("model", "choose one of your models", 422)
    if file is None or (not file.filename and not file.size):
        return refused("file", "choose a predictions file (CSV or Parquet) to upload", 422)
    limit = services.max_upload_bytes
    too_large = UploadTooLarge(f"the upload is over the limit of {limit:,} bytes")
    if file.size is not None and file.size > limit:
        return refused("file", too_large.message, 413)
    content = file.file.read(limit + 1)
    if len(content) > limit:
        return refused("file", too_large.message, 413)
    try:
        round_ = current_round(session, own.tournament)
        if round_ is None:
            raise RoundNotOpen(f"tournament {own.tournament.number} has no round yet")
        submission = submit_predictions(
            session,
            services.clock,
            services.storage,
            account,
            own.id,
            round_,
            safe_name(file.filename),
            content,
            live_ids=round_live_ids(services.storage, round_, services.live_ids),
            validator=services.validator,
            max_bytes=limit,
        )
    except SubmissionRejected as error:
        field, status = _refusal(error)
        return refused(field, error.message, status)
    return _submit_page(request, session, account, chosen=str(own.id), result=submission)
