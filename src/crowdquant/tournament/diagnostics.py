"""Diagnostics: a model's predictions on the validation eras, scored in the background.

A participant uploads predictions for the published validation rows of the tournament's
dataset version and later reads back how they would have scored, era by era.

1. `diagnostics_upload_key` picks a fresh storage key ``uploads/<model>/<nonce>/<name>``
   (the scheme of submission uploads: the API signs a PUT URL for it, `api/files.py` takes
   the bytes there).
2. `request_diagnostics` checks the upload is the caller's model's and is there, moves it
   to ``diagnostics/<model>/<diagnostics id>/<name>`` and records a `pending` `Diagnostics`
   row with the model's next `request_number` and the tournament's dataset version. Nothing
   heavy happens here: this runs in the web request.
3. `run_next_diagnostics` (a worker, `DiagnosticsWorker`, calls it) claims the oldest
   pending row by compare-and-set (pending → running, so two workers never run the same
   one), validates the file against the version's validation ids, scores it and stores
   `result` (`done`), or stores a readable `error` (`failed`). A job that crashes is failed
   with ``internal error``; one whose worker died is failed by `fail_stale_diagnostics`.

What is scored, per validation era (`ValidationEras` does CORR, MMC and FNC):

* CORR against the main target, FNC neutral to one feature set of features.json
  (`DEFAULT_FEATURE_SET`, "medium", as Numerai's FNCv3),
* MMC against the version's **example-model validation predictions**: there is no meta model
  on validation eras (nobody staked on them), so the contribution is measured against the
  example model, which is what Numerai calls BMC (benchmark model contribution). MMC and BMC
  are therefore the same number here,
* feature exposure: the largest |Pearson correlation| of the predictions with one feature
  of that set, as Numerai's example scripts compute it,
* the rank (Spearman) correlation of the predictions with the example predictions, and the
  example model's own CORR.

`result` (JSON; non-finite numbers are stored as null)::

    {"rules": "diagnostics-1", "dataset_version": "v1", "feature_set": "medium",
     "target": "target", "meta_model": "example_predictions", "request_number": 2,
     "n_rows": 405,
     "per_era": [{"era": "0101", "corr": ..., "mmc": ..., "fnc": ...,
                  "feature_exposure": ..., "corr_with_example_preds": ...,
                  "example_corr": ...}, ...],
     "summary": {"n_eras": 11, "request_number": 2,
                 "corr_mean", "corr_std", "corr_sharpe", "corr_max_drawdown",
                 "mmc_mean", "mmc_std", "mmc_sharpe",
                 "corr_plus_mmc_mean", "corr_plus_mmc_std", "corr_plus_mmc_sharpe",
                 "fnc_mean", "fnc_std", "fnc_sharpe",
                 "max_feature_exposure", "corr_with_example_preds",
                 "example_corr_mean", "corr_corr_with_example"}}

Statistics follow `scoring.summary` (population std, Sharpe = mean / std, max drawdown of
the cumulative score, ≥ 0). ``max_feature_exposure`` is the mean over eras of each era's
largest exposure; ``corr_with_example_preds`` the mean over eras of the Spearman correlation
with the example predictions; ``corr_corr_with_example`` the Pearson correlation of the
model's per-era CORR with the example model's per-era CORR.

Service functions work in the caller's transaction (flush, never commit), and a refusal
writes nothing. `run_next_diagnostics` and the worker take a session factory and commit
each step themselves.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import IO, Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import rankdata
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock
from crowdquant.data.pipeline import MAIN_TARGET
from crowdquant.db.models import Account, DatasetFile, Diagnostics, DiagnosticsStatus
from crowdquant.db.session import transaction
from crowdquant.scoring.diagnostics import ValidationEras
from crowdquant.scoring.eras import era_rows
from crowdquant.scoring.neutralise import max_feature_exposure
from crowdquant.scoring.summary import summary_stats
from crowdquant.scoring.validation import DEFAULT_MAX_BYTES, SubmissionError, validate_submission
from crowdquant.storage import FileStorage, NotFound, TooLarge
from crowdquant.tournament.datasets import storage_key
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.models import get_own_model
from crowdquant.tournament.submissions import UploadTooLarge
from crowdquant.tournament.uploads import NothingUploaded, new_upload_key, own_upload

DIAGNOSTICS_PREFIX: Final = "diagnostics"
HOW: Final = "PUT the file to the URL of diagnosticsUploadAuth"
RULES: Final = "diagnostics-1"
"""Recorded in every result: the version of what is computed here."""
DEFAULT_FEATURE_SET: Final = "medium"
META_MODEL: Final = "example_predictions"
INTERNAL_ERROR: Final = "internal error"
STALE_ERROR: Final = "internal error: the diagnostics job stopped before finishing"
VALIDATION_FILE: Final = "validation.parquet"
EXAMPLE_FILE: Final = "validation_example_preds.parquet"
FEATURES_FILE: Final = "features.json"
_NUMBER_ATTEMPTS = 5

logger = logging.getLogger(__name__)


# --- errors (N818 waived: short names read better where raised and caught) -------------------


class DiagnosticsError(ServiceError):
    """A refused diagnostics request or lookup."""

    code = "diagnostics_refused"
    default_message = "the diagnostics request was refused"


class NoValidationData(DiagnosticsError, LookupError):  # noqa: N818
    """The dataset version has no (usable) published validation data."""

    code = "no_validation_data"
    default_message = "the dataset version has no published validation data"


class UnknownDiagnostics(DiagnosticsError, LookupError):  # noqa: N818
    code = "unknown_diagnostics"
    default_message = "no diagnostics has that id for this model"


# --- step 1 and 2: the upload and the request (in the web request) -----------------------------


def diagnostics_upload_key(
    session: Session, account: Account, model_id: uuid.UUID | str, filename: str | None
) -> str:
    """A fresh storage key for `account`'s model `model_id` to PUT a diagnostics file to.

    Raises `UnknownModel` / `NotYourModel`. The API answers it as `filename` with a signed
    PUT URL for exactly that key.
    """
    return new_upload_key(get_own_model(session, account, model_id), filename)


def request_diagnostics(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    account: Account,
    model_id: uuid.UUID | str,
    filename: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Diagnostics:
    """Queue the upload at key `filename` (from `diagnostics_upload_key`) for diagnostics.

    Returns the flushed `pending` row: the model's next request number, the model's
    tournament's dataset version. Raises `UnknownModel` / `NotYourModel`, `NotAnUpload`,
    `NoValidationData`, `NothingUploaded` and `UploadTooLarge`, each before anything is
    written. The upload is moved under ``diagnostics/``; if the row cannot be flushed the
    moved copy is deleted again and the upload stays.
    """
    model = get_own_model(session, account, model_id)
    key = own_upload(model, filename, "use diagnosticsUploadAuth")
    version = model.tournament.dataset_version
    published = session.scalar(
        select(DatasetFile.id).where(
            DatasetFile.version == version, DatasetFile.filename == VALIDATION_FILE
        )
    )
    if published is None:
        raise NoValidationData(
            f"dataset version {version!r} has no published {VALIDATION_FILE}: diagnostics are"
            " not available for this tournament yet"
        )
    name = PurePosixPath(key).name
    try:
        size = storage.stat(key).size
    except NotFound:
        raise NothingUploaded(f"nothing was uploaded as {key!r}: {HOW}") from None
    if size > max_bytes:
        raise UploadTooLarge(f"{name!r} is {size:,} bytes, over the limit of {max_bytes:,} bytes")

    diagnostics_id = uuid.uuid4()
    stored = f"{DIAGNOSTICS_PREFIX}/{model.id.hex}/{diagnostics_id.hex}/{name}"
    try:
        with storage.read(key) as chunks:
            storage.write(stored, chunks, max_bytes=max_bytes)
    except NotFound:  # deleted between the stat and the read
        raise NothingUploaded(f"nothing was uploaded as {key!r}") from None
    except TooLarge:
        raise UploadTooLarge(f"{name!r} is over the limit of {max_bytes:,} bytes") from None
    try:
        row = _insert_numbered(
            session,
            Diagnostics(
                id=diagnostics_id,
                model_id=model.id,
                dataset_version=version,
                file_key=stored,
                filename=name,
                status=DiagnosticsStatus.PENDING,
                created_at=clock.now(),
            ),
        )
    except BaseException:
        storage.delete(stored)
        raise
    storage.delete(key)
    return row


def _insert_numbered(session: Session, row: Diagnostics) -> Diagnostics:
    """Insert `row` as its model's next request; retry if a concurrent request took it."""
    for attempt in range(_NUMBER_ATTEMPTS):
        latest = session.scalar(
            select(func.max(Diagnostics.request_number)).where(Diagnostics.model_id == row.model_id)
        )
        row.request_number = (latest or 0) + 1
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            if attempt == _NUMBER_ATTEMPTS - 1:
                raise
            continue
        return row
    raise AssertionError("unreachable")  # pragma: no cover


