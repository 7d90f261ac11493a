"""Shared machinery of every descriptor calculator: the estimator contract, skip reporting, sampling.

Every calculator follows scikit-learn's contract on *frame batches* (:class:`pyarrow.Table` in
:data:`~monoculture.datasets.frames.FRAME_SCHEMA`):

* ``__init__`` stores its parameters unchanged (so ``get_params`` / ``clone`` / pickling work);
* ``fit(X)`` takes one batch or an iterable of batches, learns what the descriptor needs (species list,
  PCA, reference volumes...) and sets ``feature_names_`` and ``n_features_out_``; it returns ``self``;
* ``transform(batch)`` returns a ``(n_frames, n_features_out_)`` float32 array and never learns;
* ``transform_with_mask(batch)`` returns the same array plus a boolean mask of featurized rows and a list
  of ``(id, reason)`` for the rows that were skipped. Skipped rows are NaN in the array, so ``transform``
  never silently drops or reorders rows: ``X[i]`` always describes frame ``i``.

Subclasses implement ``_fit_batches(batches)`` (optional) and ``_transform_batch(batch)``; the latter
returns the array and a list of ``(row_index, reason)``.

Finite output: a featurized row never holds NaN or inf. A column that does not apply to a frame or is
unknown for it (the crystal columns of a molecule, a frame without stress...) is named in the class
attribute ``imputed_features``; the base class replaces the subclass's NaN there by a documented value and
appends a 0/1 ``*_missing`` indicator column (see :meth:`FrameDescriptor.transform_with_mask`). Any other
non-finite value skips its row with the reason ``"non-finite feature(s) [...]"``, so a metric never sees it.
"""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pyarrow as pa

from ..datasets.errors import UsageError
from ._params import ParamsMixin, not_fitted_error

__all__ = [
    "FrameDescriptor",
    "Featurized",
    "AtomFeatures",
    "RowSample",
    "iter_batches",
    "check_batch",
    "atom_subsample",
    "sampled_atom_features",
    "package_versions",
    "DescriptorSizeError",
]


class DescriptorSizeError(UsageError, ValueError):
    """A descriptor would need more memory than its limit; the message names the options that fix it."""


class Featurized(NamedTuple):
    """Output of :meth:`FrameDescriptor.transform_with_mask`.

    Attributes
    ----------
    X : numpy.ndarray, shape (n_frames, n_features), float32
        One row per frame of the batch, in batch order; skipped rows are all NaN.
    ok : numpy.ndarray, shape (n_frames,), bool
        True where the frame was featurized.
    skipped : list of (str, str)
        ``(frame id, reason)`` for every row where ``ok`` is False, in row order.
    """

    X: np.ndarray
    ok: np.ndarray
    skipped: list[tuple[str, str]]


class AtomFeatures(NamedTuple):
    """Per-atom output of descriptors that have a local-environment mode (``transform_atoms``).

    Attributes
    ----------
    X : numpy.ndarray, shape (n_sampled_atoms, n_features), float32
    frame_index : numpy.ndarray, shape (n_sampled_atoms,), int64
        Row of the batch each atom belongs to.
    atom_index : numpy.ndarray, shape (n_sampled_atoms,), int32
        Index of the atom inside its frame.
    skipped : list of (str, str)
        ``(frame id, reason)`` of frames that contributed no atoms.
    """

    X: np.ndarray
    frame_index: np.ndarray
    atom_index: np.ndarray
    skipped: list[tuple[str, str]]


def check_batch(batch: Any, columns: Iterable[str] = ()) -> pa.Table:
    """Validate that ``batch`` is a frame table holding ``columns``; return it as a :class:`pyarrow.Table`.

    Raises
    ------
    TypeError
        ``batch`` is not a pyarrow Table / RecordBatch.
    ValueError
        A required column is missing.
    """
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    if not isinstance(batch, pa.Table):
        raise TypeError(
            f"expected a pyarrow.Table in monoculture's FRAME_SCHEMA, got {type(batch).__name__}"
        )
    missing = [c for c in columns if c not in batch.column_names]
    if missing:
        raise ValueError(f"frame batch lacks column(s) {missing}; has {batch.column_names}")
    return batch


