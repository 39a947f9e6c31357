"""Participants' models by the operator: `crowdquant model create|list|rename`.

As the other operator commands, each opens the configured database, runs one service call
in one transaction and prints the result; a refusal (a taken name, an unknown account) exits
with code 1 and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from crowdquant.cli.data import console
from crowdquant.cli.operator import _in_transaction, operator

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

model_app = typer.Typer(no_args_is_help=True, help="Participants' models: create, list, rename.")

TournamentOption = Annotated[int, typer.Option(help="the tournament's number")]


@model_app.command("create")
def model_create(
    username: Annotated[str, typer.Argument(help="whose model")],
    name: Annotated[str, typer.Argument(help="3-32 characters a-z, 0-9 or _")],
    tournament: TournamentOption = 8,
) -> None:
    """Create a model for an account in a tournament; prints its id (numerapi's model_id)."""
    from crowdquant.tournament.accounts import get_account
    from crowdquant.tournament.models import create_model

    with operator() as ops:

        def create(session: Session) -> tuple[str, str]:
            model = create_model(
                session, ops.clock, get_account(session, username), tournament, name
            )
            return model.name, str(model.id)

        created, model_id = _in_transaction(ops, create)
    console.print(f"created model [bold]{created}[/] of {username} in tournament {tournament}")
    console.print(f"model id: {model_id}")


@model_app.command("list")
def model_list(
    username: Annotated[str | None, typer.Argument(help="only this account's models")] = None,
    tournament: Annotated[int | None, typer.Option(help="only this tournament's")] = None,
) -> None:
    """Models with their owner, tournament and id."""
    from rich.table import Table

    from crowdquant.tournament.accounts import get_account
    from crowdquant.tournament.models import list_all_models, list_models

    with operator() as ops:

        def rows(session: Session) -> list[tuple[str, ...]]:
            if username is None:
                models = list_all_models(session, tournament)
            else:
                models = list_models(session, get_account(session, username), tournament)
            return [
                (str(m.tournament.number), m.name, m.account.username, str(m.id)) for m in models
            ]

        listed = _in_transaction(ops, rows)
    if not listed:
        console.print("no models yet: create one with `crowdquant model create`")
        return
    table = Table(title="models")
    for column in ("tournament", "name", "account", "id"):
        table.add_column(column, no_wrap=column == "id")
    for row in listed:
        table.add_row(*row)
    console.print(table)


@model_app.command("rename")
def model_rename(
    model: Annotated[str, typer.Argument(help="the model's name or id")],
    new_name: Annotated[str, typer.Argument(help="3-32 characters a-z, 0-9 or _")],
    tournament: TournamentOption = 8,
) -> None:
    """Rename a model; its id, submissions, scores and stake stay."""
    from crowdquant.tournament.models import find_model, rename_model

    with operator() as ops:

        def rename(session: Session) -> tuple[str, str]:
            found = find_model(session, tournament, model)
            old = found.name
            return old, rename_model(session, found.account, found.id, new_name).name

        old, new = _in_transaction(ops, rename)
    console.print(f"renamed model {old} to [bold]{new}[/] in tournament {tournament}")