# --- reading -----------------------------------------------------------------------------------


def list_diagnostics(
    session: Session, account: Account, model_id: uuid.UUID | str
) -> list[Diagnostics]:
    """Every diagnostics request of `account`'s model `model_id`, newest first."""
    model = get_own_model(session, account, model_id)
    return list(
        session.scalars(
            select(Diagnostics)
            .where(Diagnostics.model_id == model.id)
            .order_by(Diagnostics.request_number.desc())
        )
    )


def get_diagnostics(
    session: Session,
    account: Account,
    model_id: uuid.UUID | str,
    diagnostics_id: uuid.UUID | str | None = None,
) -> Diagnostics:
    """One of the diagnostics of `account`'s model `model_id`: `diagnostics_id`, or the
    newest when it is None. Raises `UnknownModel` / `NotYourModel`, `UnknownDiagnostics`."""
    model = get_own_model(session, account, model_id)
    query = select(Diagnostics).where(Diagnostics.model_id == model.id)
    if diagnostics_id is None:
        found = session.scalar(query.order_by(Diagnostics.request_number.desc()).limit(1))
        if found is None:
            raise UnknownDiagnostics(
                f"model {model.name!r} has no diagnostics yet: upload predictions on the "
                "validation data first"
            )
        return found
    try:
        key = (
            diagnostics_id
            if isinstance(diagnostics_id, uuid.UUID)
            else uuid.UUID(str(diagnostics_id))
        )
    except ValueError:
        raise UnknownDiagnostics() from None
    found = session.scalar(query.where(Diagnostics.id == key))
    if found is None:
        raise UnknownDiagnostics()
    return found


