"""Make the SAMPLE DATA bundled in ``datasets/data/samples`` (run once; the output is committed).

Structures are real reference structures: ASE ``bulk`` prototypes (rock salt, zinc blende, CsCl, fluorite,
perovskite, wurtzite, fcc/bcc/hcp/diamond elements) and the ``ase.collections.g2`` molecules. Labels
(energy eV, forces eV/Å, stress) are predictions of CHGNet 0.3.0 from the ``chgnet`` wheel (needs the
``models`` extra), NOT DFT. Files written, each in its native format:

* ``mptrj_sample.json``: MPTrj layout ``{mp_id: {frame_id: {...}}}``, 3 strained/rattled frames per material,
  stress in kBar with the VASP sign, ids ``mps-N`` (not Materials Project ids).
* ``omat24_sample/<subset>/data.0000.aselmdb``: ASE LMDB shards named after OMat24 subsets, rattled at the
  subset temperature (Gaussian displacements with variance k_B T / (m omega^2), omega = 2 pi 5 THz).
* ``alexandria_sample.json.bz2``: ``{"entries": [ComputedStructureEntry dicts]}``.
* ``mixed_sample.extxyz``: labelled crystals, unlabelled g2 molecules, and ONE deliberately broken frame
  (energy NaN, marked in its comment line) so the demo shows the skipped-record accounting.

Usage: ``python scripts/make_samples.py [--out datasets/data/samples] [--seed 0]``
"""
from __future__ import annotations

import argparse
import bz2
import json
import shutil
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

PROTOTYPES = [
    # (id, formula for bulk(), crystal structure, a (Å), extra kwargs)
    ("NaCl", "NaCl", "rocksalt", 5.64, {}), ("MgO", "MgO", "rocksalt", 4.21, {}),
    ("LiF", "LiF", "rocksalt", 4.03, {}), ("KCl", "KCl", "rocksalt", 6.29, {}),
    ("CaO", "CaO", "rocksalt", 4.81, {}), ("FeO", "FeO", "rocksalt", 4.33, {}),
    ("NiO", "NiO", "rocksalt", 4.17, {}), ("MnO", "MnO", "rocksalt", 4.44, {}),
    ("CoO", "CoO", "rocksalt", 4.26, {}), ("GaAs", "GaAs", "zincblende", 5.65, {}),
    ("ZnS", "ZnS", "zincblende", 5.41, {}), ("SiC", "SiC", "zincblende", 4.36, {}),
    ("CsCl", "CsCl", "cesiumchloride", 4.12, {}), ("CaF2", "CaF2", "fluorite", 5.46, {}),
    ("CeO2", "CeO2", "fluorite", 5.41, {}), ("ZnO", "ZnO", "wurtzite", 3.25, {"c": 5.21}),
    ("GaN", "GaN", "wurtzite", 3.19, {"c": 5.19}), ("Cu", "Cu", "fcc", 3.61, {}),
    ("Al", "Al", "fcc", 4.05, {}), ("Ni", "Ni", "fcc", 3.52, {}), ("Ag", "Ag", "fcc", 4.09, {}),
    ("Pt", "Pt", "fcc", 3.92, {}), ("Fe", "Fe", "bcc", 2.87, {}), ("W", "W", "bcc", 3.16, {}),
    ("Mo", "Mo", "bcc", 3.15, {}), ("Li", "Li", "bcc", 3.49, {}), ("Na", "Na", "bcc", 4.23, {}),
    ("Mg", "Mg", "hcp", 3.21, {"c": 5.21}), ("Ti", "Ti", "hcp", 2.95, {"c": 4.68}),
    ("Zn", "Zn", "hcp", 2.66, {"c": 4.95}), ("Si", "Si", "diamond", 5.43, {}),
    ("Ge", "Ge", "diamond", 5.66, {}), ("C", "C", "diamond", 3.57, {}),
]
PEROVSKITES = [("SrTiO3", ("Sr", "Ti", "O"), 3.905), ("BaTiO3", ("Ba", "Ti", "O"), 4.00), ("LaAlO3", ("La", "Al", "O"), 3.79)]
OMAT_SUBSETS = ["rattled-300-subsampled", "rattled-500", "rattled-1000", "aimd-from-PBE-1000-nvt",
                "aimd-from-PBE-3000-npt", "rattled-relax"]


def perovskite(a_el: str, b_el: str, x_el: str, a: float) -> Atoms:
    """Cubic ABX3 perovskite (Pm-3m), 5 atoms."""
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Atoms([a_el, b_el, x_el, x_el, x_el], scaled_positions=frac, cell=np.eye(3) * a, pbc=True)


def structures() -> list[tuple[str, Atoms]]:
    out = []
    for ident, formula, kind, a, kw in PROTOTYPES:
        atoms = bulk(formula, kind, a=a, **kw)
        out.append((ident, atoms))
    for ident, (a_el, b_el, x_el), a in PEROVSKITES:
        out.append((ident, perovskite(a_el, b_el, x_el, a)))
    return out


def rattle_thermal(atoms: Atoms, temperature_K: float, rng: np.random.Generator) -> Atoms:
    """Gaussian displacements of variance k_B T / (m omega^2), omega = 2 pi x 5 THz (Å)."""
    out = atoms.copy()
    omega = 2 * np.pi * 5e12  # 1/s
    m = out.get_masses() * 1.66053906660e-27  # kg
    sigma = np.sqrt(1.380649e-23 * temperature_K / (m * omega**2)) * 1e10  # Å
    out.positions += rng.normal(size=out.positions.shape) * sigma[:, None]
    return out


