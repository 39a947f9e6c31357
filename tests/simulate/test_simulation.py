"""The simulator end to end, on both database backends: every archetype's bot plays a few
daily rounds through numerapi against the served API, the accelerated clock carries the
rounds to resolution, and the record read back agrees with the books, checked here from the
stored rows: payouts from the final scores, late uploads never staked, the sybil's split
stake, the supply conserved."""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from crowdquant.clock import SystemClock
from crowdquant.db.models import Cadence, Model, PayoutMode, Round, RoundPayout, Submission
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.ledger.accounts import stake
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import Currency
from crowdquant.scoring.metamodel import blend_concentration
from crowdquant.simulate.bots import ARCHETYPES, Cohort, population
from crowdquant.simulate.populations import POPULATIONS
from crowdquant.simulate.record import SimulationRecord
from crowdquant.simulate.report import PLOTS
from crowdquant.tournament.calendar import schedule_for

from ..conftest import BACKENDS, PostgresServer

simulate_cli = importlib.import_module("crowdquant.cli.simulate")

ROUNDS = 3
STAKE = Decimal(20)
TOLD: dict[str, list[tuple[str, int, int]]] = {}
"""Per database URL, what the simulation told its progress callback."""


def simulate(
    folder: Path,
    database_url: str,
    seed: int,
    over_http: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    two_cores: bool = True,
) -> tuple[SimulationRecord, Path]:
    """A short run of every archetype in `folder`, its report in `folder`/report."""
    return simulate_cli.run_simulation(  # type: ignore[no-any-return]
        folder / "home",
        folder / "report",
        rounds=ROUNDS,
        population=POPULATIONS["one-each"],
        cadence=Cadence.DAILY,
        payout_rule={},
        stocks=40,
        seed=seed,
        stake=STAKE,
        database_url=database_url,
        over_http=over_http,
        progress=progress,
        two_cores=two_cores,
    )


def three_bots(
    folder: Path, database_url: str, payout_rule: dict[str, str], fixed_stakes: bool = False
) -> tuple[SimulationRecord, Path]:
    """A short run of a linear bot, a spammer and a latecomer in `folder`."""
    return simulate_cli.run_simulation(  # type: ignore[no-any-return]
        folder / "home",
        folder / "report",
        rounds=ROUNDS,
        population=[Cohort(ARCHETYPES[name], 1) for name in ("linear", "spammer", "latecomer")],
        cadence=Cadence.DAILY,
        payout_rule=payout_rule,
        stocks=40,
        seed=3,
        stake=STAKE,
        database_url=database_url,
        fixed_stakes=fixed_stakes,
    )


def report_files(report: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(report.parent.iterdir())}


@pytest.fixture(scope="module", params=BACKENDS)
def simulated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SimulationRecord, Path, str]]:
    """One simulation per backend, shared by the module's tests (each takes a minute), with
    a temp directory of its own that it must leave as it found it."""
    folder = tmp_path_factory.mktemp(f"simulation-{request.param}")
    temp = folder / "temp"
    temp.mkdir()
    with ExitStack() as stack:
        previous, tempfile.tempdir = tempfile.tempdir, str(temp)
        stack.callback(setattr, tempfile, "tempdir", previous)
        if request.param == "sqlite":
            database_url = f"sqlite:///{folder / 'simulation.db'}"
        else:
            server: PostgresServer = request.getfixturevalue("postgres_server")
            database_url = stack.enter_context(server.database())
        told: list[tuple[str, int, int]] = []
        record, report = simulate(
            folder,
            database_url,
            seed=3,
            progress=lambda what, done, total: told.append((what, done, total)),
        )
        TOLD[database_url] = told
        # the bots and the simulator leave nothing behind (multiprocessing's own folder goes
        # when this process exits, as it does at the end of `crowdquant simulate`)
        assert [path for path in temp.iterdir() if not path.name.startswith("pymp-")] == []
        yield record, report, database_url


def duplicate_copies(database_url: str) -> set[tuple[int, str]]:
    """(round, model id) of each payout made on a near-duplicate that counted once."""
    engine = make_engine(database_url)
    try:
        with transaction(session_factory(engine)) as session:
            rows = session.execute(
                select(Round.number, RoundPayout.model_id, RoundPayout.inputs).join(
                    Round, Round.id == RoundPayout.round_id
                )
            ).all()
    finally:
        engine.dispose()
    return {
        (number, str(model_id)) for number, model_id, inputs in rows if "duplicate_of" in inputs
    }


def by_archetype(record: SimulationRecord) -> pd.DataFrame:
    return record.results.merge(record.models, on="model_id")


