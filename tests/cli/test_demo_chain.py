"""`crowdquant demo --ledger evm`'s chain: anvil started on loopback with its state kept in
the home, the contracts deployed once and the `evm` ledger's settings on them; a clear error
naming the missing anvil and how to install it; a home whose books are the database's only
is refused. (The demo itself is played by `test_demo.py`.)"""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.cli.demo import CHAIN_FILE, demo_chain
from crowdquant.clock import SystemClock
from crowdquant.db.models import Cadence, Rules
from crowdquant.db.session import transaction
from crowdquant.ledger import ledger_from_settings
from crowdquant.ledger.evm.backend import EvmLedger
from crowdquant.ledger.evm.local_node import ANVIL_DEV_KEY, INSTALL_ANVIL
from crowdquant.server.bootstrap import bootstrap
from crowdquant.settings import Settings
from crowdquant.tournament.tournaments import create_tournament
from tests.ledger.evm.conftest import NMR, SUPPLY, anvil_binary

runner = CliRunner()


def test_the_demo_chain_is_deployed_once_and_carries_on_in_the_next_run(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    binary = Path(anvil_binary())
    with demo_chain(settings, binary) as chained:
        assert chained.ledger_backend == "evm" and chained.evm_chain_id == 31337
        assert chained.evm_operator_key is not None
        assert chained.evm_operator_key.get_secret_value() == ANVIL_DEV_KEY
        books = ledger_from_settings(chained, SystemClock())
        assert isinstance(books, EvmLedger)
        token, operator = books.token, Account.from_key(ANVIL_DEV_KEY).address
        assert token.functions.balanceOf(operator).call() == SUPPLY  # the treasury's key
        books.w3.eth.wait_for_transaction_receipt(
            token.functions.burn(NMR).transact({"from": operator})
        )
        first = chained.evm_token_address, chained.evm_tournament_address
    assert (settings.home / CHAIN_FILE).is_file()

    with demo_chain(settings, binary) as again:  # a new node on the kept state
        assert (again.evm_token_address, again.evm_tournament_address) == first
        books = ledger_from_settings(again, SystemClock())
        assert isinstance(books, EvmLedger)
        assert books.token.functions.totalSupply().call() == SUPPLY - NMR


def _demo(home: Path, anvil: Path) -> tuple[int, str]:
    env = {"CROWDQUANT_HOME": str(home), "CROWDQUANT_ANVIL": str(anvil)}
    result = runner.invoke(app, ["demo", "--ledger", "evm"], env=env)
    return result.exit_code, " ".join(result.output.split())


def test_without_anvil_the_demo_says_which_binary_is_missing_and_how_to_install_it(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-anvil"
    code, output = _demo(tmp_path / "home", missing)
    assert code == 1
    assert f"there is none at {missing}" in output and INSTALL_ANVIL in output
    assert not (tmp_path / "home").exists()  # nothing made
    unknown = runner.invoke(
        app, ["demo", "--ledger", "chain"], env={"CROWDQUANT_HOME": str(tmp_path)}
    )
    assert unknown.exit_code == 1 and "unknown ledger 'chain': use sql or evm" in unknown.output


def test_a_home_whose_books_are_the_databases_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ops = bootstrap(Settings(home=home), SystemClock())
    try:
        with transaction(ops.sessions) as session:
            create_tournament(session, ops.clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
    finally:
        ops.close()
    code, output = _demo(home, Path(anvil_binary()))
    assert code == 1
    assert "keeps its books in the database" in output and "another CROWDQUANT_HOME" in output
    assert not (home / CHAIN_FILE).exists()