# --- the validation set of a dataset version ---------------------------------------------------


@dataclass(frozen=True, eq=False)
class ValidationSet:
    """A dataset version's validation data, prepared once for scoring many uploads.

    `ids` are every published validation id (what an upload must cover); the scored rows
    are those with a target, in `ids` order (`scored`).
    """

    version: str
    feature_set: str
    target: str
    ids: pd.Index
    scored: npt.NDArray[np.intp]
    eras: npt.NDArray[Any]
    example: npt.NDArray[np.float64]
    features: npt.NDArray[Any]
    scorer: ValidationEras
    era_rows: list[tuple[object, npt.NDArray[np.intp]]]
    example_ranks: list[npt.NDArray[np.float64]]
    example_corr: npt.NDArray[np.float64]


def prepare_validation(
    version: str,
    validation: pd.DataFrame,
    example_predictions: pd.DataFrame | pd.Series,
    features_json: dict[str, Any],
    *,
    feature_set: str = DEFAULT_FEATURE_SET,
    target: str = MAIN_TARGET,
) -> ValidationSet:
    """Prepare a published validation frame (index id; era, features, targets), its example
    predictions (index id) and features.json. Raises `NoValidationData` when they do not fit
    together."""
    sets = features_json.get("feature_sets", {})
    if feature_set not in sets:
        raise NoValidationData(f"features.json of {version!r} has no feature set {feature_set!r}")
    features = list(sets[feature_set])
    missing = [c for c in ["era", target, *features] if c not in validation.columns]
    if missing:
        raise NoValidationData(
            f"the validation data of {version!r} lacks the column(s) {missing[:5]}"
        )
    ids = pd.Index(validation.index.astype(str), name="id")
    if ids.has_duplicates or len(ids) == 0:
        raise NoValidationData(f"the validation ids of {version!r} are empty or repeated")
    example = (
        example_predictions
        if isinstance(example_predictions, pd.Series)
        else example_predictions.iloc[:, 0]
    )
    example = pd.Series(example.to_numpy(np.float64), index=example.index.astype(str))
    aligned = example.reindex(ids).to_numpy(np.float64)
    targets = validation[target].to_numpy(np.float64)
    scored = np.flatnonzero(np.isfinite(targets))
    if len(scored) == 0 or np.isnan(aligned[scored]).any():
        raise NoValidationData(
            f"the example predictions of {version!r} do not cover its validation rows"
            if len(scored)
            else f"the validation data of {version!r} has no targets"
        )
    eras = validation["era"].to_numpy()[scored]
    feature_matrix = validation[features].to_numpy()[scored]
    example_scored = aligned[scored]
    scorer = ValidationEras(eras, targets[scored], example_scored, feature_matrix)
    rows = era_rows(eras)
    return ValidationSet(
        version=version,
        feature_set=feature_set,
        target=target,
        ids=ids,
        scored=scored,
        eras=eras,
        example=example_scored,
        features=feature_matrix,
        scorer=scorer,
        era_rows=rows,
        example_ranks=[rankdata(example_scored[r]) for _, r in rows],
        example_corr=scorer.score(example_scored)["corr"].to_numpy(np.float64),
    )


