"""The README's main command as a participant meets it: `crowdquant demo` in a real process,
then the real numerapi client against the URL it prints, Ctrl-C, and a second run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import numerapi
import numerapi.base_api
import numpy as np
import pandas as pd
from sqlalchemy import func, select

from crowdquant.db.models import (
    Account,
    ApiKey,
    LedgerTransaction,
    Model,
    Round,
    Submission,
    Tournament,
)
from crowdquant.db.session import make_engine
from crowdquant.settings import Settings

COMMAND = [str(Path(sys.executable).with_name("crowdquant")), "demo", "--port", "0"]
READY = "until Ctrl-C"  # the last line before serving
FIRST_START_SECONDS = 240  # builds the bundled dataset, on a machine busy with other tests
URL = re.compile(r'^numerapi\.base_api\.API_TOURNAMENT_URL = "(http://127\.0\.0\.1:(\d+)/)"$')


def _wait_for_ready(process: subprocess.Popen[bytes], log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        output = log.read_text(errors="replace")
        if READY in output:
            return output
        assert process.poll() is None, f"the demo exited with {process.returncode}:\n{output}"
        assert time.monotonic() < deadline, f"the demo did not start:\n{output}"
        time.sleep(0.2)


@contextmanager
def _demo(home: Path, log: Path, timeout: float) -> Iterator[str]:
    """Run the demo until it serves; yield its output; Ctrl-C it and expect exit code 0."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CROWDQUANT_")}
    env["CROWDQUANT_HOME"] = str(home)
    with log.open("wb") as sink:
        process = subprocess.Popen(COMMAND, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        yield _wait_for_ready(process, log, timeout)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, log.read_text()
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
    """What a participant's numerapi script does; the id of the submission it uploads."""
    previous = numerapi.base_api.API_TOURNAMENT_URL
    numerapi.base_api.API_TOURNAMENT_URL = url
    try:
        napi = numerapi.NumerAPI(public_id, secret)
        assert napi.get_current_round() == 1
        assert napi.check_round_open() is True
        assert "bundled-demo/live.parquet" in napi.list_datasets()
        assert napi.get_models() == {"demo_model": model_id}

        live = folder / "live.parquet"
        napi.download_dataset("bundled-demo/live.parquet", str(live))
        ids = pd.read_parquet(live).index
        predictions = folder / "predictions.csv"
        values = np.random.default_rng(0).uniform(0.05, 0.95, len(ids))
        pd.DataFrame({"id": ids.astype(str), "prediction": values}).to_csv(predictions, index=False)
        submission_id: str = napi.upload_predictions(str(predictions), model_id=model_id)
        assert submission_id in {entry["id"] for entry in napi.submission_ids(model_id)}

        assert Decimal(napi.get_account()["availableNmr"]) == 1000  # granted once
        napi.stake_increase(10, model_id=model_id)
        assert napi.stake_get("demo_model") == 10
        return submission_id
    finally:
        numerapi.base_api.API_TOURNAMENT_URL = previous


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


def test_demo_serves_numerapi_stops_on_ctrl_c_and_reuses_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with _demo(home, tmp_path / "first.log", FIRST_START_SECONDS) as output:
        assert "20 stocks" in output and "created tournament 8 (classic)" in output
        assert "opened round 1" in output and "created participant demo" in output
        assert "round 1 of tournament 8 is open" in output and "It closes in" in output
        url, public_id, secret, model_id = _printed(output)
        _take_part(url, public_id, secret, model_id, tmp_path)
    manifest = home / "datasets" / "bundled-demo" / "manifest.json"
    built_at = manifest.stat().st_mtime_ns
    once = {
        "Tournament": 1,
        "Round": 1,
        "Account": 1,
        "ApiKey": 1,
        "Model": 1,
        "Submission": 1,
        "LedgerTransaction": 3,  # the genesis, the grant, the stake
    }
    assert _counts(home) == once

    with _demo(home, tmp_path / "second.log", 60) as output:
        assert "bundled-demo is already built" in output
        assert "tournament 8 (classic) exists" in output and "round 1 is open" in output
        assert "participant demo exists" in output
        assert _printed(output)[1:] == (public_id, secret, model_id)
    assert manifest.stat().st_mtime_ns == built_at
    assert _counts(home) == once
