"""`listDatasets` and `dataset`: published files and signed download URLs to this app.

Files are named ``<version>/<filename>`` as numerapi expects (``v1/live.parquet``); a bare
filename (``numerai_tournament_data.csv``, as 2017 scripts ask) is a file of the version of
the ``tournament`` numerapi sends. With ``round: N``, any file means that round's own copy
(``live.parquet`` → ``live_N.parquet``, ``numerai_tournament_data.csv`` →
``numerai_tournament_data_N.csv``) or the newest copy before it, else the file itself (for
a file that holds only the newest round's data, such as ``live.parquet``, that is an error).
A version's aliases (`crowdquant data alias`) serve and list its files under their names.
The live files of a closed-live tournament are never listed, and asking for one is refused
with the reason (`tournament.live_mode`).
"""

from __future__ import annotations

from typing import Any

from ariadne import QueryType
from graphql import GraphQLResolveInfo

from crowdquant.api.graphql.context import ApiError, context_of, required
from crowdquant.http.signing import DOWNLOAD_TTL
from crowdquant.tournament.datasets import (
    UnknownDatasetFile,
    get_dataset_file,
    list_dataset_aliases,
    list_dataset_files,
    round_file,
    version_named,
)
from crowdquant.tournament.live_mode import closed_live_versions, refuse_closed_live_file
from crowdquant.tournament.rounds import MOVING_FILENAMES
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.visibility import dataset_file_visible

query = QueryType()


@query.field("listDatasets")
def resolve_list_datasets(_obj: Any, info: GraphQLResolveInfo[Any], **_args: Any) -> list[str]:
    session = context_of(info).session
    closed = closed_live_versions(session)
    rows = [row for row in list_dataset_files(session) if dataset_file_visible(row, closed)]
    names = [f"{row.version}/{row.filename}" for row in rows]
    for alias, version in list_dataset_aliases(session).items():
        names += [f"{alias}/{row.filename}" for row in rows if row.version == version]
    return names


@query.field("dataset")
def resolve_dataset(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    filename: str | None = None,
    round: int | None = None,
    tournament: int | None = None,
    **_ignored: Any,
) -> str:
    context = context_of(info)
    wanted = str(required(filename, "filename"))
    if "/" not in wanted and wanted and tournament is not None:
        version, name = get_tournament(context.session, tournament).dataset_version, wanted
    else:
        version, _, name = wanted.partition("/")
    if not version or not name:
        raise ApiError(f"a dataset file is named <version>/<file>, not {filename!r}")
    served = version_named(context.session, version)
    closed = closed_live_versions(context.session)  # looked up once; refusals say why
    if served in closed:
        refuse_closed_live_file(context.session, served, name)
    if round is None:
        row = get_dataset_file(context.session, served, name)
    else:
        row = round_file(context.session, served, name, round, name in MOVING_FILENAMES)
    if row.version in closed:
        refuse_closed_live_file(context.session, row.version, row.filename)
    if not dataset_file_visible(row, closed):
        raise UnknownDatasetFile(version, name)
    return context.signed_url("GET", row.storage_key, DOWNLOAD_TTL)
