"""Participants' models: an account enters a tournament through one or more named models.

A model's name follows the username rule and is unique within its tournament, regardless of
case (names are stored lower-case). As in `accounts`, functions work in the caller's
transaction, flush but never commit, and a call that raises changes nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from crowdquant.clock import Clock
from crowdquant.db.models import Account, Model, Tournament
from crowdquant.tournament.accounts import NAME_RULE, AccountError, normal_name
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.visibility import Viewer, owns


class InvalidModelName(AccountError):  # noqa: N818
    code = "invalid_model_name"
    default_message = f"a model's name is {NAME_RULE}"


class ModelNameTaken(AccountError):  # noqa: N818
    code = "model_name_taken"
    default_message = "a model of that name is already in this tournament"


class UnknownModel(AccountError, LookupError):  # noqa: N818
    code = "unknown_model"
    default_message = "no model has that id"


class NotYourModel(AccountError):  # noqa: N818
    code = "not_your_model"
    default_message = "that model belongs to another account"


class InvalidProfile(AccountError):  # noqa: N818
    code = "invalid_profile"
    default_message = "a model's bio or link is not valid"


BIO_MAX = 1000
LINK_TEXT_MAX = 100
LINK_URL_MAX = 500


def create_model(
    session: Session, clock: Clock, account: Account, tournament_number: int, name: str
) -> Model:
    """A new model of `account`'s in tournament `tournament_number`."""
    normal = _valid_name(name)
    tournament = get_tournament(session, tournament_number)
    _check_free(session, tournament.id, normal)
    model = Model(
        account_id=account.id, tournament_id=tournament.id, name=normal, created_at=clock.now()
    )
    try:
        with session.begin_nested():
            session.add(model)
            session.flush()
    except IntegrityError:
        _check_free(session, tournament.id, normal)  # taken since the check above
        raise
    return model


def rename_model(
    session: Session, account: Account, model_id: uuid.UUID | str, new_name: str
) -> Model:
    """Rename one of `account`'s models; its id, submissions and history stay."""
    normal = _valid_name(new_name)
    model = get_own_model(session, account, model_id)
    if normal == model.name:
        return model
    _check_free(session, model.tournament_id, normal)
    try:
        with session.begin_nested():
            model.name = normal
            session.flush()
    except IntegrityError:  # the savepoint's rollback restores the old name
        _check_free(session, model.tournament_id, normal)
        raise
    return model


def list_models(
    session: Session, account: Account, tournament_number: int | None = None
) -> list[Model]:
    """`account`'s models, in one tournament or all, by tournament number then name."""
    query = (
        select(Model)
        .join(Model.tournament)
        .where(Model.account_id == account.id)
        .order_by(Tournament.number, Model.name)
    )
    if tournament_number is not None:
        query = query.where(Model.tournament_id == get_tournament(session, tournament_number).id)
    return list(session.scalars(query))


def list_all_models(session: Session, tournament_number: int | None = None) -> list[Model]:
    """Every model, in one tournament or all, by tournament number then name (the operator's
    view)."""
    query = select(Model).join(Model.tournament).order_by(Tournament.number, Model.name)
    if tournament_number is not None:
        query = query.where(Model.tournament_id == get_tournament(session, tournament_number).id)
    return list(session.scalars(query))


_WITH_TOURNAMENT = (joinedload(Model.tournament),)


def get_own_model(session: Session, account: Account, model_id: uuid.UUID | str) -> Model:
    """The model `model_id` (a UUID or its text), if it is `account`'s, loaded with its
    tournament."""
    try:
        key = model_id if isinstance(model_id, uuid.UUID) else uuid.UUID(model_id)
    except ValueError:
        raise UnknownModel() from None
    model = session.get(Model, key, options=_WITH_TOURNAMENT)
    if model is None:
        raise UnknownModel()
    if not owns(Viewer.participant(account), model):
        raise NotYourModel()
    return model


def set_model_bio(
    session: Session, account: Account, model_id: uuid.UUID | str, bio: str | None
) -> Model:
    """Set (or, with an empty or None `bio`, clear) the public bio of one of `account`'s models."""
    model = get_own_model(session, account, model_id)
    text = (bio or "").strip()
    if len(text) > BIO_MAX:
        raise InvalidProfile(f"a model's bio is at most {BIO_MAX} characters, not {len(text)}")
    model.bio = text or None
    session.flush()
    return model


def set_model_link(
    session: Session,
    account: Account,
    model_id: uuid.UUID | str,
    link_text: str | None,
    link_url: str | None,
) -> Model:
    """Set (or, with an empty or None `link_url`, clear) the public link of one of
    `account`'s models: an http(s) URL, shown as `link_text` (the URL itself if none)."""
    model = get_own_model(session, account, model_id)
    url = (link_url or "").strip()
    text = (link_text or "").strip()
    if not url:
        model.link_text = model.link_url = None
        session.flush()
        return model
    if not url.lower().startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise InvalidProfile(f"a model's link is an http:// or https:// URL, not {url!r}")
    if len(url) > LINK_URL_MAX:
        raise InvalidProfile(f"a model's link is at most {LINK_URL_MAX} characters")
    if len(text) > LINK_TEXT_MAX:
        raise InvalidProfile(f"a link's text is at most {LINK_TEXT_MAX} characters")
    model.link_text, model.link_url = text or url, url
    session.flush()
    return model


def find_model(session: Session, tournament_number: int, id_or_name: str) -> Model:
    """A model of the tournament by its id or its name, for public views (profiles, scores).

    numerapi asks by id (`submissionScores`) or by name (`v3UserProfile`, and
    `round_model_performances`, which passes a name as `modelId`)."""
    tournament = get_tournament(session, tournament_number)
    query = select(Model).where(Model.tournament_id == tournament.id)
    try:
        found = session.scalar(query.where(Model.id == uuid.UUID(id_or_name)))
    except ValueError:
        normal = normal_name(id_or_name)
        found = None if normal is None else session.scalar(query.where(Model.name == normal))
    if found is None:
        raise UnknownModel(f"tournament {tournament.number} has no model {id_or_name!r}")
    return found


def _valid_name(name: str) -> str:
    normal = normal_name(name)
    if normal is None:
        raise InvalidModelName()
    return normal


def _check_free(session: Session, tournament_id: uuid.UUID, name: str) -> None:
    taken = select(Model.id).where(Model.tournament_id == tournament_id, Model.name == name)
    if session.scalar(taken) is not None:
        raise ModelNameTaken()
