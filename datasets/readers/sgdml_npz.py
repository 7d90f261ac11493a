"""sGDML / MD17 dataset ``.npz`` reader: one molecule's trajectory, arrays of every frame at once.

The sGDML dataset format (``np.savez`` of the sGDML tools; the MD17, MD22 and CCSD(T) sets of sgdml.org)
holds one molecule, the same atoms in the same order in every frame:

``R`` (n_frames, n_atoms, 3)
    Cartesian positions, in ``r_unit`` (default Å).
``z`` (n_atoms,)
    Atomic numbers.
``E`` (n_frames,) or (n_frames, 1), optional
    Total energies, in ``e_unit`` (default kcal/mol, MD17's unit).
``F`` (n_frames, n_atoms, 3), optional
    Forces, in ``e_unit`` per ``r_unit`` (default kcal/mol/Å).
``lattice`` (3, 3), optional
    Cell rows in ``r_unit``: the frames are periodic when present.
``type`` (``'d'``), ``name``, ``theory``, ``md5``, ``r_unit``, ``e_unit``, ``E_min`` ... (0-d strings / numbers)
    Metadata; ``theory`` (e.g. ``'DFT: PBE+TS'``, ``'CCSD(T)/cc-pVDZ'``) gives the level of theory, with the
    method family before a colon dropped; ``'unknown'`` or no ``theory`` leaves it to the card.

What the frame table gets: energies in eV and forces in eV/Å (``ase.units``: 1 kcal/mol = 0.0433641 eV,
1 Hartree = 27.2114 eV, 1 Bohr = 0.529177 Å), ``method`` = ``md``, ids ``<name>:<frame index>``. A frame
whose energy or forces are not finite is skipped by the builder with its reason (``nan_energy``,
``nan_forces``). A file that is not a readable ``.npz`` of this layout, or whose units are unknown, raises a
one-line :class:`~monoculture.datasets.errors.InputError` naming the file when it is opened (and is counted
as failed inside a folder).

The worked example of a reader that is one module (issue #21): it declares its sniffing, options, detection
order and the card it adds (``md17``) in :data:`READER`; nothing else lists it. Arrays are loaded with
``allow_pickle=False`` (an object array is refused, never unpickled).

The arrays of a file are read once per open: sniffing and card detection read only the member list and
the small ``name`` / ``theory`` members (cached per path, modification time and size; a ``.npz.gz`` is
decompressed whole for that, its zip directory being at the end); :func:`check` reads and validates every
array and hands them to the next :func:`iter_batches` of the same unchanged file, which takes them (one
file is held at a time, and only until it is read).
"""
from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import units

from ..accounting import Accounting
from ..cards import parse_level_of_theory
from ..errors import InputError
from ..options import ReaderSpec, ReadOptions, inner_name
from ..records import ArrayColumns, RawFrame, raw_frames
from . import _arrow_columns as A
from ._common import open_maybe_compressed

__all__ = ["READER", "sniff", "check", "detect_card", "iter_batches", "iter_records", "ENERGY_UNITS", "LENGTH_UNITS"]

#: Energy units of ``e_unit`` (lower case, spaces removed) -> eV.
ENERGY_UNITS = {"kcal/mol": units.kcal / units.mol, "kcalmol-1": units.kcal / units.mol,
                "kj/mol": units.kJ / units.mol, "ev": 1.0, "mev": 1e-3, "hartree": units.Hartree,
                "ha": units.Hartree, "au": units.Hartree, "a.u.": units.Hartree}
#: Length units of ``r_unit`` (lower case, spaces removed) -> Å.
LENGTH_UNITS = {"ang": 1.0, "angstrom": 1.0, "a": 1.0, "å": 1.0, "bohr": units.Bohr, "au": units.Bohr,
                "a.u.": units.Bohr, "nm": 10.0}
#: Molecules of MD17 (Chmiela et al. 2017, DFT PBE+TS): a file of one of these names is that dataset.
MD17_MOLECULES = ("aspirin", "benzene", "ethanol", "malonaldehyde", "naphthalene", "salicylic", "toluene", "uracil")

READER = ReaderSpec(
    "sgdml-npz", "sGDML / MD17 dataset .npz (R, z, E, F; kcal/mol and Å converted to eV, eV/Å)", __name__,
    extensions=(".npz",), sniff_extensions=(".npz",), options=("level_of_theory", "dataset"), cards=("md17",),
    order=55,
    new_cards={"md17": {
        "title": "MD17: ab initio molecular dynamics of small organic molecules (sGDML)",
        "functional": "PBE+TS", "hubbard_u": "none", "code": "FHI-aims", "dispersion": "TS (Tkatchenko-Scheffler)",
        "regimes": "ab initio MD trajectories at 500 K, one molecule per file",
        "citation": "Chmiela et al., Sci. Adv. 3, e1603015 (2017), doi:10.1126/sciadv.1603015",
        "url": "http://www.sgdml.org/#datasets"}},
)


