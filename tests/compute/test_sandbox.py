"""Uploaded models run in a bubblewrap sandbox: a good model's predictions come back, and
every hostile one ends failed with the reason it deserves, leaving the host untouched."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from crowdquant.compute import sandbox_runner
from crowdquant.compute.sandbox import (
    Failure,
    SandboxLimits,
    processes_of,
    run_model,
    scan_pickle,
)
from crowdquant.scoring.validation import validate_submission

QUICK = SandboxLimits(memory_bytes=2 << 30, cpu_seconds=60, wall_seconds=60, processes=32)
SECRET = "operator-secret-4f9c"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    ids = pd.Index([f"n{i:04d}" for i in range(300)], name="id")
    frame = pd.DataFrame(
        rng.integers(0, 5, (300, 6)).astype("int8"),
        columns=[f"feature_{i}" for i in range(6)],
        index=ids,
    )
    path = tmp_path_factory.mktemp("live") / "live.parquet"
    frame.to_parquet(path)
    return path


@pytest.fixture(scope="module")
def operator_secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file of the operator's, outside every mount, beside another model's pickle."""
    folder = tmp_path_factory.mktemp("operator")
    (folder / "other_model.pkl").write_bytes(cloudpickle.dumps(SECRET))
    path = folder / "keys.txt"
    path.write_text(SECRET)
    return path


