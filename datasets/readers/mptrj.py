"""MPTrj JSON reader: ``{mp_id: {frame_id: {structure, uncorrected_total_energy, force, stress, ...}}}``.

The real file (``MPtrj_2022.9_full.json``) is 11 GB. It is read in one way: the stream is cut into 8 MB
blocks at material boundaries and each material is parsed with orjson (Python's json takes NaN tokens;
ijson's C backend re-reads a piece that both reject, to salvage what precedes the damage); a regular
material goes straight into flat columns, any other frame by frame. Memory holds one block at a time.

One path, measured (issue #21): a compiled numba scanner of the bytes (1,150 lines, plus 130 of exact
number conversion) used to read large files. ``benchmarks/mptrj_read.py`` on a 1.07 GB file of the real
shape (``synth --like mptrj --frames 120000 --mean-atoms 31``: 120,000 frames of 31 atoms; the real file is
11 GB for 1.58 M frames), each path whole in a fresh process, on 2 shared cores:

* at load 3.6-3.9, this reader 8.9 s CPU (13,400 frames/s), 16.9 s wall, 192 MB peak RSS; the warm scanner
  5.3 s CPU, 12.0 s wall, 302 MB: 1.68x in CPU time, 1.41x in wall time;
* at load 11-12, with ``--against b9516e1`` (the last tree with the scanner) and 2 runs each: this reader
  8.9-9.3 s CPU, 193 MB; that tree's reader 8.0-8.2 s CPU (the same code: an interleaved A/B on 30,000
  frames gave 2.2-2.4 s and 2.1-2.3 s, identical profiles); its warm scanner 4.9-5.3 s CPU, 304 MB: 1.6x
  its own reader and 1.8x this one in CPU time;
* the scanner's first use on a machine (numba compilation, empty cache) took 33-35 s CPU and 791 MB: 0.25x.

Under the 2x the issue asked of it, it was removed with its tests.

Units and conventions of the source and what the frame table gets:

* ``uncorrected_total_energy`` (eV, raw VASP) -> ``energy_eV``. Only a frame where it is absent or null takes
  ``corrected_total_energy`` instead (eV, with the MP2020 compatibility corrections, so not comparable with
  the raw energies of the other frames); a frame with neither is skipped as ``missing_energy``.
* ``force`` (eV/Å) -> ``forces``.
* ``stress`` (kBar, VASP sign: positive = compressive) -> ``stress_GPa`` = -0.1 x stress (ASE sign, GPa).
* ``method`` = ``relax`` (every MPTrj frame is a relaxation step); ``temperature_K`` = null.
* Level of theory comes from the card (``mptrj``: PBE, +U by the Materials Project rules per frame).
"""
from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Iterator
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path

import ijson
import orjson
from ase.data import atomic_numbers

from ..accounting import Accounting
from ..frames import KBAR_TO_GPA, stress_vasp_kbar_to_ase_gpa
from ..options import ReaderSpec, ReadOptions, inner_name
from ..records import ColumnBatch, RawFrame, SegmentBatcher, raw_frames
from ._common import StructureDictError, open_maybe_compressed, pymatgen_structure_arrays

