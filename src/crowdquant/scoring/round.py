"""Batch scoring of one round: prepare once, then score each daily target update cheaply.

`PreparedRound` takes the round's (N × K) prediction matrix (no NaN: submissions are
validated before scoring), its N ids, the meta model and optionally the (N × F) features, and
does once everything that does not depend on the target:

* CORR: pow1.5(Φ⁻¹(tie-kept rank)) of each submission, centred and scaled to unit length;
* MMC: Φ⁻¹(tie-kept rank) of each submission orthogonalised against the Gaussianised meta
  model;
* FNC (with features): the Gaussianised predictions neutralised to the features
  (`neutralise.neutralised_predictions`, one factorisation of the features for all chunks),
  then transformed as for CORR;
* with `top_bottom`, each submission's top and bottom rows and their values.

`score(targets)` is then a few matrix-vector products, O(N·K), per target update, and gives
the numbers `corr_scores`, `mmc_scores` and `neutralise.fnc_scores` give on the same rows
(rows are sorted by id, as the reference does). As there, a constant submission scores CORR
NaN, MMC 0 and FNC 0 (also FNC 0 for a submission the features explain entirely).

Targets with missing ids or NaN: the reference drops those rows and re-ranks everything over
the rows left (20 % rule on both sides), so `score` does the same by preparing a sub-round on
those rows — as costly as preparing — and keeps the last few sub-rounds, keyed by the rows
kept, for the following updates. For FNC the sub-round keeps the predictions neutralised over
all N rows (the reference neutralises before aligning to the targets).

The predictions matrix is referenced, not copied: leave it unchanged while the round is used.
Instead of `features`, a custom `neutraliser` may be given: a function mapping (N, c)
Gaussianised predictions to (N, c) neutralised ones, column by column (it is called on
chunks of submissions; a column it returns as NaN scores FNC 0). Memory: about three
(K × N) float64 matrices are kept (≈ 1.4 GB for N = 6 000, K = 10 000).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from crowdquant.scoring.align import (
    DEFAULT_MAX_FILTERED_RATIO,
    AlignmentError,
    aligned_ids,
    check_unique_ids,
)
from crowdquant.scoring.contribution import (
    contribution_targets,
    gaussianised_meta_model,
    orthogonalised_rows,
)
from crowdquant.scoring.corr import (
    CORR_EXPONENT,
    checked_top_bottom,
    corr_targets,
    prediction_matrix,
    target_vector,
    top_bottom_indices,
    unit_rows,
)
from crowdquant.scoring.neutralise import Neutraliser, neutralised_predictions
from crowdquant.scoring.ranking import (
    FloatArray,
    column_rows,
    doubled_average_ranks,
    for_column_chunks,
    gaussian_table,
    gaussianised_rows,
)

NeutraliseFn = Callable[[FloatArray], FloatArray]
"""(N, c) Gaussianised predictions → (N, c) feature-neutralised predictions, per column."""
RowSource = Callable[[int, int], FloatArray]
"""Columns start:stop → their (stop − start, N) neutralised rows."""

IndexArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
SUBROUNDS_KEPT = 4


@dataclass(frozen=True)
class RoundScores:
    """Per-submission scores of one target update, in the submissions' column order."""

    corr: FloatArray
    mmc: FloatArray
    fnc: FloatArray | None
    n_rows: int
    """How many rows were scored (ids with a target)."""

    def frame(self, names: Sequence[str] | pd.Index | None = None) -> pd.DataFrame:
        """The scores as a frame, a row per submission."""
        columns = {"corr": self.corr, "mmc": self.mmc}
        if self.fnc is not None:
            columns["fnc"] = self.fnc
        return pd.DataFrame(columns, index=None if names is None else pd.Index(names))


@dataclass
class _Side:
    """One prepared score (CORR, MMC or FNC): unit rows, or top/bottom rows and values."""

    rows: FloatArray  # (K, N) all rows, or (K, 2n) the kept rows' values
    valid: BoolArray  # False where the submission scores NaN (or 0, if zeroed)
    positions: IndexArray | None  # (K, 2n) with top_bottom
    zeroed: BoolArray | None = None  # FNC: columns scoring 0 (constant or fully explained)


