"""Level-of-theory rules that depend on composition.

The Materials Project GGA/GGA+U mixing scheme (used for MPTrj, OMat24, sAlex and Alexandria PBE): a
calculation is GGA+U when the structure contains O or F together with any of Co, Cr, Fe, Mn, Mo, Ni, V, W
(pymatgen ``MPRelaxSet`` / ``MaterialsProject2020Compatibility`` U values). The element sets are taken from
pymatgen's ``MPRelaxSet`` configuration at import time, so they follow pymatgen; the fallback below is the
same rule written out, used only if that configuration cannot be read.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["mp_u_elements", "mp_hubbard_u", "mp_hubbard_u_mask"]

_FALLBACK = {"O": ("Co", "Cr", "Fe", "Mn", "Mo", "Ni", "V", "W"), "F": ("Co", "Cr", "Fe", "Mn", "Mo", "Ni", "V", "W")}


@lru_cache(maxsize=1)
def mp_u_elements() -> dict[int, frozenset[int]]:
    """{Z of anion (O, F): frozenset of Z of the metals that get a U} from pymatgen's MPRelaxSet."""
    from ase.data import atomic_numbers

    table = None
    try:
        from pymatgen.io.vasp.sets import MPRelaxSet

        table = MPRelaxSet.CONFIG["INCAR"]["LDAUU"]
    except Exception:  # pragma: no cover - depends on the installed pymatgen
        table = None
    out = {}
    for anion in ("O", "F"):
        metals = tuple(m for m, u in (table or {}).get(anion, {}).items() if u) or _FALLBACK[anion]
        out[atomic_numbers[anion]] = frozenset(atomic_numbers[m] for m in metals)
    return out


def mp_hubbard_u(species) -> bool:
    """True when the Materials Project rules apply +U to a structure with these atomic numbers."""
    zs = set(int(z) for z in species)
    return any(anion in zs and not zs.isdisjoint(metals) for anion, metals in mp_u_elements().items())


def mp_hubbard_u_mask(species_flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Vectorised :func:`mp_hubbard_u` over frames given flat species lists and offsets (n_frames + 1,)."""
    n = len(offsets) - 1
    frame = np.repeat(np.arange(n), np.diff(offsets))
    out = np.zeros(n, dtype=bool)
    for anion, metals in mp_u_elements().items():
        has_anion = np.zeros(n, bool)
        has_anion[frame[species_flat == anion]] = True
        has_metal = np.zeros(n, bool)
        has_metal[frame[np.isin(species_flat, list(metals))]] = True
        out |= has_anion & has_metal
    return out
