"""ASE LMDB reader (``.aselmdb``): OMat24, sAlex and OMol25 shards.

The file is opened read-only with ``lmdb`` exactly as ``ase_db_backends.aselmdb.LMDBDatabase`` does
(``subdir=False, lock=False``) and rows are read with a cursor, decompressed (zlib) and decoded from ASE's
JSON encoding with orjson, without building an ``AtomsRow`` per row: the format is the one written by
``LMDBDatabase`` (keys are row ids; ``nextid``, ``deleted_ids`` and ``metadata`` are bookkeeping keys).
A folder is read shard by shard in sorted path order.

Units: energy eV, forces eV/Å, stress eV/Å^3 with ASE sign (-> GPa). OMat24 subset (from ``data["sid"]``
or the folder name) gives ``method`` and ``temperature_K``:
``rattled-T[-subsampled]`` -> rattled at T K, ``aimd-from-PBE-T-npt|nvt`` -> md at T K,
``rattled-relax`` -> relax, no temperature. OMol25 rows carry ``charge`` and ``spin`` (multiplicity) in
``data`` or ``key_value_pairs``.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import numpy as np
import orjson

from ..accounting import Accounting
from ..builder import RawFrame
from ..frames import EV_PER_A3_TO_GPA
from ..registry import ReadOptions

__all__ = ["iter_records", "iter_batches", "detect_card", "subset_regime", "list_shards", "shards", "OMAT24_SUBSETS"]

OMAT24_SUBSETS = (
    "rattled-300", "rattled-500", "rattled-1000", "rattled-300-subsampled", "rattled-500-subsampled",
    "rattled-1000-subsampled", "rattled-relax", "aimd-from-PBE-1000-npt", "aimd-from-PBE-1000-nvt",
    "aimd-from-PBE-3000-npt", "aimd-from-PBE-3000-nvt",
)
_SUBSET_RE = re.compile(r"(rattled-relax|rattled-\d+(?:-subsampled)?|aimd-from-PBE-\d+-n[pv]t)")
_BOOKKEEPING = {b"nextid", b"deleted_ids", b"metadata"}


def subset_regime(subset: str | None) -> tuple[str, float | None]:
    """(method, temperature_K) of an OMat24 subset name; ``("unknown", None)`` when not recognised."""
    if not subset:
        return "unknown", None
    if subset.startswith("rattled-relax"):
        return "relax", None
    m = re.match(r"rattled-(\d+)", subset)
    if m:
        return "rattled", float(m.group(1))
    m = re.match(r"aimd-from-PBE-(\d+)-n[pv]t", subset)
    if m:
        return "md", float(m.group(1))
    return "unknown", None


def _subset_from_text(text: str) -> str | None:
    m = _SUBSET_RE.search(text)
    return m.group(1) if m else None


def list_shards(path: Path) -> list[Path]:
    """The ``.aselmdb`` files of a path (itself, or every shard below a folder, sorted)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".aselmdb", ".lmdb") and p.is_file())
    return [path]


def detect_card(path: Path, options: ReadOptions) -> str | None:
    text = str(Path(path).resolve()).lower()
    shards = list_shards(path)
    if any(_subset_from_text(str(p)) for p in shards[:50]) or "omat" in text:
        return "omat24"
    if "omol" in text:
        return "omol25"
    if "salex" in text or "alex" in text:
        return "salex"
    return None


def _flat(obj):
    """The flat element list of an ASE-JSON array (or a nested list as it is): no numpy per row, the
    frame builder converts whole batches at once."""
    if isinstance(obj, dict) and "__ndarray__" in obj:
        return obj["__ndarray__"][2]
    return obj


_SUBSET_CACHE: dict[str, tuple] = {}


def _regime(text: str) -> tuple[str | None, str, float | None]:
    """(subset, method, temperature_K) from a sid / folder name; cached by the text before the last dashes."""
    key = text.rsplit("-", 2)[0]
    hit = _SUBSET_CACHE.get(key)
    if hit is None:
        subset = _subset_from_text(text)
        hit = (subset, *subset_regime(subset))
        if len(_SUBSET_CACHE) < 10_000:
            _SUBSET_CACHE[key] = hit
    return hit


_NO_PBC = [False, False, False]


