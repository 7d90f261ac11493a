"""Run the audit of one or more datasets and assemble the JSON document.

The document layout (``schema_version`` 1; later versions add keys, never rename)::

    {"schema_version": "1", "monoculture_version": "...",
     "run": {"started": ISO-8601, "elapsed_s": float, "host": str, "backend": "serial" | "dask", ...},
     "parameters": {...every parameter that shapes the results...},
     "datasets": [{"name", "format", "files", "card", "records": {...}, "n_frames", "n_atoms",
                   "elements": {...}, "level_of_theory": {...}, "method": {...}, "temperature_K": {...},
                   "coverage": {...}, "compare": {...} (with a reference)}]}

Everything volatile (times, host, backend) lives under ``run``; ``datasets`` holds only results,
identical for identical input and seed, whatever the backend (serial, or Dask workers whose accumulators
are merged by tree reduction: every accumulator's ``merge`` is exact and order independent).

How a dataset is audited (:func:`audit_shard`): frames stream through the exact accumulators
(:class:`~.summary.BasicCounts` and :class:`~.coverage.CoverageAudit`'s element, level-of-theory,
regime and exact-duplicate parts); the chemical-space part gets the descriptor rows of a seeded reservoir
sample. The default descriptor (``"auto"``, :func:`choose_descriptor`) follows the data: ``molecule``
(RDKit) when no frame of any dataset of the run is periodic in three directions, else
``composition+structure``; the choice and its rule are recorded under ``parameters``. A descriptor that
learns from data (SOAP's species) is fitted once, on the first batch of the dataset, before any shard is
read, so that every worker uses the same fitted descriptor. A descriptor row that is not finite is not
used: it is counted under ``descriptor_skipped`` with its reason.
"""
from __future__ import annotations

import platform
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..datasets import Accounting, Dataset, ReadOptions, open_dataset
from .coverage import CoverageAudit
from .coverage.chemical_space import joint_umap
from .coverage.compiled import active, kernels_for, warm_up
from .distributed import dask_audit
from .document import SCHEMA_VERSION
from .summary import BasicCounts

__all__ = ["AuditOptions", "ShardAudit", "audit_shard", "audit_dataset", "run_audit", "choose_descriptor",
           "SCHEMA_VERSION", "AUTO_DESCRIPTOR_RULE"]

#: How ``descriptor="auto"`` is resolved (recorded as ``parameters.descriptor_rule``).
AUTO_DESCRIPTOR_RULE = ("auto: 'molecule' (RDKit fingerprint and 2-D descriptors) when no frame in the first "
                        "batch of any dataset of the run is periodic in all three directions, else "
                        "'composition+structure'")


@dataclass
class AuditOptions:
    """What to run and how. Every field that shapes results is recorded under ``parameters``.

    Parameters
    ----------
    descriptor : str or None
        Descriptor of the chemical-space analysis (``auto``, ``composition``, ``composition+structure``,
        ``molecule``, ``local``, ``structure``, ``soap``...); None skips it. ``auto`` is resolved by
        :func:`choose_descriptor` before any dataset is audited.
    sample_size : int
        Reservoir size (frames) of the chemical-space analysis and the comparison.
    seed : int
        Seed of every sampled step (reservoir hash, UMAP, k-means).
    umap, quests_crosscheck : bool
        Compute the 2-D UMAP map; cross-check the entropy with the ``quests`` package (off by default: a
        validation, pinned by the tests, whose numba kernel costs a first run about 3 s of compilation;
        ``monoculture audit --quests-crosscheck`` turns it on).
    reference : str or None
        Path of a reference dataset: compare each dataset with it (coverage, novelty, priorities).
    smiles_column, id_column : str or None
        Columns of a CSV / TSV table holding the SMILES and the record ids (default: detected).
    config : str or None
        Configs of a Hugging Face dataset folder to read (comma-separated; default: every frame config).
    """

    format: str | None = None
    dataset_card: str | None = None
    level_of_theory: str | None = None
    batch_size: int = 4096
    descriptor: str | None = "auto"
    sample_size: int = 5000
    seed: int = 0
    umap: bool = True
    quests_crosscheck: bool = False
    reference: str | None = None
    quiet: bool = False
    progress: bool | None = None
    smiles_column: str | None = None
    id_column: str | None = None
    config: str | None = None
    descriptor_rule: str | None = None

    def parameters(self) -> dict:
        keep = ("batch_size", "descriptor", "descriptor_rule", "sample_size", "seed", "umap", "quests_crosscheck")
        return {k: v for k, v in asdict(self).items() if k in keep and v is not None}


