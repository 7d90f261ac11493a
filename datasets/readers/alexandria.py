"""Alexandria reader: ``{"entries": [ComputedStructureEntry dicts]}`` in ``.json.bz2`` (or plain / gzip).

Entries are streamed with ijson (``entries.item``) through on-the-fly bz2 decompression, so memory holds
one entry at a time. The functional follows the file family, as Alexandria names its files:
``alexandria_ps_*`` -> PBEsol, ``alexandria_scan_*`` -> SCAN, otherwise PBE (cards ``alexandria-pbesol``,
``alexandria-scan``, ``alexandria-pbe``).

Units: ``energy`` (eV, total, uncorrected; pymatgen stores the correction separately) -> ``energy_eV``.
Entries hold relaxed structures: ``method`` = ``relax``. Id: ``data.mat_id``, else ``entry_id``, else
the entry index.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ijson

from ..accounting import Accounting
from ..options import ReaderSpec, ReadOptions
from ..records import RawFrame
from ._common import StructureDictError, open_maybe_compressed, pymatgen_structure_arrays

__all__ = ["READER", "iter_records", "detect_card", "sniff"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("alexandria", "Alexandria {'entries': [ComputedStructureEntry]} (.json.bz2 / .json)",
                    __name__, globs=("*alexandria*.json",), sniff_extensions=(".json",), unique_ids=True,
                    cards=("alexandria-pbe", "alexandria-pbesol", "alexandria-scan"), order=30)


def sniff(path: Path, head: bytes) -> bool:
    """True when ``head`` (the first bytes, decompressed by the registry) is an Alexandria entries document, or
    the file is a ``.json.bz2`` in bzip2 (Alexandria's own compression, whatever the first bytes say)."""
    if head.lstrip().startswith(b'{"entries"') or (b'"entries"' in head[:64] and b"ComputedStructureEntry" in head):
        return True
    if Path(path).name.lower().endswith(".json.bz2"):
        with open(path, "rb") as fh:
            return fh.read(3) == b"BZh"
    return False


def detect_card(path: Path, options: ReadOptions) -> str:
    name = Path(path).name.lower()
    if "_ps_" in name or "pbesol" in name:
        return "alexandria-pbesol"
    if "_scan_" in name or "scan" in name:
        return "alexandria-scan"
    return "alexandria-pbe"


def iter_records(path: Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]:
    file = str(path)
    index = -1
    with open_maybe_compressed(path) as fh:
        try:
            for index, entry in enumerate(ijson.items(fh, "entries.item", use_float=True)):
                key = str(index)
                try:
                    data = entry.get("data") or {}
                    ident = data.get("mat_id") or entry.get("entry_id") or f"{Path(path).name}:{index}"
                    key = f"{index} ({ident})"
                    numbers, positions, cell, pbc = pymatgen_structure_arrays(entry["structure"])
                    energy = entry.get("energy")
                    yield RawFrame(
                        id=str(ident), key=key, numbers=numbers, positions=positions, cell=cell, pbc=pbc,
                        energy_eV=None if energy is None else float(energy), method="relax",
                    )
                except (StructureDictError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    accounting.fail(file, key, "bad_entry", f"{type(exc).__name__}: {str(exc)[:160]}")
        except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError, EOFError, OSError) as exc:
            accounting.fail(file, f"after entry {index}", "truncated_or_corrupt_file", str(exc)[:200])