def label(atoms: Atoms, calc) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = calc
    e = atoms.get_potential_energy()
    f = atoms.get_forces()
    s = atoms.get_stress(voigt=True)  # eV/Å^3, ASE sign
    atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f, stress=s)
    return atoms


def structure_dict(atoms: Atoms) -> dict:
    from pymatgen.io.ase import AseAtomsAdaptor

    s = AseAtomsAdaptor.get_structure(atoms)
    return s.as_dict()


def write_mptrj(out: Path, items, calc, rng) -> None:
    data = {}
    for i, (ident, atoms) in enumerate(items):
        mp_id = f"mps-{1001 + i}"
        frames = {}
        for j, scale in enumerate((1.0, 1.03, 0.97)):
            a = atoms.copy()
            a.set_cell(a.cell * scale, scale_atoms=True)
            if j:
                a.positions += rng.normal(scale=0.02, size=a.positions.shape)
            a = label(a, calc)
            stress_kbar = -(a.get_stress(voigt=False) / units.GPa) * 10.0  # VASP sign, kBar
            e = float(a.get_potential_energy())
            n = len(a)
            frames[f"{mp_id}-0-{j}"] = {
                "structure": structure_dict(a), "uncorrected_total_energy": e, "corrected_total_energy": e,
                "energy_per_atom": e / n, "ef_per_atom": None, "e_per_atom_relaxed": e / n,
                "ef_per_atom_relaxed": None, "force": a.get_forces().round(6).tolist(),
                "stress": stress_kbar.round(6).tolist(), "magmom": None, "bandgap": None, "mp_id": mp_id,
            }
        data[mp_id] = frames
    (out / "mptrj_sample.json").write_text(json.dumps(data))


def write_omat(out: Path, items, calc, rng) -> None:
    from ase_db_backends.aselmdb import LMDBDatabase

    root = out / "omat24_sample"
    shutil.rmtree(root, ignore_errors=True)
    for k, subset in enumerate(OMAT_SUBSETS):
        folder = root / subset
        folder.mkdir(parents=True)
        temperature = 0.0 if subset == "rattled-relax" else float(subset.split("-")[1 if subset.startswith("rattled") else 3])
        db = LMDBDatabase(folder / "data.0000.aselmdb", readonly=False)
        for j in range(6):
            ident, atoms = items[(7 * k + 5 * j) % len(items)]
            sc = atoms.repeat((2, 2, 2)) if len(atoms) <= 2 else atoms.repeat((2, 1, 1))
            if subset.startswith("aimd") and "npt" in subset:
                sc.set_cell(sc.cell * (1 + rng.normal(scale=0.01)), scale_atoms=True)
            sc = rattle_thermal(sc, max(temperature, 50.0), rng)
            sc = label(sc, calc)
            db.write(sc, data={"sid": f"{subset}-{k}-{j}"})
        db.close()
        for lock in folder.glob("*-lock"):
            lock.unlink()


def write_alexandria(out: Path, items, calc, rng) -> None:
    from pymatgen.entries.computed_entries import ComputedStructureEntry
    from pymatgen.io.ase import AseAtomsAdaptor

    entries = []
    for i, (ident, atoms) in enumerate(items[::3]):
        a = label(atoms, calc)
        s = AseAtomsAdaptor.get_structure(a)
        entry = ComputedStructureEntry(s, float(a.get_potential_energy()), data={"mat_id": f"agm-s-{i}"})
        entries.append(entry.as_dict())
    with bz2.open(out / "alexandria_sample.json.bz2", "wt") as fh:
        json.dump({"entries": entries}, fh)


def write_extxyz(out: Path, items, calc, rng) -> None:
    from ase.collections import g2
    from ase.io import write

    frames = []
    for ident, atoms in items[1::4]:
        a = label(atoms, calc)
        a.info["method"] = "static"
        frames.append(a)
    broken = frames[0].copy()
    broken.calc = SinglePointCalculator(broken, energy=float("nan"), forces=frames[0].get_forces())
    broken.info["comment"] = "SAMPLE: deliberately broken frame (energy NaN) to demonstrate skipped-record accounting"
    frames.append(broken)
    for name in ("H2O", "CH4", "NH3", "C6H6", "CH3CH2OH", "CO2", "HCN", "C2H2", "CH3COOH", "SiH4"):
        m = g2[name].copy()
        m.info["name"] = name
        frames.append(m)
    write(out / "mixed_sample.extxyz", frames, format="extxyz")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "datasets/data/samples"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    calc = CHGNetCalculator(CHGNet.load(model_name="0.3.0", verbose=False), use_device="cpu")
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = structures()
    write_mptrj(out, items, calc, rng)
    write_omat(out, items, calc, rng)
    write_alexandria(out, items, calc, rng)
    write_extxyz(out, items, calc, rng)
    (out / "README.md").write_text(
        "# SAMPLE DATA\n\nMade by `scripts/make_samples.py` from real reference structures (ASE `bulk` prototypes, "
        "`ase.collections.g2`). Energies, forces and stresses are CHGNet 0.3.0 predictions, NOT DFT: use these "
        "files to exercise readers and analyzers, never as reference physics. `mixed_sample.extxyz` holds one "
        "deliberately broken frame (energy NaN) so the demo shows skipped-record accounting.\n"
    )
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(out)}  {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