def _load(path: Path) -> np.lib.npyio.NpzFile:
    """The archive of ``path`` (read whole into memory first when it is compressed: ``np.load`` seeks)."""
    path = Path(path)
    if inner_name(path.name) != path.name:
        with open_maybe_compressed(path) as fh:
            return np.load(io.BytesIO(fh.read()), allow_pickle=False)
    return np.load(path, allow_pickle=False)


def _stamp(path: Path) -> tuple[str, int, int]:
    """(resolved path, modification time in ns, size in bytes): a file's identity for the caches here."""
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def _why(exc: BaseException) -> str:
    """``TypeName: first line of the message`` (at most 160 characters of it)."""
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


@dataclass(frozen=True)
class _Members:
    """What sniffing and card detection need of an archive: its member names and its ``name`` / ``theory``
    texts (None when absent)."""

    files: tuple[str, ...]
    name: str | None
    theory: str | None


def _members(path: Path) -> _Members | None:
    """The :class:`_Members` of ``path``, None when it is not a readable ``.npz`` archive (cached per file:
    path, modification time and size). Only the zip directory and the two small members are read (a
    ``.npz.gz`` is decompressed whole: its directory is at the end)."""
    try:
        return _members_of(_stamp(Path(path)))
    except OSError:
        return None


@functools.lru_cache(maxsize=16)
def _members_of(stamp: tuple) -> _Members | None:
    try:
        npz = _load(Path(stamp[0]))
    except Exception:  # noqa: BLE001 - any damage (zlib.error, BadZipFile, a bad .npy header...): not readable
        return None
    with npz:
        return _Members(tuple(npz.files), _text_or_none(npz, "name"), _text_or_none(npz, "theory"))


def _text_or_none(npz, key: str) -> str | None:
    """:func:`_text`, or None when that member cannot be read (the check reports it)."""
    try:
        return _text(npz, key)
    except Exception:  # noqa: BLE001 - an object array, a damaged member
        return None


def sniff(path: Path, head: bytes) -> bool:
    """An ``.npz`` archive holding ``R`` and ``z`` and energies or forces (its member list only is read)."""
    members = _members(path)
    if members is None:
        return False
    names = set(members.files)
    return {"R", "z"} <= names and bool({"E", "F"} & names)


def _text(npz, key: str) -> str | None:
    """A 0-d string (or bytes) member as text; None when absent."""
    if key not in npz.files:
        return None
    value = np.asarray(npz[key])
    value = value.item() if value.ndim == 0 else (value.ravel()[0] if value.size else "")
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _unit(npz, key: str, table: dict, default: str, path: Path) -> float:
    name = _text(npz, key) or default
    factor = table.get(name.strip().lower().replace(" ", ""))
    if factor is None:
        raise InputError(f"{path}: unknown {key} {name!r} in this sGDML .npz; known: {', '.join(table)}")
    return factor


class _Arrays:
    """The checked arrays of one file, converted to frame-table units (eV, eV/Å, Å)."""

    def __init__(self, path: Path):
        self.path = path = Path(path)
        try:
            npz = _load(path)
        except Exception as exc:  # noqa: BLE001 - OSError, BadZipFile, zlib.error, lzma.LZMAError, EOFError...
            raise InputError(f"{path}: not a readable .npz archive ({_why(exc)})") from None
        with npz:
            missing = [k for k in ("R", "z") if k not in npz.files]
            if missing:
                raise InputError(f"{path}: not an sGDML dataset .npz, no {' or '.join(missing)} array "
                                 f"(members: {', '.join(npz.files[:20])})")
            try:
                self._read(npz, path)
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 - object arrays, damaged members (zlib.error, bad headers...)
                raise InputError(f"{path}: unreadable sGDML .npz ({_why(exc)})") from None

    def _read(self, npz, path: Path) -> None:
        r_factor = _unit(npz, "r_unit", LENGTH_UNITS, "Ang", path)
        e_factor = _unit(npz, "e_unit", ENERGY_UNITS, "kcal/mol", path)
        z = np.asarray(npz["z"])
        R = np.asarray(npz["R"])
        if z.ndim != 1 or z.dtype.kind not in "iu":
            raise InputError(f"{path}: z must be (n_atoms,) integers, got shape {z.shape} of {z.dtype}")
        m, n = (R.shape[0], z.shape[0]) if R.ndim == 3 else (-1, z.shape[0])
        if R.shape != (m, n, 3):
            raise InputError(f"{path}: R must be (n_frames, {n}, 3) for {n} atoms, got shape {R.shape}")
        self.z, self.positions = z.astype(np.int64), R.astype(np.float64) * r_factor
        self.energy = None
        if "E" in npz.files:
            E = np.asarray(npz["E"], dtype=np.float64)
            if E.shape not in ((m,), (m, 1)):
                raise InputError(f"{path}: E must be ({m},) or ({m}, 1) for {m} frames, got shape {E.shape}")
            self.energy = E.reshape(m) * e_factor
        self.forces = None
        if "F" in npz.files:
            F = np.asarray(npz["F"], dtype=np.float64)
            if F.shape != (m, n, 3):
                raise InputError(f"{path}: F must be ({m}, {n}, 3) like R, got shape {F.shape}")
            self.forces = F * (e_factor / r_factor)
        self.cell = None
        if "lattice" in npz.files:
            lattice = np.asarray(npz["lattice"], dtype=np.float64)
            if lattice.shape != (3, 3):
                raise InputError(f"{path}: lattice must be (3, 3), got shape {lattice.shape}")
            self.cell = lattice * r_factor
        self.name = _text(npz, "name") or _stem(path)
        self.theory = _theory(_text(npz, "theory"))

    def __len__(self) -> int:
        return self.positions.shape[0]


