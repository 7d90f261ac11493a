"""Global structure descriptors: density, volume per atom, symmetry, lattice; molecular counts.

Everything except the space group is vectorised over the batch; the space group needs one spglib call
per periodic frame.
"""
from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa

from ..datasets.frames import atoms_arrays
from .base import FrameDescriptor

__all__ = [
    "StructureDescriptor", "crystal_system_code", "CRYSTAL_SYSTEMS", "AMU_PER_A3_TO_G_PER_CM3", "FEATURES",
    "FEATURE_SETS",
]

#: 1 amu/Å^3 in g/cm^3.
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660

#: Crystal systems in the order of their numeric code (1..7) and the last space group of each.
CRYSTAL_SYSTEMS = (
    ("triclinic", 2), ("monoclinic", 15), ("orthorhombic", 74), ("tetragonal", 142),
    ("trigonal", 167), ("hexagonal", 194), ("cubic", 230),
)

#: Every feature, in output order.
FEATURES = (
    "is_periodic", "n_atoms", "n_elements", "volume_per_atom_A3", "density_g_cm3",
    "spacegroup_number", "crystal_system_code", "a_A", "b_A", "c_A", "alpha_deg", "beta_deg", "gamma_deg",
    "n_heavy_atoms", "charge_e", "spin_multiplicity",
)

#: Named feature subsets (``features=``). ``"invariant"`` keeps what does not depend on the cell chosen
#: to store a structure (supercell, setting, origin) nor on a symmetry tolerance: atom counts and lattice
#: lengths/angles as stored change with the supercell, and the space group (and crystal system) of a
#: thermally rattled frame is P1 by design, so those would put copies of one material far apart in a
#: distance-based audit. It is what the combined ``composition+structure`` descriptor uses.
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "all": FEATURES,
    "invariant": ("is_periodic", "volume_per_atom_A3", "density_g_cm3", "charge_e", "spin_multiplicity"),
}

_CELL = ("volume_per_atom_A3", "density_g_cm3", "a_A", "b_A", "c_A", "alpha_deg", "beta_deg", "gamma_deg")


def crystal_system_code(spacegroup: np.ndarray) -> np.ndarray:
    """Crystal system code 1 (triclinic) .. 7 (cubic) of space-group numbers (NaN stays NaN).

    Parameters
    ----------
    spacegroup : numpy.ndarray, shape (n,), float
        International space-group numbers 1..230 or NaN.

    Returns
    -------
    numpy.ndarray, shape (n,), float64
    """
    sg = np.asarray(spacegroup, dtype=np.float64)
    edges = np.array([last for _, last in CRYSTAL_SYSTEMS], dtype=np.float64)
    code = np.searchsorted(edges, sg, side="left").astype(np.float64) + 1.0
    code[~np.isfinite(sg)] = np.nan
    return code


