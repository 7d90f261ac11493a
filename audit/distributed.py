"""The Dask backend: shards of a dataset are read and audited on workers, accumulators merged by a tree.

``monoculture audit PATH --dask local:N`` starts a ``distributed.LocalCluster`` of N single-threaded
worker processes; ``--dask tcp://scheduler:8786`` connects to a running cluster (started by hand, by
dask-jobqueue on a batch system, or by the Dask Kubernetes operator); every worker needs monoculture
installed and read access to the data path.

Work units come from :meth:`~monoculture.datasets.Dataset.shards` (OMat24 / sAlex / OMol25 shard files or
LMDB key ranges; MPTrj byte ranges cut at material boundaries). Each unit is one task that receives the
opened dataset (a :class:`~monoculture.datasets.Dataset` pickles as its path and options; the worker imports
its reader again), reads the unit's frames and returns what the ``audit_shard`` function passed in by
:mod:`~.run` returns (a ``ShardAudit``: counts, coverage accumulators, record accounting: small, picklable).
This module imports nothing of :mod:`~.run`, so the two form no import cycle. The results are merged pairwise in a tree
(``dask.bag`` ``reduction`` with ``split_every``), never gathered all at once. Because every merge is exact
and order independent (integer counts, fixed-edge histograms, bottom-k reservoirs by seeded hash,
canonical accounting examples), the document equals the serial one for the same seed.
"""
from __future__ import annotations

from functools import reduce

__all__ = ["connect", "dask_audit", "shards_for"]


def connect(spec: str):
    """A ``distributed.Client`` for ``local:N`` (a new LocalCluster of N processes) or a scheduler address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError("the Dask backend needs the 'dask' extra: pip install 'monoculture[dask]'") from exc
    if spec.startswith("local"):
        _, _, n = spec.partition(":")
        n_workers = int(n) if n else 2
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=40)
        return Client(cluster)
    return Client(spec)


def shards_for(ds, n_workers: int) -> list:
    """Work units: about 4 per worker, so that uneven shards still balance."""
    return ds.shards(max(1, 4 * n_workers))


def _audit_unit(audit_shard, ds, options, descriptor, shard):
    return audit_shard(ds, shard, options, descriptor)


def _merge_all(parts):
    parts = list(parts)
    return reduce(lambda a, b: a.merge(b), parts[1:], parts[0])


def dask_audit(path, ds, options, descriptor, client, audit_shard):
    """Audit the dataset ``ds`` (opened from ``path``) on the workers of ``client``; returns the merged result.

    Parameters
    ----------
    path : str or Path
        The dataset's path (kept for the callers' signature; the workers use the pickled ``ds``).
    ds : Dataset
        The opened dataset; its :meth:`~monoculture.datasets.Dataset.shards` are the work units.
    options, descriptor
        Passed to ``audit_shard`` unchanged (the audit options and the fitted descriptor, or None).
    client : distributed.Client
    audit_shard : callable
        ``audit_shard(ds, shard, options, descriptor) -> ShardAudit`` (a module-level function, so that
        it pickles by reference); results are merged with their ``merge`` in a tree.
    """
    import dask.bag as db

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    units = shards_for(ds, n_workers)
    bag = db.from_sequence(units, npartitions=len(units))
    audits = bag.map(lambda unit: _audit_unit(audit_shard, ds, options, descriptor, unit))
    merged = audits.reduction(_merge_all, _merge_all, split_every=4)
    return client.compute(merged).result()