def _row(dct: dict, row_id: str, stem: str, shard_subset: tuple) -> tuple:
    """One decoded row as a frame-builder row tuple (:data:`~monoculture.datasets.builder.ROW_FIELDS`).

    Arrays stay the flat lists of ASE's JSON encoding (the builder converts whole batches); stress goes
    from eV/Å^3 to GPa here (a full 3x3 tensor becomes Voigt). Raises KeyError / TypeError / ValueError
    on a row that is not an ASE row.
    """
    data = dct.get("data") or {}
    kvp = dct.get("key_value_pairs") or {}
    sid = data.get("sid") or kvp.get("sid")
    subset, method, temperature = _regime(str(sid)) if sid else (None, "unknown", None)
    if subset is None:
        subset, method, temperature = shard_subset
    stress = dct.get("stress")
    if stress is not None:
        stress = [v * EV_PER_A3_TO_GPA for v in _flat(stress)]
        if len(stress) == 9:  # a full 3x3 tensor -> Voigt
            stress = [stress[0], stress[4], stress[8], stress[5], stress[2], stress[1]]
    charge = data.get("charge", kvp.get("charge"))
    spin = data.get("spin", kvp.get("spin"))
    cell = dct.get("cell")
    forces = dct.get("forces")
    return (
        str(sid) if sid else f"{stem}:{row_id}",  # id
        row_id,  # key
        _flat(dct["numbers"]),
        _flat(dct["positions"]),
        None if cell is None else _flat(cell),
        _flat(dct.get("pbc", _NO_PBC)),
        dct.get("energy"),
        None if forces is None else _flat(forces),
        stress,
        temperature,
        method,
        subset,
        None, None, None,  # functional, hubbard_u, basis: from the card
        None if charge is None else int(charge),
        None if spin is None else int(spin),
        None,  # smiles
    )


def shards(path: Path, n: int) -> list:
    """Work units for ``n`` workers: ``(file, first_key, last_key)`` triples (keys None = whole file).

    Whole files when there are at least ``n`` of them; otherwise each file's row keys are split into
    contiguous ranges of the LMDB key order.
    """
    import lmdb

    files = list_shards(path)
    if n <= 1 or len(files) >= n:
        return [(str(f), None, None) for f in files]
    per_file = -(-n // len(files))
    out = []
    for f in files:
        try:
            env = lmdb.open(str(f), subdir=False, readonly=True, lock=False, meminit=False)
        except lmdb.Error:
            out.append((str(f), None, None))  # iter_records will count the failure
            continue
        try:
            with env.begin() as txn:
                keys = [k for k in txn.cursor().iternext(keys=True, values=False) if k not in _BOOKKEEPING]
        finally:
            env.close()
        if len(keys) < 2 * per_file:
            out.append((str(f), None, None))
            continue
        bounds = np.linspace(0, len(keys), per_file + 1).astype(int)
        out.extend((str(f), keys[a], keys[b - 1]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a)
    return out


def iter_batches(path: Path, options: ReadOptions, accounting: Accounting, shard=None,
                     batch_size: int = 4096) -> Iterator[list[tuple]]:
    """Yield lists of up to ``batch_size`` row tuples (see :func:`_row`) for every row of every shard file.

    Undecodable rows are counted as failed, unreadable or truncated files too. ``shard`` is None
    (everything under ``path``) or a ``(file, first_key, last_key)`` from :func:`shards`.
    """
    import lmdb

    if shard is None:
        units = [(f, None, None) for f in list_shards(path)]
    else:
        units = [(Path(shard[0]), shard[1], shard[2])]
    rows: list[tuple] = []
    decompress, loads = zlib.decompress, orjson.loads
    bookkeeping = _BOOKKEEPING
    for shard, first_key, last_key in units:
        file = str(shard)
        try:
            env = lmdb.open(str(shard), subdir=False, readonly=True, lock=False, readahead=True, meminit=False)
        except lmdb.Error as exc:
            accounting.fail(file, "*", "unreadable_container", str(exc)[:200])
            continue
        try:
            # A truncated file still opens, but reading a page past its end through the memory map would
            # kill the process (SIGBUS): compare the pages LMDB says it has with the bytes on disk first.
            needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
            if needed > shard.stat().st_size:
                accounting.fail(file, "*", "truncated_container",
                                f"LMDB needs {needed} bytes, file has {shard.stat().st_size}")
                continue
            folder_subset = _subset_from_text(str(shard.parent.name)) or _subset_from_text(str(shard))
            shard_subset = (folder_subset, *subset_regime(folder_subset))
            stem = shard.stem
            with env.begin(buffers=False) as txn:
                cursor = txn.cursor()
                if first_key is not None:
                    cursor.set_range(first_key)
                try:
                    for key, value in (cursor.iternext() if first_key is not None else cursor):
                        if last_key is not None and key > last_key:
                            break
                        if key in bookkeeping:
                            continue
                        row_id = key.decode("ascii", "replace")
                        try:
                            rows.append(_row(loads(decompress(value)), row_id, stem, shard_subset))
                        except (zlib.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                            accounting.fail(file, row_id, "undecodable_row", f"{type(exc).__name__}: {str(exc)[:160]}")
                            continue
                        if len(rows) >= batch_size:
                            yield [rows]
                            rows = []
                except lmdb.Error as exc:
                    accounting.fail(file, "cursor", "truncated_or_corrupt_container", str(exc)[:200])
        finally:
            env.close()
    if rows:
        yield [rows]


def iter_records(path: Path, options: ReadOptions, accounting: Accounting, shard=None) -> Iterator[RawFrame]:
    """Yield one :class:`RawFrame` per row (the per-record form of :func:`iter_row_batches`)."""
    for segments in iter_batches(path, options, accounting, shard):
        for row in chain.from_iterable(segments):
            yield RawFrame(*row)
