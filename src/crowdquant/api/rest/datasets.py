"""Published dataset files (public): listings, and signed download URLs to this app.

Only what the visibility policy lets participants see is listed or signed. A tournament's
files are those of its current dataset version. A round's files are those of the version it
was published from, less the other rounds' own files and the moving ``live.parquet`` (and,
in a 2017 tournament, ``numerai_training_data.csv`` and ``numerai_tournament_data.csv``):
its own live file is ``live_<round>.parquet``, and asking a round for ``live.parquet`` gives
that file, as GraphQL's ``dataset(round: N)`` does (likewise the 2017 files,
``numerai_tournament_data_<round>.csv``). The live files of a closed-live tournament are
never listed, and asking for one answers 403 saying why; its ``features.json`` is listed
with the size and sha256 of the file served, which says ``"live": "closed"``
(`tournament.live_mode`).

A version's aliases (`crowdquant data alias`) are listed as GraphQL's ``listDatasets`` lists
them: each as a version of its own with the files of the version it serves (`alias_of`), and
each version names its `aliases`.
"""

from __future__ import annotations

from itertools import groupby
from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from crowdquant.api.rest.deps import RoundRef, SessionDep, TournamentNumber
from crowdquant.api.rest.errors import responses
from crowdquant.api.rest.routing import RestRoute
from crowdquant.api.rest.schemas.datasets import (
    DatasetDownloadOut,
    DatasetFileOut,
    DatasetVersionOut,
)
from crowdquant.api.rest.tournaments import find_round
from crowdquant.db.models import DatasetFile, Round
from crowdquant.http.links import LinksDep
from crowdquant.http.services import ServicesDep
from crowdquant.storage import FileStorage
from crowdquant.tournament.datasets import (
    UnknownDatasetFile,
    aliases_by_version,
    get_dataset_file,
    list_dataset_aliases,
    list_dataset_files,
)
from crowdquant.tournament.live_mode import (
    closed_live_versions,
    refuse_closed_live_file,
    served_file_facts,
)
from crowdquant.tournament.rounds import of_round, own_filename
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.visibility import dataset_file_visible

router = APIRouter(tags=["datasets"], route_class=RestRoute)

Filename = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="A file of the version, e.g. `train.parquet`.",
    ),
]


def _of_round(round_: Round, filename: str) -> bool:
    """Whether `filename` of the round's version belongs to the round."""
    return of_round(round_.number, filename)


def _file_out(storage: FileStorage, row: DatasetFile, closed: frozenset[str]) -> DatasetFileOut:
    size, sha256 = served_file_facts(storage, row, closed)
    return DatasetFileOut(
        filename=row.filename, size=size, sha256=sha256, published_at=row.published_at
    )


def _listing(
    session: Session,
    storage: FileStorage,
    version: str,
    rows: list[DatasetFile],
    aliases: list[str] | None = None,
) -> DatasetVersionOut:
    closed = closed_live_versions(session)
    files = [_file_out(storage, row, closed) for row in rows if dataset_file_visible(row, closed)]
    return DatasetVersionOut(version=version, files=files, aliases=aliases or [])


def _download(
    session: Session, storage: FileStorage, links: LinksDep, row: DatasetFile
) -> DatasetDownloadOut:
    refuse_closed_live_file(session, row.version, row.filename)
    closed = closed_live_versions(session)
    if not dataset_file_visible(row, closed):
        raise UnknownDatasetFile(row.version, row.filename)
    link = links.download(row.storage_key)
    size, sha256 = served_file_facts(storage, row, closed)
    return DatasetDownloadOut(
        version=row.version,
        filename=row.filename,
        size=size,
        sha256=sha256,
        url=link.url,
        expires_at=link.expires_at,
    )


@router.get("/datasets")
def get_datasets(session: SessionDep, services: ServicesDep) -> list[DatasetVersionOut]:
    """Every published version and its files, and each alias with the files it serves."""
    aliases = aliases_by_version(session)
    listed = [
        _listing(session, services.storage, version, list(group), aliases.get(version))
        for version, group in groupby(list_dataset_files(session), lambda r: r.version)
    ]
    by_version = {found.version: found for found in listed}
    for alias, version in list_dataset_aliases(session).items():
        if version in by_version:
            served = by_version[version]
            listed.append(DatasetVersionOut(version=alias, files=served.files, alias_of=version))
    return listed


@router.get("/tournaments/{number}/datasets", responses=responses(404))
def get_tournament_datasets(
    number: TournamentNumber, session: SessionDep, services: ServicesDep
) -> DatasetVersionOut:
    """The files of the tournament's current dataset version, and the aliases serving it."""
    version = get_tournament(session, number).dataset_version
    aliases = aliases_by_version(session).get(version)
    return _listing(
        session, services.storage, version, list_dataset_files(session, version), aliases
    )


@router.get("/tournaments/{number}/datasets/{filename}", responses=responses(403, 404))
def get_tournament_dataset_file(
    number: TournamentNumber,
    filename: Filename,
    session: SessionDep,
    links: LinksDep,
    services: ServicesDep,
) -> DatasetDownloadOut:
    """A signed download URL for one file of the tournament's current version."""
    version = get_tournament(session, number).dataset_version
    refuse_closed_live_file(session, version, filename)
    row = get_dataset_file(session, version, filename)
    return _download(session, services.storage, links, row)


@router.get("/tournaments/{number}/rounds/{round}/datasets", responses=responses(404))
def get_round_datasets(
    number: TournamentNumber, round: RoundRef, session: SessionDep, services: ServicesDep
) -> DatasetVersionOut:
    """The files of the version the round was published from, with its own live file."""
    found = find_round(session, get_tournament(session, number), round)
    rows = list_dataset_files(session, found.dataset_version)
    rows = [row for row in rows if _of_round(found, row.filename)]
    return _listing(session, services.storage, found.dataset_version, rows)


@router.get(
    "/tournaments/{number}/rounds/{round}/datasets/{filename}", responses=responses(403, 404)
)
def get_round_dataset_file(
    number: TournamentNumber,
    round: RoundRef,
    filename: Filename,
    session: SessionDep,
    links: LinksDep,
    services: ServicesDep,
) -> DatasetDownloadOut:
    """A signed download URL for one of the round's files (`live.parquet`: the round's own)."""
    found = find_round(session, get_tournament(session, number), round)
    filename = own_filename(found.number, filename)
    refuse_closed_live_file(session, found.dataset_version, filename)
    if not _of_round(found, filename):
        raise UnknownDatasetFile(found.dataset_version, filename)
    row = get_dataset_file(session, found.dataset_version, filename)
    return _download(session, services.storage, links, row)
