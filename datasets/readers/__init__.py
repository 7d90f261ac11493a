"""The bundled readers: one module per format, each declaring itself with ``READER = ReaderSpec(...)``.

Every public module of this package (a name without a leading underscore) is a reader; the registry
(:mod:`monoculture.datasets.registry`) finds them by listing the package, so adding a bundled format is
adding its module (and its test): no list to extend. Their detection order is the ``order`` each
``ReaderSpec`` declares. Modules whose name starts with ``_`` are shared machinery (``_common``,
``_parquet``...). Readers of other packages come through the ``monoculture.readers`` entry-point group.
"""
from __future__ import annotations