def test_every_round_resolves_and_pays_as_the_rule_says(
    simulated: tuple[SimulationRecord, Path, str],
) -> None:
    record, report, database_url = simulated
    assert list(record.rounds["round"]) == list(range(1, ROUNDS + 1))
    assert sorted(record.models["archetype"].unique()) == sorted(ARCHETYPES)
    results = by_archetype(record)
    staked = results[results["at_risk"] > 0]
    # classic-v2 with a payout factor of 1 (far less than 72,000 NMR at risk)
    score = 0.5 * staked["corr"] + 2 * staked["mmc"] - 0.001
    expected = staked["at_risk"] * np.clip(score, -0.05, 0.05)
    # an account's near-duplicates (the sybil's noisy copies) count once: the copies are
    # neither paid nor burned
    copies = duplicate_copies(database_url)
    archetypes = dict(zip(record.models["model_id"], record.models["archetype"], strict=True))
    assert {archetypes[model] for _, model in copies} == {"sybil"}
    kept = [(n, m) not in copies for n, m in zip(staked["round"], staked["model_id"], strict=True)]
    expected = expected.where(kept, 0.0)
    assert np.allclose(staked["payout"], expected, rtol=0, atol=1e-9)
    assert (staked["payout"] > 0).any() and (staked["payout"] < 0).any()
    paid = record.rounds.set_index("round")
    assert np.allclose(
        paid["paid"] - paid["burned"], staked.groupby("round")["payout"].sum(), atol=1e-9
    )
    assert (report.parent / "report.md").exists() and report.name == "report.md"
    assert all((report.parent / plot).exists() for plot in PLOTS)


def test_the_simulation_tells_its_progress_with_sensible_totals(
    simulated: tuple[SimulationRecord, Path, str],
) -> None:
    told = TOLD[simulated[2]]
    steps = simulate_cli.BUILD_STEPS
    building = [(f"dataset: {step}", k, len(steps)) for k, step in enumerate(steps)]
    assert told[: len(steps) + 1] == [*building, ("dataset built", len(steps), len(steps))]
    rounds = told[len(steps) + 1 :]
    assert rounds == [("rounds resolved", k, ROUNDS) for k in range(ROUNDS + 1)]


def test_each_archetype_played_its_part(simulated: tuple[SimulationRecord, Path, str]) -> None:
    record, _, _ = simulated
    results = by_archetype(record)
    assert results["submitted"].all()  # every bot played every round
    late = results[results["archetype"] == "latecomer"]
    assert late["late"].all() and (late["at_risk"] == 0).all() and (late["payout"] == 0).all()
    on_time = results[results["archetype"] != "latecomer"]
    assert not on_time["late"].any()
    assert (results[results["archetype"] == "spammer"].groupby("round").size() == 8).all()
    first = results[results["round"] == 1].set_index("archetype")
    sybil = results[(results["archetype"] == "sybil") & (results["round"] == 1)]
    assert len(sybil) == 5 and np.isclose(sybil["at_risk"].sum(), float(STAKE))
    assert np.isclose(first.loc["linear", "at_risk"], float(STAKE))
    # the copier reproduces the linear bot's predictions: the same scores every round
    copier, linear = (
        results[results["archetype"] == name].set_index("round")[["corr", "mmc"]]
        for name in ("copier", "linear")
    )
    pd.testing.assert_frame_equal(copier, linear)
    holdings = record.holdings[record.holdings["archetype"] == "latecomer"]
    assert np.allclose(holdings["nmr"], 1_000)  # a late upload never moves a stake


def test_the_books_agree_with_the_record(simulated: tuple[SimulationRecord, Path, str]) -> None:
    record, _, database_url = simulated
    engine = make_engine(database_url)
    try:
        with transaction(session_factory(engine)) as session:
            report = SqlLedger(SystemClock()).verify(session)
            uploads = session.scalar(select(func.count()).select_from(Submission))
    finally:
        engine.dispose()
    assert report.sound, report.problems
    assert report.burned / 10**18 == pytest.approx(record.rounds["burned"].sum())
    assert uploads == len(record.models) * ROUNDS


def test_the_meta_models_blend_is_read_from_the_stakes_it_was_weighted_by(
    simulated: tuple[SimulationRecord, Path, str],
) -> None:
    record, _, database_url = simulated
    # the default weighting: each model's stake at risk; the late, the unstaked and the
    # near-duplicates of a model of the same account (the sybil's copies) weigh 0
    dropped = duplicate_copies(database_url)
    assert dropped  # the sybil's noisy copies count once
    for _, resolved in record.rounds.iterrows():
        rows = record.results[record.results["round"] == resolved["round"]]
        counted = [(resolved["round"], model) not in dropped for model in rows["model_id"]]
        members, top = blend_concentration(rows["at_risk"].where(counted, 0.0).to_numpy())
        assert resolved["meta_members"] == pytest.approx(members)
        assert resolved["meta_top_weight"] == pytest.approx(top)
    assert (record.rounds["meta_members"] > 1).all()  # every archetype staked: a blend


def test_one_seed_gives_the_same_report_in_process_and_over_http_in_one_process(
    simulated: tuple[SimulationRecord, Path, str],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """The run again with the same seed, the bots now served over HTTP (with the validation
    pool) and every tick run whole before they play, rather than its market half in a
    process of its own while they upload, writes the same report and plots, and the same
    figures."""
    record, report, database_url = simulated
    with ExitStack() as stack:
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / 'again.db'}"
        else:
            server: PostgresServer = request.getfixturevalue("postgres_server")
            url = stack.enter_context(server.database())
        again, again_report = simulate(
            tmp_path / "again", url, seed=3, over_http=True, two_cores=False
        )
    assert report_files(again_report) == report_files(report)
    figures = [column for column in record.results.columns if column != "model_id"]
    pd.testing.assert_frame_equal(again.results[figures], record.results[figures])


