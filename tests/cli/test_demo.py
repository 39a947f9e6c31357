"""The README's main command as a newcomer meets it: `crowdquant demo` in a real process on
its default market (the synthetic one), its bots playing rounds on the accelerated clock (run
here as fast as the work allows) until stakes are paid and burned, a person taking part with
the real numerapi client against the URL it prints, Ctrl-C, the books audited, a second run
that reuses everything, and one more after the operator closed a round by hand, where a
person signed up here uploads and stakes in the window the demo announces, on time; none
leaves anything in the temp directory or prints a line of its story twice."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numerapi
import numerapi.base_api
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from crowdquant.db.models import (
    Account,
    ApiKey,
    LedgerTransaction,
    Model,
    Round,
    RoundPayout,
    RoundStake,
    Submission,
    Tournament,
)
from crowdquant.db.session import make_engine
from crowdquant.money import NMR_UNIT
from crowdquant.settings import Settings
from crowdquant.simulate.bots import Participant

EXECUTABLE = str(Path(sys.executable).with_name("crowdquant"))
COMMAND = [EXECUTABLE, "demo", "--port", "0", "--day-seconds", "0"]
STOCKS = 400  # the synthetic market's shape, with fewer stocks: quicker to build and score
READY = "until Ctrl-C"  # the last line before serving
FIRST_START_SECONDS = 240  # builds the synthetic dataset, on a machine busy with other tests
RESOLVED_SECONDS = 420  # a round's month of simulated days, as fast as 2 busy cores go
STOP_SECONDS = 240  # at Ctrl-C, or after a simulated day (the bots train first)
RESOLVED = re.compile(r"resolved: \d+ models, ([\d.,]+) NMR paid, ([\d.,]+) NMR burned")
NARRATED = re.compile(r"^(\w{3} \d\d \w{3} \d{4} \d\d:\d\d) ", re.MULTILINE)
BOTS = 7
URL = re.compile(r'^numerapi\.base_api\.API_TOURNAMENT_URL = "(http://127\.0\.0\.1:(\d+)/)"$')
VERSION = "synthetic-demo"
CORR = re.compile(r"example model validation CORR\s+([+-]\d\.\d{4})")
WINDOW = re.compile(r"window open: round (\d+) .* (http://127\.0\.0\.1:\d+/)$", re.MULTILINE)
WINDOW_SECONDS = 60  # the person signed up before; this is to download, upload and stake
PERSON = "pat"


def _wait_for(
    until: Callable[[str], object], process: subprocess.Popen[bytes], log: Path, timeout: float
) -> str:
    """The demo's output once `until(output)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        exited = process.poll() is not None  # before reading: its last words are read
        output = log.read_text(errors="replace")
        if until(output):
            return output
        assert not exited, f"the demo exited with {process.returncode}:\n{output}"
        assert time.monotonic() < deadline, f"the demo never got there:\n{output}"
        time.sleep(0.2)


def _printed_line(text: str) -> Callable[[str], bool]:
    return lambda output: text in output


def _paid_and_burned(output: str) -> tuple[float, float]:
    """NMR paid and burned over the resolutions the demo told of."""
    found = RESOLVED.findall(output)
    return (
        sum(float(paid.replace(",", "")) for paid, _ in found),
        sum(float(burned.replace(",", "")) for _, burned in found),
    )


def _env(home: Path) -> dict[str, str]:
    """The demo's environment: its home, and a temp directory of its own beside it."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CROWDQUANT_")}
    env["CROWDQUANT_HOME"] = str(home)
    env["TMPDIR"] = str(_temp(home))
    return env


def _temp(home: Path) -> Path:
    """The demo's own temp directory, kept short: the validation pool's forkserver puts a
    socket in it, and a socket's path holds at most 107 bytes."""
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:12]
    temp = Path(tempfile.gettempdir()) / f"cq-demo-{digest}"
    temp.mkdir(exist_ok=True)
    return temp


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """The demo's home; its temp directory is removed afterwards (empty, if all went well)."""
    home = tmp_path / "home"
    yield home
    shutil.rmtree(_temp(home), ignore_errors=True)


