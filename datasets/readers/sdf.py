"""SDF / MOL reader (``.sdf``, ``.sd``, ``.mol``), streamed with RDKit's ``ForwardSDMolSupplier``.

Records are read with ``removeHs=False, sanitize=True``. What the frame table gets:

* ``numbers``: the atoms of the record with every hydrogen explicit: hydrogens the file leaves implicit are
  added (``Chem.AddHs``; on a 3D record they are placed geometrically, ``addCoords=True``).
* ``positions`` (Å): from the conformer when RDKit flags it 3D (``conf.Is3D()``); null for 2D / 0D records.
* ``id``: the molecule name (first line of the record), else ``<file name>:<index>`` (index from 0).
* ``charge`` (e): total formal charge; ``spin``: multiplicity = radical electrons + 1.
* ``smiles``: canonical ``Chem.MolToSmiles`` of the record with its ordinary hydrogens left implicit (as
  a SMILES reader's frame would have it); ``method`` ``unknown``; no cell, ``pbc`` all False.
* ``energy_eV``: never guessed from a property that happens to be called ``energy``. It is read (in eV) from
  the SD property named by ``ReadOptions.extra["sdf_energy_key"]``, or by ``ReadOptions.energy_key`` when
  that is set to something other than its default.

A record RDKit cannot turn into a molecule (bad mol block, impossible valence) is skipped as
``invalid_molecule`` with its index and RDKit's message; a stream that breaks off (I/O or decompression
error) counts one failed record for the rest of the file.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..accounting import Accounting
from ..options import ReaderSpec, ReadOptions
from ..records import RawFrame
from ._common import open_maybe_compressed
from .smiles import composition, rdkit_messages

__all__ = ["READER", "iter_records", "energy_key", "mol_frame"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("sdf", "SDF / MOL files (RDKit), 3D when present", __name__, extensions=(".sdf", ".mol", ".sd"),
                    order=50)

_DEFAULT_ENERGY_KEY = ReadOptions().energy_key


def energy_key(options: ReadOptions) -> str | None:
    """Name of the SD property holding the energy in eV, or None when none was asked for.

    Parameters
    ----------
    options : ReadOptions
        ``extra["sdf_energy_key"]`` wins; else ``energy_key`` if it differs from the default ``"energy"``.
    """
    explicit = options.extra.get("sdf_energy_key") if options.extra else None
    if explicit:
        return str(explicit)
    if options.energy_key and options.energy_key != _DEFAULT_ENERGY_KEY:
        return options.energy_key
    return None


class _BadEnergy(ValueError):
    """The energy property exists but is not a number."""


def mol_frame(mol, index: int, file_name: str, energy_prop: str | None) -> RawFrame:
    """A :class:`RawFrame` for one sanitized SD record.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        Molecule as read (hydrogens kept).
    index : int
        Position of the record in the file (from 0).
    file_name : str
        File name used in the fallback id ``<file name>:<index>``.
    energy_prop : str or None
        SD property holding the energy (eV).

    Returns
    -------
    RawFrame
        Positions in Å when the record is 3D, else None.
    """
    from rdkit import Chem

    conf = mol.GetConformer() if mol.GetNumConformers() else None
    is_3d = conf is not None and conf.Is3D()
    with_h = Chem.AddHs(mol, addCoords=is_3d)
    numbers = [atom.GetAtomicNum() for atom in with_h.GetAtoms()]
    positions = with_h.GetConformer().GetPositions() if is_3d else None
    name = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else ""
    energy = None
    if energy_prop is not None and mol.HasProp(energy_prop):
        text = mol.GetProp(energy_prop).strip()
        try:
            energy = float(text)
        except ValueError:
            raise _BadEnergy(f"property {energy_prop!r} is {text[:40]!r}, not a number") from None
    return RawFrame(
        id=name or f"{file_name}:{index}",
        key=f"record {index}",
        numbers=numbers,
        positions=positions,
        pbc=(False, False, False),
        energy_eV=energy,
        method="unknown",
        charge=Chem.GetFormalCharge(mol),
        spin=composition(mol)[1] + 1,
        smiles=Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False)),
    )


def iter_records(path: Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]:
    """Yield one :class:`RawFrame` per SD record, streaming (one molecule in memory at a time).

    Parameters
    ----------
    path : Path
        ``.sdf`` / ``.sd`` / ``.mol`` file (``.gz`` / ``.bz2`` / ``.xz`` compressed too).
    options : ReadOptions
        See :func:`energy_key`.
    accounting : Accounting
        Receives invalid records (skipped) and a broken stream (failed).
    """
    from rdkit import Chem, rdBase

    path = Path(path)
    file = str(path)
    prop = energy_key(options)
    index = 0
    with open_maybe_compressed(path) as fh:
        supplier = Chem.ForwardSDMolSupplier(fh, removeHs=False, sanitize=True)
        while True:
            key = f"record {index}"
            try:
                with rdBase.BlockLogs(), rdBase.CaptureErrorLog() as capture:
                    try:
                        mol = next(supplier)
                    except StopIteration:
                        return
            except Exception as exc:  # I/O or decompression error raised through RDKit's stream
                accounting.fail(file, f"from {key}", "truncated_or_corrupt_file",
                                f"{type(exc).__name__}: {str(exc)[:160]}")
                return
            if mol is None:
                accounting.skip(file, key, "invalid_molecule",
                                rdkit_messages(capture) or "RDKit could not read the record")
            else:
                try:
                    with rdBase.BlockLogs():
                        frame = mol_frame(mol, index, path.name, prop)
                except _BadEnergy as exc:
                    accounting.skip(file, key, "bad_energy", str(exc))
                except (RuntimeError, ValueError, UnicodeDecodeError) as exc:
                    accounting.skip(file, key, "invalid_molecule", f"{type(exc).__name__}: {str(exc)[:160]}")
                else:
                    yield frame
            index += 1
