"""Run the audit of one or more datasets and assemble the JSON document.

The document layout (``schema_version`` 1; later versions add keys, never rename)::

    {"schema_version": "1", "monoculture_version": "...",
     "run": {"started": ISO-8601, "elapsed_s": float, "host": str, "backend": "serial", ...},
     "datasets": [{"name", "format", "files", "card", "records": {...}, "n_frames", "n_atoms",
                   "elements": {...}, "level_of_theory": {...}, "method": {...}, "temperature_K": {...},
                   "coverage": {...}}]}

Everything volatile (times, host, backend) lives under ``run``; ``datasets`` holds only results,
identical for identical input and seed.
"""
from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa

from ..datasets import Dataset, open_dataset
from .summary import BasicCounts

__all__ = ["AuditOptions", "DatasetAudit", "audit_dataset", "run_audit", "SCHEMA_VERSION"]

SCHEMA_VERSION = "1"


@dataclass
class AuditOptions:
    """What to run. ``seed`` drives every sampled part (reservoirs, UMAP)."""

    format: str | None = None
    dataset_card: str | None = None
    level_of_theory: str | None = None
    batch_size: int = 4096
    seed: int = 0
    quiet: bool = False
    progress: bool | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class DatasetAudit:
    """The accumulators of one dataset, and the frames they saw."""

    dataset: Dataset
    counts: BasicCounts
    analyzers: dict = field(default_factory=dict)

    def update(self, batch: pa.Table) -> None:
        self.counts.update(batch)
        for analyzer in self.analyzers.values():
            analyzer.update(batch)

    def result(self) -> dict:
        ds = self.dataset
        doc = {
            "name": ds.name,
            "format": ds.format,
            "files": list(ds.files),
            "card": ds.card.to_dict() if ds.card else None,
            "level_of_theory_override": ds.level_of_theory_override,
            "records": ds.accounting.to_dict(),
        }
        doc.update(self.counts.result())
        if self.analyzers:
            doc["coverage"] = {name: a.result() for name, a in self.analyzers.items()}
        return doc


AnalyzerFactory = Callable[[Dataset, AuditOptions], dict]


def audit_dataset(path, options: AuditOptions, analyzer_factory: AnalyzerFactory | None = None) -> DatasetAudit:
    """Stream one dataset through the basic counts and any extra analyzers the factory builds."""
    ds = open_dataset(
        path, format=options.format, dataset_card=options.dataset_card, level_of_theory=options.level_of_theory,
        batch_size=options.batch_size, quiet=options.quiet, progress=options.progress,
    )
    audit = DatasetAudit(ds, BasicCounts(), analyzer_factory(ds, options) if analyzer_factory else {})
    for batch in ds.batches():
        audit.update(batch)
    return audit


def run_audit(paths: Sequence, options: AuditOptions | None = None,
              analyzer_factory: AnalyzerFactory | None = None) -> dict:
    """Audit every path (each path is one dataset) and return the JSON document (a dict)."""
    from .. import __version__

    options = options or AuditOptions()
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    datasets = [audit_dataset(p, options, analyzer_factory).result() for p in paths]
    return {
        "schema_version": SCHEMA_VERSION,
        "monoculture_version": __version__,
        "run": {
            "started": started.isoformat(timespec="seconds"),
            "elapsed_s": round(time.perf_counter() - t0, 3),
            "host": platform.node(),
            "backend": "serial",
            "seed": options.seed,
        },
        "datasets": datasets,
    }