def iter_batches(X: Any) -> Iterator[pa.Table]:
    """Iterate frame batches from a Table, an iterable of Tables, or a dataset with ``.batches()``."""
    if isinstance(X, (pa.Table, pa.RecordBatch)):
        yield check_batch(X)
        return
    if hasattr(X, "batches") and callable(X.batches):
        X = X.batches()
    for b in X:
        yield check_batch(b)


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of the named distributions (``"not installed"`` when absent)."""
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = "not installed"
    return out


def _stable_seed(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key`` (CRC-32 of the UTF-8 key)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode("utf-8"))])


def atom_subsample(
    ids: list[str], offsets: np.ndarray, max_atoms: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Choose at most ``max_atoms`` atoms of every frame, reproducibly per frame.

    The choice for a frame depends only on ``(seed, frame id)``: it does not change with the batch size,
    the order of frames or the number of processes.

    Parameters
    ----------
    ids : list of str, length n_frames
    offsets : numpy.ndarray, shape (n_frames + 1,)
        Atoms of frame ``i`` are ``offsets[i]:offsets[i + 1]``.
    max_atoms : int or None
        Atoms kept per frame; None keeps every atom.
    seed : int

    Returns
    -------
    frame_index : numpy.ndarray, shape (m,), int64
    atom_index : numpy.ndarray, shape (m,), int32
        Sorted atom indices within each frame.
    """
    counts = np.diff(offsets)
    if max_atoms is None or (counts <= max_atoms).all():
        frame_index = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        atom_index = (np.arange(offsets[-1]) - np.repeat(offsets[:-1], counts)).astype(np.int32)
        return frame_index, atom_index
    fi, ai = [], []
    for i, n in enumerate(counts):
        if n <= max_atoms:
            idx = np.arange(n)
        else:
            idx = np.sort(_stable_seed(seed, ids[i]).choice(n, size=max_atoms, replace=False))
        fi.append(np.full(len(idx), i, dtype=np.int64))
        ai.append(idx.astype(np.int32))
    return np.concatenate(fi), np.concatenate(ai)