class PreparedRound:
    """A round's target-independent work, done once; `score` per target update."""

    def __init__(
        self,
        predictions: npt.ArrayLike,
        ids: Sequence[str] | pd.Index,
        meta_model: npt.ArrayLike,
        *,
        features: npt.ArrayLike | None = None,
        neutraliser: NeutraliseFn | None = None,
        names: Sequence[str] | pd.Index | None = None,
        top_bottom: int | None = None,
        max_filtered_ratio: float = DEFAULT_MAX_FILTERED_RATIO,
        chunk_size: int = 256,
        workers: int | None = None,
    ) -> None:
        """Prepare from the (N, K) predictions and (N,) meta model, rows in `ids` order.

        `features` ((N, F), rows in `ids` order, no NaN) enables FNC; `neutraliser` is the
        custom alternative (see the module docstring). `names` labels the K submissions (for
        `score_frame`). Raises AlignmentError for duplicate ids; ValueError for NaN in the
        predictions or meta model, mismatched shapes, a constant meta model, or
        `2·top_bottom > N`.
        """
        index = pd.Index(ids)
        check_unique_ids(pd.Series(0, index=index), "ids")
        matrix = prediction_matrix(predictions)
        if len(index) != matrix.shape[0]:
            raise ValueError(f"{len(index)} ids for {matrix.shape[0]} prediction rows")
        if names is not None and len(names) != matrix.shape[1]:
            raise ValueError(f"{len(names)} names for {matrix.shape[1]} submissions")
        meta = target_vector(meta_model, matrix.shape[0], "meta model")
        sorted_ids, order = index.sort_values(return_indexer=True)
        self._sort_order: IndexArray | None = None
        if not index.equals(sorted_ids):  # rows sorted by id, as the reference scores them
            self._sort_order = np.asarray(order, dtype=np.intp)
            meta = meta[order]  # the predictions are reordered chunk by chunk
        if features is not None:
            if neutraliser is not None:
                raise ValueError("give either features or a neutraliser, not both")
            neutraliser = self._feature_neutraliser(features, len(index))
        self._setup(matrix, self._sort_order, sorted_ids, meta, names, top_bottom)
        self.max_filtered_ratio = max_filtered_ratio
        self._neutraliser = neutraliser
        self._chunk_size, self._workers = chunk_size, workers
        gauss, self._corr = self._gaussianise()
        fn = neutraliser
        self._build(gauss, None if fn is None else lambda a, b: self._neutral_rows(fn, gauss[a:b]))

    def _feature_neutraliser(self, features: npt.ArrayLike, n_rows: int) -> NeutraliseFn:
        """`neutralised_predictions` against the features, factored once."""
        matrix = np.asarray(features)
        if matrix.ndim == 1:
            matrix = matrix[:, None]
        if matrix.ndim != 2 or matrix.shape[0] != n_rows:
            raise ValueError(f"features must have {n_rows} rows (one per id), got {matrix.shape}")
        if self._sort_order is not None:
            matrix = matrix[self._sort_order]
        factored = Neutraliser(matrix, name="features")
        return lambda gaussian_preds: neutralised_predictions(gaussian_preds, factored)

    def _setup(
        self,
        matrix: FloatArray,
        row_order: IndexArray | None,
        ids: pd.Index,
        meta: FloatArray,
        names: Sequence[str] | pd.Index | None,
        top_bottom: int | None,
    ) -> None:
        self.ids: pd.Index = ids
        """The row ids, sorted."""
        self.n_rows, self.n_submissions = matrix.shape
        self.names = None if names is None else pd.Index(names)
        self.top_bottom = checked_top_bottom(top_bottom, self.n_rows)
        # the caller's matrix is referenced, not copied (nor sorted: row_order does that)
        self._predictions, self._row_order, self._meta = matrix, row_order, meta
        self._subrounds: OrderedDict[bytes, PreparedRound] = OrderedDict()

    def _sorted_rows(self, start: int, stop: int) -> FloatArray:
        """Submissions start:stop as (stop − start, N) rows, in sorted-id order."""
        rows = column_rows(self._predictions, start, stop)
        return rows if self._row_order is None else rows[:, self._row_order]

    def _build(self, gauss: FloatArray, fnc_source: RowSource | None) -> None:
        """FNC from `fnc_source` (before `gauss` is overwritten), then MMC in place."""
        self._fnc = None if fnc_source is None else self._fnc_side(fnc_source)
        self._mmc = self._contribution_side(gauss)

    def _neutral_rows(self, fn: NeutraliseFn, gauss_rows: FloatArray) -> FloatArray:
        """Apply a neutraliser to (c, N) Gaussianised rows; (c, N) neutralised rows back."""
        view = gauss_rows.T.view()
        view.flags.writeable = False
        neutral = np.asarray(fn(view), dtype=np.float64)
        if neutral.shape != view.shape:
            raise ValueError(f"the neutraliser returned shape {neutral.shape} for {view.shape}")
        if np.may_share_memory(neutral, gauss_rows):
            return np.array(neutral.T, order="C")
        return np.ascontiguousarray(neutral.T)

    @property
    def has_fnc(self) -> bool:
        """Whether `score` gives FNC (features or a neutraliser were given)."""
        return self._fnc is not None

    # preparation ---------------------------------------------------------------------------

    def _new_side(self) -> _Side:
        width = 2 * self.top_bottom if self.top_bottom else self.n_rows
        return _Side(
            rows=np.empty((self.n_submissions, width)),
            valid=np.ones(self.n_submissions, dtype=bool),
            positions=(
                np.empty((self.n_submissions, width), dtype=np.intp) if self.top_bottom else None
            ),
        )

    def _store_pearson_rows(self, side: _Side, values: FloatArray, start: int, stop: int) -> None:
        """Unit rows for a Pearson correlation (with top_bottom: over each row's kept rows)."""
        if side.positions is not None:
            positions = top_bottom_indices(values, self.top_bottom)
            side.positions[start:stop] = positions
            values = np.take_along_axis(values, positions, axis=1)
        side.rows[start:stop], valid = unit_rows(values)
        side.valid[start:stop] &= valid

    def _gaussianise(self) -> tuple[FloatArray, _Side]:
        """Φ⁻¹(tie-kept rank) rows (K, N), and the CORR side built from the same ranks."""
        gauss = np.empty((self.n_submissions, self.n_rows))
        corr = self._new_side()
        plain = gaussian_table(self.n_rows)
        powered = gaussian_table(self.n_rows, CORR_EXPONENT)

        def work(start: int, stop: int) -> None:
            doubled, _ = doubled_average_ranks(self._sorted_rows(start, stop))
            gauss[start:stop] = plain[doubled]
            self._store_pearson_rows(corr, powered[doubled], start, stop)

        for_column_chunks(self.n_submissions, work, self._chunk_size, self._workers)
        return gauss, corr

    def _fnc_side(self, source: RowSource) -> _Side:
        """FNC: the CORR transform of the neutralised rows; NaN or constant rows score 0."""
        side = self._new_side()
        side.zeroed = np.zeros(self.n_submissions, dtype=bool)

        def work(start: int, stop: int) -> None:
            rows = source(start, stop)
            broken = np.isnan(rows).any(axis=1)
            rows[broken] = 0.0
            broken |= np.ptp(rows, axis=1) == 0
            assert side.zeroed is not None
            side.zeroed[start:stop] = broken
            self._store_pearson_rows(side, gaussianised_rows(rows, CORR_EXPONENT), start, stop)

        for_column_chunks(self.n_submissions, work, self._chunk_size, self._workers)
        return side

    def _contribution_side(self, gauss: FloatArray) -> _Side:
        """MMC: the Gaussianised rows orthogonalised against the Gaussianised meta model."""
        meta = gaussianised_meta_model(self._meta)
        if not self.top_bottom:
            side = _Side(rows=gauss, valid=np.ones(self.n_submissions, dtype=bool), positions=None)
        else:
            side = self._new_side()

        def work(start: int, stop: int) -> None:
            perpendicular = orthogonalised_rows(gauss[start:stop], meta)
            if side.positions is None:
                side.rows[start:stop] = perpendicular
                return
            positions = top_bottom_indices(perpendicular, self.top_bottom)
            side.positions[start:stop] = positions
            side.rows[start:stop] = np.take_along_axis(perpendicular, positions, axis=1)

        for_column_chunks(self.n_submissions, work, self._chunk_size, self._workers)
        return side

    # scoring -------------------------------------------------------------------------------

    def score(self, targets: pd.Series | npt.ArrayLike, target_pow15: bool = True) -> RoundScores:
        """CORR, MMC (and FNC) of every submission against one target update.

        `targets` is a Series indexed by id (extra ids allowed: they shift the CORR centring,
        as in the reference) or an (N,) array in the order of the `ids` given. Ids without a
        target (missing or NaN) are dropped under the 20 % rule (AlignmentError beyond it)
        and the round is re-ranked over the rows left (a cached sub-round). `target_pow15`
        applies to CORR and FNC (the reference's FNC always powers the target).
        """
        values, target_mean = self._aligned_targets(targets)
        kept = ~np.isnan(values)
        if kept.all():
            return self._score(values, target_mean, target_pow15)
        return self._subround(kept)._score(values[kept], target_mean, target_pow15)

    def score_frame(
        self, targets: pd.Series | npt.ArrayLike, target_pow15: bool = True
    ) -> pd.DataFrame:
        """`score` as a frame with a row per submission (indexed by `names` if given)."""
        return self.score(targets, target_pow15).frame(self.names)

    def _aligned_targets(self, targets: pd.Series | npt.ArrayLike) -> tuple[FloatArray, float]:
        """The targets on the sorted ids (NaN where missing) and the centre for CORR."""
        if isinstance(targets, pd.Series):
            stand_in = pd.Series(0.0, index=self.ids)
            aligned_ids({"targets": targets, "predictions": stand_in}, self.max_filtered_ratio)
            values = targets.reindex(self.ids).to_numpy(dtype=np.float64)
            return values, float(targets.mean())
        values = np.asarray(targets, dtype=np.float64)
        if values.shape != (self.n_rows,):
            raise ValueError(f"targets must have shape ({self.n_rows},), got {values.shape}")
        if self._sort_order is not None:
            values = values[self._sort_order]
        share = np.count_nonzero(~np.isnan(values)) / self.n_rows
        if share < 1 - self.max_filtered_ratio:
            raise AlignmentError(
                "targets do not have enough non-NaN rows, must have >= "
                f"{(1 - self.max_filtered_ratio) * 100:.1f}% overlapping ids"
            )
        return values, float(np.nanmean(values))

    def _subround(self, kept: BoolArray) -> PreparedRound:
        """This round restricted to the rows kept, re-ranked (FNC: not re-neutralised)."""
        key = np.packbits(kept).tobytes()
        if key in self._subrounds:
            self._subrounds.move_to_end(key)
            return self._subrounds[key]
        rows = np.flatnonzero(kept) if self._row_order is None else self._row_order[kept]
        sub = PreparedRound.__new__(PreparedRound)
        sub._setup(
            self._predictions[rows],
            None,
            self.ids[kept],
            self._meta[kept],
            self.names,
            self.top_bottom,
        )
        sub.max_filtered_ratio = self.max_filtered_ratio
        sub._sort_order, sub._neutraliser = None, None
        sub._chunk_size, sub._workers = self._chunk_size, self._workers
        gauss, sub._corr = sub._gaussianise()
        fn = self._neutraliser

        def neutral_kept_rows(start: int, stop: int) -> FloatArray:
            assert fn is not None
            full = gaussianised_rows(self._sorted_rows(start, stop))
            return np.ascontiguousarray(self._neutral_rows(fn, full)[:, kept])

        sub._build(gauss, None if fn is None else neutral_kept_rows)
        self._subrounds[key] = sub
        while len(self._subrounds) > SUBROUNDS_KEPT:
            self._subrounds.popitem(last=False)
        return sub

    def _score(self, values: FloatArray, target_mean: float, target_pow15: bool) -> RoundScores:
        powered = corr_targets(values, target_pow15, target_mean)
        return RoundScores(
            corr=self._pearson(self._corr, powered),
            mmc=self._covariance(self._mmc, contribution_targets(values)),
            fnc=None if self._fnc is None else self._pearson(self._fnc, powered),
            n_rows=len(values),
        )

    def _pearson(self, side: _Side, target: FloatArray) -> FloatArray:
        if side.positions is None:
            centred = target - target.mean()
            numerators = side.rows @ centred
            norms = np.full(len(numerators), np.sqrt(centred @ centred))
        else:
            kept = target[side.positions]
            kept -= kept.mean(axis=1, keepdims=True)
            numerators = np.einsum("ij,ij->i", side.rows, kept)
            norms = np.sqrt(np.einsum("ij,ij->i", kept, kept))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = numerators / norms
        out[~side.valid | (norms == 0)] = np.nan
        if side.zeroed is not None:
            out[side.zeroed] = 0.0
        return np.asarray(out)

    def _covariance(self, side: _Side, target: FloatArray) -> FloatArray:
        if side.positions is None:
            return np.asarray((side.rows @ target) / self.n_rows)
        kept = target[side.positions]
        return np.asarray(np.einsum("ij,ij->i", side.rows, kept) / (2 * self.top_bottom))
