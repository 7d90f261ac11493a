"""Structures held in memory (ASE ``Atoms``, pymatgen ``Structure`` / ``Molecule``) as frames and datasets.

>>> from ase.build import bulk
>>> from monoculture.datasets.memory import frames_from_atoms
>>> table = frames_from_atoms([bulk("Cu", "fcc", a=3.61), bulk("NaCl", "rocksalt", a=5.64)])
>>> table.column("formula").to_pylist()
['Cu', 'ClNa']

:func:`frames_from_atoms` / :func:`frames_from_structures` give one frame table (``FRAME_SCHEMA``) for
descriptors and analyzers; :class:`MemoryDataset` (made by :func:`dataset_from_atoms` /
:func:`dataset_from_structures`) is a :class:`~monoculture.datasets.reading.Dataset` that the audit reads
like a file: batches, record accounting, dataset card and level of theory.

Every structure goes through the same validation as a file's record
(:class:`~monoculture.datasets.builder.FrameBuilder`): a structure that cannot be a frame (an unknown
element, NaN coordinates, non-finite labels) is skipped and counted, never silently kept. Labels of an
``Atoms`` are read as the ``ase`` reader reads them (``info`` / ``arrays`` keys, then the attached
calculator; energy eV, forces eV/Å, stress eV/Å^3 converted to GPa).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from .accounting import Accounting
from .builder import FrameBuilder
from .cards import get_card, parse_level_of_theory
from .errors import UsageError
from .frames import FRAME_SCHEMA
from .options import ReaderSpec, ReadOptions
from .reading import Dataset
from .records import RawFrame, as_row

__all__ = ["records_from_atoms", "records_from_structures", "frames_from_atoms", "frames_from_structures",
           "frames_from_records", "MemoryDataset", "dataset_from_atoms", "dataset_from_structures"]

#: Format name of an in-memory dataset (recorded as the dataset's ``format``).
MEMORY_FORMAT = "memory"
_SPEC = ReaderSpec(MEMORY_FORMAT, "structures held in memory (ASE Atoms, pymatgen Structure / Molecule)", __name__)


def _per_frame(per_frame: dict, n: int) -> dict:
    """Check ``{RawFrame field: list of n values}`` at the boundary (one-line errors)."""
    known = set(RawFrame.__dataclass_fields__) - {"id", "key", "numbers", "positions", "cell", "pbc"}
    for key, values in per_frame.items():
        if key not in known:
            raise UsageError(f"unknown per-frame field {key!r}; expected one of: {', '.join(sorted(known))}")
        if len(values) != n:
            raise UsageError(f"per-frame field {key!r} has {len(values)} values for {n} structures")
    return per_frame


def _ids(ids, n: int) -> list | None:
    if ids is None:
        return None
    ids = [str(i) for i in ids]
    if len(ids) != n:
        raise UsageError(f"got {len(ids)} ids for {n} structures")
    return ids


def records_from_atoms(atoms_list: Sequence, ids: Sequence | None = None, options: ReadOptions | None = None,
                       **per_frame) -> list[RawFrame]:
    """One :class:`~monoculture.datasets.records.RawFrame` per ASE ``Atoms``.

    Parameters
    ----------
    atoms_list : sequence of ase.Atoms, length n
        Positions and cell in Å; labels read as the ``ase`` reader reads them (``info["energy"]`` eV,
        ``arrays["forces"]`` eV/Å, ``info["stress"]`` eV/Å^3 with ASE sign, else the calculator's results;
        key names from ``options``); optional ``info`` keys ``temperature_K``, ``charge``, ``spin``,
        ``method``, ``smiles``, ``id`` / ``name``.
    ids : sequence of str, optional
        Frame ids (default: each ``info["id"]`` or ``info["name"]``, else ``f{i}``).
    options : ReadOptions, optional
        Key names of the labels (``energy_key``, ``forces_key``, ``stress_key``).
    **per_frame : list, length n
        Values of other :class:`RawFrame` fields, one per structure (``charge=[0, -1]``, ``energy_eV=[...]``
        in eV, ``temperature_K=[...]`` in K, ``functional=[...]``...); they override what the Atoms say.
        Non-periodic Atoms get no cell.

    Returns
    -------
    list of RawFrame, length n
    """
    from .readers.ase import atoms_to_raw

    n = len(atoms_list)
    ids, per_frame, options = _ids(ids, n), _per_frame(per_frame, n), options or ReadOptions()
    out = []
    for i, atoms in enumerate(atoms_list):
        if not hasattr(atoms, "get_atomic_numbers"):
            raise UsageError(f"structure {i} is a {type(atoms).__name__}, not an ase.Atoms")
        raw = atoms_to_raw(atoms, str(i), f"f{i}", options)
        if ids is not None:
            raw.id = ids[i]
        if not raw.pbc.any():
            raw.cell = None
        for key, values in per_frame.items():
            setattr(raw, key, values[i])
        out.append(raw)
    return out


def records_from_structures(structures: Sequence, ids: Sequence | None = None, **per_frame) -> list[RawFrame]:
    """One :class:`~monoculture.datasets.records.RawFrame` per pymatgen ``Structure`` or ``Molecule``.

    Parameters
    ----------
    structures : sequence of pymatgen Structure / Molecule, length n
        Ordered sites only (a disordered site raises a one-line error naming the structure). Cartesian
        coordinates and lattice in Å; a ``Molecule`` has no cell and gives its ``charge`` (e) and
        ``spin_multiplicity``; ``properties["energy"]`` (eV), when present, is the energy.
    ids : sequence of str, optional
        Frame ids (default: ``properties["id"]`` or ``properties["material_id"]``, else ``f{i}``).
    **per_frame : list, length n
        Values of other :class:`RawFrame` fields, one per structure (see :func:`records_from_atoms`).

    Returns
    -------
    list of RawFrame, length n
    """
    n = len(structures)
    ids, per_frame = _ids(ids, n), _per_frame(per_frame, n)
    out = []
    for i, s in enumerate(structures):
        if not hasattr(s, "sites") or not hasattr(s, "cart_coords"):
            raise UsageError(f"structure {i} is a {type(s).__name__}, not a pymatgen Structure or Molecule")
        if not s.is_ordered:
            raise UsageError(f"structure {i} ({s.composition.reduced_formula}) has disordered sites; "
                             "order it first (e.g. OrderDisorderedStructureTransformation)")
        props = getattr(s, "properties", None) or {}
        energy = props.get("energy")
        lattice = getattr(s, "lattice", None)
        raw = RawFrame(
            id=ids[i] if ids is not None else str(props.get("id", props.get("material_id", f"f{i}"))),
            key=str(i),
            numbers=np.asarray([site.specie.Z for site in s], dtype=np.int64),
            positions=np.asarray(s.cart_coords, dtype=float),
            cell=None if lattice is None else np.asarray(lattice.matrix, dtype=float),
            pbc=np.zeros(3, bool) if lattice is None else np.asarray(lattice.pbc, dtype=bool),
            energy_eV=None if energy is None else float(energy),
            charge=None if lattice is not None else int(round(s.charge)),
            spin=None if lattice is not None else int(s.spin_multiplicity),
        )
        for key, values in per_frame.items():
            setattr(raw, key, values[i])
        out.append(raw)
    return out


def frames_from_records(records: Iterable[RawFrame], dataset: str = "memory", level_of_theory: str | None = None,
                        accounting: Accounting | None = None, *, file: str | None = None) -> pa.Table:
    """One frame table (``FRAME_SCHEMA``) from records; records that cannot be frames are skipped and counted.

    The records go, as one batch of rows, through the builder's one input form
    (:meth:`FrameBuilder.build <monoculture.datasets.builder.FrameBuilder.build>`), with the level of
    theory filled as :class:`MemoryDataset` fills it.

    Parameters
    ----------
    records : iterable of RawFrame
    dataset : str
        Value of the ``dataset`` column (no ``/``).
    level_of_theory : str, optional
        Level of theory of every frame (``"PBE+U"``, ``"wB97M-V/def2-TZVPD"``); default: each record's own
        ``functional`` / ``hubbard_u`` / ``basis`` (``unknown`` when absent).
    accounting : Accounting, optional
        Receives the read / skipped counts (added to what it holds; skipped records are logged unless it
        is quiet). Default: a quiet one, discarded.
    file : str, optional
        File name of the ``source`` column (``FILE::key``) and of skip messages, for records parsed from a
        file; default ``<memory>/DATASET``, the :attr:`MemoryDataset.path` of the same records.

    Returns
    -------
    pyarrow.Table
        ``(n_valid_frames,)`` rows in ``FRAME_SCHEMA``, in record order, in one chunk; an empty table when
        no record is valid.
    """
    ds = MemoryDataset((), name=dataset, level_of_theory=level_of_theory, quiet=True)
    accounting = Accounting(quiet=True) if accounting is None else accounting
    builder = FrameBuilder(dataset, str(ds.path) if file is None else str(file), accounting,
                           theory=ds._fill_theory)
    table = builder.build([[as_row(raw) for raw in records]])
    return FRAME_SCHEMA.empty_table() if table is None else table


def frames_from_atoms(atoms_list: Sequence, ids: Sequence | None = None, *, dataset: str = "atoms",
                      level_of_theory: str | None = None, options: ReadOptions | None = None,
                      **per_frame) -> pa.Table:
    """One frame table from ASE ``Atoms`` (arguments of :func:`records_from_atoms` and
    :func:`frames_from_records`); shape ``(n_frames,)`` rows in ``FRAME_SCHEMA``."""
    return frames_from_records(records_from_atoms(atoms_list, ids, options, **per_frame), dataset, level_of_theory)


def frames_from_structures(structures: Sequence, ids: Sequence | None = None, *, dataset: str = "structures",
                           level_of_theory: str | None = None, **per_frame) -> pa.Table:
    """One frame table from pymatgen ``Structure`` / ``Molecule`` objects (arguments of
    :func:`records_from_structures` and :func:`frames_from_records`); ``(n_frames,)`` rows in ``FRAME_SCHEMA``."""
    return frames_from_records(records_from_structures(structures, ids, **per_frame), dataset, level_of_theory)


class _Records:
    """The reader interface (``iter_records``) over a list of records, for :meth:`Dataset.batches`."""

    def __init__(self, records: list[RawFrame]):
        self.records = records

    def iter_records(self, path: Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]:
        return iter(self.records)


class MemoryDataset(Dataset):
    """A dataset of records held in memory, read like a file (:meth:`batches`, accounting, card, level of theory).

    Parameters
    ----------
    records : sequence of RawFrame
        The structures (see :func:`records_from_atoms`, :func:`records_from_structures`).
    name : str
        Dataset name (the ``dataset`` column and the report's label).
    dataset_card : str, optional
        Card name (``monoculture cards``): its level of theory fills frames that do not name theirs.
    level_of_theory : str, optional
        Level of theory of every frame, overriding records and card.
    batch_size : int
        Frames per batch.
    quiet : bool
        Do not log skipped records (they are still counted).

    Notes
    -----
    Its :attr:`path` is ``<memory>/NAME`` (nothing on disk): it names the dataset in the document's ``files``.
    It is one work unit (:meth:`shards` gives ``[None]``) and pickles with its records.
    """

    def __init__(self, records: Sequence[RawFrame], name: str = "memory", *, dataset_card: str | None = None,
                 level_of_theory: str | None = None, batch_size: int = 4096, quiet: bool = False):
        if not name or "/" in name:
            raise UsageError(f"an in-memory dataset needs a name without '/', got {name!r}")
        self.records = list(records)
        self.path = Path("<memory>") / name
        self.options = ReadOptions(dataset=name)
        self.format, self.spec = MEMORY_FORMAT, _SPEC
        self._module = _Records(self.records)
        self.card = get_card(dataset_card) if dataset_card else None
        self.level_of_theory_override = level_of_theory
        self._override = parse_level_of_theory(level_of_theory) if level_of_theory else None
        self.name = name
        self.batch_size = int(batch_size)
        self._logged: set = set()
        self.accounting = Accounting(quiet=quiet, logged=self._logged)
        self.progress = False
        self.files: list[str] = []

    def __repr__(self) -> str:
        return f"MemoryDataset({self.name!r}, {len(self.records)} records)"

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._module = _Records(self.records)


def dataset_from_atoms(atoms_list: Sequence, name: str = "atoms", ids: Sequence | None = None, *,
                       dataset_card: str | None = None, level_of_theory: str | None = None,
                       options: ReadOptions | None = None, **per_frame) -> MemoryDataset:
    """A :class:`MemoryDataset` of ASE ``Atoms`` (arguments of :func:`records_from_atoms`)."""
    return MemoryDataset(records_from_atoms(atoms_list, ids, options, **per_frame), name,
                         dataset_card=dataset_card, level_of_theory=level_of_theory)


def dataset_from_structures(structures: Sequence, name: str = "structures", ids: Sequence | None = None, *,
                            dataset_card: str | None = None, level_of_theory: str | None = None,
                            **per_frame) -> MemoryDataset:
    """A :class:`MemoryDataset` of pymatgen ``Structure`` / ``Molecule`` objects (arguments of
    :func:`records_from_structures`)."""
    return MemoryDataset(records_from_structures(structures, ids, **per_frame), name,
                         dataset_card=dataset_card, level_of_theory=level_of_theory)
