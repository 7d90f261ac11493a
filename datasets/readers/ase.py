"""Reader for anything ASE reads: extxyz / xyz, ``.traj``, CIF, POSCAR/CONTCAR, ASE ``.db`` (SQLite/JSON).

Labels are taken, in order, from ``atoms.info[energy_key]`` / ``atoms.arrays[forces_key]`` /
``atoms.info[stress_key]`` (key names configurable, as in MACE / NequIP training files such as
``REF_energy``) and then from the attached calculator's results. Units as ASE: energy eV, forces eV/Å,
stress eV/Å^3 with ASE sign (6 Voigt or 9 components), converted to GPa.

extxyz / xyz files are split into frames here (count line, comment line, atoms) and each frame is parsed
by ASE on its own, so one bad frame (an unknown element, a missing column) is counted as failed and the
frames after it are still read; ``ase.io.iread`` would stop at the first error. Other formats go through
``ase.io.iread``; an error there ends the file and counts one failed record for the unread remainder.
Compressed files (``.gz``, ``.bz2``, ``.xz``) are read as the format inside (``a.extxyz.gz``, ``a.cif.xz``).

Optional ``info`` keys: ``temperature_K`` / ``temperature`` / ``T`` (K), ``charge``, ``spin`` /
``multiplicity``, ``method`` (one of relax, static, md, rattled), ``smiles``, ``id`` / ``name``.
"""
from __future__ import annotations

import io
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..accounting import Accounting
from ..frames import METHODS, stress_ase_ev_a3_to_gpa
from ..options import ReaderSpec, ReadOptions, inner_name
from ..records import RawFrame
from ._common import open_maybe_compressed