@dataclass
class ShardAudit:
    """The accumulators of one shard (or of a whole dataset after merging)."""

    counts: BasicCounts
    coverage: CoverageAudit
    accounting: Accounting
    descriptor_skipped: int = 0
    descriptor_skip_reasons: dict = field(default_factory=dict)

    def merge(self, other: "ShardAudit") -> "ShardAudit":
        reasons = dict(self.descriptor_skip_reasons)
        for k, v in other.descriptor_skip_reasons.items():
            reasons[k] = reasons.get(k, 0) + v
        return ShardAudit(self.counts.merge(other.counts), self.coverage.merge(other.coverage),
                          self.accounting.merge(other.accounting),
                          self.descriptor_skipped + other.descriptor_skipped, reasons)


_NON_FINITE = "descriptor gave non-finite features"


def choose_descriptor(datasets: Sequence[Dataset]) -> str:
    """The descriptor ``"auto"`` stands for, from the first batch of each dataset (see the module docstring)."""
    return _choose(next(iter(ds.batches()), None) for ds in datasets)


def _choose(first_batches) -> str:
    for first in first_batches:
        if first is None:
            continue
        pbc = first.column("pbc").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, 3)
        if pbc.all(axis=1).any():
            return "composition+structure"
    return "molecule"


def _open(path, options: AuditOptions) -> Dataset:
    return open_dataset(
        path, format=options.format, dataset_card=options.dataset_card, level_of_theory=options.level_of_theory,
        batch_size=options.batch_size, quiet=options.quiet, progress=options.progress,
        options=ReadOptions(smiles_column=options.smiles_column, id_column=options.id_column,
                            config=options.config),
    )


def fit_descriptor(ds: Dataset, options: AuditOptions, first: pa.Table | None = None):
    """The chemical-space descriptor, fitted on the dataset's first batch (None when disabled).

    ``first`` is that batch when it was already read (by :func:`_resolve_descriptor`); else it is read here.
    """
    if not options.descriptor:
        return None
    from ..descriptors import get_descriptor

    desc = get_descriptor(options.descriptor)
    if first is None:
        first = next(iter(ds.batches()), None)
    if first is None:
        return None
    return desc.fit(first)


def new_coverage(options: AuditOptions) -> CoverageAudit:
    return CoverageAudit(descriptor_sample_size=options.sample_size, seed=options.seed,
                         descriptor=options.descriptor or "none", umap=options.umap,
                         quests_crosscheck=options.quests_crosscheck)


def audit_shard(ds: Dataset, shard, options: AuditOptions, descriptor) -> ShardAudit:
    """Stream one shard (None: the whole dataset) through every accumulator."""
    counts = BasicCounts()
    coverage = new_coverage(options)
    skipped = 0
    reasons: dict[str, int] = {}
    for batch in ds.batches(shard=shard):
        counts.update(batch)
        coverage.update(batch)
        if descriptor is not None:
            res = descriptor.transform_with_mask(batch)
            ok = np.asarray(res.ok, dtype=bool)
            for _, reason in res.skipped:
                reasons[reason] = reasons.get(reason, 0) + 1
            bad = ok & ~np.isfinite(np.asarray(res.X)).all(axis=1)
            if bad.any():  # a descriptor bug must not reach a distance: count it like any other skip
                reasons[_NON_FINITE] = reasons.get(_NON_FINITE, 0) + int(bad.sum())
                ok &= ~bad
            skipped += int((~ok).sum())
            if ok.any():
                sub = batch if ok.all() else batch.filter(pa.array(ok))
                coverage.chemical_space_.update(sub, np.asarray(res.X)[ok])
    return ShardAudit(counts, coverage, ds.accounting, skipped, reasons)


@dataclass
class DatasetAudit:
    """One audited dataset: where it came from and its merged accumulators."""

    dataset: Dataset
    audit: ShardAudit

    def result(self, reference: "DatasetAudit | None" = None) -> dict:
        ds, a = self.dataset, self.audit
        doc = {
            "name": ds.name,
            "format": ds.format,
            "files": [str(ds.path)],
            "card": ds.card.to_dict() if ds.card else None,
            "level_of_theory_override": ds.level_of_theory_override,
            "records": a.accounting.to_dict(),
        }
        doc.update(a.counts.result())
        compare = a.coverage.compare(reference.audit.coverage) if reference is not None else None
        doc["coverage"] = a.coverage.result(reference=reference.audit.coverage if reference else None,
                                            compare=compare)
        space = doc["coverage"]["chemical_space"]
        if "not_applicable" not in space:
            space["descriptor_skipped"] = {
                "frames": a.descriptor_skipped, "reasons": dict(sorted(a.descriptor_skip_reasons.items()))}
        if compare is not None:
            compare["reference"] = reference.dataset.name
            doc["compare"] = compare
        return doc


def audit_dataset(path, options: AuditOptions, client=None, first_batch: pa.Table | None = None) -> DatasetAudit:
    """Audit one dataset, serially or (``client``: a ``distributed.Client``) on Dask workers.

    ``first_batch``: the dataset's first frame batch when already read (it fits the descriptor).
    """
    ds = _open(path, options)
    descriptor = fit_descriptor(ds, options, first_batch)
    if client is None:
        return DatasetAudit(ds, audit_shard(ds, None, options, descriptor))
    return DatasetAudit(ds, dask_audit(path, ds, options, descriptor, client, audit_shard))


