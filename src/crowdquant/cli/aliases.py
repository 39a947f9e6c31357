"""`crowdquant data alias`: serve a published dataset version under other names.

Participants' scripts name the version they were written for (``v5.2/live.parquet``);
``crowdquant data alias v5.2 v5.3`` serves v5.3's files under ``v5.2/`` as well, listed by
numerapi's `list_datasets` beside v5.3's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from crowdquant.cli.data import _fail, console, data_app
from crowdquant.cli.operator import _in_transaction, operator

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@data_app.command("alias")
def alias_command(
    alias: Annotated[str | None, typer.Argument(help="the other name, e.g. v5.2")] = None,
    version: Annotated[str | None, typer.Argument(help="the published version, e.g. v5.3")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="stop serving the alias")] = False,
) -> None:
    """Serve a published version under another name too (no arguments: list the aliases)."""
    from crowdquant.tournament.datasets import (
        list_dataset_aliases,
        remove_dataset_alias,
        set_dataset_alias,
    )

    with operator() as ops:
        if alias is None:
            aliases = _in_transaction(ops, list_dataset_aliases)
            if not aliases:
                console.print("no aliases: add one with `crowdquant data alias ALIAS VERSION`")
            for name, target in aliases.items():
                console.print(f"{name} → {target}")
            return
        if remove:
            removed = _in_transaction(ops, lambda session: remove_dataset_alias(session, alias))
            console.print(f"{alias} no longer serves {removed}")
            return
        if version is None:
            raise _fail("name the version the alias serves: crowdquant data alias ALIAS VERSION")

        def add(session: Session) -> None:
            set_dataset_alias(session, ops.clock, alias, version)

        _in_transaction(ops, add)
    console.print(f"{version} is served as [bold]{alias}[/] too")