class ValidationLoader(Protocol):
    """The prepared validation set of a dataset version (implementations cache it)."""

    def __call__(self, version: str) -> ValidationSet: ...


class StoredValidationLoader:
    """Reads a version's published validation files from storage (``<version>/...``, as
    `tournament.datasets` publishes them) and keeps each prepared set, so `ValidationEras`
    is built once per dataset version and process. Safe to share between threads."""

    def __init__(self, storage: FileStorage, *, feature_set: str = DEFAULT_FEATURE_SET) -> None:
        self.storage, self.feature_set = storage, feature_set
        self._prepared: dict[str, ValidationSet] = {}
        self._lock = threading.Lock()

    def __call__(self, version: str) -> ValidationSet:
        with self._lock:  # one preparation at a time; later calls find it ready
            if version not in self._prepared:
                self._prepared[version] = self._load(version)
            return self._prepared[version]

    def _load(self, version: str) -> ValidationSet:
        features_json = json.loads(self._bytes(version, FEATURES_FILE))
        sets = features_json.get("feature_sets", {})
        columns = ["era", MAIN_TARGET, *sets.get(self.feature_set, [])]
        with self._spooled(version, VALIDATION_FILE) as handle:
            try:
                validation = pd.read_parquet(handle, columns=columns)
            except (KeyError, ValueError) as error:  # pyarrow: a missing column
                raise NoValidationData(
                    f"the validation data of {version!r} cannot be read: {error}"
                ) from error
        with self._spooled(version, EXAMPLE_FILE) as handle:
            example = pd.read_parquet(handle)
        return prepare_validation(
            version, validation, example, features_json, feature_set=self.feature_set
        )

    def _bytes(self, version: str, name: str) -> bytes:
        with self._spooled(version, name) as handle:
            return handle.read()

    @contextlib.contextmanager
    def _spooled(self, version: str, name: str) -> Iterator[IO[bytes]]:
        key = storage_key(version, name)
        with tempfile.TemporaryFile() as handle:
            try:
                with self.storage.read(key) as chunks:
                    for chunk in chunks:
                        handle.write(chunk)
            except NotFound:
                raise NoValidationData(
                    f"dataset version {version!r} has no published {name}"
                ) from None
            handle.seek(0)
            yield handle


# --- scoring one upload (pure, no database) ----------------------------------------------------


