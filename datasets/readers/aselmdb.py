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

import math
import re
import zlib
from collections.abc import Iterator
from itertools import chain, repeat
from operator import itemgetter, mul
from pathlib import Path

import numpy as np
import orjson

from ..accounting import Accounting
from ..frames import EV_PER_A3_TO_GPA
from ..options import ReaderSpec, ReadOptions
from ..records import ColumnBatch, RawFrame, SegmentBatcher, raw_frames

__all__ = ["READER", "sniff_directory",
           "iter_records", "iter_batches", "detect_card", "subset_regime", "list_shards", "shards", "OMAT24_SUBSETS"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("aselmdb", "ASE LMDB (.aselmdb) of OMat24, sAlex, OMol25; a file or a folder of shards",
                    __name__, extensions=(".aselmdb", ".lmdb"), directories=True, unique_ids=True,
                    cards=("omat24", "omol25", "salex"), order=20)

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
    """One decoded row as a frame-builder row tuple (:data:`~monoculture.datasets.records.ROW_FIELDS`).

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


_G_NUMBERS = itemgetter("numbers")
_G_POSITIONS = itemgetter("positions")
_G_NDARRAY = itemgetter("__ndarray__")
_G_VALUES = itemgetter(2)
_THREE = repeat(3)
#: Rows decoded before they are moved into columns together (small enough to stay in the CPU cache).
GROUP = 64


def _nd_values(objs) -> list:
    """The flat value lists of ASE-JSON arrays (``{"__ndarray__": [shape, dtype, values]}``); raises
    KeyError / TypeError / IndexError for anything else."""
    return list(map(_G_VALUES, map(_G_NDARRAY, objs)))


def _lists_of(values: list, width: int) -> bool:
    """Every value has exactly ``width`` items (raises TypeError for a number or None). With values parsed
    from JSON that is a list, or a string or object whose items are strings, which the number buffers
    then reject."""
    return list(map(len, values)).count(width) == len(values)


def _add_group(cb: ColumnBatch, dcts: list, row_ids: list, stem: str, shard_subset: tuple) -> bool:
    """Append a group of decoded rows to ``cb`` when all of them are regular; else return False with
    ``cb`` unchanged (the caller reads the group row by row, with :func:`_row`).

    Regular: numbers, positions (and cell, pbc, forces, stress when present) are ASE-JSON arrays whose
    flat values have the expected sizes (Z integers; 3 per atom; 9; 3; 3 per atom; 6), and the metadata
    converts as in :func:`_row`. Values go from the parsed lists straight into the batch buffers, which
    reject anything that is not a number; no accounting event happens here.
    """
    k = len(dcts)
    try:
        numbers = _nd_values(map(_G_NUMBERS, dcts))
        positions = _nd_values(map(_G_POSITIONS, dcts))
        if set(map(type, numbers)) != {list} or set(map(type, positions)) != {list}:
            return False
        counts = list(map(len, numbers))
        if list(map(len, positions)) != list(map(mul, counts, _THREE)):
            return False
        if not set(map(type, chain.from_iterable(numbers))) <= {int}:
            return False
        cells = [d.get("cell") for d in dcts]
        pbcs = [d.get("pbc", _NO_PBC) for d in dcts]
        pbcs = [p if type(p) is list else p["__ndarray__"][2] for p in pbcs]
        forces = [d.get("forces") for d in dcts]
        stresses = [d.get("stress") for d in dcts]
        energies = [d.get("energy") for d in dcts]
        # metadata as _row reads it, one comprehension per field
        datas = [d.get("data") or _EMPTY for d in dcts]
        kvps = [d.get("key_value_pairs") or _EMPTY for d in dcts]
        sids = [x.get("sid") or y.get("sid") for x, y in zip(datas, kvps)]
        regimes = [_regime(str(sid)) if sid else shard_subset for sid in sids]
        regimes = [shard_subset if r[0] is None else r for r in regimes]
        ids = [str(sid) if sid else f"{stem}:{row_id}" for sid, row_id in zip(sids, row_ids)]
        charges = [x.get("charge", y.get("charge")) for x, y in zip(datas, kvps)]
        spins = [x.get("spin", y.get("spin")) for x, y in zip(datas, kvps)]
        if charges.count(None) != k:
            charges = [None if c is None else int(c) for c in charges]
        if spins.count(None) != k:
            spins = [None if c is None else int(c) for c in spins]
        cell_values = _nd_values(c for c in cells if c is not None)
        force_values = _nd_values(f for f in forces if f is not None)
        stress_values = _nd_values(x for x in stresses if x is not None)
        if not (_lists_of(cell_values, 9) and _lists_of(pbcs, 3) and _lists_of(stress_values, 6)):
            return False
        if force_values and set(map(type, force_values)) != {list}:
            return False
        if list(map(len, force_values)) != [3 * c for c, f in zip(counts, forces) if f is not None]:
            return False
    except Exception:  # noqa: BLE001 - anything unexpected: the row-by-row reading decides
        return False
    mark = cb.mark()
    try:
        cb.numbers.extend(chain.from_iterable(numbers))
        cb.positions.extend(chain.from_iterable(positions))
        cb.pbc.extend(chain.from_iterable(pbcs))
        if len(cell_values) == k:
            cb.cell.extend(chain.from_iterable(cell_values))
        else:
            values = iter(cell_values)
            for c in cells:
                cb.cell.extend(_ZEROS9 if c is None else next(values))
        if len(force_values) == k:
            cb.forces.extend(chain.from_iterable(force_values))
            cb.has_forces.extend([1] * k)
        else:
            values = iter(force_values)
            for f, c in zip(forces, counts):
                cb.forces.extend([math.nan] * (3 * c) if f is None else next(values))
                cb.has_forces.append(f is not None)
        if len(stress_values) == k:
            cb.stress.extend(chain.from_iterable(stress_values))
            cb.has_stress.extend([1] * k)
        else:
            values = iter(stress_values)
            for x in stresses:
                cb.stress.extend(_NAN6 if x is None else next(values))
                cb.has_stress.append(x is not None)
    except (TypeError, ValueError, OverflowError):  # a value that is not a number (or a flag out of range)
        cb.rollback(mark)
        return False
    cb.lengths.extend(counts)
    cb.energy.extend(energies)
    cb.keys.extend(row_ids)
    subsets, methods, temperatures = zip(*regimes)
    cb.ids.extend(ids)
    cb.subset.extend(subsets)
    cb.method.extend(methods)
    cb.temperature.extend(temperatures)
    cb.charge.extend(charges)
    cb.spin.extend(spins)
    return True


_ZEROS9 = [0.0] * 9
_NAN6 = [math.nan] * 6
_EMPTY: dict = {}


def _new_columns() -> ColumnBatch:
    # ASE stress: Voigt in eV/Å^3, ASE sign -> GPa
    return ColumnBatch(stress_width=6, stress_factor=EV_PER_A3_TO_GPA)


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
                 batch_size: int = 4096) -> Iterator[list]:
    """Yield batches of ``batch_size`` rows of every shard file, each a list of segments for
    :meth:`~monoculture.datasets.builder.FrameBuilder.build`; undecodable rows are counted as failed,
    unreadable or truncated files too.

    ``shard`` is None (everything under ``path``) or a ``(file, first_key, last_key)`` from :func:`shards`.
    Rows are decoded in groups of :data:`GROUP`; a regular group goes into flat columns at once
    (:func:`_add_group`), any other is read row by row (:func:`_row`) with the accounting of every row.
    """
    import lmdb

    if shard is None:
        units = [(f, None, None) for f in list_shards(path)]
    else:
        units = [(Path(shard[0]), shard[1], shard[2])]
    batcher = SegmentBatcher(batch_size, _new_columns)
    decompress, loads = zlib.decompress, orjson.loads
    bookkeeping = _BOOKKEEPING
    row_errors = (KeyError, TypeError, ValueError, AttributeError)

    def flush(file, dcts, row_ids, stem, shard_subset):
        if not _add_group(batcher.columns(), dcts, row_ids, stem, shard_subset):
            for dct, row_id in zip(dcts, row_ids):
                try:
                    row = _row(dct, row_id, stem, shard_subset)
                except row_errors as exc:
                    accounting.fail(file, row_id, "undecodable_row", f"{type(exc).__name__}: {str(exc)[:160]}")
                    continue
                batcher.add_row(row)
        else:
            batcher.added(len(dcts))
        dcts.clear()
        row_ids.clear()
        return batcher.ready()

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
            dcts: list = []
            row_ids: list = []
            with env.begin(buffers=False) as txn:
                cursor = txn.cursor()
                if first_key is not None:
                    cursor.set_range(first_key)
                limit = min(GROUP, batch_size - batcher.pending)  # a group never crosses a batch boundary
                try:
                    for key, value in (cursor.iternext() if first_key is not None else cursor):
                        if last_key is not None and key > last_key:
                            break
                        if key in bookkeeping:
                            continue
                        row_id = key.decode("ascii", "replace")
                        try:
                            dcts.append(loads(decompress(value)))
                        except (zlib.error, orjson.JSONDecodeError) as exc:
                            yield from flush(file, dcts, row_ids, stem, shard_subset)  # keeps the order of events
                            limit = min(GROUP, batch_size - batcher.pending)
                            accounting.fail(file, row_id, "undecodable_row", f"{type(exc).__name__}: {str(exc)[:160]}")
                            continue
                        row_ids.append(row_id)
                        if len(dcts) >= limit:
                            yield from flush(file, dcts, row_ids, stem, shard_subset)
                            limit = min(GROUP, batch_size - batcher.pending)
                except lmdb.Error as exc:
                    yield from flush(file, dcts, row_ids, stem, shard_subset)
                    accounting.fail(file, "cursor", "truncated_or_corrupt_container", str(exc)[:200])
                yield from flush(file, dcts, row_ids, stem, shard_subset)
        finally:
            env.close()
    rest = batcher.rest()
    if rest is not None:
        yield rest


def iter_records(path: Path, options: ReadOptions, accounting: Accounting, shard=None) -> Iterator[RawFrame]:
    """Yield one :class:`RawFrame` per row (the per-record form of :func:`iter_row_batches`)."""
    yield from raw_frames(iter_batches(path, options, accounting, shard))


def sniff_directory(path: Path) -> bool:
    """A folder holding ``.aselmdb`` shards (at any depth)."""
    return any(Path(path).rglob("*.aselmdb"))
