"""Composition descriptor: element fractions and Magpie-style statistics of element properties.

Vectorised over a whole batch from the ``species`` / ``species_counts`` list columns: no pymatgen object
is built per frame. The element property table is built once per process from pymatgen's element data
(:func:`element_property_table`, cached) and indexed by atomic number.

Why not matminer's ``ElementProperty``: it builds a :class:`pymatgen.core.Composition` and loops over
elements and properties in Python for every structure (tens of microseconds to milliseconds each); the same
statistics are a handful of ``numpy.ufunc.reduceat`` calls over the flattened species of a batch.
"""
from __future__ import annotations

import re
import warnings
from functools import lru_cache

import numpy as np
import pyarrow as pa

from .base import FrameDescriptor

__all__ = ["CompositionDescriptor", "element_property_table", "ELEMENT_PROPERTIES", "MAX_FRACTION_Z"]

#: Element fractions are reported for Z = 1..MAX_FRACTION_Z (hydrogen to lawrencium).
MAX_FRACTION_Z = 103

#: ``(name, description with units)`` of the element properties, in output order.
ELEMENT_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("Z", "atomic number"),
    ("atomic_mass", "atomic mass (amu)"),
    ("mendeleev_no", "Mendeleev number (Pettifor ordering)"),
    ("row", "period"),
    ("group", "group 1-18 (lanthanides and actinides: 3)"),
    ("X", "Pauling electronegativity; missing for He, Ne, Ar"),
    ("atomic_radius", "empirical atomic radius (Å); missing for He, Ne, Kr, Xe, At, Rn, Fr, Cm-Lr"),
    ("molar_volume", "molar volume of the element (cm^3/mol); missing for At, Fr, Fm-Lr"),
    ("melting_point", "melting point of the element (K)"),
    ("ionization_energy", "first ionization energy (eV)"),
    ("electron_affinity", "electron affinity (eV)"),
    ("NsValence", "s electrons outside the noble-gas core"),
    ("NpValence", "p electrons outside the noble-gas core"),
    ("NdValence", "d electrons outside the noble-gas core"),
    ("NfValence", "f electrons outside the noble-gas core"),
    ("NValence", "all electrons outside the noble-gas core"),
)

_STATS = ("mean", "std", "min", "max", "range")
_MAX_Z_TABLE = 118
_SHELL = re.compile(r"^(\d+)([spdf])(\d+)$")


def _valence_counts(electronic_structure: str) -> tuple[int, int, int, int]:
    """(s, p, d, f) electrons outside the bracketed noble-gas core of a pymatgen configuration string."""
    counts = {"s": 0, "p": 0, "d": 0, "f": 0}
    for token in electronic_structure.split("."):
        m = _SHELL.match(token)
        if m:  # the "[Ar]" core token does not match
            counts[m.group(2)] += int(m.group(3))
    return counts["s"], counts["p"], counts["d"], counts["f"]