def test_the_seed_draws_the_operator_keys_and_a_home_keeps_its_seed(tmp_path: Path) -> None:
    """The keys that obfuscate the market and re-key every round come from the seed (so do
    the market and each bot's draws): one seed, one set of keys; another seed, others."""
    keys = {seed: simulate_cli.seeded_keys(tmp_path / f"{seed}.json", seed) for seed in (3, 4)}
    assert simulate_cli.seeded_keys(tmp_path / "again.json", 3) == keys[3] != keys[4]
    assert simulate_cli.seeded_keys(tmp_path / "3.json", 3) == keys[3]  # a kept home, reused
    with pytest.raises(ValueError, match="simulated with another seed"):
        simulate_cli.seeded_keys(tmp_path / "3.json", 4)
    seeds = [[bot.seed for bot in population(POPULATIONS["one-each"], STAKE, s)] for s in (3, 4)]
    assert len({*seeds[0], *seeds[1]}) == 2 * len(seeds[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_under_round_stakes_the_bots_stake_each_round_and_are_paid_by_its_rule(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A payout_rule naming round-stake-v1 runs a tournament that stakes per round: each
    on-time bot stakes on every round its stake value ÷ the rounds at risk at once (23 for
    daily rounds), spread over its models; the latecomer, with nothing on time to stake on,
    never stakes; each stake comes back as round_stake × clip(5·CORR + 10·MMC, ±1)."""
    with ExitStack() as stack:
        if backend == "sqlite":
            database_url = f"sqlite:///{tmp_path / 'rounds.db'}"
        else:
            server: PostgresServer = request.getfixturevalue("postgres_server")
            database_url = stack.enter_context(server.database())
        record, _ = three_bots(tmp_path, database_url, {"version": "round-stake-v1"})
        engine = make_engine(database_url)
        try:
            with transaction(session_factory(engine)) as session:
                books = SqlLedger(SystemClock()).verify(session)
        finally:
            engine.dispose()
    assert record.rule == "round-stake-v1" and books.sound, books.problems
    results = by_archetype(record)
    assert list(record.rounds["round"]) == list(range(1, ROUNDS + 1))
    # no round resolved before the third was staked: every stake is the stake at the start
    each = (STAKE / 23).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
    on_time = results[results["archetype"] != "latecomer"]
    assert len(on_time) == 9 * ROUNDS and np.allclose(on_time["at_risk"], float(each))
    late = results[results["archetype"] == "latecomer"]
    assert (late["at_risk"] == 0).all() and (late["payout"] == 0).all()
    expected = on_time["at_risk"] * np.clip(5 * on_time["corr"] + 10 * on_time["mmc"], -1, 1)
    assert np.allclose(on_time["payout"], expected, rtol=0, atol=1e-6)
    assert (on_time["payout"] != 0).any()


def test_with_fixed_stakes_the_payouts_go_to_the_wallets_and_burns_come_off_the_stakes(
    tmp_path: Path,
) -> None:
    """`--fixed-stakes`: each bot sends its models' payouts to its wallet, so a stake only
    moves by its burns (topped up when the bot next plays; these three rounds all resolve
    after the last is played)."""
    database_url = f"sqlite:///{tmp_path / 'fixed.db'}"
    record, report = three_bots(tmp_path, database_url, {}, fixed_stakes=True)
    assert record.bot_stakes == "fixed" and "- Bots' stakes: fixed (" in report.read_text()
    engine = make_engine(database_url)
    try:
        with transaction(session_factory(engine)) as session:
            ledger = SqlLedger(SystemClock())
            assert ledger.verify(session).sound
            modes = dict(session.execute(select(Model.id, Model.payout_mode)).all())
            held = {
                str(model_id): ledger.balance(session, stake(model_id), Currency.NMR) / 10**18
                for model_id in modes
            }
    finally:
        engine.dispose()
    assert set(modes.values()) == {PayoutMode.WALLET}
    results = by_archetype(record)
    assert (results["payout"] > 0).any() and (results["payout"] < 0).any()
    burns = results["payout"].clip(upper=0).groupby(results["model_id"]).sum()
    for model_id, burned in burns.items():
        assert held[str(model_id)] == pytest.approx(float(STAKE) + burned, abs=1e-9)


@pytest.mark.parametrize(("cadence", "rounds"), [(Cadence.DAILY, 23), (Cadence.WEEKLY, 5)])
def test_rounds_at_risk_counts_the_rounds_a_stake_overlaps(cadence: Cadence, rounds: int) -> None:
    """Rounds resolve 31 days after they open: 23 daily rounds (Tuesday to Saturday) open in
    that time, counting the first, and 5 weekly ones (Saturdays)."""
    schedule = schedule_for(cadence, {})
    start = datetime(2003, 1, 1, tzinfo=UTC)
    assert simulate_cli.rounds_at_risk(schedule, start) == rounds
