"""Synthetic datasets of any size in the native MPTrj JSON and OMat24 ``.aselmdb`` formats.

Frames are made from the real structures of the bundled sample data (ASE ``bulk`` prototypes) by, per
frame and from a seeded generator: substitution of each element by a chemically similar one (same group
of the periodic table, :data:`SIMILAR`), a supercell (1-2 repeats along each axis by default, or sized
to a requested mean number of atoms per frame: ``mean_atoms``), an isotropic strain
(+-4 %), and a thermal rattle (Gaussian displacements of variance k_B T / (m omega^2), omega = 2 pi 5 THz).
Labels are SYNTHETIC, not physics: energy = sum of per-element reference energies (-3 eV/atom +
noise), forces ~ N(0, 0.05 + T/2000 eV/Å) per component, stress ~ N(0, 0.5 GPa) plus a strain term. Use
the files to measure readers and analyzers at scale, never as training data.

The bundled prototypes have 2.9 atoms on average, so the default frames have about 6 atoms; the real MPTrj
has 31.2 atoms per frame (49,295,660 atoms in 1,580,395 frames, Deng et al., Nat. Mach. Intell. 2023),
which ``mean_atoms=31`` imitates: per-frame costs of readers depend on it.

Every file gets a sidecar ``<file>.truth.json`` with the exact counts an audit must reproduce: frames,
structures and atoms per element, level of theory (Materials Project +U rules), method and temperature.
"""
from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
from ase.data import atomic_masses, chemical_symbols

from .theory import mp_hubbard_u

__all__ = ["SIMILAR", "SyntheticFrames", "write_mptrj", "write_omat24", "synthesize"]

#: Groups of chemically similar elements used for substitutions (symbols).
SIMILAR = [
    ("Li", "Na", "K", "Rb", "Cs"), ("Be", "Mg", "Ca", "Sr", "Ba"), ("Sc", "Y", "La"),
    ("Ti", "Zr", "Hf"), ("V", "Nb", "Ta"), ("Cr", "Mo", "W"), ("Mn", "Tc", "Re"), ("Fe", "Ru", "Os"),
    ("Co", "Rh", "Ir"), ("Ni", "Pd", "Pt"), ("Cu", "Ag", "Au"), ("Zn", "Cd", "Hg"), ("B", "Al", "Ga", "In"),
    ("C", "Si", "Ge", "Sn"), ("N", "P", "As", "Sb"), ("O", "S", "Se", "Te"), ("F", "Cl", "Br", "I"),
    ("Ce", "Pr", "Nd", "Sm", "Gd"),
]
_KB = 1.380649e-23
_AMU = 1.66053906660e-27
_OMEGA = 2 * np.pi * 5e12
_OMAT_SUBSETS = [
    ("rattled-300", "rattled", 300.0), ("rattled-500", "rattled", 500.0), ("rattled-1000", "rattled", 1000.0),
    ("rattled-300-subsampled", "rattled", 300.0), ("rattled-500-subsampled", "rattled", 500.0),
    ("rattled-1000-subsampled", "rattled", 1000.0), ("rattled-relax", "relax", None),
    ("aimd-from-PBE-1000-npt", "md", 1000.0), ("aimd-from-PBE-1000-nvt", "md", 1000.0),
    ("aimd-from-PBE-3000-npt", "md", 3000.0), ("aimd-from-PBE-3000-nvt", "md", 3000.0),
]


def _similar_table() -> dict[int, np.ndarray]:
    from ase.data import atomic_numbers

    out = {}
    for group in SIMILAR:
        zs = np.array([atomic_numbers[s] for s in group])
        for z in zs:
            out[int(z)] = zs
    return out


