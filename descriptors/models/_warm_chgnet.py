"""Imported once by the process that forks the CHGNet graph workers of ``monoculture embed`` (a
``multiprocessing`` forkserver, see :func:`~.base.graph_worker_pool`): imports what graph building needs and
compiles (or loads from numba's cache) the edge bookkeeping, so that every forked worker starts with both
and no worker pays them again. Importing this module has that side effect on purpose; nothing else imports it.
"""
from __future__ import annotations

from ._chgnet import ChgnetGraphBuilder  # noqa: F401 - unpickled by every task
from ._chgnet_graph import warm_up

warm_up()
