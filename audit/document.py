"""The envelope of every JSON document monoculture writes, and its version (one place).

``schema_version`` is :data:`SCHEMA_VERSION`: :func:`~monoculture.audit.run.run_audit`, the ``align``
command, the ``select`` / ``prune`` / ``align-environments`` reports and the typed results
(:mod:`monoculture.results`) all take it from here. Version 1: later versions add keys, never rename
(``reports/schema/audit.schema.json``).

:func:`document` builds the envelope around one section (every command but ``audit``, whose document has
datasets); :func:`json_safe` turns numpy values into what :mod:`json` writes.

A leaf of the audit layer: it imports no analyzer (nor numpy), so that the command line can use it cheaply.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from datetime import datetime, timezone

__all__ = ["SCHEMA_VERSION", "document", "alignment_document", "json_safe"]

#: Version of the document layout (``schema_version``).
SCHEMA_VERSION = "1"


def json_safe(obj):
    """``obj`` with numpy scalars and arrays as Python numbers and lists, tuples as lists, mapping keys as
    strings and non-finite floats as None (what :func:`json.dumps` writes with ``allow_nan=False``).

    Other objects are returned as they are.
    """
    np = sys.modules.get("numpy")  # numpy values exist only once numpy is imported
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) or (np is not None and isinstance(obj, np.ndarray)):
        return [json_safe(v) for v in obj]
    if np is not None and isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def document(key: str, section: Mapping, parameters: Mapping | None = None, *, seed: int | None = None,
             started: datetime | None = None, elapsed_s: float | None = None) -> dict:
    """The document of a run that produced one section: the envelope around ``{key: section}``.

    Parameters
    ----------
    key : str
        Top-level key of the section (``"alignment"``, ``"selection"``, ...).
    section : mapping
        The section (made JSON-safe by :func:`json_safe`).
    parameters : mapping, optional
        Options of the run, shown in the report's methods section (made JSON-safe).
    seed : int, optional
        Seed of the run, recorded as ``run.seed`` when given.
    started : datetime, optional
        Start of the run (default: now, UTC).
    elapsed_s : float, optional
        Duration of the run (seconds), recorded as ``run.elapsed_s`` when given.

    Returns
    -------
    dict
        ``{"schema_version", "monoculture_version", "run", "parameters", "datasets": [], key}``; ``run``
        holds ``started`` (ISO 8601, seconds), ``backend`` (``"serial"``), then ``seed`` and ``elapsed_s``
        when given.
    """
    from .. import __version__

    started = started or datetime.now(timezone.utc)
    run = {"started": started.isoformat(timespec="seconds"), "backend": "serial"}
    if seed is not None:
        run["seed"] = int(seed)
    if elapsed_s is not None:
        run["elapsed_s"] = float(elapsed_s)
    return {"schema_version": SCHEMA_VERSION, "monoculture_version": __version__, "run": run,
            "parameters": json_safe(dict(parameters or {})), "datasets": [], key: json_safe(section)}


def alignment_document(section: dict, seed: int = 0, started: datetime | None = None) -> dict:
    """The document of an alignment run (``monoculture align``): :func:`document` around the ``alignment``
    section.

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
    return document("alignment", section, {"seed": seed}, started=started)