def score_diagnostics(
    validation: ValidationSet, data: bytes, filename: str, request_number: int
) -> dict[str, Any]:
    """The `result` JSON of one upload; raises `SubmissionError` for a file that does not
    cover the validation ids (or is not a valid predictions file)."""
    validated = validate_submission(data, validation.ids, filename=filename)
    predictions = validated.predictions.reindex(validation.ids).to_numpy(np.float64)
    p = predictions[validation.scored]
    scores = validation.scorer.score(p)
    per_era: list[dict[str, Any]] = []
    exposures, with_example = [], []
    for (label, rows), example_ranks in zip(
        validation.era_rows, validation.example_ranks, strict=True
    ):
        exposures.append(float(max_feature_exposure(p[rows], validation.features[rows])[1][0]))
        with_example.append(_pearson(rankdata(p[rows]), example_ranks))
        per_era.append({"era": str(label)})
    corr = scores["corr"].to_numpy(np.float64)
    mmc = scores["mmc"].to_numpy(np.float64)
    fnc = scores["fnc"].to_numpy(np.float64)
    for i, row in enumerate(per_era):
        row.update(
            corr=_finite(corr[i]),
            mmc=_finite(mmc[i]),
            fnc=_finite(fnc[i]),
            feature_exposure=_finite(exposures[i]),
            corr_with_example_preds=_finite(with_example[i]),
            example_corr=_finite(validation.example_corr[i]),
        )
    summary: dict[str, Any] = {"n_eras": len(per_era), "request_number": request_number}
    for name, values in (("corr", corr), ("mmc", mmc), ("corr_plus_mmc", corr + mmc)):
        stats = summary_stats(values)
        summary[f"{name}_mean"] = _finite(stats["mean"])
        summary[f"{name}_std"] = _finite(stats["std"])
        summary[f"{name}_sharpe"] = _finite(stats["sharpe"])
    summary["corr_max_drawdown"] = _finite(summary_stats(corr)["max_drawdown"])
    fnc_stats = summary_stats(fnc)
    summary["fnc_mean"] = _finite(fnc_stats["mean"])
    summary["fnc_std"] = _finite(fnc_stats["std"])
    summary["fnc_sharpe"] = _finite(fnc_stats["sharpe"])
    summary["max_feature_exposure"] = _nanmean(exposures)
    summary["corr_with_example_preds"] = _nanmean(with_example)
    summary["example_corr_mean"] = _finite(summary_stats(validation.example_corr)["mean"])
    summary["corr_corr_with_example"] = _finite(_pearson(corr, validation.example_corr))
    return {
        "rules": RULES,
        "dataset_version": validation.version,
        "feature_set": validation.feature_set,
        "target": validation.target,
        "meta_model": META_MODEL,
        "request_number": request_number,
        "n_rows": validated.n_rows,
        "per_era": per_era,
        "summary": summary,
    }


def _pearson(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Pearson correlation over the pairs where both are finite; NaN if either is constant."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return float("nan")
    x, y = x[keep] - x[keep].mean(), y[keep] - y[keep].mean()
    norm = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y) / norm if norm > 0 else float("nan")


def _nanmean(values: list[float]) -> float | None:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _finite(value: object) -> float | None:
    """JSON has no NaN (and PostgreSQL's JSONB refuses it): non-finite numbers are null."""
    number = float(value)  # type: ignore[arg-type]
    return number if np.isfinite(number) else None


# --- step 3: the worker's side -----------------------------------------------------------------


def claim_next_diagnostics(session: Session, clock: Clock) -> Diagnostics | None:
    """Mark the oldest pending diagnostics `running`, in the caller's transaction.

    One compare-and-set statement (``UPDATE ... WHERE id = <oldest pending> AND status =
    'pending'``), the transaction's first write: of two workers racing for a row, one gets
    it and the other gets None (and may try again). Returns the claimed row.
    """
    oldest = (
        select(Diagnostics.id)
        .where(Diagnostics.status == DiagnosticsStatus.PENDING)
        .order_by(Diagnostics.created_at, Diagnostics.id)
        .limit(1)
        .scalar_subquery()
    )
    claimed = session.scalar(
        update(Diagnostics)
        .where(Diagnostics.id == oldest, Diagnostics.status == DiagnosticsStatus.PENDING)
        .values(status=DiagnosticsStatus.RUNNING, started_at=clock.now())
        .returning(Diagnostics.id)
        .execution_options(synchronize_session=False)
    )
    if claimed is None:
        return None
    return session.get(Diagnostics, claimed, populate_existing=True)