def base_structures() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(numbers, positions Å, cell Å) of the real prototype structures in the bundled MPTrj sample."""
    from .reading import open_dataset
    from .samples import sample_dir

    out = []
    seen = set()
    for batch in open_dataset(sample_dir() / "mptrj_sample.json", quiet=True).batches():
        from .frames import atoms_arrays

        arr = atoms_arrays(batch)
        ids = batch.column("id").to_pylist()
        for i, ident in enumerate(ids):
            if not ident.endswith("-0"):  # frame 0 of each material is the unstrained prototype
                continue
            numbers, pos, cell, _ = arr.frame(i)
            key = (tuple(numbers), tuple(np.round(cell.ravel(), 3)))
            if key not in seen:
                seen.add(key)
                out.append((numbers.astype(np.int64), pos.copy(), cell.copy()))
    return out


class SyntheticFrames:
    """Seeded generator of synthetic frames; counts what it made in :attr:`truth`."""

    def __init__(self, seed: int = 0, mean_atoms: float | None = None):
        if mean_atoms is not None and not mean_atoms >= 1:
            raise ValueError(f"mean_atoms must be at least 1, got {mean_atoms}")
        self.mean_atoms = mean_atoms
        self.rng = np.random.default_rng(seed)
        self.bases = base_structures()
        self.similar = _similar_table()
        self.structures_per_z: Counter = Counter()
        self.atoms_per_z: Counter = Counter()
        self.level_of_theory: Counter = Counter()
        self.method: Counter = Counter()
        self.temperature: Counter = Counter()
        self.n = 0

    def frame(self, temperature_K: float | None, method: str) -> dict:
        """One frame: numbers, positions (Å), cell (Å), energy (eV), forces (eV/Å), stress (GPa, ASE sign)."""
        rng = self.rng
        numbers, pos, cell = self.bases[rng.integers(len(self.bases))]
        numbers = numbers.copy()
        for z in np.unique(numbers):
            group = self.similar.get(int(z))
            if group is not None and rng.random() < 0.5:
                numbers[numbers == z] = group[rng.integers(len(group))]
        if self.mean_atoms is None:
            reps = rng.integers(1, 3, size=3) if len(numbers) < 4 else np.array([1, 1, rng.integers(1, 3)])
        else:
            reps = self._repeats(len(numbers))
        shifts = np.stack(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij"), -1).reshape(-1, 3) @ cell
        pos = (pos[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
        numbers = np.tile(numbers, len(shifts))
        cell = cell * reps[:, None]
        strain = 1.0 + rng.uniform(-0.04, 0.04)
        cell = cell * strain
        pos = pos * strain
        t_eff = temperature_K if temperature_K is not None else 30.0
        sigma = np.sqrt(_KB * t_eff / (atomic_masses[numbers] * _AMU * _OMEGA**2)) * 1e10
        pos = pos + rng.normal(size=pos.shape) * sigma[:, None]
        n = len(numbers)
        energy = float(-3.0 * n + rng.normal(scale=0.1 * np.sqrt(n)))
        forces = rng.normal(scale=0.05 + t_eff / 2000.0, size=(n, 3))
        stress = rng.normal(scale=0.5, size=6)
        stress[:3] += (strain - 1.0) * 100.0  # stretched cell -> tensile (positive, ASE sign)
        self._count(numbers, temperature_K, method)
        return {"numbers": numbers, "positions": pos, "cell": cell, "energy": energy, "forces": forces,
                "stress_GPa": stress}

    def _repeats(self, n_base: int) -> np.ndarray:
        """Supercell repeats (3,) for a frame of about a target size drawn around :attr:`mean_atoms`: a
        log-normal size (sigma 0.5, mean ``mean_atoms``), split into near-equal repeats along the axes."""
        target = self.mean_atoms * np.exp(self.rng.normal(-0.125, 0.5)) / n_base  # E[exp(N(-s²/2, s))] = 1
        a = max(1, int(round(target ** (1 / 3))))
        b = max(1, int(round((target / a) ** 0.5)))
        c = max(1, int(round(target / (a * b))))
        return np.array([a, b, c])

    def _count(self, numbers: np.ndarray, temperature_K, method: str) -> None:
        zs, counts = np.unique(numbers, return_counts=True)
        for z, c in zip(zs, counts):
            sym = chemical_symbols[int(z)]
            self.structures_per_z[sym] += 1
            self.atoms_per_z[sym] += int(c)
        self.level_of_theory["PBE+U" if mp_hubbard_u(zs) else "PBE"] += 1
        self.method[method] += 1
        self.temperature["unknown" if temperature_K is None else str(int(temperature_K))] += 1
        self.n += 1

    @property
    def truth(self) -> dict:
        """Exact counts of everything generated so far (the sidecar JSON)."""
        temps = dict(self.temperature)
        unknown = temps.pop("unknown", 0)
        return {
            "frames": self.n,
            "structures_per_element": dict(sorted(self.structures_per_z.items())),
            "atoms_per_element": dict(sorted(self.atoms_per_z.items())),
            "level_of_theory": dict(sorted(self.level_of_theory.items())),
            "method": dict(sorted(self.method.items())),
            "temperature_K": {"values": dict(sorted(temps.items(), key=lambda kv: float(kv[0]))), "unknown": unknown},
            "note": "SYNTHETIC data from monoculture synth: labels are not physics",
        }


def _structure_dict(numbers, pos, cell) -> dict:
    inv = np.linalg.inv(cell)
    frac = pos @ inv
    sites = [
        {"species": [{"element": chemical_symbols[int(z)], "occu": 1}], "abc": f.tolist(), "xyz": p.tolist(),
         "label": chemical_symbols[int(z)], "properties": {}}
        for z, f, p in zip(numbers, frac, pos)
    ]
    return {"@module": "pymatgen.core.structure", "@class": "Structure", "charge": 0.0,
            "lattice": {"matrix": cell.tolist(), "pbc": [True, True, True]}, "properties": {}, "sites": sites}


def write_mptrj(path, n_frames: int, seed: int = 0, frames_per_material: int = 8,
                mean_atoms: float | None = None) -> dict:
    """Write a synthetic MPTrj JSON with ``n_frames`` frames; returns (and writes) the truth sidecar.
    ``mean_atoms``: mean atoms per frame to aim at (default: the prototypes in 1-2 repeats, about 6).

    Frames of one material are a relaxation-like series of the same generated structure family; stress is
    written in kBar with the VASP sign, as in the real file.
    """
    gen = SyntheticFrames(seed, mean_atoms)
    path = Path(path)
    with open(path, "wb") as fh:
        fh.write(b"{")
        written = 0
        m = 0
        while written < n_frames:
            mp_id = f"mps-{m}"
            frames = {}
            for j in range(min(frames_per_material, n_frames - written)):
                f = gen.frame(None, "relax")
                e = f["energy"]
                s = f["stress_GPa"]
                stress_kbar = -10.0 * np.array([[s[0], s[5], s[4]], [s[5], s[1], s[3]], [s[4], s[3], s[2]]])
                frames[f"{mp_id}-{j}-{j}"] = {
                    "structure": _structure_dict(f["numbers"], f["positions"], f["cell"]),
                    "uncorrected_total_energy": e, "corrected_total_energy": e,
                    "energy_per_atom": e / len(f["numbers"]), "ef_per_atom": None, "e_per_atom_relaxed": None,
                    "ef_per_atom_relaxed": None, "force": f["forces"].tolist(), "stress": stress_kbar.tolist(),
                    "magmom": None, "bandgap": None, "mp_id": mp_id,
                }
                written += 1
            fh.write((b"," if m else b"") + orjson.dumps(mp_id) + b":" + orjson.dumps(frames))
            m += 1
        fh.write(b"}")
    truth = gen.truth
    Path(str(path) + ".truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def _ndarray(a: np.ndarray) -> dict:
    return {"__ndarray__": [list(a.shape), str(a.dtype), a.ravel().tolist()]}


def write_omat24(folder, n_frames: int, seed: int = 0, rows_per_shard: int = 100_000,
                 mean_atoms: float | None = None) -> dict:
    """Write synthetic OMat24-style ``.aselmdb`` shards, one folder per subset, in the encoding of
    ``ase_db_backends.aselmdb.LMDBDatabase`` (zlib-compressed ASE JSON per row, ``nextid`` key);
    ``mean_atoms`` as in :func:`write_mptrj`."""
    import lmdb

    gen = SyntheticFrames(seed, mean_atoms)
    folder = Path(folder)
    per_subset = np.full(len(_OMAT_SUBSETS), n_frames // len(_OMAT_SUBSETS))
    per_subset[: n_frames % len(_OMAT_SUBSETS)] += 1
    for (subset, method, temp), count in zip(_OMAT_SUBSETS, per_subset):
        done = 0
        shard = 0
        while done < count:
            rows = int(min(rows_per_shard, count - done))
            sub = folder / subset
            sub.mkdir(parents=True, exist_ok=True)
            path = sub / f"data.{shard:04d}.aselmdb"
            env = lmdb.open(str(path), subdir=False, map_size=2**36, meminit=False, map_async=True, lock=False)
            with env.begin(write=True) as txn:
                for i in range(rows):
                    f = gen.frame(temp, method)
                    dct = {
                        "numbers": _ndarray(f["numbers"]), "positions": _ndarray(f["positions"]),
                        "unique_id": f"{seed}-{subset}-{shard}-{i}", "pbc": _ndarray(np.ones(3, bool)),
                        "cell": _ndarray(f["cell"]), "calculator": "unknown", "calculator_parameters": {},
                        "energy": f["energy"], "forces": _ndarray(f["forces"]),
                        "stress": _ndarray(f["stress_GPa"] / 160.21766208), "ctime": 0.0, "user": None,
                        "mtime": 0.0, "data": {"sid": f"{subset}-{shard}-{i}"},
                    }
                    txn.put(str(i + 1).encode("ascii"), zlib.compress(orjson.dumps(dct), 1))
                txn.put(b"nextid", zlib.compress(b"%d" % (rows + 1)))
            env.sync(True)
            env.close()
            done += rows
            shard += 1
    truth = gen.truth
    (folder / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def synthesize(like: str, n_frames: int, out, seed: int = 0, mean_atoms: float | None = None) -> dict:
    """Dispatch for ``monoculture synth --like mptrj|omat24 [--mean-atoms N]``."""
    if like == "mptrj":
        return write_mptrj(out, n_frames, seed, mean_atoms=mean_atoms)
    if like == "omat24":
        return write_omat24(out, n_frames, seed, mean_atoms=mean_atoms)
    raise ValueError(f"--like must be mptrj or omat24, got {like!r}")