def sampled_atom_features(batch: pa.Table, frames: Iterable, compute, width: int, max_atoms: int,
                          random_state: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """Per-atom rows of the reproducible atom subsample (:func:`atom_subsample`) of every frame.

    Parameters
    ----------
    batch : pyarrow.Table
        The frame batch.
    frames : iterable of (row, payload, reason)
        One entry per frame; ``payload`` None means skipped for ``reason``.
    compute : callable (payload, centers) -> numpy.ndarray, shape (len(centers), width)
        Features of the sampled atoms ``centers`` of one frame; a ``ValueError`` skips the frame with its
        message as the reason.
    width : int
        Feature width (for an empty result).
    max_atoms, random_state : int
        Subsample size per frame and its seed.

    Returns
    -------
    (X (n_sampled_atoms, width), frame_index, atom_index, skipped [(id, reason)])
    """
    from ..datasets.frames import atoms_arrays

    ids = batch.column("id").to_pylist()
    frame_index, atom_index = atom_subsample(ids, atoms_arrays(batch).offsets, max_atoms, random_state)
    starts = np.searchsorted(frame_index, np.arange(batch.num_rows + 1))
    blocks, fi, ai, skipped = [], [], [], []
    for i, payload, reason in frames:
        centers = atom_index[starts[i] : starts[i + 1]]
        if payload is None:
            skipped.append((ids[i], reason))
            continue
        try:
            blocks.append(compute(payload, centers))
        except ValueError as exc:
            skipped.append((ids[i], str(exc)))
            continue
        fi.append(frame_index[starts[i] : starts[i + 1]])
        ai.append(centers)
    return (np.concatenate(blocks) if blocks else np.zeros((0, width)),
            np.concatenate(fi) if fi else np.zeros(0, np.int64),
            np.concatenate(ai) if ai else np.zeros(0, np.int32),
            skipped)


class RowSample:
    """Uniform sample of at most ``k`` frames across a stream of batches, deterministic for a seed.

    Each row draws a key from one generator (seeded once, advanced batch by batch); the ``k`` rows with
    the smallest keys are kept (bottom-k sampling). Same batches in the same order and same seed give the
    same sample.

    Parameters
    ----------
    k : int
        Rows to keep.
    seed : int
    """

    def __init__(self, k: int, seed: int):
        self.k = int(k)
        self._rng = np.random.default_rng(seed)
        self._keys = np.zeros(0)
        self._table: pa.Table | None = None

    def update(self, batch: pa.Table) -> None:
        """Offer every row of ``batch`` to the sample."""
        keys = self._rng.random(batch.num_rows)
        table = batch if self._table is None else pa.concat_tables([self._table, batch])
        keys = np.concatenate([self._keys, keys])
        if len(keys) > self.k:
            keep = np.sort(np.argpartition(keys, self.k - 1)[: self.k])
            table = table.take(pa.array(keep))
            keys = keys[keep]
        self._table, self._keys = table, keys

    def result(self) -> pa.Table | None:
        """The sampled rows (in arrival order), or None if no row was offered."""
        return None if self._table is None else self._table.combine_chunks()


class FrameDescriptor(ParamsMixin):
    """Base class of the frame descriptors (see the module docstring for the contract).

    ``get_params`` / ``set_params`` come from :class:`~._params.ParamsMixin`, which keeps scikit-learn's
    contract (``sklearn.base.clone``, ``Pipeline``) without importing scikit-learn; an unfitted descriptor
    raises scikit-learn's ``NotFittedError``.

    Class attributes
    ----------------
    name : str
        Registry name.
    dependencies : tuple of str
        Distributions whose versions determine the output (written in metadata and cache keys).
    required_columns : tuple of str
        Frame-table columns that ``transform`` reads.
    preload : tuple of str
        Modules worth importing once in a fork server before worker processes start.
    imputed_features : dict of str to (float, str)
        Features that can be unknown or not applicable for a frame: ``feature name -> (imputed value,
        indicator name)``. Where ``_transform_batch`` leaves NaN in such a column of a featurized row, the
        value is imputed and the indicator is 1; features may share one indicator (1 where any of them was
        imputed). Indicator columns follow the descriptor's own columns in ``feature_names_``, in order of
        first use.
    """

    name: ClassVar[str] = ""
    dependencies: ClassVar[tuple[str, ...]] = ()
    required_columns: ClassVar[tuple[str, ...]] = ("id",)
    preload: ClassVar[tuple[str, ...]] = ()
    imputed_features: ClassVar[dict[str, tuple[float, str]]] = {}
    revision: ClassVar[int] = 2

    # -- public API ------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "FrameDescriptor":
        """Learn what the descriptor needs from frames.

        Parameters
        ----------
        X : pyarrow.Table, iterable of pyarrow.Table, or object with ``.batches()``
            Frame batches (FRAME_SCHEMA). Iterated exactly once.
        y : ignored

        Returns
        -------
        self
        """
        self._fit_batches(iter_batches(X))
        own = list(self._feature_names())
        self.feature_names_ = np.asarray(own + self._indicator_names(own), dtype=object)
        self.n_features_out_ = len(self.feature_names_)
        return self

    def transform(self, X: pa.Table) -> np.ndarray:
        """Featurize one batch.

        Parameters
        ----------
        X : pyarrow.Table
            A frame batch (FRAME_SCHEMA), ``n_frames`` rows.

        Returns
        -------
        numpy.ndarray, shape (n_frames, n_features_out_), float32
            Row ``i`` describes frame ``i``; frames that could not be featurized are NaN rows (see
            :meth:`transform_with_mask` for the reasons).
        """
        return self.transform_with_mask(X).X

    def transform_with_mask(self, X: pa.Table) -> Featurized:
        """Featurize one batch and report skipped frames.

        Parameters
        ----------
        X : pyarrow.Table
            A frame batch (FRAME_SCHEMA), ``n_frames`` rows.

        Returns
        -------
        Featurized
            ``(X (n_frames, n_features_out_) float32, ok (n_frames,) bool, skipped [(id, reason)])``.
            Rows where ``ok`` is True are finite: NaN in an ``imputed_features`` column is replaced by its
            imputed value (indicator column 1), and a row with any other NaN or inf is skipped with the
            reason ``"non-finite feature(s) [names]"``.
        """
        self._check_fitted()
        batch = check_batch(X, self.required_columns)
        values, skipped_rows = self._transform_batch(batch)
        values = self._impute(np.asarray(values, dtype=np.float32))
        reasons = dict(skipped_rows)
        # the sum is inf/NaN exactly when a value is (float64: no overflow), without an (n, d) mask
        for i in np.flatnonzero(~np.isfinite(values.sum(axis=1, dtype=np.float64))):
            if int(i) not in reasons:
                bad = self.feature_names_[~np.isfinite(values[i])].tolist()
                more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
                reasons[int(i)] = f"non-finite feature(s) {bad[:5]}{more}"
        ok = np.ones(batch.num_rows, dtype=bool)
        skipped: list[tuple[str, str]] = []
        if reasons:
            ids = batch.column("id").to_pylist()
            for i, reason in sorted(reasons.items()):
                ok[i] = False
                values[i] = np.nan
                skipped.append((ids[i], reason))
        return Featurized(values, ok, skipped)

    def fit_transform(self, X: pa.Table, y: Any = None) -> np.ndarray:
        """``fit(X).transform(X)`` for a single batch."""
        return self.fit(X).transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns, shape (n_features_out_,)."""
        self._check_fitted()
        return self.feature_names_.copy()

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description of what determines the output: name, parameters, revision."""
        params = {k: _jsonable(v) for k, v in sorted(self.get_params(deep=False).items())}
        return {"name": self.name, "class": type(self).__qualname__, "params": params, "revision": self.revision}

    def versions(self) -> dict[str, str]:
        """Versions of monoculture and of the libraries this descriptor's output depends on."""
        return package_versions("monoculture", "numpy", *self.dependencies)

    def state_digest(self) -> str:
        """SHA-256 of the pickled fitted state (learned attributes), for cache keys."""
        import pickle

        self._check_fitted()
        learned = {k: v for k, v in sorted(vars(self).items()) if k.endswith("_") and not k.startswith("_")}
        return hashlib.sha256(pickle.dumps(learned, protocol=4)).hexdigest()

    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run."""
        return hasattr(self, "feature_names_")

    # -- to implement ----------------------------------------------------------------------------------
    def _fit_batches(self, batches: Iterator[pa.Table]) -> None:
        """Learn from the batches; the default learns nothing but still consumes the iterator."""
        for _ in batches:
            pass

    def _feature_names(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform_batch(self, batch: pa.Table) -> tuple[np.ndarray, list[tuple[int, str]]]:
        raise NotImplementedError  # pragma: no cover - abstract

    # -- helpers ---------------------------------------------------------------------------------------
    def _impute(self, values: np.ndarray) -> np.ndarray:
        """Fill the NaN of the ``imputed_features`` columns and append the indicator columns.

        ``values`` has the descriptor's own columns (``feature_names_`` without the indicators).
        """
        names = list(self.feature_names_)
        indicators = self._indicator_names(names)
        n_own = len(names) - len(indicators)
        if values.shape[1] != n_own:  # a bug in the subclass, not in the data
            raise RuntimeError(f"{type(self).__name__}._transform_batch gave {values.shape[1]} columns, "
                               f"expected {n_own}")
        if not indicators:
            return values
        flags = np.zeros((values.shape[0], len(indicators)), dtype=np.float32)
        for j, name in enumerate(names[:n_own]):
            if name in self.imputed_features:
                fill, indicator = self.imputed_features[name]
                missing = np.isnan(values[:, j])
                values[missing, j] = fill
                flags[missing, indicators.index(indicator)] = 1.0
        return np.concatenate([values, flags], axis=1)

    def _indicator_names(self, names: list[str]) -> list[str]:
        """Indicator columns that the ``imputed_features`` among ``names`` need, in order of first use."""
        return list(dict.fromkeys(self.imputed_features[n][1] for n in names if n in self.imputed_features))

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise not_fitted_error(f"{type(self).__name__} is not fitted yet: call fit(batches) first")


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v
