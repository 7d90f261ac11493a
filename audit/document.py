"""The envelope of every JSON document monoculture writes, and its version (one place).

``schema_version`` is :data:`SCHEMA_VERSION`: :func:`~monoculture.audit.run.run_audit`, the ``align``
command and the typed results (:mod:`monoculture.results`) all take it from here. Version 1: later versions
add keys, never rename (``reports/schema/audit.schema.json``).

A leaf of the audit layer: it imports no analyzer, so that the command line can use it cheaply.
"""
from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["SCHEMA_VERSION", "alignment_document"]

#: Version of the document layout (``schema_version``).
SCHEMA_VERSION = "1"


def alignment_document(section: dict, seed: int = 0, started: datetime | None = None) -> dict:
    """The document of an alignment run (``monoculture align``): the envelope around the ``alignment`` section.

    Parameters
    ----------
    section : dict
        The ``alignment`` section (:func:`~monoculture.audit.alignment.runner.run_alignment`).
    seed : int
        Seed of the run (recorded under ``parameters``).
    started : datetime, optional
        Start of the run (default: now, UTC).

    Returns
    -------
    dict
        ``{"schema_version", "monoculture_version", "run", "parameters", "datasets": [], "alignment"}``.
    """
    from .. import __version__

    started = started or datetime.now(timezone.utc)
    return {"schema_version": SCHEMA_VERSION, "monoculture_version": __version__,
            "run": {"started": started.isoformat(timespec="seconds"), "backend": "serial"},
            "parameters": {"seed": seed}, "datasets": [], "alignment": section}