class StructureDescriptor(FrameDescriptor):
    """Global descriptors of a structure; columns that do not apply are imputed, with missing indicators.

    Features (units in the names): ``is_periodic`` (1 if pbc on all three axes), ``n_atoms``,
    ``n_elements``, ``volume_per_atom_A3``, ``density_g_cm3`` (atomic masses from ASE), ``spacegroup_number``
    (spglib), ``crystal_system_code`` (1 triclinic, 2 monoclinic, 3 orthorhombic, 4 tetragonal, 5 trigonal,
    6 hexagonal, 7 cubic), lattice lengths ``a_A, b_A, c_A`` and angles ``alpha_deg, beta_deg,
    gamma_deg`` of the cell as stored (not reduced), then ``n_heavy_atoms`` (Z > 1), ``charge_e`` and
    ``spin_multiplicity`` (2S+1, from the frame table), in that order, restricted to ``features``.

    Not applicable or unknown (imputed value, indicator column appended after the features, see
    :attr:`~.base.FrameDescriptor.imputed_features`):

    * cell columns (volume .. angles) of a frame not periodic in all three directions or with a zero
      volume: 0, ``cell_missing`` = 1;
    * ``spacegroup_number`` and ``crystal_system_code`` of such a frame, or where spglib finds no
      symmetry: 0, ``spacegroup_missing`` = 1;
    * unknown ``charge_e``: 0 (neutral), ``charge_missing`` = 1;
    * unknown ``spin_multiplicity``: 1 (closed shell), ``spin_missing`` = 1.

    Parameters
    ----------
    symprec : float, default 0.01
        spglib distance tolerance (Å): atoms closer than this to a symmetry image count as mapped. 0.01 Å
        is pymatgen's ``SpacegroupAnalyzer`` default; thermally rattled frames (displacements of ~0.05 Å
        and more) come out P1 by design, so the space group describes the frame as stored.
    angle_tolerance : float, default 5.0
        spglib angle tolerance (degrees); -1 uses spglib's own rule.
    features : str or list of str, default "all"
        A name of :data:`FEATURE_SETS` (``"all"``: the 16 features; ``"invariant"``: ``is_periodic``,
        ``volume_per_atom_A3``, ``density_g_cm3``, ``charge_e``, ``spin_multiplicity``, the ones fit for
        distances between frames) or a list of :data:`FEATURES` names (output keeps the order of
        :data:`FEATURES`). spglib runs only when a space-group column is asked for.

    Attributes
    ----------
    feature_names_ : numpy.ndarray of str, shape (n_features_out_,)
        The selected features, then the indicators their imputation needs (``cell_missing``,
        ``spacegroup_missing``, ``charge_missing``, ``spin_missing``): 20 columns for ``"all"``, 8 for
        ``"invariant"``.
    n_features_out_ : int
    """

    name = "structure"
    dependencies = ("spglib", "ase")
    required_columns = ("id", "numbers", "positions", "cell", "pbc", "species", "charge", "spin")
    preload = ("spglib", "ase.data")
    imputed_features = {
        **{name: (0.0, "cell_missing") for name in _CELL},
        "spacegroup_number": (0.0, "spacegroup_missing"),
        "crystal_system_code": (0.0, "spacegroup_missing"),
        "charge_e": (0.0, "charge_missing"),
        "spin_multiplicity": (1.0, "spin_missing"),
    }

    def __init__(self, symprec: float = 0.01, angle_tolerance: float = 5.0, features: str | list[str] = "all"):
        self.symprec = symprec
        self.angle_tolerance = angle_tolerance
        self.features = features

    def _selected(self) -> list[str]:
        if isinstance(self.features, str):
            if self.features not in FEATURE_SETS:
                raise ValueError(f"unknown structure feature set {self.features!r}; choose from "
                                 f"{sorted(FEATURE_SETS)} or give a list of {list(FEATURES)}")
            chosen = set(FEATURE_SETS[self.features])
        else:
            chosen = set(self.features)
            unknown = sorted(chosen - set(FEATURES))
            if unknown or not chosen:
                raise ValueError(f"unknown structure features {unknown or '(none given)'}; "
                                 f"choose from {list(FEATURES)}")
        return [f for f in FEATURES if f in chosen]

    def _fit_batches(self, batches) -> None:
        self._selected()  # validate parameters
        for _ in batches:
            pass

    def _feature_names(self) -> list[str]:
        return self._selected()

    def _transform_batch(self, batch: pa.Table):
        from ase.data import atomic_masses

        n = batch.num_rows
        arr = atoms_arrays(batch)
        counts = np.diff(arr.offsets)
        periodic = arr.pbc.all(axis=1)
        out = np.full((n, len(FEATURES)), np.nan)
        col = {name: j for j, name in enumerate(FEATURES)}
        out[:, col["is_periodic"]] = periodic
        out[:, col["n_atoms"]] = counts
        out[:, col["n_elements"]] = np.diff(batch.column("species").combine_chunks().offsets.to_numpy())
        z = arr.numbers.astype(np.int64)
        if n:
            starts = arr.offsets[:-1]
            nonempty = counts > 0
            mass = np.zeros(n)
            heavy = np.zeros(n)
            mass[nonempty] = np.add.reduceat(atomic_masses[z], starts[nonempty])
            heavy[nonempty] = np.add.reduceat((z > 1).astype(np.float64), starts[nonempty])
            out[:, col["n_heavy_atoms"]] = heavy

            cells = arr.cells
            vol = np.abs(np.linalg.det(cells))
            good = periodic & (vol > 1e-8)
            lengths = np.linalg.norm(cells, axis=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                def angle(u, v):
                    c = np.einsum("ij,ij->i", cells[:, u], cells[:, v]) / (lengths[:, u] * lengths[:, v])
                    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))
                crystal = {
                    "volume_per_atom_A3": vol / counts,
                    "density_g_cm3": mass / vol * AMU_PER_A3_TO_G_PER_CM3,
                    "a_A": lengths[:, 0], "b_A": lengths[:, 1], "c_A": lengths[:, 2],
                    "alpha_deg": angle(1, 2), "beta_deg": angle(0, 2), "gamma_deg": angle(0, 1),
                }
            for name, values in crystal.items():
                out[good, col[name]] = values[good]
            names = set(self.feature_names_)
            if {"spacegroup_number", "crystal_system_code"} & names:
                sg = np.full(n, np.nan)
                for i in np.flatnonzero(good & arr.has_positions):
                    sg[i] = self._spacegroup(arr, int(i))
                out[:, col["spacegroup_number"]] = sg
                out[:, col["crystal_system_code"]] = crystal_system_code(sg)
        for name, column in (("charge_e", "charge"), ("spin_multiplicity", "spin")):
            out[:, col[name]] = (
                batch.column(column).cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
            )
        return out[:, [col[name] for name in self._selected()]], []

    def _spacegroup(self, arr, i: int) -> float:
        import spglib

        numbers, pos, cell, _ = arr.frame(i)
        frac = np.linalg.solve(cell.T, pos.T).T
        with warnings.catch_warnings():
            # spglib 2.5+ warns about its legacy "return None on failure" mode, which is what we use
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = spglib.get_symmetry_dataset(
                (cell, frac, numbers.astype(np.int32)),
                symprec=float(self.symprec),
                angle_tolerance=float(self.angle_tolerance),
            )
        return float("nan") if ds is None else float(ds.number)
