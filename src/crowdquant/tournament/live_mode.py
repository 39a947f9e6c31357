"""Open or closed live: whether a tournament publishes its live features.

A tournament's ``live`` setting (`settings_model`) is ``"open"`` (the default: each round's
live file is published, and predictions come from the APIs, the site and uploaded models)
or ``"closed"``: the live features are never published. No listing names them and no link
or file URL opens them (`visibility.dataset_file_visible`, `visibility.live_key_closed`);
only uploaded models see them, inside the sandbox (`compute_jobs`), and only their
validated predictions come out. A participant's own predictions are refused
(`submissions.own_submission_refusal`).

A closed-live version's ``features.json`` is served with ``"live": "closed"`` added
(`closed_features_json`; listings give the served file's size and sha256,
`served_file_facts`); an open version's is served as published.

Live files are keyed by dataset version (one tournament publishes rounds into a version), so
what is closed is every version a closed-live tournament runs on or has published rounds
from (`closed_live_versions`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.db.models import DatasetFile, Round, Tournament
from crowdquant.storage import FileStorage, StorageError
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.settings_model import settings_of
from crowdquant.tournament.visibility import is_live_file

LIVE_CLOSED = "closed"
FEATURES_FILE = "features.json"


class LiveClosed(ServiceError):  # noqa: N818
    """A live file of a closed-live tournament was asked for."""

    code = "live_closed"
    default_message = "the live features of this tournament are not published"


def live_mode(tournament: Tournament) -> str:
    """``"open"`` or ``"closed"``."""
    return settings_of(tournament).live


def is_closed_live(tournament: Tournament) -> bool:
    return live_mode(tournament) == LIVE_CLOSED


def closed_live_reason(tournament: Tournament) -> str:
    """Why a closed-live tournament refuses live files and participants' own predictions."""
    return (
        f"tournament {tournament.number} runs closed-live: its live features are never"
        " published, and only uploaded models, run by the server in its sandbox, submit"
        " predictions (upload one with model_upload)"
    )


def closed_live_tournaments(session: Session) -> list[Tournament]:
    """The closed-live tournaments, by number."""
    found = session.scalars(select(Tournament).order_by(Tournament.number))
    return [tournament for tournament in found if is_closed_live(tournament)]


def _versions(session: Session, tournament: Tournament) -> set[str]:
    rounds = select(Round.dataset_version).where(Round.tournament_id == tournament.id)
    return {tournament.dataset_version, *session.scalars(rounds.distinct())}


def closed_live_versions(session: Session) -> frozenset[str]:
    """The dataset versions whose live files are never served."""
    return frozenset(
        version
        for tournament in closed_live_tournaments(session)
        for version in _versions(session, tournament)
    )


def refuse_closed_live_file(session: Session, version: str, filename: str) -> None:
    """Raise `LiveClosed`, saying why, if `filename` is a live file of a closed-live version."""
    if not is_live_file(filename):
        return
    for tournament in closed_live_tournaments(session):
        if version in _versions(session, tournament):
            reason = closed_live_reason(tournament)
            raise LiveClosed(f"{version}/{filename} is not served: {reason}")


# --- features.json -----------------------------------------------------------------------------


def closed_features_json(published: bytes) -> bytes:
    """A closed-live version's ``features.json`` as served: the published file with
    ``"live": "closed"`` added (a file that is not a JSON object is served as published)."""
    try:
        payload = json.loads(published)
    except ValueError:
        return published
    if not isinstance(payload, dict):
        return published
    payload["live"] = LIVE_CLOSED
    return (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()


def features_key_closed(key: str, closed_live: frozenset[str]) -> bool:
    """Whether a stored file is the ``features.json`` of a closed-live version."""
    path = PurePosixPath(key)
    return path.name == FEATURES_FILE and path.parent.name in closed_live


def served_features_json(storage: FileStorage, key: str) -> bytes:
    """The bytes served for a closed-live version's ``features.json`` stored at `key`."""
    with storage.read(key) as chunks:
        return closed_features_json(b"".join(chunks))


def served_file_facts(
    storage: FileStorage, row: DatasetFile, closed_live: frozenset[str]
) -> tuple[int, str]:
    """The size and sha256 of a published file as served."""
    if not features_key_closed(row.storage_key, closed_live):
        return row.size, row.sha256
    try:
        served = served_features_json(storage, row.storage_key)
    except StorageError:  # gone from storage: its download answers 404
        return row.size, row.sha256
    return len(served), hashlib.sha256(served).hexdigest()
