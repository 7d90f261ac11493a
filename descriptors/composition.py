"""Composition descriptor: element fractions and Magpie-style statistics of element properties.

Vectorised over a whole batch from the ``species`` / ``species_counts`` list columns: no pymatgen object
is built per frame. The element property table is built once per process from pymatgen's element data,
with its gaps filled by a documented rule (:func:`element_property_table`, cached), and indexed by atomic
number.

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

__all__ = [
    "CompositionDescriptor", "element_property_table", "pymatgen_element_properties", "imputed_element_properties",
    "ELEMENT_PROPERTIES", "IMPUTED_ELEMENT_PROPERTIES", "IMPUTATION_RULE", "SECONDARY_SOURCES", "MAX_FRACTION_Z",
]

#: Element fractions are reported for Z = 1..MAX_FRACTION_Z (hydrogen to lawrencium).
MAX_FRACTION_Z = 103

#: ``(name, description with units)`` of the element properties, in output order. Values pymatgen lacks
#: are filled by :data:`IMPUTATION_RULE` (which elements: :data:`IMPUTED_ELEMENT_PROPERTIES`).
ELEMENT_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("Z", "atomic number"),
    ("atomic_mass", "atomic mass (amu)"),
    ("mendeleev_no", "Mendeleev number (Pettifor ordering)"),
    ("row", "period"),
    ("group", "group 1-18 (lanthanides and actinides: 3)"),
    ("X", "Pauling electronegativity"),
    ("atomic_radius", "empirical atomic radius (Å); the calculated one where pymatgen has no empirical one"),
    ("molar_volume", "molar volume of the element (cm^3/mol)"),
    ("melting_point", "melting point of the element (K)"),
    ("ionization_energy", "first ionization energy (eV)"),
    ("electron_affinity", "electron affinity (eV)"),
    ("NsValence", "s electrons outside the noble-gas core"),
    ("NpValence", "p electrons outside the noble-gas core"),
    ("NdValence", "d electrons outside the noble-gas core"),
    ("NfValence", "f electrons outside the noble-gas core"),
    ("NValence", "all electrons outside the noble-gas core"),
)

#: A second pymatgen attribute per property, read where the first has no value (step 1 of
#: :data:`IMPUTATION_RULE`). pymatgen's only noble-gas ``atomic_radius`` (Ar, 0.71 Å) is already the
#: calculated radius, so the noble gases get the same kind of value.
SECONDARY_SOURCES: dict[str, str] = {"atomic_radius": "atomic_radius_calculated"}

#: How a value pymatgen does not have is filled (once, in :func:`element_property_table`).
IMPUTATION_RULE = (
    "1. the element's own value of the property's second pymatgen attribute (SECONDARY_SOURCES), if any; "
    "2. else the value of the element of the same group (pymatgen's group, 3 for lanthanides and "
    "actinides) nearest in Z that has a pymatgen value, from step 1 included (the lighter one on a tie); "
    "if no element of the group has one, the element nearest in Z that has one"
)


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split(":") for item in text.split())


_SUPERHEAVY = "Rf:Hf Db:Ta Sg:W Bh:Re Hs:Os Mt:Ir Ds:Pt Rg:Au Cn:Hg Nh:Tl Fl:Pb Mc:Bi Lv:Po Ts:At Og:Rn"
_VALENCE = "Db:Ta Sg:W Bh:Re Hs:Os Mt:Ir Ds:Pt Rg:Au Cn:Hg Nh:Tl Fl:Pb Mc:Bi Lv:Po Ts:At Og:Rn"
_CALC = "atomic_radius_calculated"

#: ``property -> {filled element: where its value came from}`` under :data:`IMPUTATION_RULE` with pymatgen
#: 2026.10.24 (the tests check it against :func:`imputed_element_properties`, i.e. the installed one). The
#: source is an element symbol (that element's value) or a pymatgen attribute of the element itself. Noble gases:
#: Pauling electronegativity of He, Ne, Ar from Kr (3.0); atomic radius of He, Ne, Kr, Xe, Rn from the
#: calculated radius (0.31, 0.38, 0.88, 1.08, 1.2 Å). Elements from Z = 104 take their lighter group
#: homologue; actinides Cm-Lr their nearest actinide with a value.
IMPUTED_ELEMENT_PROPERTIES: dict[str, dict[str, str]] = {
    "mendeleev_no": _pairs(_SUPERHEAVY),
    "X": _pairs("He:Kr Ne:Kr Ar:Kr " + _SUPERHEAVY),
    "atomic_radius": _pairs(
        f"He:{_CALC} Ne:{_CALC} Kr:{_CALC} Xe:{_CALC} At:I Rn:{_CALC} Fr:Cs Cm:Am Bk:Am Cf:Am Es:Am Fm:Am "
        "Md:Am No:Am Lr:Am Rf:Hf Db:Ta Sg:W Bh:Re Hs:Os Mt:Ir Ds:Pt Rg:Au Cn:Hg Nh:Tl Fl:Pb Mc:Bi Lv:Po "
        "Ts:I Og:Rn"),
    "molar_volume": _pairs(
        "At:I Fr:Cs Fm:Es Md:Es No:Es Lr:Es "
        "Rf:Hf Db:Ta Sg:W Bh:Re Hs:Os Mt:Ir Ds:Pt Rg:Au Cn:Hg Nh:Tl Fl:Pb Mc:Bi Lv:Po Ts:I Og:Rn"),
    "melting_point": _pairs(_SUPERHEAVY),
    "ionization_energy": _pairs("Rg:Au Cn:Hg Nh:Tl Fl:Pb Mc:Bi Lv:Po Ts:At Og:Rn"),
    "electron_affinity": _pairs("Rf:Hf Db:Ta Sg:W Bh:Re Hs:Os Mt:Ir Ds:Pt Cn:Hg Fl:Pb"),
    **{name: _pairs(_VALENCE) for name in ("NsValence", "NpValence", "NdValence", "NfValence", "NValence")},
}

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


def _float_or_nan(el, attribute: str) -> float:
    try:
        v = getattr(el, attribute)
    except (AttributeError, ValueError, KeyError, TypeError):
        return float("nan")
    v = float("nan") if v is None else float(v)
    return v if np.isfinite(v) else float("nan")


@lru_cache(maxsize=2)
def pymatgen_element_properties(secondary: bool = False) -> np.ndarray:
    """Element properties as pymatgen has them, indexed by atomic number (gaps are NaN).

    Parameters
    ----------
    secondary : bool, default False
        Read the :data:`SECONDARY_SOURCES` attributes instead (NaN for the other properties).

    Returns
    -------
    numpy.ndarray, shape (119, n_properties), float64
        Row ``Z`` holds the properties of element ``Z`` in the order of :data:`ELEMENT_PROPERTIES`;
        row 0 is NaN. A value pymatgen does not have is NaN (listed in :data:`IMPUTED_ELEMENT_PROPERTIES`).
    """
    from pymatgen.core.periodic_table import Element

    table = np.full((_MAX_Z_TABLE + 1, len(ELEMENT_PROPERTIES)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about missing data for heavy elements
        for z in range(1, _MAX_Z_TABLE + 1):
            el = Element.from_Z(z)
            if secondary:
                for j, (name, _) in enumerate(ELEMENT_PROPERTIES):
                    if name in SECONDARY_SOURCES:
                        table[z, j] = _float_or_nan(el, SECONDARY_SOURCES[name])
                continue
            try:
                ns, np_, nd, nf = _valence_counts(el.electronic_structure)
                derived = {"NsValence": ns, "NpValence": np_, "NdValence": nd, "NfValence": nf,
                           "NValence": ns + np_ + nd + nf}
            except KeyError:  # pymatgen has no configuration beyond Z = 104
                derived = dict.fromkeys(("NsValence", "NpValence", "NdValence", "NfValence", "NValence"),
                                        float("nan"))
            for j, (name, _) in enumerate(ELEMENT_PROPERTIES):
                table[z, j] = derived[name] if name in derived else _float_or_nan(el, name)
    table.setflags(write=False)
    return table


def _fills() -> dict[tuple[int, int], tuple[float, str]]:
    """``(Z, property column) -> (value, source)`` for every gap of pymatgen's table (:data:`IMPUTATION_RULE`).

    ``source`` is the :data:`SECONDARY_SOURCES` attribute (step 1) or the donor's element symbol (step 2).
    """
    from ase.data import chemical_symbols

    raw, second = pymatgen_element_properties(), pymatgen_element_properties(secondary=True)
    out = {}
    step1 = np.isnan(raw) & ~np.isnan(second)
    for z, j in zip(*np.nonzero(step1)):
        out[(int(z), int(j))] = (float(second[z, j]), SECONDARY_SOURCES[ELEMENT_PROPERTIES[j][0]])
    base = np.where(step1, second, raw)
    group = raw[:, [n for n, _ in ELEMENT_PROPERTIES].index("group")]
    zs = np.arange(1, _MAX_Z_TABLE + 1)
    for j in range(raw.shape[1]):
        have = ~np.isnan(base[1:, j])
        for z in zs[~have]:
            same = have & (group[1:] == group[z])
            candidates = zs[same] if same.any() else zs[have]
            donor = int(candidates[np.lexsort((candidates, np.abs(candidates - z)))[0]])
            out[(int(z), j)] = (float(base[donor, j]), chemical_symbols[donor])
    return out


def imputed_element_properties() -> dict[str, dict[str, str]]:
    """The gaps of pymatgen's table and where their values come from, as :data:`IMPUTED_ELEMENT_PROPERTIES`.

    Returns
    -------
    dict of str to dict of str to str
        ``property -> {element symbol: source}`` (a donor element symbol or a pymatgen attribute name),
        properties without gaps left out.
    """
    from ase.data import chemical_symbols

    out: dict[str, dict[str, str]] = {}
    for (z, j), (_, source) in sorted(_fills().items(), key=lambda kv: (kv[0][1], kv[0][0])):
        out.setdefault(ELEMENT_PROPERTIES[j][0], {})[chemical_symbols[z]] = source
    return out


@lru_cache(maxsize=1)
def element_property_table() -> np.ndarray:
    """Element properties indexed by atomic number, complete for Z = 1..118.

    pymatgen's values (:func:`pymatgen_element_properties`) with every gap filled by
    :data:`IMPUTATION_RULE` (the filled pairs: :data:`IMPUTED_ELEMENT_PROPERTIES`).

    Returns
    -------
    numpy.ndarray, shape (119, n_properties), float64
        Row ``Z`` holds the properties of element ``Z`` in the order of :data:`ELEMENT_PROPERTIES`; row 0
        (no element) is NaN, every other value is finite.
    """
    table = pymatgen_element_properties().copy()
    for (z, j), (value, _) in _fills().items():
        table[z, j] = value
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

    Every element Z = 1..118 has every property: values pymatgen lacks (e.g. the Pauling electronegativity
    of He, Ne, Ar) are filled once by :data:`IMPUTATION_RULE`, listed in :data:`IMPUTED_ELEMENT_PROPERTIES`,
    so every row is finite. A frame with an element beyond Z = 118 is skipped (non-finite features).

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

        # complete for Z = 1..118; a larger Z reads row 0 (NaN), and the base class skips that frame
        P = element_property_table()[np.where(species <= _MAX_Z_TABLE, species, 0)][:, self._property_columns()]
        w = frac[:, None]
        mean = np.add.reduceat(w * P, starts, axis=0)
        dev = P - mean[row]
        std = np.sqrt(np.add.reduceat(w * dev * dev, starts, axis=0))
        pmin = np.minimum.reduceat(P, starts, axis=0)
        pmax = np.maximum.reduceat(P, starts, axis=0)
        stats = np.stack([mean, std, pmin, pmax, pmax - pmin], axis=2).reshape(n, -1)
        blocks.append(stats)
        return np.concatenate(blocks, axis=1).astype(np.float32), []