@contextmanager
def _demo(
    home: Path, log: Path, timeout: float, *options: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Run the demo until it serves; yield it and its output; Ctrl-C it (unless told how many
    days to run: then it stops by itself) and expect exit code 0 and an empty temp
    directory."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*COMMAND, *options], stdout=sink, stderr=subprocess.STDOUT, env=_env(home)
        )
    try:
        yield process, _wait_for(_printed_line(READY), process, log, timeout)
        if "--days" not in options:  # otherwise it stops by itself
            process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STOP_SECONDS) == 0, log.read_text()
        assert list(_temp(home).iterdir()) == []  # nothing left behind
        assert log.read_text().rstrip().endswith("stopped")
        assert "Traceback" not in log.read_text()  # Ctrl-C is a normal stop
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _printed(output: str) -> tuple[str, str, str, str]:
    """The URL, public id, secret key and model id the demo printed."""
    urls = [match for line in output.splitlines() if (match := URL.match(line))]
    public_id = re.search(r"^public id:\s+([0-9A-F]{32})$", output, re.MULTILINE)
    secret = re.search(r"^secret key:\s+([0-9A-F]{64})$", output, re.MULTILINE)
    model_id = re.search(r"^model id:\s+([0-9a-f-]{36})$", output, re.MULTILINE)
    assert urls and public_id and secret and model_id, output
    assert int(urls[0][2]) > 0, "the line shows the port the system picked, not 0"
    assert {url[1] for url in urls} == {urls[0][1]}  # the line alone and in the snippet
    return urls[0][1], public_id[1], secret[1], model_id[1]


def _take_part(url: str, public_id: str, secret: str, model_id: str, folder: Path) -> str:
    """What a participant's numerapi script does beside the bots; the id of the submission
    it uploads (on time or late: the demo's clock does not wait for people)."""
    previous = numerapi.base_api.API_TOURNAMENT_URL
    numerapi.base_api.API_TOURNAMENT_URL = url
    try:
        napi = numerapi.NumerAPI(public_id, secret)
        assert napi.get_current_round() >= 1
        assert f"{VERSION}/live.parquet" in napi.list_datasets()
        assert napi.get_models() == {"demo_model": model_id}

        live = folder / "live.parquet"
        napi.download_dataset(f"{VERSION}/live.parquet", str(live))
        ids = pd.read_parquet(live).index
        predictions = folder / "predictions.csv"
        values = np.random.default_rng(0).uniform(0.05, 0.95, len(ids))
        pd.DataFrame({"id": ids.astype(str), "prediction": values}).to_csv(predictions, index=False)
        submission_id: str = napi.upload_predictions(str(predictions), model_id=model_id)
        assert submission_id in {entry["id"] for entry in napi.submission_ids(model_id)}

        assert Decimal(napi.get_account()["availableNmr"]) == 1000  # granted once
        _stake_between_freezes(napi, 10, model_id)
        assert napi.stake_get("demo_model") == 10
        return submission_id
    finally:
        numerapi.base_api.API_TOURNAMENT_URL = previous


def _stake_between_freezes(napi: numerapi.NumerAPI, amount: int, model_id: str) -> None:
    """Stake as a person told "again in a moment" does: the fast clock may close a round
    just before, and its stakes are frozen at the scheduler's next tick."""
    deadline = time.monotonic() + STOP_SECONDS
    while True:
        try:
            napi.stake_increase(amount, model_id=model_id)
            return
        except ValueError as refusal:
            if "being frozen" not in str(refusal) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _sign_up(home: Path) -> tuple[str, str]:
    """A person joins beside the bots: an account, 100 NMR and a read+upload+stake key."""
    _crowdquant(
        home, "account", "create", PERSON, "--email", "pat@example.org", "--password", "x" * 12
    )
    _crowdquant(home, "ledger", "grant", PERSON, "100")
    made = _crowdquant(home, "key", "create", PERSON, "--scopes", "read,upload,stake")
    public_id = re.search(r"^public id:\s+([0-9A-F]{32})$", made, re.MULTILINE)
    secret = re.search(r"^secret key:\s+([0-9A-F]{64})$", made, re.MULTILINE)
    assert public_id and secret, made
    return public_id[1], secret[1]


