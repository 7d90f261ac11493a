"""The bundled readers: one module per format, each declaring itself with ``READER = ReaderSpec(...)``.

:data:`BUNDLED` lists their modules in detection order (the registry asks them in this order: the first
match wins). Readers of other packages come through the ``monoculture.readers`` entry-point group (see
:mod:`monoculture.datasets.registry`).
"""
from __future__ import annotations

__all__ = ["BUNDLED"]

#: Modules of the bundled readers, in detection order.
BUNDLED = ("mptrj", "aselmdb", "alexandria", "smiles", "sdf", "ase", "atp", "lemat", "colabfit", "ase_parquet",
           "qm9", "folder")

