"""Small files in the schemas of LeMat-Bulk, LeMat-Traj, ColabFit and ASE-column parquet, written with pyarrow
at test time (the schemas of ../shared/FORMATS.md), and the frame-table values each row must give, computed
here independently of the reader (numpy, by hand)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

GPa_PER_EV_A3 = 160.21766208
F64 = pa.float64()
VEC = pa.list_(pa.list_(F64))

#: Non-symmetric cells (rows a, b, c): a transposed cell changes positions' fractional coordinates and the
#: Voigt off-diagonals of nothing, so tests compare the rows as written.
CELL_A = [[3.1, 0.2, 0.3], [0.4, 4.2, 0.5], [0.6, 0.7, 5.3]]
CELL_B = [[4.0, 0.0, 0.0], [1.0, 3.5, 0.0], [0.5, 0.25, 6.0]]


def species_json(names: dict) -> str:
    """OPTIMADE species list as LeMat writes it: {name: [symbols]} (concentration 1)."""
    return json.dumps([{"mass": None, "name": name, "attached": None, "nattached": None,
                        "concentration": [1] * len(symbols), "original_name": None, "chemical_symbols": symbols}
                       for name, symbols in names.items()])


LEMAT_BULK_SCHEMA = pa.schema([
    ("elements", pa.list_(pa.string())), ("nsites", pa.int32()), ("chemical_formula_anonymous", pa.string()),
    ("chemical_formula_reduced", pa.string()), ("chemical_formula_descriptive", pa.string()),
    ("nelements", pa.int8()), ("dimension_types", pa.list_(pa.int8())), ("nperiodic_dimensions", pa.int8()),
    ("lattice_vectors", VEC), ("immutable_id", pa.string()), ("cartesian_site_positions", VEC),
    ("species", pa.string()), ("species_at_sites", pa.list_(pa.string())), ("last_modified", pa.string()),
    ("elements_ratios", pa.list_(F64)), ("stress_tensor", VEC), ("energy", F64), ("magnetic_moments", pa.list_(F64)),
    ("forces", VEC), ("total_magnetization", F64), ("dos_ef", F64), ("functional", pa.string()),
    ("cross_compatibility", pa.bool_()), ("entalpic_fingerprint", pa.string()),
])
_TRAJ_DROP = {"magnetic_moments", "total_magnetization", "dos_ef", "entalpic_fingerprint"}
LEMAT_TRAJ_SCHEMA = pa.schema([f for f in LEMAT_BULK_SCHEMA if f.name not in _TRAJ_DROP] + [
    pa.field("energy_corrected", F64), pa.field("space_group_it_number", pa.int32()), pa.field("id", pa.string()),
    pa.field("relaxation_step", pa.int32()), pa.field("relaxation_number", pa.int32()),
])


def _lemat_row(immutable_id, sites, species, positions, cell, energy, forces, stress, functional, **extra):
    elements = sorted({s for s in sites})
    row = dict(elements=elements, nsites=len(sites), chemical_formula_anonymous="", chemical_formula_reduced="",
               chemical_formula_descriptive="", nelements=len(elements), dimension_types=[1, 1, 1],
               nperiodic_dimensions=3, lattice_vectors=cell, immutable_id=immutable_id,
               cartesian_site_positions=positions, species=species, species_at_sites=sites,
               last_modified="2024-11-20T00:00:00", elements_ratios=[1.0 / len(elements)] * len(elements),
               stress_tensor=stress, energy=energy, magnetic_moments=None, forces=forces, total_magnetization=None,
               dos_ef=None, functional=functional, cross_compatibility=True, entalpic_fingerprint="x")
    row.update(extra)
    return row


def lemat_bulk_rows() -> list[dict]:
    """Three frames: CuAu2 with forces and stress (PBE), FeO without forces or stress (OQMD, SCAN), a site
    species named ``Fe1`` (symbol Fe); and one disordered row (skipped)."""
    return [
        _lemat_row("mp-1", ["Cu", "Au", "Au"], species_json({"Au": ["Au"], "Cu": ["Cu"]}),
                   [[0.0, 0.0, 0.0], [1.5, 1.0, 0.5], [0.2, 2.5, 3.0]], CELL_A, -12.5,
                   [[0.01, -0.02, 0.03], [-0.04, 0.05, -0.06], [0.03, -0.03, 0.03]],
                   [[10.0, 1.0, 2.0], [1.0, -20.0, 3.0], [2.0, 3.0, 30.0]], "pbe"),
        _lemat_row("oqmd-7", ["Fe", "O"], species_json({"Fe": ["Fe"], "O": ["O"]}),
                   [[0.0, 0.0, 0.0], [2.0, 2.1, 2.2]], CELL_B, None, None, None, "scan"),
        _lemat_row("agm002", ["Fe1", "Fe1", "O"], species_json({"Fe1": ["Fe"], "O": ["O"]}),
                   [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.5]], CELL_B, -20.0,
                   [[0.0, 0.0, 0.1], [0.0, 0.1, 0.0], [0.0, 0.0, -0.2]], None, "pbesol"),
        _lemat_row("mp-9", ["X1", "O"], species_json({"X1": ["Fe", "Co"], "O": ["O"]}),
                   [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], CELL_A, -5.0, None, None, "pbe"),
    ]


def write_lemat_bulk(path: Path, rows=None, row_group_size=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows or lemat_bulk_rows(), schema=LEMAT_BULK_SCHEMA), path,
                   row_group_size=row_group_size)
    return path


def lemat_traj_rows() -> list[dict]:
    """Three frames of one MP trajectory (steps 0-2; the last without forces or stress)."""
    out = []
    for step in range(3):
        has = step < 2
        row = _lemat_row("mp-5", ["Si", "Si", "O"], species_json({"O": ["O"], "Si": ["Si"]}),
                         [[0.0, 0.1 * step, 0.0], [1.5, 1.0, 0.5], [0.2, 2.5, 3.0]], CELL_A, -30.0 - step,
                         [[0.5, -0.2, 0.1], [-0.5, 0.2, 0.0], [0.0, 0.0, -0.1]] if has else None,
                         [[-5.0, 0.5, 0.0], [0.5, 15.0, -1.0], [0.0, -1.0, 25.0]] if has else None, "pbe",
                         energy_corrected=-31.0 - step, space_group_it_number=1, id=f"mp-5-0-pbe-{step}",
                         relaxation_step=step, relaxation_number=0)
        for k in _TRAJ_DROP:
            row.pop(k)
        out.append(row)
    return out


def write_lemat_traj(path: Path, rows=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows or lemat_traj_rows(), schema=LEMAT_TRAJ_SCHEMA), path)
    return path


COLABFIT_COMMON = [
    ("property_id", pa.string()), ("property_hash", pa.string()), ("configuration_hash", pa.string()),
    ("structure_hash", pa.string()), ("last_modified", pa.timestamp("us")), ("dataset_id", pa.string()),
    ("multiplicity", pa.int32()), ("software", pa.string()), ("method", pa.string()), ("energy", F64),
    ("atomic_forces", VEC), ("cauchy_stress", VEC), ("cauchy_stress_volume_normalized", pa.bool_()),
    ("electronic_band_gap", F64), ("formation_energy", F64), ("max_force_norm", F64),
    ("configuration_id", pa.string()), ("cell", VEC), ("positions", VEC), ("pbc", pa.list_(pa.bool_())),
    ("chemical_formula_hill", pa.string()), ("elements", pa.list_(pa.string())), ("atomic_numbers", pa.list_(pa.int32())),
    ("nsites", pa.int32()), ("nelements", pa.int32()), ("nperiodic_dimensions", pa.int32()),
    ("dimension_types", pa.list_(pa.int32())), ("names", pa.list_(pa.string())), ("labels", pa.list_(pa.string())),
]
COLABFIT_2025 = pa.schema(COLABFIT_COMMON + [
    ("hash", pa.string()), ("property_metadata_path", pa.string()), ("configuration_metadata_path", pa.string()),
    ("configuration_metadata", pa.string()), ("property_metadata", pa.string()),
])
COLABFIT_TOOLS = pa.schema(COLABFIT_COMMON + [
    ("metadata", pa.string()), ("has_forces", pa.bool_()), ("has_stress", pa.bool_()), ("element_filter", pa.string()),
])


def colabfit_rows(new_schema: bool = False) -> list[dict]:
    """Five rows: a crystal with stress (DFT-PBE+U), the same with a volume-normalised stress (virial), a
    molecule (wB97M-V, charge -1, spin 2, multiplicity 5 = duplicates), a crystal without forces or stress,
    a molecule in a box (pbc derived True, dimension_types 0)."""
    zeros = [[0.0] * 3] * 3
    vol_a = abs(np.linalg.det(np.array(CELL_A)))
    stress = [[0.01, 0.002, -0.003], [0.002, -0.02, 0.004], [-0.003, 0.004, 0.03]]
    meta_key = "metadata" if new_schema else "property_metadata"

    def row(pid, numbers, positions, cell, pbc, dims, method, energy, forces, stress, normalized, meta=None,
            multiplicity=1):
        r = dict(property_id=pid, property_hash="1", configuration_hash="2", structure_hash="3", last_modified=None,
                 dataset_id="DS_abcdefghijkl_0", multiplicity=multiplicity, software="VASP", method=method,
                 energy=energy, atomic_forces=forces, cauchy_stress=stress, cauchy_stress_volume_normalized=normalized,
                 electronic_band_gap=None, formation_energy=None, max_force_norm=None,
                 configuration_id="CO_" + pid[3:], cell=cell, positions=positions, pbc=pbc, chemical_formula_hill="",
                 elements=[], atomic_numbers=numbers, nsites=len(numbers), nelements=len(set(numbers)),
                 nperiodic_dimensions=sum(dims), dimension_types=dims, names=None, labels=None)
        if new_schema:
            r.update(metadata=meta, has_forces=forces is not None, has_stress=stress is not None, element_filter="")
        else:
            r.update(hash="4", property_metadata_path=None, configuration_metadata_path=None,
                     configuration_metadata=None, property_metadata=meta)
        if meta_key != "metadata":
            r.pop("metadata", None)
        return r

    return [
        row("PO_1", [14, 8, 8], [[0.0, 0.0, 0.0], [1.0, 0.5, 0.2], [2.0, 1.5, 3.0]], CELL_A, [True] * 3, [1, 1, 1],
            "DFT-PBE+U", -20.0, [[0.1, 0.0, -0.1], [0.0, 0.2, 0.0], [-0.1, -0.2, 0.1]], stress, False),
        row("PO_2", [14, 8, 8], [[0.0, 0.0, 0.0], [1.0, 0.5, 0.2], [2.0, 1.5, 3.0]], CELL_A, [True] * 3, [1, 1, 1],
            "DFT-PBE", -21.0, [[0.1, 0.0, -0.1], [0.0, 0.2, 0.0], [-0.1, -0.2, 0.1]],
            (np.array(stress) * vol_a).tolist(), True),
        row("PO_3", [8, 1, 1], [[0.0, 0.0, 0.1], [0.76, 0.0, -0.5], [-0.76, 0.0, -0.5]], zeros, [False] * 3,
            [0, 0, 0], "DFT-wB97M-V", -2080.0, [[0.0, 0.0, 0.3], [0.1, 0.0, -0.15], [-0.1, 0.0, -0.15]], None, False,
            meta=json.dumps({"charge": -1, "spin": 2}), multiplicity=5),
        row("PO_4", [26, 26], [[0.0, 0.0, 0.0], [1.4, 1.4, 1.4]], CELL_B, [True] * 3, [1, 1, 1], "DFT-PBE", -16.0,
            None, None, False),
        row("PO_5", [6, 8], [[5.0, 5.0, 5.0], [5.0, 5.0, 6.13]], [[10.0, 0, 0], [0, 10.0, 0], [0, 0, 10.0]],
            [True] * 3, [0, 0, 0], "DFT-wB97M-V", -3000.0, [[0.0, 0.0, 0.5], [0.0, 0.0, -0.5]], None, False),
    ]


def write_colabfit(path: Path, new_schema: bool = False, rows=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = COLABFIT_TOOLS if new_schema else COLABFIT_2025
    pq.write_table(pa.Table.from_pylist(rows or colabfit_rows(new_schema), schema=schema), path,
                   compression="zstd")
    return path


def write_colabfit_folder(folder: Path, name: str = "OMat24_train_aimd_from_PBE_1000_npt", shards: int = 2) -> Path:
    """A ColabFit dataset folder as on Hugging Face: README (configs default -> co/*.parquet, info ->
    ds.parquet), ``co/co_N.parquet`` shards, ``ds.parquet``."""
    rows = colabfit_rows()
    for k in range(shards):
        part = [dict(r, property_id=f"{r['property_id']}_{k}") for r in rows]
        write_colabfit(folder / "co" / f"co_{k}.parquet", rows=part)
    pq.write_table(pa.table({"id": ["DS_abcdefghijkl_0"], "name": [name], "license": ["CC-BY-4.0"],
                             "methods": [["DFT-PBE"]], "nconfigurations": [5 * shards]}), folder / "ds.parquet")
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files: \"co/*.parquet\"\n  default: true\n"
        "- config_name: info\n  data_files: \"ds.parquet\"\nlicense: cc-by-4.0\n---\n# " + name + "\n")
    return folder


ASE_SCHEMA = pa.schema([("id", pa.string()), ("numbers", pa.list_(pa.int64())), ("positions", VEC),
                        ("cell", VEC), ("pbc", pa.list_(pa.bool_())), ("energy", F64), ("forces", VEC),
                        ("stress", pa.list_(F64))])


def ase_rows() -> list[dict]:
    """A crystal with Voigt stress (eV/Å^3), a crystal with a 3x3 stress, a molecule without cell, stress or forces."""
    return [
        dict(id="a", numbers=[3, 9], positions=[[0, 0, 0], [1.9, 1.8, 1.7]], cell=CELL_A, pbc=[True] * 3,
             energy=-9.0, forces=[[0.2, 0, 0], [-0.2, 0, 0]], stress=[0.01, 0.02, 0.03, 0.004, 0.005, 0.006]),
        dict(id="b", numbers=[11, 17], positions=[[0, 0, 0], [2.8, 0.1, 0]], cell=CELL_B, pbc=[True] * 3,
             energy=-7.0, forces=[[0.0, 0.1, 0], [0.0, -0.1, 0]],
             stress=[-0.01, 0.001, 0.002, 0.001, -0.02, 0.003, 0.002, 0.003, -0.03]),
        dict(id="c", numbers=[7, 7], positions=[[0, 0, 0], [0, 0, 1.1]], cell=None, pbc=[False] * 3,
             energy=-16.0, forces=None, stress=None),
    ]


def write_ase(path: Path, rows=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows or ase_rows(), schema=ASE_SCHEMA), path)
    return path


def voigt(m) -> list:
    """3x3 -> Voigt (xx, yy, zz, yz, xz, xy)."""
    m = np.asarray(m, float).reshape(3, 3)
    return [m[0, 0], m[1, 1], m[2, 2], m[1, 2], m[0, 2], m[0, 1]]


def hill(numbers) -> str:
    from ase.data import chemical_symbols

    counts = {chemical_symbols[z]: list(numbers).count(z) for z in set(numbers)}
    order = (["C", "H"] + sorted(k for k in counts if k not in ("C", "H"))) if "C" in counts else sorted(counts)
    return "".join(s + (str(counts[s]) if counts[s] > 1 else "") for s in order if s in counts)


def expected_row(numbers, positions, cell, pbc, energy, forces, stress_gpa) -> dict:
    """The derived frame-table columns of one frame, computed by hand."""
    numbers = list(numbers)
    out = {"n_atoms": len(numbers), "numbers": numbers, "positions": np.asarray(positions, float).tolist(),
           "cell": np.asarray(cell if cell is not None else np.zeros((3, 3)), float).ravel().tolist(),
           "pbc": list(pbc), "species": sorted(set(numbers)),
           "species_counts": [numbers.count(z) for z in sorted(set(numbers))], "formula": hill(numbers),
           "energy_eV": energy, "energy_per_atom_eV": None if energy is None else energy / len(numbers)}
    if forces is None:
        out.update(forces=None, fmax_eV_A=None, frms_eV_A=None)
    else:
        f = np.asarray(forces, float)
        norms = np.linalg.norm(f, axis=1)
        out.update(forces=f.tolist(), fmax_eV_A=norms.max(), frms_eV_A=np.sqrt((norms ** 2).mean()))
    if stress_gpa is None:
        out.update(stress_GPa=None, pressure_GPa=None)
    else:
        out.update(stress_GPa=list(stress_gpa), pressure_GPa=-(stress_gpa[0] + stress_gpa[1] + stress_gpa[2]) / 3)
    out["volume_A3"] = abs(np.linalg.det(np.asarray(cell, float))) if all(pbc) else None
    return out


def assert_row(row: dict, expected: dict, atol: float = 1e-9) -> None:
    """Every expected column equals the frame's (floats to ``atol``; None must be None)."""
    for key, want in expected.items():
        got = row[key]
        if want is None or isinstance(want, (str, bool)) or (isinstance(want, list) and want and
                                                            isinstance(want[0], (bool, str))):
            assert got == want, (key, got, want)
        elif isinstance(want, (list, float, int, np.floating)):
            assert got is not None, (key, got, want)
            np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), atol=atol, rtol=0,
                                       err_msg=key)
        else:
            assert got == want, (key, got, want)
