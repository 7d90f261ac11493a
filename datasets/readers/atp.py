"""Atompack stores (``.atp``, package ``atompack-db``, import ``atompack``): a file or a shard folder with a
``manifest.json`` (``LeMaterial/Atompack``: ``omat/train``, ``omol/train``, ``mptrj/mptrj``,
``lematbulk/compatible_pbe``...). An optional extra: ``pip install 'monoculture[atompack]'``.

Records are read as ``atompack.Molecule`` objects, ``GROUP`` at a time (``Database.get_molecules``), so that an
absent property stays absent: ``get_molecules_flat`` zero-fills a property that only some records have
(solids would come back with charge 0, molecules with zero stress). Frame table (``../shared/FORMATS.md``
section 4): ``numbers`` = ``atomic_numbers``; ``positions`` (float32 in the store, Å); ``cell`` = ``cell``
rows (zeros when None); ``pbc`` = ``pbc``, else periodic when the record has a cell; ``energy_eV`` =
``energy``; ``forces`` (eV/Å) and ``stress_GPa`` = 160.21766208 x Voigt(``stress``) (eV/Å^3, ASE sign, as the
ASE bridge writes it) only where the record has them; ``charge`` / ``spin`` from the custom properties of
those names when a record has them (``has_property``). The format records no level of theory: the dataset
card comes from the path or the manifest's ``dataset`` (omat -> OMat24, omol -> OMol25, mptrj -> MPtrj,
lematbulk -> LeMat-Bulk). ``id`` = a custom ``sid`` / ``id`` / ``data_id`` / ``material_id`` / ``mp_id``
property, else ``<shard>:<index>``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..accounting import Accounting
from ..errors import InputError
from ..frames import EV_PER_A3_TO_GPA
from ..options import ReaderSpec, ReadOptions
from ..records import ArrayColumns, RawFrame, raw_frames
from . import _arrow_columns as A

__all__ = ["READER", "sniff_directory",
           "list_shards", "manifest", "detect_card", "check", "shards", "iter_batches", "iter_records", "GROUP"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("atompack", "Atompack store (.atp, atompack-db): a file or a shard folder with manifest.json",
                    __name__, extensions=(".atp",), magic=(b"ATPK",), directories=True,
                    cards=("lemat-bulk", "omat24", "omol25", "mptrj"), order=70)

#: Records fetched per ``get_molecules`` call.
GROUP = 1024
_ID_KEYS = ("sid", "id", "data_id", "material_id", "mp_id")
#: Dataset card by a word of the path or of the manifest's ``dataset`` / ``variant`` (first match wins).
CARD_HINTS = (("lematbulk", "lemat-bulk"), ("lemat-bulk", "lemat-bulk"), ("omat", "omat24"), ("omol", "omol25"),
              ("mptrj", "mptrj"))
_MISSING = "the Atompack reader needs the optional package atompack-db: pip install 'monoculture[atompack]'"


def _atompack():
    try:
        import atompack
    except ImportError:
        raise InputError(_MISSING) from None
    return atompack


def list_shards(path: Path) -> list[Path]:
    """The ``.atp`` files of a path: itself, or every shard below a folder in sorted path order."""
    path = Path(path)
    if path.is_dir():
        return sorted((p for p in path.rglob("*.atp") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
    return [path]


def manifest(path: Path) -> dict:
    """The ``manifest.json`` of a shard folder (or of a file's folder); {} when absent or unreadable."""
    path = Path(path)
    for folder in ([path] if path.is_dir() else [path.parent]):
        f = folder / "manifest.json"
        if f.is_file():
            try:
                doc = json.loads(f.read_text())
            except (OSError, ValueError):
                return {}
            return doc if isinstance(doc, dict) else {}
    return {}


def detect_card(path: Path, options: ReadOptions) -> str | None:
    m = manifest(path)
    text = " ".join([A.path_text(path), str(m.get("dataset", "")), str(m.get("variant", ""))]).lower()
    for word, card in CARD_HINTS:
        if word in text:
            return card
    return None


def check(path: Path, options: ReadOptions) -> None:
    _atompack()
    if not list_shards(path):
        raise InputError(f"{path}: no .atp shard in this folder")


def _length(f: Path) -> int | None:
    try:
        return len(_atompack().Database.open(str(f)))
    except Exception:  # noqa: BLE001 - iter_batches counts the failure
        return None


def shards(path: Path, n: int) -> list:
    """Work units ``(file, rel, start, stop)``: whole files when there are at least ``n``, else index ranges."""
    path = Path(path)
    files = list_shards(path)
    rel = {f: (f.relative_to(path).as_posix() if path.is_dir() else f.name) for f in files}
    if n <= 1 or len(files) >= n:
        return [(str(f), rel[f], None, None) for f in files]
    per_file = -(-n // len(files))
    out = []
    for f in files:
        size = _length(f)
        if not size or size < 2 * per_file:
            out.append((str(f), rel[f], None, None))
            continue
        bounds = np.linspace(0, size, per_file + 1).astype(int)
        out.extend((str(f), rel[f], int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a)
    return out


def _property(m, keys) -> object:
    for k in keys:
        if m.has_property(k):
            return m.get_property(k)
    return None


def _int_or_none(v) -> int | None:
    try:
        return None if v is None else int(np.asarray(v).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None


def _columns(mols: list, start: int, rel: str) -> ArrayColumns:
    """Frame columns of a group of ``atompack.Molecule`` records (index of the first: ``start``)."""
    n = len(mols)
    cb = A.new_columns(n)
    numbers = [np.asarray(m.atomic_numbers, np.int64) for m in mols]
    lengths = np.fromiter(map(len, numbers), np.int64, n)
    positions = np.concatenate([np.asarray(m.positions, np.float64).reshape(-1, 3) for m in mols]) if n else \
        np.zeros((0, 3))
    forces_list = [m.forces for m in mols]
    has_forces = np.fromiter((f is not None for f in forces_list), bool, n)
    forces = np.concatenate([np.asarray(f, np.float64).reshape(-1, 3) for f in forces_list if f is not None]) \
        if has_forces.any() else None
    if forces is not None and len(forces) != int(lengths[has_forces].sum()):
        raise ValueError("forces do not have one row per atom")
    A.fill_atoms(cb, lengths, np.concatenate(numbers) if n else np.zeros(0, np.int64), positions, forces, has_forces)
    cells = np.zeros((n, 9))
    pbc = np.zeros((n, 3), np.int8)
    voigt = np.full((n, 6), np.nan)
    has_stress = np.zeros(n, bool)
    energy, ids, charge, spin = [], [], [], []
    for i, m in enumerate(mols):
        cell = m.cell
        if cell is not None:
            cells[i] = np.asarray(cell, np.float64).reshape(9)
        flags = m.pbc
        pbc[i] = flags if flags is not None else (cell is not None,) * 3
        s = m.stress
        if s is not None:
            s = np.asarray(s, np.float64).reshape(-1)
            voigt[i] = A.to_voigt(s.reshape(1, 9))[0] if s.size == 9 else s[:6]
            has_stress[i] = True
        e = m.energy
        energy.append(None if e is None else float(e))
        keys = m.property_keys()
        ident = _property(m, [k for k in _ID_KEYS if k in keys]) if keys else None
        ids.append(f"{rel}:{start + i}" if ident is None else str(ident))
        charge.append(_int_or_none(m.get_property("charge")) if "charge" in keys else None)
        spin.append(_int_or_none(m.get_property("spin")) if "spin" in keys else None)
    cb.cell = cells.ravel()
    cb.pbc = pbc.ravel()
    A.fill_stress(cb, voigt * EV_PER_A3_TO_GPA, has_stress)
    cb.energy = energy
    cb.ids = ids
    cb.keys = [f"{rel}:{start + i}" for i in range(n)]
    cb.charge, cb.spin = charge, spin
    cb.functional = [None] * n
    cb.hubbard_u = [None] * n
    cb.basis = [None] * n
    cb.method = ["unknown"] * n
    cb.subset = [None] * n
    return cb


def iter_batches(path: Path, options: ReadOptions, accounting: Accounting, shard=None,
                 batch_size: int = 4096) -> Iterator[list]:
    """Yield lists of :class:`~monoculture.datasets.records.ArrayColumns` segments, ``GROUP`` records each
    (at most ``batch_size``); an unreadable shard, or a group that cannot be decoded, is counted as failed."""
    atompack = _atompack()
    path = Path(path)
    if shard is None:
        units = [(str(f), f.relative_to(path).as_posix() if path.is_dir() else f.name, None, None)
                 for f in list_shards(path)]
    else:
        units = [tuple(shard)]
    step = max(1, min(GROUP, batch_size))
    for f, rel, start, stop in units:
        try:
            db = atompack.Database.open(str(f))
            size = len(db)
        except Exception as exc:  # noqa: BLE001 - the Rust core raises plain exceptions
            accounting.fail(str(f), "*", "unreadable_container", f"{type(exc).__name__}: {str(exc)[:200]}")
            continue
        a, b = (0 if start is None else start), (size if stop is None else stop)
        for lo in range(a, b, step):
            hi = min(b, lo + step)
            try:
                mols = db.get_molecules(list(range(lo, hi)))
                cb = _columns(mols, lo, rel)
            except Exception as exc:  # noqa: BLE001 - one bad group: its records fail, the rest are read
                for i in range(lo, hi):
                    accounting.fail(str(f), f"{rel}:{i}", "undecodable_row", f"{type(exc).__name__}: {str(exc)[:160]}")
                continue
            yield [cb]


def iter_records(path: Path, options: ReadOptions, accounting: Accounting, shard=None) -> Iterator[RawFrame]:
    yield from raw_frames(iter_batches(path, options, accounting, shard))


def sniff_directory(path: Path) -> bool:
    """A folder holding ``.atp`` shards (at any depth)."""
    return any(Path(path).rglob("*.atp"))
