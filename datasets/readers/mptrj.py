"""MPTrj JSON reader: ``{mp_id: {frame_id: {structure, uncorrected_total_energy, force, stress, ...}}}``.

The real file (``MPtrj_2022.9_full.json``) is 11 GB: it is streamed material by material with ijson's C
backend (``kvitems`` at the top level), so memory holds one material's frames at a time.

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

from ..accounting import Accounting
from ..builder import RawFrame
from ..frames import stress_vasp_kbar_to_ase_gpa
from ..registry import ReadOptions
from ._common import StructureDictError, open_maybe_compressed, pymatgen_structure_arrays

__all__ = ["iter_records", "detect_card", "sniff", "shards"]

# A top-level key followed by its first frame key, which repeats the material id: `, "mp-1": {"mp-1-`.
_MATERIAL_START = re.compile(rb',\s*("([^"\\]{1,200})"\s*:\s*\{\s*"\2-)')


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


class _RangeReader(io.RawIOBase):
    """Read bytes [start, end) of a file, wrapped as ``{`` ... ``}`` so that ijson sees a whole object."""

    def __init__(self, path: Path, start: int, end: int):
        self._fh = open(path, "rb")
        self._fh.seek(start)
        self._left = end - start
        self._prefix = b"{"
        self._suffix = b"}"

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        size = len(buf)
        if self._prefix:
            data, self._prefix = self._prefix, b""
        elif self._left > 0:
            data = self._fh.read(min(size, self._left))
            self._left -= len(data)
            if not data:
                self._left = 0
        else:
            data, self._suffix = self._suffix, b""
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._fh.close()
        super().close()


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


def _frame(mp_id: str, frame_id: str, rec: dict) -> RawFrame:
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
    return RawFrame(
        id=str(frame_id),
        key=f"{mp_id}/{frame_id}",
        numbers=numbers,
        positions=positions,
        cell=cell,
        pbc=pbc,
        energy_eV=None if energy is None else float(energy),
        forces=rec.get("force"),
        stress_GPa=stress,
        method="relax",
    )


def iter_records(path: Path, options: ReadOptions, accounting: Accounting, shard=None) -> Iterator[RawFrame]:
    """Yield one :class:`RawFrame` per MPTrj frame; malformed frames are counted as failed.

    ``shard`` is ``None`` (the whole file) or a ``(start, end)`` byte range from :func:`shards`.
    """
    file = str(path)
    n_seen = 0
    opener = open_maybe_compressed(path) if shard is None else io.BufferedReader(_RangeReader(path, *shard), 1 << 20)
    with opener as fh:
        try:
            for mp_id, frames in ijson.kvitems(fh, "", use_float=True):
                if not isinstance(frames, dict):
                    accounting.fail(file, mp_id, "bad_record", f"expected an object of frames, got {type(frames).__name__}")
                    continue
                for frame_id, rec in frames.items():
                    n_seen += 1
                    if not isinstance(rec, dict) or "structure" not in rec:
                        accounting.fail(file, f"{mp_id}/{frame_id}", "bad_record", "frame has no 'structure'")
                        continue
                    if rec.get("uncorrected_total_energy") is None and rec.get("corrected_total_energy") is None:
                        accounting.skip(file, f"{mp_id}/{frame_id}", "missing_energy", "energy is null")
                        continue
                    try:
                        yield _frame(mp_id, frame_id, rec)
                    except (StructureDictError, TypeError, ValueError) as exc:
                        accounting.fail(file, f"{mp_id}/{frame_id}", "bad_structure", str(exc)[:200])
        except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError, EOFError, OSError) as exc:
            accounting.fail(file, f"after frame {n_seen}", "truncated_or_corrupt_file", str(exc)[:200])
