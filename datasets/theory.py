"""Level-of-theory rules that depend on composition.

The Materials Project GGA/GGA+U mixing scheme (used for MPTrj, OMat24, sAlex and Alexandria PBE): a
calculation is GGA+U when the structure contains O or F together with any of Co, Cr, Fe, Mn, Mo, Ni, V, W
(the U values of pymatgen's ``MPRelaxSet`` / ``MaterialsProject2020Compatibility``). The table is written
out here because importing ``pymatgen.io.vasp.sets`` costs about 10 s; a test checks it against pymatgen's
``MPRelaxSet`` configuration so the two cannot drift apart.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["MP_U_METALS", "mp_u_elements", "mp_hubbard_u", "mp_hubbard_u_mask"]

#: Anion -> metals that get a Hubbard U in the Materials Project GGA+U scheme.
MP_U_METALS = {
    "O": ("Co", "Cr", "Fe", "Mn", "Mo", "Ni", "V", "W"),
    "F": ("Co", "Cr", "Fe", "Mn", "Mo", "Ni", "V", "W"),
}


@lru_cache(maxsize=1)
def mp_u_elements() -> dict[int, frozenset[int]]:
    """{Z of anion (O, F): frozenset of Z of the metals that get a U}."""
    from ase.data import atomic_numbers

    return {atomic_numbers[a]: frozenset(atomic_numbers[m] for m in metals) for a, metals in MP_U_METALS.items()}


def mp_hubbard_u(numbers) -> bool:
    """True when the Materials Project rules apply +U to a structure with these atomic numbers."""
    zs = set(numbers.tolist() if isinstance(numbers, np.ndarray) else numbers)
    return any(anion in zs and not zs.isdisjoint(metals) for anion, metals in mp_u_elements().items())


@lru_cache(maxsize=1)
def _mp_u_bits() -> np.ndarray:
    """Per Z (0..255) the bits of the rule: bit 2k for the k-th anion, bit 2k + 1 for its metals."""
    bits = np.zeros(256, np.int64)
    for k, (anion, metals) in enumerate(mp_u_elements().items()):
        bits[anion] |= 1 << (2 * k)
        bits[list(metals)] |= 1 << (2 * k + 1)
    return bits


def mp_hubbard_u_mask(species_flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Vectorised :func:`mp_hubbard_u` over frames given flat species lists and offsets (n_frames + 1,):
    the rule's bits of every atom are OR-ed per frame, then a frame is +U when an anion bit and the bit of
    its metals are both set."""
    offsets = np.asarray(offsets, np.int64)
    n = len(offsets) - 1
    out = np.zeros(n, dtype=bool)
    sizes = np.diff(offsets)
    filled = np.flatnonzero(sizes > 0)
    if not len(filled):
        return out
    bits = _mp_u_bits()[np.asarray(species_flat, np.int64)]
    per_frame = np.bitwise_or.reduceat(bits, offsets[filled])
    for k in range(len(mp_u_elements())):
        out[filled] |= ((per_frame >> (2 * k)) & 3) == 3
    return out