class _Steps:
    """Wall time of each named step (``run.steps_s``) and, when enabled, one progress line per step on stderr."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        if self.enabled:
            print(f"monoculture: {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.seconds[name] = round(self.seconds.get(name, 0.0) + dt, 3)
        if self.enabled:
            print(f"monoculture: {name}: {dt:.1f} s", file=sys.stderr, flush=True)


def _resolve_descriptor(paths: Sequence, options: AuditOptions, first_batches: dict | None = None) -> AuditOptions:
    """``options`` with ``descriptor="auto"`` resolved; the first batch of each path read for it is put in
    ``first_batches`` (path -> batch), so that fitting the descriptor does not read and parse it again
    (4,096 SMILES parsed by RDKit: about 1 s)."""
    if options.descriptor != "auto":
        return options
    targets = ([options.reference] if options.reference else []) + list(paths)
    quiet = replace(options, quiet=True, progress=False)
    firsts = first_batches if first_batches is not None else {}
    for p in targets:
        if str(p) not in firsts:
            firsts[str(p)] = next(iter(_open(p, quiet).batches()), None)
    return replace(options, descriptor=_choose(firsts[str(p)] for p in targets),
                   descriptor_rule=AUTO_DESCRIPTOR_RULE)


def run_audit(paths: Sequence, options: AuditOptions | None = None, client=None) -> dict:
    """Audit every path (each path is one dataset) and return the JSON document (a dict).

    ``run.steps_s`` holds the wall time (s) of each step: reading and describing each dataset, analysing
    it, and the joint map. With ``options.progress`` (default: when stderr is a terminal and not ``quiet``)
    every step prints a start line and its duration on stderr.

    When numba's cache lacks a compiled kernel the run will use (the entropy cross-check's, the map's), a
    second process compiles it while the frames are read (:func:`~.coverage.compiled.warm_up`).
    """
    options = options or AuditOptions()
    with warm_up(kernels_for(options.descriptor, options.umap, options.quests_crosscheck)):
        return _run_audit(paths, options, client)


def _run_audit(paths: Sequence, options: AuditOptions, client) -> dict:
    from .. import __version__

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    progress = options.progress if options.progress is not None else (sys.stderr.isatty() and not options.quiet)
    step = _Steps(progress)
    first_batches: dict = {}
    options = _resolve_descriptor(paths, options, first_batches)
    if progress and options.descriptor_rule:
        print(f"monoculture: descriptor {options.descriptor} ({options.descriptor_rule})", file=sys.stderr)
    reference = None
    if options.reference:
        with step(f"read and describe {Path(options.reference).name} (reference)"):
            reference = audit_dataset(options.reference, options, client,
                                      first_batches.pop(str(options.reference), None))
    datasets, audits = [], []
    for p in paths:
        same = reference is not None and Path(p).resolve() == Path(options.reference).resolve()
        if same:
            audited = reference
        else:
            with step(f"read and describe {Path(p).name}"):
                audited = audit_dataset(p, options, client, first_batches.pop(str(p), None))
        audits.append(audited)
        n = audited.audit.coverage.chemical_space_.reservoir_.n_seen_
        with step(f"analyse {audited.dataset.name} ({min(n, options.sample_size)} sampled frames)"):
            datasets.append(audited.result(None if same else reference))
    if reference is not None and all(a is not reference for a in audits):
        audits.append(reference)
    joint = None
    if options.umap and options.descriptor and len(audits) > 1:
        samples = [a.audit.coverage.chemical_space_.sample() for a in audits]
        scaler = reference.audit.coverage.scaler() if reference is not None else None
        with step("joint UMAP map"):
            joint = {"umap": joint_umap(samples, seed=options.seed, scaler=scaler)}
    run = {
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "steps_s": step.seconds,
        "host": platform.node(),
        "backend": "serial" if client is None else "dask",
    }
    if client is not None:
        run["dask_workers"] = len(client.scheduler_info().get("workers", {}))
    if active() is not None:  # numba kernels compiled by a second process during this run
        run["numba_warmup"] = active().describe()
    parameters = options.parameters()
    if options.umap and options.descriptor:
        from .coverage.chemical_space import UMAP_EPOCHS, UMAP_METHOD

        parameters.update(map_method=UMAP_METHOD, map_epochs=UMAP_EPOCHS,
                          map_frames=f"every sampled frame (up to sample_size = {options.sample_size})")
    if reference is not None:
        parameters["reference"] = reference.dataset.name
    doc = {
        "schema_version": SCHEMA_VERSION,
        "monoculture_version": __version__,
        "run": run,
        "parameters": parameters,
        "datasets": datasets,
    }
    if joint is not None:
        doc["chemical_space"] = joint
    return doc
