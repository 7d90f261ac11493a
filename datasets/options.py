"""What a reader is told and what it declares: :class:`ReadOptions` and :class:`ReaderSpec`.

A leaf of the datasets layer: reader modules import these (never the registry, which finds them), so the
registry and the readers form no import cycle. Each reader module declares itself with one module-level
``READER = ReaderSpec(...)``; :mod:`monoculture.datasets.registry` collects the declarations of the
bundled readers and of the ``monoculture.readers`` entry-point group.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

__all__ = ["ReadOptions", "ReaderSpec", "COMPRESSIONS", "inner_name", "BUNDLED_PACKAGE"]

#: File-name suffixes of the compressions read on the fly (``readers._common.open_maybe_compressed``).
COMPRESSIONS = (".gz", ".bz2", ".xz", ".lzma")

#: Package of the bundled reader modules.
BUNDLED_PACKAGE = "monoculture.datasets.readers"


def inner_name(name: str) -> str:
    """File name without its compression suffix (``"a.extxyz.gz"`` -> ``"a.extxyz"``; others unchanged)."""
    lower = name.lower()
    for suffix in COMPRESSIONS:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class ReadOptions:
    """Options passed to every reader.

    Parameters
    ----------
    dataset : str or None
        Dataset name for the ``dataset`` column (default: the detected card name, else the file stem).
    level_of_theory : str or None
        Override of the level of theory (e.g. ``"PBE+U"`` or ``"wB97M-V/def2-TZVPD"``).
    energy_key, forces_key, stress_key : str
        Keys of energy (eV), forces (eV/Å) and stress (eV/Å^3, ASE sign) in ``atoms.info`` / ``atoms.arrays``
        for the ``ase`` reader (the calculator's results are used when the key is absent).
    smiles_column : str or None
        Column holding SMILES in a CSV / TSV table (default: the first column named ``smiles``,
        ``canonical_smiles`` or ``smi``, else the first whose name contains ``smiles``; any case).
    id_column : str or None
        Column holding the molecule id in a CSV / TSV table (default: the first named ``id``, ``name`` or
        ``mol_id``; else ids are ``<file name>:<line>``).
    file_format : str or None
        Reader of every file of a folder read by the ``folder`` reader (default: each file's sniffed one).
    config : str or None
        Configs of a Hugging Face dataset folder to read, by name, comma-separated (``compatible_pbe``);
        default: every config holding frames. Files and other folders ignore it.
    extra : dict
        Options of readers added by other packages (entry points), by name.
    """

    dataset: str | None = None
    level_of_theory: str | None = None
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    smiles_column: str | None = None
    id_column: str | None = None
    file_format: str | None = None
    config: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReaderSpec:
    """One format: how it is recognised and which module reads it (one row of the registry).

    The module provides ``iter_records(path, options, accounting)`` (or ``iter_batches``) and optionally
    ``detect_card(path, options)``, ``check(path, options)``, ``shards(path, n)``, ``sniff(path, head)``
    and ``sniff_directory(path)``; see :mod:`monoculture.datasets.registry`.

    Parameters
    ----------
    name : str
        Format name (``--format``).
    description : str
        One line for ``monoculture formats``.
    module : str
        Absolute name of the module that reads it (a reader module passes ``__name__``).
    extensions : tuple of str
        Lower-case suffixes of the file name (without a compression suffix) that mean this format.
    globs : tuple of str
        File-name patterns (``fnmatch``) that mean this format, tried before anything else.
    magic : tuple of bytes
        First bytes of an uncompressed file that point to this format; the module's ``sniff`` (when it has
        one) then decides.
    sniff_extensions : tuple of str
        Suffixes on which the module's ``sniff(path, head)`` is asked (``head``: the first decompressed bytes).
    directories : bool
        The reader reads a folder itself (shards of one container); its module's ``sniff_directory(path)``
        says whether a folder is one.
    unique_ids : bool
        The ids it gives are unique across files; otherwise the ``folder`` reader qualifies them.
    options : tuple of str
        Fields of :class:`ReadOptions` the reader uses (documentation and ``monoculture formats``).
    cards : tuple of str
        Dataset cards its ``detect_card`` may return.
    order : int
        Detection rank of a bundled reader: the registry asks the bundled readers in increasing ``order``
        (ties by name), so a reader whose sniffing is more specific comes before a broader one (``mptrj``
        10 before ``ase`` 60; ``folder``, the fallback, last). Readers of other packages come after the
        bundled ones, in entry-point name order, whatever their ``order``.
    new_cards : dict
        Dataset cards this reader adds to the card registry (``cards.toml``): card name -> fields of
        :class:`~monoculture.datasets.cards.DatasetCard` (``title``, ``functional``, ``hubbard_u``,
        ``basis``, ``code``, ``citation``...). A name ``cards.toml`` already has is not replaced.
    """

    name: str
    description: str
    module: str
    extensions: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    magic: tuple[bytes, ...] = ()
    sniff_extensions: tuple[str, ...] = ()
    directories: bool = False
    unique_ids: bool = False
    options: tuple[str, ...] = ()
    cards: tuple[str, ...] = ()
    order: int = 500
    new_cards: dict = field(default_factory=dict, compare=False)

    @property
    def module_path(self) -> str:
        """The absolute name of :attr:`module`."""
        return self.module

    def load(self) -> ModuleType:
        """Import and return the reader module."""
        return importlib.import_module(self.module_path)
