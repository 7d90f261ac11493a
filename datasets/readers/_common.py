"""Helpers shared by the reader modules (no format logic here)."""
from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers as _ASE_Z

__all__ = ["open_maybe_compressed", "symbols_to_numbers", "pymatgen_structure_arrays", "StructureDictError"]


class StructureDictError(ValueError):
    """A pymatgen Structure dict that cannot be turned into arrays."""


def open_maybe_compressed(path: Path):
    """Open a file for binary reading, decompressing ``.gz``, ``.bz2``, ``.xz`` on the fly (streaming)."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    if path.suffix in (".xz", ".lzma"):
        return lzma.open(path, "rb")
    return open(path, "rb")


def symbols_to_numbers(symbols) -> np.ndarray:
    """Element symbols -> atomic numbers; an unknown symbol becomes 0 (the builder skips such frames)."""
    return np.fromiter((_ASE_Z.get(s, 0) if s != "X" else 0 for s in symbols), dtype=np.int64)


def pymatgen_structure_arrays(d: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(numbers (n,), positions (n, 3) Å, cell (3, 3) Å, pbc (3,)) from a pymatgen ``Structure.as_dict()``.

    Reads the dict directly instead of building a ``Structure`` (about 50x faster per frame). Cartesian
    ``xyz`` is used when present, else fractional ``abc`` times the lattice. Disordered sites (more than one
    species or occupancy below 1) raise :class:`StructureDictError`.
    """
    try:
        lattice = d["lattice"]
        cell = np.asarray(lattice["matrix"], dtype=np.float64)
        pbc = np.asarray(lattice.get("pbc", (True, True, True)), dtype=bool)
        sites = d["sites"]
        symbols = []
        xyz = []
        abc = []
        for site in sites:
            species = site["species"]
            if len(species) != 1 or float(species[0].get("occu", 1)) < 1.0 - 1e-8:
                raise StructureDictError(f"disordered site {species!r}")
            el = species[0]["element"]
            symbols.append(el)
            if "xyz" in site:
                xyz.append(site["xyz"])
            else:
                abc.append(site["abc"])
    except (KeyError, TypeError, IndexError) as exc:
        raise StructureDictError(f"not a pymatgen Structure dict ({type(exc).__name__}: {exc})") from None
    numbers = symbols_to_numbers(symbols)
    if xyz and not abc:
        positions = np.asarray(xyz, dtype=np.float64)
    elif abc and not xyz:
        positions = np.asarray(abc, dtype=np.float64) @ cell
    else:
        positions = np.asarray(
            [s["xyz"] if "xyz" in s else list(np.asarray(s["abc"], float) @ cell) for s in sites], dtype=np.float64
        )
    if cell.shape != (3, 3):
        raise StructureDictError(f"lattice matrix has shape {cell.shape}")
    return numbers, positions.reshape(-1, 3), cell, pbc
