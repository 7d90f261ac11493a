"""Readers and the frame table: every dataset becomes a stream of ``pyarrow.Table`` batches.

See :mod:`monoculture.datasets.frames` for the columns and units.
"""
from .accounting import Accounting, RecordIssue
from .builder import FrameBuilder, RawFrame, level_of_theory_label
from .cards import DatasetCard, UnknownCardError, get_card, load_cards, parse_level_of_theory
from .frames import (
    FRAME_SCHEMA,
    METHODS,
    AtomsArrays,
    atoms_arrays,
    concat_batches,
    iter_ase_atoms,
    to_ase_atoms,
)
from .reading import Dataset, DatasetOpenError, open_dataset, read_frames
from .registry import READERS, InputError, ReadOptions, UnknownFormatError, get_reader, sniff_format

__all__ = [
    "Accounting", "RecordIssue", "FrameBuilder", "RawFrame", "level_of_theory_label", "DatasetCard",
    "UnknownCardError", "get_card", "load_cards", "parse_level_of_theory", "FRAME_SCHEMA", "METHODS",
    "AtomsArrays", "atoms_arrays", "concat_batches", "iter_ase_atoms", "to_ase_atoms", "Dataset",
    "DatasetOpenError", "open_dataset", "read_frames", "READERS", "InputError", "ReadOptions", "UnknownFormatError",
    "get_reader", "sniff_format",
]