@lru_cache(maxsize=1)
def element_property_table() -> np.ndarray:
    """Element properties indexed by atomic number, from pymatgen's element data.

    Returns
    -------
    numpy.ndarray, shape (119, n_properties), float64
        Row ``Z`` holds the properties of element ``Z`` in the order of :data:`ELEMENT_PROPERTIES`;
        row 0 is NaN. A value pymatgen does not have is NaN (see the descriptions for which elements).
    """
    from pymatgen.core.periodic_table import Element

    table = np.full((_MAX_Z_TABLE + 1, len(ELEMENT_PROPERTIES)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about missing data for heavy elements
        for z in range(1, _MAX_Z_TABLE + 1):
            el = Element.from_Z(z)
            try:
                ns, np_, nd, nf = _valence_counts(el.electronic_structure)
                derived = {"NsValence": ns, "NpValence": np_, "NdValence": nd, "NfValence": nf,
                           "NValence": ns + np_ + nd + nf}
            except KeyError:  # pymatgen has no configuration beyond Z = 103
                derived = dict.fromkeys(("NsValence", "NpValence", "NdValence", "NfValence", "NValence"),
                                        float("nan"))
            for j, (name, _) in enumerate(ELEMENT_PROPERTIES):
                if name in derived:
                    table[z, j] = derived[name]
                    continue
                try:
                    v = getattr(el, name)
                except (AttributeError, ValueError, KeyError, TypeError):
                    v = None
                if v is not None:
                    v = float(v)
                    table[z, j] = v if np.isfinite(v) else np.nan
    table.setflags(write=False)
    return table


class CompositionDescriptor(FrameDescriptor):
    """Element-fraction vector plus Magpie-style statistics of element properties.

    Features, in order:

    * ``frac_<El>`` for Z = 1..103: atom fraction of each element (sums to 1 unless the frame holds
      elements beyond Z = 103, whose fractions are not reported);
    * for each property ``p`` of :data:`ELEMENT_PROPERTIES`: ``p_mean``, ``p_std`` (atom-fraction
      weighted mean and population standard deviation), ``p_min``, ``p_max``, ``p_range`` over the
      elements present.

    Missing values: an element without a value for ``p`` is left out of that property's statistics and
    the remaining fractions are renormalised; when no element of the frame has a value the five
    statistics are NaN (the row is not skipped). Properties with gaps are listed in
    :data:`ELEMENT_PROPERTIES`.

    Parameters
    ----------
    fractions : bool, default True
        Include the 103 element fractions.
    properties : list of str or None, default None
        Subset of :data:`ELEMENT_PROPERTIES` names to describe; None means all 16.

    Attributes
    ----------
    feature_names_ : numpy.ndarray of str, shape (n_features_out_,)
    n_features_out_ : int
    """

    name = "composition"
    dependencies = ("pymatgen",)
    required_columns = ("id", "species", "species_counts")
    preload = ("pymatgen.core.periodic_table",)

    def __init__(self, fractions: bool = True, properties: list[str] | None = None):
        self.fractions = fractions
        self.properties = properties

    def _property_columns(self) -> list[int]:
        names = [n for n, _ in ELEMENT_PROPERTIES]
        if self.properties is None:
            return list(range(len(names)))
        unknown = [p for p in self.properties if p not in names]
        if unknown:
            raise ValueError(f"unknown element properties {unknown}; choose from {names}")
        return [names.index(p) for p in self.properties]

    def _fit_batches(self, batches) -> None:
        self._property_columns()  # validate parameters
        element_property_table()  # build the table once, here rather than on first transform
        for _ in batches:
            pass

    def _feature_names(self) -> list[str]:
        from ase.data import chemical_symbols

        names = [f"frac_{chemical_symbols[z]}" for z in range(1, MAX_FRACTION_Z + 1)] if self.fractions else []
        for j in self._property_columns():
            names += [f"{ELEMENT_PROPERTIES[j][0]}_{s}" for s in _STATS]
        return names

    def _transform_batch(self, batch: pa.Table) -> tuple[np.ndarray, list[tuple[int, str]]]:
        sp_col = batch.column("species").combine_chunks()
        offsets = sp_col.offsets.to_numpy().astype(np.int64)
        offsets -= offsets[0]
        species = sp_col.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        counts = (
            batch.column("species_counts").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        ).astype(np.float64)
        n = batch.num_rows
        lens = np.diff(offsets)
        if n == 0:
            return np.zeros((0, len(self.feature_names_)), np.float32), []
        starts = offsets[:-1]
        row = np.repeat(np.arange(n), lens)
        n_atoms = np.add.reduceat(counts, starts)
        frac = counts / n_atoms[row]

        blocks = []
        if self.fractions:
            fr = np.zeros((n, MAX_FRACTION_Z), dtype=np.float64)
            keep = species <= MAX_FRACTION_Z
            fr[row[keep], species[keep] - 1] = frac[keep]
            blocks.append(fr)

        cols = self._property_columns()
        P = element_property_table()[species][:, cols]  # (m, p)
        known = ~np.isnan(P)
        Pz = np.where(known, P, 0.0)
        w = frac[:, None] * known
        wsum = np.add.reduceat(w, starts, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.add.reduceat(w * Pz, starts, axis=0) / wsum
            dev = np.where(known, P - mean[row], 0.0)
            std = np.sqrt(np.add.reduceat(w * dev * dev, starts, axis=0) / wsum)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pmin = np.fmin.reduceat(P, starts, axis=0)
            pmax = np.fmax.reduceat(P, starts, axis=0)
        none = wsum == 0
        mean[none] = np.nan
        std[none] = np.nan
        stats = np.stack([mean, std, pmin, pmax, pmax - pmin], axis=2).reshape(n, -1)
        blocks.append(stats)
        return np.concatenate(blocks, axis=1).astype(np.float32), []