__all__ = ["READER", "iter_records", "iter_batches", "detect_card", "sniff", "shards", "material_starts"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("mptrj", "MPTrj JSON {mp_id: {frame_id: {...}}} (plain or .gz / .bz2 / .xz)", __name__,
                    globs=("*mptrj*.json", "*MPtrj*.json"), sniff_extensions=(".json",), unique_ids=True,
                    cards=("mptrj",), order=10)

# A top-level key followed by its first frame key, which repeats the material id: `, "mp-1": {"mp-1-`.
_MATERIAL_START = re.compile(rb',\s*("([^"\\]{1,200})"\s*:\s*\{\s*"\2-)')
# The `{` of every match of _MATERIAL_START (and of a few other places): a brace whose first key has a
# hyphen in its first 201 characters. Braces are far rarer than commas in MPTrj, so scanning for these and
# checking each with _MATERIAL_START is several times faster than running _MATERIAL_START over the bytes.
_BRACE_CANDIDATE = re.compile(rb'\{(?=\s*"[^"\\\-]{0,200}-)')
_BLANKS = b" \t\n\r\x0b\x0c"  # what bytes.strip() removes


# `{"<mp_id>": {"<frame_id>": {"structure": {` (a frame may put another key first)
_MPTRJ_HEAD = re.compile(rb'\s*\{\s*"[^"\\]{1,200}"\s*:\s*\{\s*"[^"\\]{1,200}"\s*:\s*\{\s*"[^"\\]{1,60}"\s*:')


def sniff(path: Path, head: bytes) -> bool:
    """An MPTrj file starts ``{"<mp_id>": {"<frame_id>": {"structure": ...``: an object of objects of
    frame objects, whose first 4 kB name a pymatgen structure or an MPTrj frame key (a real frame's
    structure alone is longer than that, so the energy keys may come later). ``head``: the first bytes,
    decompressed (the registry decompresses ``.gz`` / ``.bz2`` / ``.xz`` files before sniffing)."""
    text = head.lstrip()[:2048]
    return text.startswith(b"{") and b'"structure"' in text and (
        b"uncorrected_total_energy" in head or b'"force"' in head or b'"mp_id"' in head
        or (b"pymatgen.core.structure" in head and _MPTRJ_HEAD.match(head) is not None)
    )


def detect_card(path: Path, options: ReadOptions) -> str:
    return "mptrj"


def shards(path: Path, n: int) -> list:
    """Split an uncompressed MPTrj file into up to ``n`` byte ranges that start at material boundaries.

    Returns a list of ``(start, end)`` byte offsets (or ``[None]``, the whole file, when the file is
    compressed or too small to split). Material ``k`` of the file is read by exactly one shard.
    """
    path = Path(path)
    size = os.path.getsize(path)
    if n <= 1 or inner_name(path.name) != path.name or size < 1 << 16:
        return [None]
    with open(path, "rb") as fh:
        head = fh.read(4096)
        first = head.find(b"{")
        fh.seek(max(0, size - 4096))
        tail = fh.read()
        last = size - len(tail) + tail.rfind(b"}")
        starts, ends = [first + 1], []
        for i in range(1, n):
            fh.seek(i * size // n)
            window = b""
            pos = fh.tell()
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                window += chunk
                m = _MATERIAL_START.search(window)
                if m:
                    if pos + m.start(0) > starts[-1]:
                        ends.append(pos + m.start(0))  # the comma stays outside both shards
                        starts.append(pos + m.start(1))
                    break
                window = window[-400:]
                pos = fh.tell() - len(window)
        ends.append(last)
    return [(a, b) for a, b in zip(starts, ends) if b > a]


def _row(mp_id: str, frame_id: str, rec: dict) -> tuple:
    """One MPTrj frame as a frame-builder row tuple (:data:`~monoculture.datasets.records.ROW_FIELDS`).

    Raises StructureDictError / TypeError / ValueError / KeyError / AttributeError on a malformed frame.
    """
    numbers, positions, cell, pbc = pymatgen_structure_arrays(rec["structure"])
    energy = rec.get("uncorrected_total_energy")
    if energy is None:
        energy = rec.get("corrected_total_energy")
    s = rec.get("stress")
    stress = None if s is None else stress_vasp_kbar_to_ase_gpa(s)  # kBar, VASP sign -> GPa, ASE sign (Voigt)
    return (
        str(frame_id),  # id
        f"{mp_id}/{frame_id}",  # key
        numbers,
        positions,
        cell,
        pbc,
        None if energy is None else float(energy),
        rec.get("force"),
        stress,
        None,  # temperature_K
        "relax",  # method: every MPTrj frame is a relaxation step
        None, None, None, None, None, None, None,  # subset, functional, hubbard_u, basis, charge, spin, smiles
    )


def material_starts(buf, end: int | None = None) -> list[tuple[int, int]]:
    """Material boundaries in ``buf[:end]``: ``(comma, key)`` offsets of every match of the material-start
    pattern (``, "mp-1": {"mp-1-``), left to right and non-overlapping, exactly as
    ``_MATERIAL_START.finditer`` finds them, but located through the rarer ``{`` of each match."""
    end = len(buf) if end is None else end
    out = []
    last = 0
    for brace in _BRACE_CANDIDATE.finditer(buf, 0, end):
        b = brace.start()
        q1 = buf.rfind(b'"', last, b)  # closing quote of the key (only blanks and ':' lie between)
        q0 = buf.rfind(b'"', last, q1) if q1 > 0 else -1  # opening quote (a key has no quote)
        comma = buf.rfind(b",", last, q0) if q0 > 0 else -1
        if comma < 0:
            continue
        m = _MATERIAL_START.match(buf, comma, end)
        if m is not None:
            out.append((comma, m.start(1)))
            last = m.end(0)
    return out


def _pieces(fh, whole: bool, block_size: int = 8 << 20) -> Iterator[bytes]:
    """Split a stream of MPTrj JSON into JSON objects of whole materials (``{"mp-1": {...}}``, one or more).

    ``whole``: the stream is a whole file (strip the outer ``{`` ``}``); else a shard's byte range. Cuts are
    made at :data:`_MATERIAL_START` (the comma before a top-level key is dropped); a wrong cut can only make
    a piece fail to parse, and such a piece is re-read with ijson.
    """
    buf = bytearray()
    started = not whole
    while True:
        block = fh.read(block_size)
        if not started and block:
            stripped = block.lstrip()
            if stripped[:1] == b"{":
                block = stripped[1:]
            started = True
        if not block:
            break
        buf += block
        start = 0  # the buffer always begins at the start of a material
        with memoryview(buf) as view:
            for comma, key in material_starts(buf):
                if comma > start and (buf[start] not in _BLANKS or bytes(view[start:comma]).strip()):
                    yield b"".join((b"{", view[start:comma], b"}"))
                start = key
        del buf[:start]
    tail = bytes(buf).rstrip()
    if whole and tail.endswith(b"}"):
        tail = tail[:-1]
    if tail.strip():
        yield b"{" + tail + b"}"


def _salvage(piece: bytes, file: str, accounting: Accounting) -> Iterator[tuple[str, object]]:
    """Materials of a piece (a JSON object) that orjson rejected, read with ijson up to the first error
    (counted)."""
    last = None
    try:
        for mp_id, frames in ijson.kvitems(io.BytesIO(piece), "", use_float=True):
            last = mp_id
            yield mp_id, frames
    except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
        if last is not None:
            where = f"after material {last}"
        else:  # the piece's first material is the damaged one: name it from the bytes
            first = _FIRST_KEY.match(piece)
            where = f"material {first.group(1).decode('utf-8', 'replace')}" if first else "first material of a piece"
        accounting.fail(file, where, "truncated_or_corrupt_file", str(exc)[:200])


#: The first key of a JSON object: the material a damaged piece starts with.
_FIRST_KEY = re.compile(rb'\s*\{\s*"((?:[^"\\]|\\.)*)"')


def _materials(fh, whole: bool, file: str, accounting: Accounting) -> Iterator[tuple[str, object]]:
    """(mp_id, frames) of every material: orjson on whole-material pieces (the fast path); on failure Python's
    json, which also takes the bare ``NaN`` / ``Infinity`` that Python and pymatgen write for non-finite floats
    (so such a frame is counted by the frame checks, e.g. ``nan_energy``); then ijson up to the damage."""
    for piece in _pieces(fh, whole):
        try:
            obj = orjson.loads(piece)
        except orjson.JSONDecodeError:
            try:
                obj = json.loads(piece)
            except (ValueError, UnicodeDecodeError):
                yield from _salvage(piece, file, accounting)
                continue
            if not isinstance(obj, dict):
                yield from _salvage(piece, file, accounting)
                continue
        yield from obj.items()


_G_STRUCTURE = itemgetter("structure")
_G_LATTICE = itemgetter("lattice")
_G_MATRIX = itemgetter("matrix")
_G_SITES = itemgetter("sites")
_G_SPECIES = itemgetter("species")
_G_FIRST = itemgetter(0)
_G_OCCU = itemgetter("occu")
_G_ELEMENT = itemgetter("element")
_G_XYZ = itemgetter("xyz")
_PERIODIC = [True, True, True]
_ZERO = repeat(0)
_Z = dict(atomic_numbers)  # element symbol -> Z; "X" (dummy) is 0, unknown symbols get 0 below


def _lists_of(values: list, width: int) -> bool:
    """Every value has exactly ``width`` items (raises TypeError for a number or None). With values parsed
    from JSON that is a list, or a string or object whose items are strings, which the number buffers
    then reject."""
    return list(map(len, values)).count(width) == len(values)


def _new_columns() -> ColumnBatch:
    # MPTrj stress: 3x3 in kBar, VASP sign (positive = compressive) -> GPa, ASE sign: -0.1 x
    return ColumnBatch(stress_width=9, stress_factor=-KBAR_TO_GPA)


def _add_material(cb: ColumnBatch, mp_id: str, frames: dict) -> bool:
    """Append every frame of one material to ``cb`` when all of them are regular; else return False
    with ``cb`` unchanged (the caller reads the material frame by frame, with :func:`_row`).

    Regular: every frame is an object with a structure and an energy convertible by ``float``; every site
    is ordered (one species, occupancy 1) with Cartesian ``xyz``; lattice, ``xyz`` rows, forces (one row
    per site) and stress are lists of 3 numbers, pbc a list of 3 flags. The values go straight from the
    parsed lists into the batch buffers, which reject anything that is not a number; nothing here
    produces an accounting event, so the frame-by-frame reading stays the reference for every other case.
    Atom-level work is done by ``map`` over the whole material (no Python loop per site).
    """
    recs = list(frames.values())
    k = len(recs)
    if not k:
        return True
    try:
        if set(map(type, recs)) != {dict}:
            return False
        structs = list(map(_G_STRUCTURE, recs))
        energies = [r.get("uncorrected_total_energy") for r in recs]
        if None in energies:
            energies = [r.get("corrected_total_energy") if e is None else e for e, r in zip(energies, recs)]
            if None in energies:
                return False
        energies = list(map(float, energies))
        lattices = list(map(_G_LATTICE, structs))
        matrices = list(map(_G_MATRIX, lattices))
        matrix_rows = list(chain.from_iterable(matrices))
        pbcs = [lattice.get("pbc", _PERIODIC) for lattice in lattices]
        site_lists = list(map(_G_SITES, structs))
        if set(map(type, site_lists)) != {list}:
            return False
        counts = list(map(len, site_lists))
        sites = list(chain.from_iterable(site_lists))
        species = list(map(_G_SPECIES, sites))
        first = list(map(_G_FIRST, species))
        if sum(map(len, species)) != len(sites) or list(map(_G_OCCU, first)).count(1) != len(sites):
            return False
        xyz = list(map(_G_XYZ, sites))
        if not (_lists_of(xyz, 3) and _lists_of(matrices, 3) and _lists_of(matrix_rows, 3) and _lists_of(pbcs, 3)):
            return False
        forces = [r.get("force") for r in recs]
        with_forces = [f for f in forces if f is not None]
        if with_forces and set(map(type, with_forces)) != {list}:
            return False
        force_counts = list(map(len, with_forces))
        if force_counts != [c for c, f in zip(counts, forces) if f is not None]:
            return False
        if list(map(len, chain.from_iterable(with_forces))).count(3) != sum(force_counts):
            return False
        stresses = [r.get("stress") for r in recs]
        with_stress = [x for x in stresses if x is not None]
        stress_rows = list(chain.from_iterable(with_stress))
        if not (_lists_of(with_stress, 3) and _lists_of(stress_rows, 3)):
            return False
    except Exception:  # noqa: BLE001 - anything unexpected: the frame-by-frame reading decides
        return False
    mark = cb.mark()
    try:
        cb.numbers.extend(map(_Z.get, map(_G_ELEMENT, first), _ZERO))
        cb.positions.extend(chain.from_iterable(xyz))
        cb.cell.extend(chain.from_iterable(matrix_rows))
        cb.pbc.extend(chain.from_iterable(pbcs))
        if len(with_forces) == k:
            cb.forces.extend(chain.from_iterable(chain.from_iterable(with_forces)))
            cb.has_forces.extend([1] * k)
        else:
            for f, c in zip(forces, counts):
                cb.forces.extend(chain.from_iterable(f) if f is not None else _nan_fill(3 * c))
                cb.has_forces.append(f is not None)
        if len(with_stress) == k:
            cb.stress.extend(chain.from_iterable(stress_rows))
            cb.has_stress.extend([1] * k)
        else:
            for x in stresses:
                cb.stress.extend(chain.from_iterable(x) if x is not None else _nan_fill(9))
                cb.has_stress.append(x is not None)
    except (TypeError, ValueError, OverflowError, KeyError):  # not a number, a flag out of range, no element
        cb.rollback(mark)
        return False
    cb.lengths.extend(counts)
    _add_labels(cb, list(frames), [f"{mp_id}/{frame_id}" for frame_id in frames], energies)
    return True


def _add_labels(cb: ColumnBatch, ids: list, keys: list, energies: list) -> None:
    """Append the per-frame lists of MPTrj frames: ids, keys, energies (eV), method ``relax``, and no
    temperature, subset, charge or spin."""
    k = len(ids)
    cb.ids.extend(ids)
    cb.keys.extend(keys)
    cb.energy.extend(energies)
    none = [None] * k
    cb.temperature.extend(none)
    cb.method.extend(["relax"] * k)
    cb.subset.extend(none)
    cb.charge.extend(none)
    cb.spin.extend(none)


def _nan_fill(n: int) -> list[float]:
    return [math.nan] * n


def iter_batches(path: Path, options: ReadOptions, accounting: Accounting, shard=None,
                 batch_size: int = 4096) -> Iterator[list]:
    """Yield batches of ``batch_size`` MPTrj frames, each a list of segments for
    :meth:`~monoculture.datasets.builder.FrameBuilder.build`; malformed frames are counted as failed,
    frames without energy as skipped.

    ``shard`` is ``None`` (the whole file) or a ``(start, end)`` byte range from :func:`shards`. The file
    is cut into materials (:func:`_pieces`, 8 MB blocks) and each is parsed with orjson; a regular
    material goes into flat columns at once (:func:`_add_material`), any other is read frame by frame
    into rows (:func:`_row`), with the accounting of every frame. Memory holds one block of the file.
    """
    file = str(path)
    whole = shard is None
    opener = open_maybe_compressed(path) if whole else open(path, "rb")
    size = os.path.getsize(path) if whole else shard[1] - shard[0]  # bytes on disk
    batcher = SegmentBatcher(batch_size, _new_columns)
    with opener as fh:
        try:
            if shard is not None:
                fh.seek(shard[0])
                fh = io.BytesIO(fh.read(size)) if size < (64 << 20) else _Bounded(fh, size)
            for mp_id, frames in _materials(fh, whole, file, accounting):
                yield from _material_batches(batcher, file, accounting, mp_id, frames)
        except (EOFError, OSError) as exc:  # corrupt compressed stream
            accounting.fail(file, "stream", "truncated_or_corrupt_file", str(exc)[:200])
    rest = batcher.rest()
    if rest is not None:
        yield rest


_ROW_ERRORS = (StructureDictError, TypeError, ValueError, KeyError, AttributeError)


def _material_batches(batcher: SegmentBatcher, file: str, accounting: Accounting, mp_id: str,
                        frames) -> Iterator[list]:
    """Add one parsed material: into flat columns when regular, else frame by frame with the accounting
    of each; yield the batches it completes."""
    if not isinstance(frames, dict):
        accounting.fail(file, mp_id, "bad_record", f"expected an object of frames, got {type(frames).__name__}")
        return
    if _add_material(batcher.columns(), mp_id, frames):
        batcher.added(len(frames))
        if batcher.pending >= batcher.batch_size:
            yield from batcher.ready()
        return
    for frame_id, rec in frames.items():
        if not isinstance(rec, dict) or "structure" not in rec:
            accounting.fail(file, f"{mp_id}/{frame_id}", "bad_record", "frame has no 'structure'")
            continue
        if rec.get("uncorrected_total_energy") is None and rec.get("corrected_total_energy") is None:
            accounting.skip(file, f"{mp_id}/{frame_id}", "missing_energy", "energy is null")
            continue
        try:
            row = _row(mp_id, frame_id, rec)
        except _ROW_ERRORS as exc:
            accounting.fail(file, f"{mp_id}/{frame_id}", "bad_structure", str(exc)[:200])
            continue
        batcher.add_row(row)
        yield from batcher.ready()


def iter_records(path: Path, options: ReadOptions, accounting: Accounting, shard=None) -> Iterator[RawFrame]:
    """Yield one :class:`RawFrame` per MPTrj frame (the per-record form of :func:`iter_batches`)."""
    yield from raw_frames(iter_batches(path, options, accounting, shard))


class _Bounded:
    """Read at most ``n`` bytes from a file object (a shard of a large file, streamed)."""

    def __init__(self, fh, n: int):
        self._fh = fh
        self._left = n

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._fh.read(size)
        self._left -= len(data)
        return data
