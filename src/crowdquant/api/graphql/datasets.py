"""`listDatasets` and `dataset`: published files and signed download URLs to this app.

Files are named ``<version>/<filename>`` as numerapi expects (``v1/live.parquet``); a bare
filename (``numerai_tournament_data.csv``, as 2017 scripts ask) is a file of the version of
the ``tournament`` numerapi sends. With ``round: N``, ``live.parquet`` means that round's
own live file ``live_N.parquet``, and the 2017 files that round's own
(``numerai_tournament_data_N.csv``).
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
    list_dataset_files,
)
from crowdquant.tournament.rounds import own_filename
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.visibility import dataset_file_visible

query = QueryType()


@query.field("listDatasets")
def resolve_list_datasets(_obj: Any, info: GraphQLResolveInfo[Any], **_args: Any) -> list[str]:
    session = context_of(info).session
    rows = list_dataset_files(session)
    return [f"{row.version}/{row.filename}" for row in rows if dataset_file_visible(row)]


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
    if round is not None:
        name = own_filename(round, name)
    row = get_dataset_file(context.session, version, name)
    if not dataset_file_visible(row):
        raise UnknownDatasetFile(version, name)
    return context.signed_url("GET", row.storage_key, DOWNLOAD_TTL)