def _join(url: str, key: tuple[str, str], folder: Path) -> None:
    """The person makes a model through the REST API, uploads predictions for the open
    round and stakes 10 NMR on it with numerapi."""
    previous = numerapi.base_api.API_TOURNAMENT_URL
    person = Participant(url, *key, 8)
    try:
        model_id = person.models([f"{PERSON}_model"])[f"{PERSON}_model"]
        live = folder / "person-live.parquet"
        person.napi.download_dataset(f"{VERSION}/live.parquet", str(live))
        ids = pd.read_parquet(live).index
        values = np.random.default_rng(1).uniform(0.05, 0.95, len(ids))
        person.upload(model_id, ids, values, folder)
        person.napi.stake_increase(10, model_id=model_id)
    finally:
        person.close()
        numerapi.base_api.API_TOURNAMENT_URL = previous


def _persons_round(home: Path, number: int) -> tuple[list[bool], int | None]:
    """The person's submissions to round `number` (late or not) and its stake at risk there."""
    engine = make_engine(Settings(home=home).database)
    try:
        with engine.connect() as connection:
            model = (
                select(Model.id)
                .join(Account, Account.id == Model.account_id)
                .where(Account.username == PERSON)
                .scalar_subquery()
            )
            round_id = select(Round.id).where(Round.number == number).scalar_subquery()
            late = connection.scalars(
                select(Submission.late).where(
                    Submission.model_id == model, Submission.round_id == round_id
                )
            ).all()
            at_risk = connection.scalar(
                select(RoundStake.at_risk).where(
                    RoundStake.model_id == model, RoundStake.round_id == round_id
                )
            )
    finally:
        engine.dispose()
    return list(late), at_risk


def _story(output: str) -> list[str]:
    """What the demo told once serving: the lines after its instructions."""
    return output.split(READY, 1)[1].splitlines()[1:]


def _payouts(home: Path) -> dict[str, int]:
    """Stakers' NMR paid and burned over the resolved rounds, from the payouts table."""
    engine = make_engine(Settings(home=home).database)
    try:
        with engine.connect() as connection:
            paid = connection.scalar(select(func.count()).where(RoundPayout.nmr > 0))
            burned = connection.scalar(select(func.count()).where(RoundPayout.nmr < 0))
    finally:
        engine.dispose()
    return {"paid": paid or 0, "burned": burned or 0}


