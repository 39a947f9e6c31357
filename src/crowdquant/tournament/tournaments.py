"""Creating and finding tournaments, and changing their settings.

A tournament fixes its number (numerapi's `tournament: Int`), name, rules, cadence and the
dataset version its rounds are published from. Its settings JSON (`settings_model`: the
calendar among them, see `tournament.calendar`, the payout rule's overrides, and the meta
model's weighting ``"meta_model": {"weights": "stake"}`` (the default) or, for 2017
tournaments, ``"stake_x_test"``: stake at risk × max(0, ln 2 − test-set log-loss), see
`scoring.metamodel`) is validated once, in one place,
both when the tournament is created and when `update_settings` replaces it. Its
``"aliases"`` list names its published dataset version under other names: writing the
settings adds and removes those `tournament.datasets` aliases with them. Functions work
inside the caller's transaction: they flush, never commit, and a call that raises leaves
the database as it found it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crowdquant.clock import Clock, SystemClock
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import Cadence, Rules, Tournament
from crowdquant.payouts import PayoutRuleError, rule_with
from crowdquant.scoring.metamodel import STAKE_X_TEST_WEIGHTS
from crowdquant.tournament.calendar import CalendarError, schedule_for
from crowdquant.tournament.datasets import (
    DatasetError,
    list_dataset_aliases,
    list_dataset_versions,
    remove_dataset_alias,
    set_dataset_alias,
)
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.rules import ruleset_for
from crowdquant.tournament.settings_model import SettingsError, parsed_settings

MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# --- errors (N818 waived: short names read better where raised and caught) -------------------


class TournamentError(ServiceError):
    """A refused request about tournaments."""

    code = "tournament_error"


class InvalidTournament(TournamentError):  # noqa: N818
    code = "invalid_tournament"


class TournamentNumberTaken(TournamentError):  # noqa: N818
    code = "tournament_number_taken"


class TournamentNameTaken(TournamentError):  # noqa: N818
    code = "tournament_name_taken"


class UnknownDatasetVersion(TournamentError):  # noqa: N818
    code = "unknown_dataset_version"


class TournamentNotFound(TournamentError, LookupError):  # noqa: N818
    code = "tournament_not_found"


def create_tournament(
    session: Session,
    clock: Clock,
    number: int,
    name: str,
    rules: Rules | str,
    cadence: Cadence | str,
    dataset_version: str | DatasetVersion,
    settings: Mapping[str, Any] | None = None,
    *,
    known_versions: Collection[str] | None = None,
) -> Tournament:
    """Add a tournament and flush it.

    `dataset_version` is a version name or an opened `DatasetVersion` (which exists by
    construction). A name is checked against `known_versions` when the caller passes them
    (e.g. the versions published in storage); otherwise it is only checked for form.
    `settings` must be a JSON object; its ``"calendar"`` and ``"payout_rule"`` entries
    (overrides of the rules' default payout rule, e.g. ``{"clip": "0.05"}``) are validated
    here, so a tournament with an impossible schedule or payout rule is never created.
    """
    if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
        raise InvalidTournament(f"a tournament number is a positive integer, not {number!r}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidTournament(
            f"a tournament name is 1 to {MAX_NAME_LENGTH} characters a-z, 0-9, '_' or '-',"
            f" starting with a letter or digit, not {name!r}"
        )
    try:
        rules, cadence = Rules(rules), Cadence(cadence)
    except ValueError as exc:
        raise InvalidTournament(str(exc)) from None
    version = _version_name(dataset_version, known_versions)
    checked = _checked_settings(rules, cadence, settings)
    aliases = parsed_settings(checked).aliases

    _refuse_taken(session, number, name)
    _check_aliases(session, version, aliases, owner_id=None)
    tournament = Tournament(
        number=number,
        name=name,
        rules=rules,
        cadence=cadence,
        dataset_version=version,
        settings=checked,
        created_at=clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(tournament)
            session.flush()
            _write_aliases(session, clock, tournament, (), aliases)
    except IntegrityError:  # created concurrently since the check above
        _refuse_taken(session, number, name)
        raise
    return tournament


def update_settings(
    session: Session,
    tournament: Tournament,
    settings: Mapping[str, Any],
    *,
    clock: Clock | None = None,
) -> Tournament:
    """Replace the tournament's settings JSON and flush; returns the tournament.

    The settings are validated exactly as `create_tournament` validates them (a plain JSON
    object whose calendar gives a schedule for the tournament's cadence and whose
    ``"payout_rule"`` validly overrides its rules' default); otherwise InvalidTournament is
    raised and nothing changes. Rounds already open keep the payout rule recorded when they
    opened (`Round.payout_rule`): the new one applies from the next round.

    Its ``"aliases"`` must be free names for the tournament's published version (no version's
    name, no alias of another version or listed by another tournament): aliases added to the
    list are served from now on (stamped by `clock`), those dropped from it no longer.
    """
    checked = _checked_settings(tournament.rules, tournament.cadence, settings)
    aliases = parsed_settings(checked).aliases
    version = tournament.dataset_version
    _check_aliases(session, version, aliases, owner_id=tournament.id)
    with session.begin_nested():
        _write_aliases(
            session,
            clock or SystemClock(),
            tournament,
            _listed_aliases(tournament.settings),
            aliases,
        )
        tournament.settings = checked
        session.flush()
    return tournament


def get_tournament(session: Session, number: int) -> Tournament:
    """The tournament numbered `number`; raises TournamentNotFound."""
    found = session.scalar(select(Tournament).where(Tournament.number == number))
    if found is None:
        raise TournamentNotFound(f"there is no tournament {number}")
    return found


def list_tournaments(session: Session) -> list[Tournament]:
    """Every tournament, by number."""
    return list(session.scalars(select(Tournament).order_by(Tournament.number)))


def _version_name(
    dataset_version: str | DatasetVersion, known_versions: Collection[str] | None
) -> str:
    if isinstance(dataset_version, DatasetVersion):
        return dataset_version.version
    if not isinstance(dataset_version, str) or not _VERSION.fullmatch(dataset_version):
        raise InvalidTournament(f"{dataset_version!r} is not a dataset version name")
    if known_versions is not None and dataset_version not in known_versions:
        known = ", ".join(sorted(known_versions)) or "none"
        raise UnknownDatasetVersion(
            f"there is no dataset version {dataset_version!r} (known: {known})"
        )
    return dataset_version


def _checked_settings(
    rules: Rules, cadence: Cadence, settings: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A copy of `settings` as plain JSON, parsed as `TournamentSettings`, with its calendar,
    payout rule and meta model validated for a tournament of these rules and cadence;
    raises InvalidTournament."""
    checked = _json_object(settings)
    try:
        parsed = parsed_settings(checked)
    except SettingsError as exc:
        raise InvalidTournament(str(exc)) from None
    try:
        schedule_for(cadence, checked)
    except CalendarError as exc:
        raise InvalidTournament(str(exc)) from None
    try:
        rule_with(rules.value, parsed.payout_rule)
    except PayoutRuleError as exc:
        raise InvalidTournament(f"payout_rule: {exc}") from None
    if (
        parsed.meta_model.weights == STAKE_X_TEST_WEIGHTS
        and not ruleset_for(rules).publishes_2017_files
    ):
        raise InvalidTournament(
            f"meta_model: {STAKE_X_TEST_WEIGHTS!r} weights need a test set (2017 rules)"
        )
    return checked


def _listed_aliases(settings: Any) -> tuple[str, ...]:
    """The ``"aliases"`` of stored settings JSON; none where it holds no list of names."""
    listed = settings.get("aliases") if isinstance(settings, Mapping) else None
    if not isinstance(listed, list):
        return ()
    return tuple(alias for alias in listed if isinstance(alias, str))


def _check_aliases(
    session: Session, version: str, aliases: tuple[str, ...], owner_id: uuid.UUID | None
) -> None:
    """Raise InvalidTournament naming the first of `aliases` that cannot name `version` for
    the tournament `owner_id` (None: one not yet created)."""
    if not aliases:
        return
    seen: set[str] = set()
    for alias in aliases:
        if alias in seen:
            raise InvalidTournament(f"aliases: {alias!r} is listed twice")
        seen.add(alias)
    published = set(list_dataset_versions(session))
    if version not in published:
        raise InvalidTournament(
            f"aliases: the dataset version {version!r} is not published yet, so it has no aliases"
        )
    versions = published | set(session.scalars(select(Tournament.dataset_version)))
    existing = list_dataset_aliases(session)
    others = select(Tournament)
    if owner_id is not None:
        others = others.where(Tournament.id != owner_id)
    listed_by = {
        alias: other.number
        for other in session.scalars(others)
        for alias in _listed_aliases(other.settings)
    }
    for alias in aliases:
        if not _VERSION.fullmatch(alias):
            raise InvalidTournament(
                f"aliases: {alias!r} is not a dataset version name (1 to 64 characters"
                " A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit)"
            )
        if alias in versions:
            raise InvalidTournament(
                f"aliases: {alias!r} is a dataset version's own name, not free for an alias"
            )
        if alias in listed_by:
            raise InvalidTournament(
                f"aliases: {alias!r} is an alias of tournament {listed_by[alias]}"
            )
        if existing.get(alias, version) != version:
            raise InvalidTournament(
                f"aliases: {alias!r} is already an alias of {existing[alias]!r}"
            )


def _write_aliases(
    session: Session,
    clock: Clock,
    tournament: Tournament,
    before: tuple[str, ...],
    after: tuple[str, ...],
) -> None:
    """Serve the tournament's version under the aliases of `after`, no longer under those only
    in `before` (`_check_aliases` passed `after`)."""
    existing = list_dataset_aliases(session)
    version, number = tournament.dataset_version, tournament.number
    try:
        for alias in sorted(set(before) - set(after)):
            if existing.get(alias) == version:
                remove_dataset_alias(session, alias, for_tournament=number)
        for alias in after:
            if alias not in existing:
                set_dataset_alias(session, clock, alias, version, for_tournament=number)
    except DatasetError as exc:
        raise InvalidTournament(f"aliases: {exc}") from None


def _json_object(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise InvalidTournament("settings must be a JSON object")
    if not all(isinstance(key, str) for key in settings):
        raise InvalidTournament("settings keys must be strings")
    try:
        copied = json.loads(json.dumps(dict(settings), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidTournament(f"settings must be plain JSON: {exc}") from None
    return dict(copied)


def _refuse_taken(session: Session, number: int, name: str) -> None:
    if session.scalar(select(Tournament.id).where(Tournament.number == number)) is not None:
        raise TournamentNumberTaken(f"tournament number {number} is taken")
    if session.scalar(select(Tournament.id).where(Tournament.name == name)) is not None:
        raise TournamentNameTaken(f"the tournament name {name!r} is taken")