def _pickle(tmp_path: Path, predict: object, name: str = "model.pkl") -> Path:
    """`predict` pickled with what it uses of this module (the sandbox cannot import it)."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    path = tmp_path / name
    try:
        path.write_bytes(cloudpickle.dumps(predict))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    return path


def _ranked(live: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"prediction": live.sum(axis=1).rank(pct=True)}, index=live.index)


def test_a_trained_model_predicts_and_its_output_validates_as_a_submission(
    tmp_path: Path, live: Path
) -> None:
    from sklearn.linear_model import Ridge

    features = pd.read_parquet(live)
    fitted = Ridge().fit(features.to_numpy(), np.arange(len(features), dtype=float))
    weights, intercept = fitted.coef_, fitted.intercept_  # no scikit-learn import to run it

    def predict(live_features: pd.DataFrame, benchmarks: pd.DataFrame) -> pd.DataFrame:
        values = live_features.to_numpy() @ weights + intercept
        return pd.DataFrame({"prediction": values}, index=live_features.index).rank(pct=True)

    live_ids = features.index.astype(str)
    result = run_model(
        _pickle(tmp_path, predict),
        live,
        limits=QUICK,
        validate_output=lambda data: validate_submission(data, live_ids),
    )

    assert result.ok, result.describe() + result.log
    assert result.predictions is not None
    written = pd.read_parquet(io.BytesIO(result.predictions))
    assert list(written.columns) == ["id", "prediction"]
    assert written["id"].tolist() == live_ids.tolist()
    expected = pd.Series(fitted.predict(features.to_numpy())).rank(pct=True)
    np.testing.assert_allclose(written["prediction"], expected)


def _opens_a_socket(secret: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def predict(live: pd.DataFrame) -> pd.DataFrame:
        with contextlib.suppress(OSError):  # carries on as if nothing happened
            socket.create_connection(("192.0.2.1", 80), timeout=2).close()
        return _ranked(live)

    return predict


def _reads_the_operators_data(secret: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def predict(live: pd.DataFrame) -> pd.DataFrame:
        stolen = secret.read_text()
        return pd.DataFrame({"prediction": [0.5], "stolen": [stolen]})

    return predict


def _reads_another_models_files(secret: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def predict(live: pd.DataFrame) -> pd.DataFrame:
        mine = sorted(os.listdir("/in"))
        if mine != ["live.parquet", "model.pkl", "runner.py"]:
            return pd.DataFrame({"prediction": [0.5], "found": [str(mine)]})
        return pd.read_pickle(secret.with_name("other_model.pkl"))

    return predict


def _fork_bomb(secret: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def predict(live: pd.DataFrame) -> pd.DataFrame:
        while True:
            os.fork()

    return predict


def _memory_bomb(secret: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def predict(live: pd.DataFrame) -> pd.DataFrame:
        hoard = []
        while True:
            hoard.append(np.empty(256 << 20, dtype=np.uint8))

    return predict


def _endless_loop(secret: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def predict(live: pd.DataFrame) -> pd.DataFrame:
        while True:
            pass

    return predict


def _writes_output_then_exits_early(secret: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def predict(live: pd.DataFrame) -> pd.DataFrame:
        frame = _ranked(live).reset_index()
        frame.to_parquet("/out/predictions.parquet", index=False)
        Path("/out/result.json").write_text('{"token": "guess", "status": "ok"}')
        os._exit(0)

    return predict


def _exits_without_output(secret: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def predict(live: pd.DataFrame) -> pd.DataFrame:
        os._exit(0)

    return predict


def _returns_nonsense(secret: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def predict(live: pd.DataFrame) -> pd.DataFrame:
        return [0.5] * len(live)  # type: ignore[return-value]

    return predict


HOSTILE = [
    (_opens_a_socket, QUICK, Failure.network, "tried to reach the network"),
    (_reads_the_operators_data, QUICK, Failure.predict_error, "No such file"),
    (_reads_another_models_files, QUICK, Failure.predict_error, "No such file"),
    (_fork_bomb, QUICK, Failure.too_many_processes, "process limit"),
    (_memory_bomb, SandboxLimits(memory_bytes=3 << 29), Failure.out_of_memory, "memory"),
    (_endless_loop, SandboxLimits(wall_seconds=4), Failure.timeout, "longer than 4 s"),
    (_endless_loop, SandboxLimits(cpu_seconds=3), Failure.timeout, "more than 3 s of CPU"),
    (_writes_output_then_exits_early, QUICK, Failure.exited_early, "before predict returned"),
    (_exits_without_output, QUICK, Failure.exited_early, "before predict returned"),
    (_returns_nonsense, QUICK, Failure.invalid_output, "returned a list"),
]


@pytest.mark.parametrize(
    ("make", "limits", "failure", "said"),
    HOSTILE,
    ids=[f"{make.__name__.strip('_')}-{said}" for make, _, _, said in HOSTILE],
)
def test_a_hostile_model_fails_with_its_reason_and_leaves_the_host_alone(
    tmp_path: Path,
    live: Path,
    operator_secret: Path,
    make: Callable[[Path], object],
    limits: SandboxLimits,
    failure: Failure,
    said: str,
) -> None:
    result = run_model(_pickle(tmp_path, make(operator_secret)), live, limits=limits)

    assert result.failure is failure, result.describe() + "\n" + result.log
    assert said in result.describe()
    assert result.predictions is None
    assert SECRET not in result.log + result.message
    assert operator_secret.read_text() == SECRET
    assert result.uid is not None
    assert processes_of(result.uid) == []


def test_a_pickle_that_cannot_load_says_why(tmp_path: Path, live: Path) -> None:
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle at all")
    missing_module = tmp_path / "missing.pkl"
    missing_module.write_bytes(b"cmodel_library_not_installed\npredict\n.")

    unreadable = run_model(garbage, live, limits=QUICK)
    needs_a_module = run_model(missing_module, live, limits=QUICK)

    assert unreadable.failure is Failure.cannot_unpickle
    assert "cannot unpickle the model under Python 3." in unreadable.message
    assert needs_a_module.failure is Failure.import_error
    assert "model_library_not_installed" in needs_a_module.message


def test_an_output_the_submission_rules_refuse_is_invalid(tmp_path: Path, live: Path) -> None:
    def predict(live: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"prediction": np.full(len(live), np.nan)}, index=live.index)

    live_ids = pd.read_parquet(live).index.astype(str)
    result = run_model(
        _pickle(tmp_path, predict),
        live,
        limits=QUICK,
        validate_output=lambda data: validate_submission(data, live_ids),
    )

    assert result.failure is Failure.invalid_output
    assert result.predictions is None


def test_the_runner_refuses_to_start_where_the_network_is_visible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "if_nameindex", lambda: [(1, "lo"), (2, "eth0")])
    assert sandbox_runner.network_reachable() == "network interfaces ['eth0']"


def test_the_static_scan_is_advice_and_never_runs_the_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(
        b"cos\nsystem\n(V" + f"touch {marker}".encode() + b"\ntR."
    )  # os.system("touch ...") when loaded

    verdict = scan_pickle(hostile)

    assert verdict.startswith(("LIKELY_", "OVERTLY_", "POSSIBLY_", "SUSPICIOUS"))
    assert "LIKELY_SAFE" not in verdict
    assert "imports that reach the system: os.system" in verdict
    assert not marker.exists()
    assert scan_pickle(b"not a pickle").startswith("INVALID")


def test_the_host_reads_no_link_or_pipe_a_model_leaves_in_its_output(
    tmp_path: Path, operator_secret: Path
) -> None:
    from crowdquant.compute.sandbox import _read_own_file

    (tmp_path / "predictions.parquet").symlink_to(operator_secret)
    os.mkfifo(tmp_path / "result.json")
    (tmp_path / "own.parquet").write_bytes(b"PAR1")

    assert _read_own_file(tmp_path / "predictions.parquet", 1000) is None
    assert _read_own_file(tmp_path / "result.json", 1000) is None
    assert _read_own_file(tmp_path / "own.parquet", 1000) == b"PAR1"
