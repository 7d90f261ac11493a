"""Shared helpers of the coverage analyzers: element tables and flat numpy views of frame-batch columns.

Everything here works on whole columns at once (no per-row Python loop): list columns are read as
``(offsets, flat values)`` pairs, nullable scalar columns as float64 arrays with NaN for null.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "N_Z",
    "MAX_TABLE_Z",
    "SYMBOLS",
    "symbol",
    "TECH_RELEVANT",
    "TECH_RELEVANT_Z",
    "list_column",
    "float_column",
    "string_codes",
    "merge_count_dicts",
    "sorted_counts",
]

#: Size of the per-element count arrays (index = Z, 0 unused, up to oganesson Z = 118).
N_Z = 119
#: The "periodic table" of the coverage fractions: Z = 1 .. 94 (hydrogen to plutonium, the elements found
#: in nature in more than trace amounts; heavier ones are counted when present but never called missing).
MAX_TABLE_Z = 94


def _symbols() -> tuple[str, ...]:
    from ase.data import chemical_symbols

    return tuple(chemical_symbols[:N_Z])


#: Chemical symbol of each Z (index 0 is ``"X"``).
SYMBOLS: tuple[str, ...] = _symbols()


def symbol(z: int) -> str:
    """Chemical symbol of atomic number ``z``."""
    return SYMBOLS[int(z)]


#: "Technologically relevant" elements used by the ``elements`` analyzer and the priorities table.
#: Definition (documented choice): the elements of the EU Critical Raw Materials list of 2023 (Regulation
#: (EU) 2024/1252, Annex II: Sb, As, Al (bauxite), Ba (baryte), Be, Bi, B, Co, C (coking coal, graphite),
#: Cu, F (fluorspar), Ga, Ge, Hf, He, the heavy and light rare earths (Y, La, Ce, Pr, Nd, Sm, Eu, Gd, Tb,
#: Dy, Ho, Er, Tm, Yb, Lu), Li, Mg, Mn, Ni, Nb, the platinum-group metals (Ru, Rh, Pd, Os, Ir, Pt), P,
#: Sc, Si, Sr, Ta, Ti, W, V), plus the elements that make up most functional and structural materials
#: (batteries, semiconductors, photovoltaics, catalysts, steels): H, N, O, Na, S, K, Ca, Cr, Fe, Zn, Se,
#: Zr, Mo, Ag, Cd, In, Sn, Te, Au, Pb.
TECH_RELEVANT: tuple[str, ...] = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "K", "Ca", "Sc",
    "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Sr", "Y", "Zr", "Nb",
    "Mo", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "Ba", "La", "Ce", "Pr", "Nd", "Sm", "Eu",
    "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Os", "Ir", "Pt", "Au", "Pb", "Bi",
)
#: Atomic numbers of :data:`TECH_RELEVANT`, ascending.
TECH_RELEVANT_Z: tuple[int, ...] = tuple(sorted(SYMBOLS.index(s) for s in TECH_RELEVANT))


def list_column(batch: pa.Table, name: str, dtype) -> tuple[np.ndarray, np.ndarray]:
    """A list column as ``(offsets, values)``.

    Parameters
    ----------
    batch : pyarrow.Table
        Frame batch.
    name : str
        Name of a ``list<...>`` column without nulls (``species``, ``species_counts``).
    dtype : numpy dtype
        dtype of the returned values.

    Returns
    -------
    offsets : numpy.ndarray, shape (n_frames + 1,), int64
        Values of frame ``i`` are ``values[offsets[i]:offsets[i + 1]]``.
    values : numpy.ndarray, shape (n_values,)
    """
    col = batch.column(name).combine_chunks()
    offsets = col.offsets.to_numpy().astype(np.int64)
    values = col.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]].astype(dtype, copy=False)
    return offsets - offsets[0], values


def float_column(batch: pa.Table, name: str) -> np.ndarray:
    """A nullable numeric column as float64, null -> NaN; shape (n_frames,).

    A column missing from the batch reads as all NaN.
    """
    if name not in batch.column_names:
        return np.full(batch.num_rows, np.nan)
    col = batch.column(name)
    if col.null_count:
        col = pc.fill_null(pc.cast(col, pa.float64()), np.nan)
    return col.to_numpy().astype(np.float64, copy=False)


def string_codes(batch: pa.Table, name: str, null_label: str = "unknown") -> tuple[np.ndarray, list[str]]:
    """Dictionary-encode a string column.

    Returns
    -------
    codes : numpy.ndarray, shape (n_frames,), int64
        Index of each frame's label in ``labels``.
    labels : list of str
        Distinct labels of this batch (null mapped to ``null_label``), in order of first appearance.
    """
    col = batch.column(name) if name in batch.column_names else pa.nulls(batch.num_rows, pa.string())
    col = pc.fill_null(col, null_label)
    enc = col.combine_chunks().dictionary_encode() if isinstance(col, pa.ChunkedArray) else col.dictionary_encode()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    labels = [str(x) for x in enc.dictionary.to_pylist()]
    return codes, labels


def merge_count_dicts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """Sum of two ``{label: count}`` dicts (a new dict; inputs untouched)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + int(v)
    return out


def sorted_counts(counts: dict[str, int]) -> dict[str, int]:
    """``{label: count}`` ordered by count (descending), then label: a deterministic JSON order."""
    return {k: int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def hill_numbers(counts: np.ndarray) -> dict[str, float]:
    """Diversity of a count vector as Hill numbers, Shannon evenness and Gini coefficient.

    Parameters
    ----------
    counts : numpy.ndarray, shape (n_categories,)
        Non-negative counts over a fixed universe of categories (absent categories as 0).

    Returns
    -------
    dict
        ``hill_q0`` (number of categories with a non-zero count), ``hill_q1`` (exp of the Shannon entropy
        of ``p = counts / counts.sum()``, natural log), ``hill_q2`` (``1 / sum p^2``), ``shannon_entropy``
        (nats), ``shannon_evenness`` (Pielou: ``H / ln(q0)``, 1.0 when ``q0 <= 1``), ``gini`` (Gini
        coefficient over the whole universe, absent categories included: 0 = all equal,
        ``1 - 1/n`` = everything in one category). All 0 for an empty vector.
    """
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total <= 0:
        return {"hill_q0": 0.0, "hill_q1": 0.0, "hill_q2": 0.0, "shannon_entropy": 0.0,
                "shannon_evenness": 0.0, "gini": 0.0}
    p = c[c > 0] / total
    q0 = float(p.size)
    h = float(-(p * np.log(p)).sum())
    q2 = float(1.0 / (p * p).sum())
    evenness = h / np.log(q0) if q0 > 1 else 1.0
    x = np.sort(c)
    n = x.size
    # Gini = sum_i (2 i - n - 1) x_(i) / (n sum x), i = 1..n on ascending values
    gini = float(((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * total))
    return {"hill_q0": q0, "hill_q1": float(np.exp(h)), "hill_q2": q2, "shannon_entropy": h,
            "shannon_evenness": float(evenness), "gini": gini}


__all__.append("hill_numbers")
