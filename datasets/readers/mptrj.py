"""MPTrj JSON reader: ``{mp_id: {frame_id: {structure, uncorrected_total_energy, force, stress, ...}}}``.

The real file (``MPtrj_2022.9_full.json``) is 11 GB: it is streamed in 8 MB blocks cut at material
boundaries, and each material is parsed with orjson (ijson's C backend re-reads a piece that orjson
rejects, to salvage what precedes the damage), so memory holds one block at a time.

Units and conventions of the source and what the frame table gets:

* ``uncorrected_total_energy`` (eV, raw VASP) -> ``energy_eV``; the MP2020-corrected energy is not used.
* ``force`` (eV/Å) -> ``forces``.
* ``stress`` (kBar, VASP sign: positive = compressive) -> ``stress_GPa`` = -0.1 x stress (ASE sign, GPa).
* ``method`` = ``relax`` (every MPTrj frame is a relaxation step); ``temperature_K`` = null.
* Level of theory comes from the card (``mptrj``: PBE, +U by the Materials Project rules per frame).
"""
from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import ijson
import orjson

from ..accounting import Accounting
from ..builder import RawFrame
from ..frames import stress_vasp_kbar_to_ase_gpa
from ..registry import ReadOptions
from ._common import StructureDictError, open_maybe_compressed, pymatgen_structure_arrays

__all__ = ["iter_records", "iter_row_batches", "detect_card", "sniff", "shards", "material_starts"]

# A top-level key followed by its first frame key, which repeats the material id: `, "mp-1": {"mp-1-`.
_MATERIAL_START = re.compile(rb',\s*("([^"\\]{1,200})"\s*:\s*\{\s*"\2-)')
# The `{` of every match of _MATERIAL_START (and of a few other places): a brace whose first key has a
# hyphen in its first 201 characters. Braces are far rarer than commas in MPTrj, so scanning for these and
# checking each with _MATERIAL_START is several times faster than running _MATERIAL_START over the bytes.
_BRACE_CANDIDATE = re.compile(rb'\{(?=\s*"[^"\\\-]{0,200}-)')
_BLANKS = b" \t\n\r\x0b\x0c"  # what bytes.strip() removes


def sniff(path: Path, head: bytes) -> bool:
    """An MPTrj file starts ``{"<mp_id>": {"<frame_id>": {"structure": ...``."""
    if path.suffix == ".gz":
        with open_maybe_compressed(path) as fh:
            head = fh.read(4096)
    text = head.lstrip()[:2048]
    return text.startswith(b"{") and b'"structure"' in text and (
        b"uncorrected_total_energy" in head or b'"force"' in head or b'"mp_id"' in head
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
    if n <= 1 or path.suffix in (".gz", ".bz2", ".xz") or size < 1 << 16:
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
    """One MPTrj frame as a frame-builder row tuple (:data:`~monoculture.datasets.builder.ROW_FIELDS`).

    Raises StructureDictError / TypeError / ValueError / KeyError / AttributeError on a malformed frame.
    """
    numbers, positions, cell, pbc = pymatgen_structure_arrays(rec["structure"])
    energy = rec.get("uncorrected_total_energy")
    if energy is None:
        energy = rec.get("corrected_total_energy")
    s = rec.get("stress")
    stress = None
    if s is not None:  # kBar, VASP sign (3x3) -> GPa, ASE sign (Voigt); plain floats, no numpy per frame
        try:
            stress = [-0.1 * s[0][0], -0.1 * s[1][1], -0.1 * s[2][2], -0.1 * s[1][2], -0.1 * s[0][2], -0.1 * s[0][1]]
        except (TypeError, IndexError):
            stress = stress_vasp_kbar_to_ase_gpa(s)
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
    last = "start of piece"
    try:
        for mp_id, frames in ijson.kvitems(io.BytesIO(piece), "", use_float=True):
            last = mp_id
            yield mp_id, frames
    except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
        accounting.fail(file, f"after material {last}", "truncated_or_corrupt_file", str(exc)[:200])


def _materials(fh, whole: bool, file: str, accounting: Accounting) -> Iterator[tuple[str, object]]:
    """(mp_id, frames) of every material: orjson on whole-material pieces (the fast path), ijson on failure."""
    for piece in _pieces(fh, whole):
        try:
            obj = orjson.loads(piece)
        except orjson.JSONDecodeError:
            yield from _salvage(piece, file, accounting)
            continue
        yield from obj.items()


def iter_row_batches(path: Path, options: ReadOptions, accounting: Accounting, shard=None,
                     batch_size: int = 4096) -> Iterator[list[tuple]]:
    """Yield lists of up to ``batch_size`` row tuples (see :func:`_row`), one per MPTrj frame; malformed
    frames are counted as failed, frames without energy as skipped.

    ``shard`` is ``None`` (the whole file) or a ``(start, end)`` byte range from :func:`shards`. The file is
    cut into materials (:func:`_pieces`) and each is parsed with orjson, which is several times faster than
    a token-level streaming parser and still holds only one block of the file in memory.
    """
    file = str(path)
    if shard is None:
        opener = open_maybe_compressed(path)
    else:
        opener = open(path, "rb")
    rows: list[tuple] = []
    errors = (StructureDictError, TypeError, ValueError, KeyError, AttributeError)
    with opener as fh:
        if shard is not None:
            fh.seek(shard[0])
            fh = io.BytesIO(fh.read(shard[1] - shard[0])) if shard[1] - shard[0] < (64 << 20) else _Bounded(fh, shard[1] - shard[0])
        try:
            for mp_id, frames in _materials(fh, shard is None, file, accounting):
                if not isinstance(frames, dict):
                    accounting.fail(file, mp_id, "bad_record", f"expected an object of frames, got {type(frames).__name__}")
                    continue
                for frame_id, rec in frames.items():
                    if not isinstance(rec, dict) or "structure" not in rec:
                        accounting.fail(file, f"{mp_id}/{frame_id}", "bad_record", "frame has no 'structure'")
                        continue
                    if rec.get("uncorrected_total_energy") is None and rec.get("corrected_total_energy") is None:
                        accounting.skip(file, f"{mp_id}/{frame_id}", "missing_energy", "energy is null")
                        continue
                    try:
                        rows.append(_row(mp_id, frame_id, rec))
                    except errors as exc:
                        accounting.fail(file, f"{mp_id}/{frame_id}", "bad_structure", str(exc)[:200])
                        continue
                    if len(rows) >= batch_size:
                        yield rows
                        rows = []
        except (EOFError, OSError) as exc:  # corrupt compressed stream
            accounting.fail(file, "stream", "truncated_or_corrupt_file", str(exc)[:200])
    if rows:
        yield rows


def iter_records(path: Path, options: ReadOptions, accounting: Accounting, shard=None) -> Iterator[RawFrame]:
    """Yield one :class:`RawFrame` per MPTrj frame (the per-record form of :func:`iter_row_batches`)."""
    for rows in iter_row_batches(path, options, accounting, shard):
        for row in rows:
            yield RawFrame(*row)


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
