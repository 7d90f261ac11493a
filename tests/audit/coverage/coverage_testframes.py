"""Small hand-made frame batches for the coverage tests (built with the real FrameBuilder, through
:func:`~monoculture.datasets.memory.frames_from_records`)."""
from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk

from monoculture.datasets.memory import frames_from_records
from monoculture.datasets.records import RawFrame


def _forces(n: int, fmax: float | None):
    if fmax is None:
        return None
    f = np.zeros((n, 3))
    f[0, 0] = fmax
    return f


def _stress(p_GPa: float | None):
    return None if p_GPa is None else np.array([-p_GPa, -p_GPa, -p_GPa, 0.0, 0.0, 0.0])


def five_frames(dataset: str = "five"):
    """The 5-structure case whose every number the tests check by hand.

    ====  ========  =====  ========  ======  =====  =====  ======  =====  ==========
    id    cell      atoms  method    T (K)   P GPa  fmax   E (eV)  label  hubbard_u
    ====  ========  =====  ========  ======  =====  =====  ======  =====  ==========
    cu    Cu fcc    1      relax     -       0      0.0    -3.5    PBE    null
    nacl  NaCl rs   2      static    -       -      0.03   -6.0    PBE    False
    feo   FeO rs    2      md        1000    12     0.5    -10.0   PBE+U  True
    fe    Fe bcc    1      rattled   300     -2     2.0    -8.0    PBE    False
    sto   SrTiO3    5      relax     -       -      -      -       r2SCAN null (basis PAW_PBE_54)
    ====  ========  =====  ========  ======  =====  =====  ======  =====  ==========
    """
    rows = [
        ("cu", bulk("Cu", "fcc", a=3.6), "relax", None, 0.0, 0.0, -3.5, "PBE", None, None),
        ("nacl", bulk("NaCl", "rocksalt", a=5.64), "static", None, None, 0.03, -6.0, "PBE", False, None),
        ("feo", bulk("FeO", "rocksalt", a=4.3), "md", 1000.0, 12.0, 0.5, -10.0, "PBE", True, None),
        ("fe", bulk("Fe", "bcc", a=2.87), "rattled", 300.0, -2.0, 2.0, -8.0, "PBE", False, None),
        ("sto", Atoms("SrTiO3", cell=[3.9, 3.9, 3.9], pbc=True, scaled_positions=[
            [0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
         "relax", None, None, None, None, "r2SCAN", None, "PAW_PBE_54"),
    ]
    records = [RawFrame(id=fid, key=fid, numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell[:],
                        pbc=True, energy_eV=e, forces=_forces(len(atoms), fmax), stress_GPa=_stress(p),
                        temperature_K=t, method=method, functional=func, hubbard_u=hu, basis=basis)
               for fid, atoms, method, t, p, fmax, e, func, hu, basis in rows]
    return frames_from_records(records, dataset=dataset, file=f"{dataset}.xyz")


def random_frames(seed: int, n: int, dataset: str = "rand", id_prefix: str = "r"):
    """``n`` frames drawn from a few prototypes with random regimes / labels (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    protos = [bulk("Cu", "fcc", a=3.6), bulk("NaCl", "rocksalt", a=5.64), bulk("Fe", "bcc", a=2.87),
              bulk("MgO", "rocksalt", a=4.2), bulk("Si", "diamond", a=5.43), bulk("ZnS", "zincblende", a=5.4),
              bulk("CsCl", "cesiumchloride", a=4.1), bulk("Ti", "hcp", a=2.95, c=4.68)]
    records = []
    for i in range(n):
        a = protos[int(rng.integers(len(protos)))].copy()
        if rng.random() < 0.3:  # a random substitution makes ternaries / new pairs
            a.numbers[0] = int(rng.choice([1, 8, 26, 42, 79]))
        fmax = None if rng.random() < 0.2 else float(rng.choice([0.0, 0.01, 0.04, 0.3, 3.0]))
        records.append(RawFrame(
            id=f"{id_prefix}{i}", key=str(i), numbers=a.numbers, positions=a.positions, cell=a.cell[:], pbc=True,
            energy_eV=None if rng.random() < 0.1 else float(rng.normal(-4, 2)) * len(a),
            forces=_forces(len(a), fmax),
            stress_GPa=None if rng.random() < 0.3 else _stress(float(rng.choice([-5.0, 0.0, 3.0, 60.0]))),
            temperature_K=None if rng.random() < 0.5 else float(rng.choice([0.0, 300.0, 1200.0, 2500.0])),
            method=str(rng.choice(["relax", "static", "md", "rattled", "unknown"])),
            functional=str(rng.choice(["PBE", "PBE", "r2SCAN", "unknown"])),
            hubbard_u=[None, True, False][int(rng.integers(3))],
            basis=[None, "PAW_PBE_54", "def2-TZVPD"][int(rng.integers(3))]))
    return frames_from_records(records, dataset=dataset, file=f"{dataset}.xyz")
