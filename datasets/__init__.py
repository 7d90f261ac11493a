"""Readers and the frame table: every dataset becomes a stream of ``pyarrow.Table`` batches.

See :mod:`monoculture.datasets.frames` for the columns and units. The names below are imported on first
use (PEP 562), so that importing a light module of this package (:mod:`~monoculture.datasets.errors`, which
the command line needs before any data is read) does not import numpy, pyarrow and the readers.
"""
from __future__ import annotations

from .plugins import lazy_exports

#: Public name -> the submodule defining it.
_EXPORTS = {
    "Accounting": "accounting", "RecordIssue": "accounting",
    "FrameBuilder": "builder", "RawFrame": "records", "level_of_theory_label": "records",
    "DatasetCard": "cards", "UnknownCardError": "cards", "get_card": "cards", "load_cards": "cards",
    "parse_level_of_theory": "cards",
    "FRAME_SCHEMA": "frames", "METHODS": "frames", "AtomsArrays": "frames", "atoms_arrays": "frames",
    "concat_batches": "frames", "iter_ase_atoms": "frames", "to_ase_atoms": "frames",
    "Dataset": "reading", "DatasetOpenError": "errors", "open_dataset": "reading", "read_frames": "reading",
    "READERS": "registry", "get_reader": "registry", "sniff_format": "registry",
    "InputError": "errors", "UnknownFormatError": "errors", "MonocultureError": "errors",
    "ReadOptions": "options", "ReaderSpec": "options",
    "MemoryDataset": "memory", "frames_from_atoms": "memory", "frames_from_structures": "memory",
    "dataset_from_atoms": "memory", "dataset_from_structures": "memory",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