def fail_stale_diagnostics(session: Session, clock: Clock, older_than: timedelta) -> int:
    """Fail every diagnostics `running` since before `older_than` ago (its worker died);
    returns how many. A slow job that finishes later finds its row failed and keeps it so."""
    now = clock.now()
    result = session.execute(
        update(Diagnostics)
        .where(
            Diagnostics.status == DiagnosticsStatus.RUNNING,
            Diagnostics.started_at < now - older_than,
        )
        .values(status=DiagnosticsStatus.FAILED, error=STALE_ERROR, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def run_next_diagnostics(
    sessions: sessionmaker[Session],
    storage: FileStorage,
    clock: Clock,
    validation_loader: ValidationLoader,
) -> Diagnostics | None:
    """Claim and run the oldest pending diagnostics; None when there is none.

    The claim and the outcome are committed in two short transactions; reading the file and
    scoring run between them, outside any. A file that fails validation, a version without
    usable validation data or a vanished file fail the row with a readable `error`; any other
    exception fails it with ``internal error`` (logged) and is not raised. Returns the row as
    stored at the end (`done` or `failed`).
    """
    with transaction(sessions) as session:
        row = claim_next_diagnostics(session, clock)
    if row is None:
        return None
    result: dict[str, Any] | None = None
    error: str | None = None
    try:
        with storage.read(row.file_key) as chunks:
            data = b"".join(chunks)
        result = score_diagnostics(
            validation_loader(row.dataset_version), data, row.filename, row.request_number
        )
    except (SubmissionError, ServiceError) as refusal:
        error = str(refusal)
    except NotFound:
        error = "the uploaded file is gone: upload it again"
    except Exception:
        logger.exception("diagnostics %s failed", row.id)
        error = INTERNAL_ERROR
    return _finish(sessions, clock, row.id, result, error)


def _finish(
    sessions: sessionmaker[Session],
    clock: Clock,
    diagnostics_id: uuid.UUID,
    result: dict[str, Any] | None,
    error: str | None,
) -> Diagnostics | None:
    values: dict[str, Any] = {"finished_at": clock.now()}
    if error is None:
        values.update(status=DiagnosticsStatus.DONE, result=result, error=None)
    else:
        values.update(status=DiagnosticsStatus.FAILED, result=None, error=error)
    with transaction(sessions) as session:
        changed = session.execute(
            update(Diagnostics)
            .where(
                Diagnostics.id == diagnostics_id,
                Diagnostics.status == DiagnosticsStatus.RUNNING,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if not getattr(changed, "rowcount", 0):
            logger.warning(
                "diagnostics %s was no longer running; its outcome is dropped", diagnostics_id
            )
        return session.get(Diagnostics, diagnostics_id, populate_existing=True)


# --- the worker --------------------------------------------------------------------------------


class DiagnosticsWorker(threading.Thread):
    """A daemon thread running pending diagnostics until `stop` is set.

    Each poll fails jobs left `running` for longer than `stale_after` (a worker that died),
    then runs pending diagnostics one after another until none is left, then waits
    `interval` seconds (or until `stop` is set). Nothing escapes the loop: a failing poll is
    logged and retried at the next one. Start it with `start()`; `stop()` sets the event and
    waits for the current job to finish.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        storage: FileStorage,
        clock: Clock,
        validation_loader: ValidationLoader,
        *,
        interval: float = 5.0,
        stale_after: timedelta = timedelta(hours=2),
        stop: threading.Event | None = None,
        on_done: Callable[[Diagnostics], object] | None = None,
    ) -> None:
        super().__init__(name="diagnostics-worker", daemon=True)
        self.sessions, self.storage, self.clock = sessions, storage, clock
        self.validation_loader = validation_loader
        self.interval, self.stale_after = interval, stale_after
        self.stop_event = stop if stop is not None else threading.Event()
        self.on_done = on_done

    def poll(self) -> int:
        """One poll: fail stale jobs, then run pending ones until none is left (or `stop`);
        returns how many ran. Raises what the database raises."""
        with transaction(self.sessions) as session:
            stale = fail_stale_diagnostics(session, self.clock, self.stale_after)
        if stale:
            logger.warning("failed %d diagnostics left running by a stopped worker", stale)
        ran = 0
        while not self.stop_event.is_set():
            row = run_next_diagnostics(
                self.sessions, self.storage, self.clock, self.validation_loader
            )
            if row is None:
                break
            ran += 1
            if self.on_done is not None:
                self.on_done(row)
        return ran

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll()
            except Exception:
                logger.exception("a diagnostics poll failed; trying again in %s s", self.interval)
            self.stop_event.wait(self.interval)

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end and wait (up to `timeout` seconds) for it."""
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout)


__all__ = [
    "DEFAULT_FEATURE_SET",
    "INTERNAL_ERROR",
    "DiagnosticsError",
    "DiagnosticsWorker",
    "NoValidationData",
    "StoredValidationLoader",
    "UnknownDiagnostics",
    "ValidationLoader",
    "ValidationSet",
    "claim_next_diagnostics",
    "diagnostics_upload_key",
    "fail_stale_diagnostics",
    "get_diagnostics",
    "list_diagnostics",
    "prepare_validation",
    "request_diagnostics",
    "run_next_diagnostics",
    "score_diagnostics",
]