__all__ = ["READER", "iter_records", "atoms_to_raw", "detect_card"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("ase", "anything ase.io reads: extxyz, xyz, traj, cif, POSCAR/CONTCAR (also .gz / .bz2 / .xz), "
                    "ASE .db", __name__,
                    extensions=(".extxyz", ".xyz", ".traj", ".cif", ".db", ".vasp", ".poscar", ".json"),
                    globs=("POSCAR*", "CONTCAR*", "*.vasp"), options=("energy_key", "forces_key", "stress_key"),
                    order=60)

_TEMPERATURE_KEYS = ("temperature_K", "temperature", "T")


def detect_card(path: Path, options: ReadOptions) -> None:
    """Files read through ASE carry no dataset identity: the card stays unknown unless given."""
    return None


def _calc_result(atoms, name):
    calc = atoms.calc
    if calc is None:
        return None
    results = getattr(calc, "results", {}) or {}
    return results.get(name)


def atoms_to_raw(atoms, key: str, default_id: str, options: ReadOptions) -> RawFrame:
    """One :class:`ase.Atoms` -> :class:`RawFrame` (energy eV, forces eV/Å, stress GPa)."""
    info = atoms.info
    energy = info.get(options.energy_key)
    if energy is None:
        energy = _calc_result(atoms, "energy")
    forces = atoms.arrays.get(options.forces_key)
    if forces is None:
        forces = _calc_result(atoms, "forces")
    stress = info.get(options.stress_key)
    if stress is None:
        stress = _calc_result(atoms, "stress")
    if stress is not None:
        stress = np.asarray(stress, dtype=float)
        stress = stress_ase_ev_a3_to_gpa(stress.reshape(3, 3) if stress.size == 9 else stress)
    temperature = next((info[k] for k in _TEMPERATURE_KEYS if k in info), None)
    method = info.get("method")
    spin = info.get("spin", info.get("multiplicity"))
    charge = info.get("charge")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    return RawFrame(
        id=str(info.get("id", info.get("name", default_id))),
        key=key,
        numbers=np.asarray(atoms.numbers, dtype=np.int64),
        positions=np.asarray(atoms.positions, dtype=float),
        cell=np.asarray(atoms.cell[:], dtype=float),
        pbc=pbc,
        energy_eV=None if energy is None else float(energy),
        forces=forces,
        stress_GPa=stress,
        temperature_K=None if temperature is None else float(temperature),
        method=method if method in METHODS else "unknown",
        charge=None if charge is None else int(charge),
        spin=None if spin is None else int(spin),
        smiles=info.get("smiles"),
    )


def _xyz_chunks(path: Path, accounting: Accounting) -> Iterator[tuple[int, str]]:
    """Split an (ext)xyz file into (frame index, text of that frame); a broken compressed stream ends the file
    with one failed record for the unread rest."""
    file = str(path)
    index = 0
    try:
        with open_maybe_compressed(path) as raw:
            fh = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
            while True:
                line = fh.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                try:
                    n = int(line.split()[0])
                    if n < 0:
                        raise ValueError(n)
                except ValueError:
                    accounting.fail(file, f"frame {index}", "corrupt_remainder",
                                    f"expected an atom count, found {line.strip()[:60]!r}; rest of file unread")
                    return
                lines = [line]
                for _ in range(n + 1):
                    nxt = fh.readline()
                    if not nxt:
                        accounting.fail(file, f"frame {index}", "truncated_file", f"frame needs {n} atom lines")
                        return
                    lines.append(nxt)
                yield index, "".join(lines)
                index += 1
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:  # corrupt or truncated compressed stream
        accounting.fail(file, f"from frame {index}", "truncated_or_corrupt_file",
                        f"{type(exc).__name__}: {str(exc)[:160]}")


def _iter_xyz(path: Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]:
    from ase.io import read

    file = str(path)
    for index, text in _xyz_chunks(path, accounting):
        try:
            atoms = read(io.StringIO(text), format="extxyz")
            raw = atoms_to_raw(atoms, f"frame {index}", f"{path.name}:{index}", options)
        except Exception as exc:  # ASE's parsers raise many types on bad text; counted, never fatal
            accounting.fail(file, f"frame {index}", "unparsable_frame", f"{type(exc).__name__}: {str(exc)[:160]}")
            continue
        yield raw


def _iter_db(path: Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]:
    import ase.db

    file = str(path)
    try:
        db = ase.db.connect(str(path), create_indices=False, use_lock_file=False)
        rows = db.select()
        for row in rows:
            key = f"id {row.id}"
            try:
                atoms = row.toatoms(add_additional_information=True)
                atoms.info.update(atoms.info.pop("key_value_pairs", {}) or {})
                atoms.info.update(atoms.info.pop("data", {}) or {})
                yield atoms_to_raw(atoms, key, f"{path.name}:{row.id}", options)
            except Exception as exc:  # a row ASE cannot rebuild
                accounting.fail(file, key, "bad_row", f"{type(exc).__name__}: {str(exc)[:160]}")
    except Exception as exc:  # not a database, or corrupt pages
        accounting.fail(file, "*", "unreadable_database", f"{type(exc).__name__}: {str(exc)[:160]}")


def iter_records(path: Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]:
    path = Path(path)
    name = inner_name(path.name).lower()  # a compressed file is read as the format inside
    if name.endswith((".xyz", ".extxyz")):
        yield from _iter_xyz(path, options, accounting)
        return
    if name.endswith((".db", ".json")):
        yield from _iter_db(path, options, accounting)
        return
    from ase.io import iread

    file = str(path)
    index = -1
    try:
        for index, atoms in enumerate(iread(str(path), index=":")):
            try:
                yield atoms_to_raw(atoms, f"frame {index}", f"{path.name}:{index}", options)
            except Exception as exc:
                accounting.fail(file, f"frame {index}", "bad_frame", f"{type(exc).__name__}: {str(exc)[:160]}")
    except Exception as exc:  # ASE parsers raise many exception types on corrupt input
        accounting.fail(file, f"after frame {max(index, 0)}", "unreadable_remainder",
                        f"{type(exc).__name__}: {str(exc)[:160]}")
        return
    if index < 0:  # a CIF without atom sites, a POSCAR ASE parses to nothing: a broken file, not silence
        accounting.fail(file, "frame 0", "no_structure", "ASE found no structure in the file")