def _crowdquant(home: Path, *arguments: str) -> str:
    done = subprocess.run(
        [EXECUTABLE, *arguments], env=_env(home), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _audit(home: Path) -> str:
    return _crowdquant(home, "ledger", "audit")


def _counts(home: Path) -> dict[str, int]:
    engine = make_engine(Settings(home=home).database)
    try:
        with engine.connect() as connection:
            return {
                table.__name__: connection.scalar(select(func.count()).select_from(table)) or 0
                for table in (
                    Tournament,
                    Round,
                    Account,
                    ApiKey,
                    Model,
                    Submission,
                    LedgerTransaction,
                )
            }
    finally:
        engine.dispose()


def test_demo_plays_rounds_with_bots_pays_and_burns_and_reuses_everything(
    tmp_path: Path, home: Path
) -> None:
    first = tmp_path / "first.log"
    options = ("--window", "0", "--stocks", str(STOCKS))
    with _demo(home, first, FIRST_START_SECONDS, *options) as (process, output):
        assert "market: the synthetic market" in output and "(the default" in output
        corr = CORR.search(output)
        assert corr and float(corr[1]) > 0.01, output  # the example model earns
        assert f"{STOCKS} stocks" in output and "created tournament 8 (classic)" in output
        assert "opened round 1" in output and "created participant demo" in output
        assert f"{BOTS} bots play beside you" in output and "The clock runs fast" in output
        url, public_id, secret, model_id = _printed(output)
        _take_part(url, public_id, secret, model_id, tmp_path)
        # some round has paid stakers, some has burned stakes
        output = _wait_for(
            lambda text: all(_paid_and_burned(text)), process, first, RESOLVED_SECONDS
        )
        assert re.search(r"round \d+ of tournament 8 opened", output)
        assert re.search(r"\d bot\(s\) uploaded predictions", output)
        assert "window open" not in output  # --window 0
    story = _story(first.read_text())
    assert len(story) == len(set(story)), "a line of the story is told twice"
    assert "the books are sound" in _audit(home)
    payouts = _payouts(home)
    assert payouts["paid"] > 0 and payouts["burned"] > 0
    manifest = home / "datasets" / VERSION / "manifest.json"
    built_at = manifest.stat().st_mtime_ns
    counts = _counts(home)
    assert counts["Tournament"] == 1 and counts["Account"] == 1 + BOTS
    assert counts["ApiKey"] == 1 + BOTS and counts["Model"] == 1 + 18  # the bots run 18
    stopped_at = datetime.fromisoformat(json.loads((home / "demo-clock.json").read_text()))

    # again, for no simulated time: it reuses everything and keeps the clock where it was
    with _demo(home, tmp_path / "second.log", 120, "--days", "0") as (process, output):
        assert f"{VERSION} is already built" in output
        assert "tournament 8 (classic) exists" in output
        assert "participant demo exists" in output
        assert _printed(output)[1:] == (public_id, secret, model_id)
        open_round = re.search(r"^(?:opened round|round) (\d+)(?: is open)?$", output, re.M)
        assert open_round, output
    assert manifest.stat().st_mtime_ns == built_at
    again = _counts(home)
    assert {name: again[name] for name in ("Tournament", "Account", "ApiKey", "Model")} == {
        name: counts[name] for name in ("Tournament", "Account", "ApiKey", "Model")
    }
    assert "the books are sound" in _audit(home)
    kept_at = datetime.fromisoformat(json.loads((home / "demo-clock.json").read_text()))
    assert kept_at >= stopped_at

    # an operator closes the open round by hand and a person signs up; the next run opens
    # the next round at once, goes on from where the last stopped, and keeps real time for a
    # window in which the person uploads and stakes, on time
    number = int(open_round[1])
    closed = _crowdquant(home, "round", "close", "--tournament", "8", "--number", str(number), "-y")
    assert f"closed round {number} of tournament 8" in closed
    key = _sign_up(home)
    third = tmp_path / "third.log"
    with _demo(home, third, 120, "--window", f"{WINDOW_SECONDS}s") as (process, output):
        assert f"opened round {number + 1}" in output
        assert "keeps real time for 1 minute while the first round is open" in output
        window = WINDOW.search(_wait_for(WINDOW.search, process, third, RESOLVED_SECONDS))
        assert window and int(window[1]) == number + 1 and window[2] == _printed(output)[0]
        _join(window[2], key, tmp_path)
        told = _wait_for(
            _printed_line(f"{PERSON}/{PERSON}_model has 10 NMR at risk in round {number + 1}"),
            process,
            third,
            STOP_SECONDS,
        )
    uploaded = told.index(f"{PERSON}/{PERSON}_model uploaded predictions to round {number + 1}")
    assert told.index("window open") < uploaded < told.index("window closed")
    assert "(on time, valid)" in told[uploaded:].splitlines()[0]
    assert _persons_round(home, number + 1) == ([False], 10 * NMR_UNIT)
    told = third.read_text()
    assert "cannot open" not in told and told.rstrip().endswith("stopped")
    resumed_at = datetime.strptime(NARRATED.findall(told)[0], "%a %d %b %Y %H:%M")
    assert resumed_at.replace(tzinfo=UTC) >= kept_at.replace(second=0, microsecond=0)
    assert re.search(r"\d bot\(s\) uploaded predictions", told)
    story = _story(told)
    assert len(story) == len(set(story)), "a line of the story is told twice"
    failures = [NARRATED.sub("", line) for line in told.splitlines() if "could not" in line]
    assert len(failures) == len(set(failures))  # a failure is said once
    assert "the books are sound" in _audit(home)
