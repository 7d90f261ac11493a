"""A mergeable, order-independent reservoir sample of descriptor rows (bottom-k by seeded hash).

Each frame gets the key ``"<dataset>\\x1f<id>"`` and the 64-bit SipHash of that key under a 16-byte
secret derived from the seed (:func:`pandas.util.hash_array`, vectorised, identical on every platform).
The sample is the ``capacity`` frames with the smallest ``(hash, key)``. This is a uniform random sample
without replacement for a given seed, and because "the k smallest" of a union is the k smallest of the
per-part k smallest, ``merge`` is exact, associative and commutative: any batch split and any merge order
give the same sample, in the same (hash) order. Frame ids must be unique within a dataset.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ...datasets.frames import atoms_arrays
from .identity import frame_identity
from .regimes import temperature_class, _T_NAMES  # noqa: F401

__all__ = ["DescriptorSample", "DescriptorReservoir", "hash_keys"]


def hash_keys(keys: np.ndarray, seed: int) -> np.ndarray:
    """Seeded 64-bit hash of string keys, shape (n,) uint64 (SipHash-2-4 via pandas)."""
    secret = f"{int(seed) % 10**16:016d}"
    return pd.util.hash_array(np.asarray(keys, dtype=object), hash_key=secret, categorize=False)


@dataclass
class DescriptorSample:
    """Rows of a reservoir sample, in sample order (ascending hash).

    Attributes
    ----------
    keys : numpy.ndarray of str, shape (n,)
        ``dataset\\x1fid``.
    hashes : numpy.ndarray, shape (n,), uint64
    ids, datasets, formulas, methods, temperature_classes : numpy.ndarray of str, shape (n,)
    species : list of tuple of int, length n
        Distinct atomic numbers of each frame.
    X : numpy.ndarray, shape (n, d), float32
        Descriptor rows.
    n_seen : int
        Frames offered to the reservoir (the population the sample is drawn from).
    identity : numpy.ndarray, shape (n,), uint64
        Identity key of each frame (:func:`~monoculture.audit.coverage.identity.frame_identity`).
    rules, connectivity : numpy.ndarray of str, shape (n,)
        Identity rule of each frame and InChIKey connectivity block (molecules known by SMILES).
    geometry : list of tuple, length n
        ``(numbers, positions (n_atoms, 3) Å or None, cell (3, 3) Å, pbc (3,))`` of each frame, for the
        near-duplicate check.
    """

    keys: np.ndarray
    hashes: np.ndarray
    ids: np.ndarray
    datasets: np.ndarray
    formulas: np.ndarray
    methods: np.ndarray
    temperature_classes: np.ndarray
    species: list = field(default_factory=list)
    X: np.ndarray | None = None
    n_seen: int = 0
    identity: np.ndarray | None = None
    rules: np.ndarray | None = None
    connectivity: np.ndarray | None = None
    geometry: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, idx: np.ndarray) -> "DescriptorSample":
        """Rows ``idx`` (order kept)."""
        idx = np.asarray(idx, dtype=np.int64)
        return DescriptorSample(self.keys[idx], self.hashes[idx], self.ids[idx], self.datasets[idx],
                                self.formulas[idx], self.methods[idx], self.temperature_classes[idx],
                                [self.species[i] for i in idx], self.X[idx], self.n_seen, self.identity[idx],
                                self.rules[idx], self.connectivity[idx], [self.geometry[i] for i in idx])

    @staticmethod
    def concat(parts: list["DescriptorSample"]) -> "DescriptorSample":
        """Rows of all parts, in order; ``n_seen`` summed."""
        parts = [p for p in parts if p is not None]
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        return DescriptorSample(cat("keys"), cat("hashes"), cat("ids"), cat("datasets"), cat("formulas"),
                                cat("methods"), cat("temperature_classes"),
                                [s for p in parts for s in p.species], np.concatenate([p.X for p in parts]),
                                sum(p.n_seen for p in parts), cat("identity"), cat("rules"), cat("connectivity"),
                                [g for p in parts for g in p.geometry])


def _bottom_k(s: DescriptorSample, k: int) -> DescriptorSample:
    order = np.lexsort((s.keys.astype(str), s.hashes))[:k]
    return s.take(order)


class DescriptorReservoir:
    """Bottom-``capacity`` reservoir of descriptor rows keyed by a seeded hash of ``dataset/id``.

    Parameters
    ----------
    capacity : int
        Maximum rows kept.
    seed : int
        Hash seed: a different seed draws a different (equally uniform) sample.
    """

    def __init__(self, capacity: int = 5000, seed: int = 0):
        self.capacity = int(capacity)
        self.seed = int(seed)
        self.sample_: DescriptorSample | None = None
        self.n_seen_ = 0
        self.dim_: int | None = None

    def update(self, batch: pa.Table, descriptors: np.ndarray) -> "DescriptorReservoir":
        """Offer the frames of a batch with their descriptors.

        Parameters
        ----------
        batch : pyarrow.Table
            Frame batch (needs ``id``, ``dataset``, ``formula``, ``species``, ``method``, ``temperature_K``).
        descriptors : numpy.ndarray, shape (batch.num_rows, d)
            One descriptor row per frame, in batch order (cast to float32).
        """
        X = np.asarray(descriptors, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] != batch.num_rows:
            raise ValueError(f"descriptors must have shape ({batch.num_rows}, d), got {X.shape}")
        if self.dim_ is None:
            self.dim_ = X.shape[1]
        elif X.shape[1] != self.dim_:
            raise ValueError(f"descriptor width changed from {self.dim_} to {X.shape[1]}")
        n = batch.num_rows
        if n == 0:
            return self
        self.n_seen_ += n
        keys_arr = pc.binary_join_element_wise(batch.column("dataset"), batch.column("id"), "\x1f")
        keys = np.asarray(keys_arr.to_numpy(zero_copy_only=False), dtype=object)
        h = hash_keys(keys, self.seed)
        cand = np.arange(n)
        if self.sample_ is not None and len(self.sample_) >= self.capacity:
            cand = np.flatnonzero(h <= self.sample_.hashes[-1])
        if cand.size > self.capacity:
            cand = cand[np.lexsort((keys[cand].astype(str), h[cand]))[: self.capacity]]
        if cand.size == 0:
            return self
        taken = batch.take(pa.array(cand))
        ident = frame_identity(taken)
        arrays = atoms_arrays(taken)
        geometry = []
        for i in range(len(arrays)):
            numbers, pos, cell, pbc = arrays.frame(i)
            geometry.append((numbers.copy(), None if pos is None else pos.copy(), cell.copy(), pbc.copy()))
        cols = taken.select(["id", "dataset", "formula", "species", "method", "temperature_K"]).to_pydict()
        t = np.array([np.nan if v is None else v for v in cols["temperature_K"]], dtype=np.float64)
        new = DescriptorSample(
            keys=keys[cand].astype(str), hashes=h[cand], ids=np.array(cols["id"], dtype=str),
            datasets=np.array(cols["dataset"], dtype=str), formulas=np.array(cols["formula"], dtype=str),
            methods=np.array(cols["method"], dtype=str),
            temperature_classes=np.array([_T_NAMES[i] for i in temperature_class(t)], dtype=str),
            species=[tuple(int(z) for z in s) for s in cols["species"]], X=X[cand], n_seen=0,
            identity=ident.key, rules=ident.rule, connectivity=ident.connectivity, geometry=geometry,
        )
        self._absorb(new)
        return self

    def _absorb(self, new: DescriptorSample) -> None:
        merged = new if self.sample_ is None else DescriptorSample.concat([self.sample_, new])
        merged.n_seen = 0
        self.sample_ = _bottom_k(merged, self.capacity)

    def merge(self, other: "DescriptorReservoir") -> "DescriptorReservoir":
        """Merge another reservoir of the same capacity and seed; returns self."""
        if (other.capacity, other.seed) != (self.capacity, self.seed):
            raise ValueError("cannot merge reservoirs with different capacity or seed")
        if other.dim_ is not None and self.dim_ is not None and other.dim_ != self.dim_:
            raise ValueError(f"descriptor widths differ: {self.dim_} vs {other.dim_}")
        self.dim_ = self.dim_ if self.dim_ is not None else other.dim_
        self.n_seen_ += other.n_seen_
        if other.sample_ is not None:
            self._absorb(other.sample_)
        return self

    def sample(self) -> DescriptorSample | None:
        """The current sample (ascending hash order) with ``n_seen`` set; None before any row."""
        if self.sample_ is None:
            return None
        s = self.sample_.take(np.arange(len(self.sample_)))
        s.n_seen = self.n_seen_
        return s