def _stem(path: Path) -> str:
    return Path(inner_name(Path(path).name)).stem


def _theory(text: str | None) -> tuple[str, bool, str | None] | None:
    """``'DFT: PBE+TS'`` -> ``('PBE+TS', False, None)``; ``'CCSD(T)/cc-pVDZ'`` -> ``('CCSD(T)', False,
    'cc-pVDZ')``; None for no, an empty or an ``unknown`` theory."""
    if text is None:
        return None
    text = text.split(":", 1)[1] if ":" in text else text
    if not text.strip() or text.strip().lower() == "unknown":
        return None
    return parse_level_of_theory(text)


#: The arrays :func:`check` read, by file stamp, until :func:`iter_batches` takes them (one file at most).
_CHECKED: dict[tuple, _Arrays] = {}


def check(path: Path, options: ReadOptions) -> None:
    """Raise :class:`InputError` (one line naming the file) when ``path`` is not an sGDML dataset ``.npz``
    that can be read: not an archive, a damaged member, no ``R`` / ``z``, arrays of inconsistent shapes, or
    unknown units. The arrays read are kept for the next :func:`iter_batches` of this unchanged file."""
    path = Path(path)
    try:
        stamp = _stamp(path)  # taken before the reading: a file changed meanwhile is read again
    except OSError:
        stamp = None
    arrays = _Arrays(path)
    _CHECKED.clear()
    if stamp is not None:
        _CHECKED[stamp] = arrays


def _checked_or_load(path: Path) -> _Arrays:
    """The arrays :func:`check` read of this unchanged file (taken: a second pass reads it again), else read."""
    try:
        stamp = _stamp(path)
    except OSError:
        stamp = None
    arrays = _CHECKED.pop(stamp, None)
    return arrays if arrays is not None else _Arrays(path)


def detect_card(path: Path, options: ReadOptions) -> str | None:
    """``md17`` for a file named after an MD17 molecule whose theory is absent or a PBE one, else None."""
    members = _members(path)
    if members is None:  # the reading reports what is wrong with the file
        return None
    name, theory = (members.name or _stem(path)).lower(), members.theory
    md17 = name.startswith(MD17_MOLECULES) and (theory is None or "PBE" in theory.upper())
    return "md17" if md17 else None


def iter_batches(path: Path, options: ReadOptions, accounting: Accounting, shard=None,
                 batch_size: int = 4096) -> Iterator[list]:
    """Yield batches (one :class:`~monoculture.datasets.records.ArrayColumns` each) of ``batch_size``
    frames; a file that cannot be read is counted as one failure (``unreadable_npz``)."""
    try:
        arrays = _checked_or_load(Path(path))
    except InputError as exc:
        accounting.fail(str(path), "*", "unreadable_npz", str(exc)[:240])
        return
    n_atoms = len(arrays.z)
    for start in range(0, len(arrays), max(int(batch_size), 1)):
        stop = min(start + int(batch_size), len(arrays))
        yield [_columns(arrays, start, stop, n_atoms)]


def _columns(a: _Arrays, start: int, stop: int, n_atoms: int) -> ArrayColumns:
    """Frame columns of frames ``start:stop`` (every frame has the file's ``n_atoms`` atoms)."""
    k = stop - start
    cb = A.new_columns(k)
    has_forces = np.full(k, a.forces is not None)
    A.fill_atoms(cb, np.full(k, n_atoms, np.int64), np.tile(a.z, k), a.positions[start:stop].reshape(-1, 3),
                 a.forces[start:stop].reshape(-1, 3) if a.forces is not None else None, has_forces)
    periodic = a.cell is not None
    cb.cell = np.tile(a.cell.ravel(), k) if periodic else np.zeros(9 * k)
    cb.pbc = np.full(3 * k, int(periodic), np.int8)
    A.fill_stress(cb, np.full((k, 6), np.nan), np.zeros(k, bool))
    cb.energy = a.energy[start:stop].tolist() if a.energy is not None else [None] * k
    cb.ids = [f"{a.name}:{i}" for i in range(start, stop)]
    cb.keys = [str(i) for i in range(start, stop)]
    functional, hubbard_u, basis = a.theory if a.theory is not None else (None, None, None)
    cb.functional, cb.hubbard_u, cb.basis = [functional] * k, [hubbard_u] * k, [basis] * k
    cb.method, cb.subset = ["md"] * k, [None] * k
    return cb


def iter_records(path: Path, options: ReadOptions, accounting: Accounting, shard=None) -> Iterator[RawFrame]:
    """One :class:`~monoculture.datasets.records.RawFrame` per frame (the per-record form of
    :func:`iter_batches`)."""
    yield from raw_frames(iter_batches(path, options, accounting, shard))
