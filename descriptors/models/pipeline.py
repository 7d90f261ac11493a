"""Embed whole datasets: stream frames, build graphs in worker processes, batched force-free forward passes,
parquet written in chunks, and a resumable cache.

:func:`embed_dataset` is what ``monoculture embed`` runs. Per frame batch (one *chunk*):

1. every frame gets a content hash (BLAKE2b of atomic numbers, positions, cell and pbc, rounded to 1e-6 Å);
2. the chunk key is the hash of those hashes and of the model's provenance (name, version, layer, pooling,
   checkpoint sha256); a chunk found in ``cache_dir`` under that key is read back instead of recomputed,
   so an interrupted run continues where it stopped and a second run over the same data costs only the
   reading and hashing of frames;
3. otherwise the graphs are built (pieces of ``batch_size`` frames spread over ``workers`` processes, up to
   ``2 * workers`` pieces ahead of the model, via
   :func:`~.base.embed_frames`) and the model runs batched under ``torch.no_grad`` without forces/stress;
4. the chunk is written to the cache atomically (temporary file + rename) and appended to the output
   parquet with a ``ParquetWriter``: memory holds one chunk whatever the dataset size.

Output: columns ``id`` and ``embedding`` (fixed-size list of float32); the schema metadata key
``monoculture.embedding`` holds the model provenance, the pooling, and the skip counts.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ...datasets.frames import atoms_arrays
from .base import embed_frames, graph_worker_pool
from .registry import embeddings_table, load_embedder

__all__ = ["EmbedResult", "embed_dataset", "structure_hashes", "read_embeddings"]


@dataclass
class EmbedResult:
    """What :func:`embed_dataset` did (counts of structures)."""

    out: Path
    n_rows: int = 0
    n_skipped: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    n_chunks: int = 0
    n_chunks_cached: int = 0
    elapsed_s: float = 0.0
    metadata: dict = field(default_factory=dict)


def structure_hashes(batch: pa.Table) -> list[str]:
    """Content hash of every frame of a batch (numbers, positions rounded to 1e-6 Å, cell, pbc), hex."""
    arr = atoms_arrays(batch)
    out = []
    for i in range(len(arr)):
        numbers, pos, cell, pbc = arr.frame(i)
        h = hashlib.blake2b(digest_size=16)
        h.update(np.ascontiguousarray(numbers, dtype=np.uint8).tobytes())
        if pos is not None:
            h.update(np.round(np.asarray(pos, dtype=np.float64), 6).tobytes())
        h.update(np.round(np.asarray(cell, dtype=np.float64), 6).tobytes())
        h.update(np.asarray(pbc, dtype=bool).tobytes())
        out.append(h.hexdigest())
    return out


def _atomic_write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    pq.write_table(table, tmp)
    os.replace(tmp, path)


class _Progress:
    """structures/s and counts on stderr (only when stderr is a terminal, unless forced)."""

    def __init__(self, enabled: bool | None, total: int | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()
        self.n = 0
        self.total = total

    def update(self, n: int) -> None:
        self.n += n
        if not self.enabled:
            return
        dt = time.perf_counter() - self.t0
        rate = self.n / dt if dt > 0 else 0.0
        eta = f", ETA {(self.total - self.n) / rate:.0f} s" if self.total and rate > 0 else ""
        print(f"\rembedded {self.n} structures, {rate:.1f} structures/s{eta}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


def embed_dataset(batches: Iterable[pa.Table], model: str, out, *, device: str = "cpu", batch_size: int = 32,
                  workers: int = 0, pooling: str = "mean", cache_dir=None, progress: bool | None = None,
                  embedder=None) -> EmbedResult:
    """Embed every frame of a stream of frame batches with a bundled model and write parquet in chunks.

    Parameters
    ----------
    batches : iterable of pyarrow.Table
        Frame batches (FRAME_SCHEMA); each batch is one chunk of the output and of the cache.
    model : str
        Model name (:func:`~.registry.available_models`).
    out : path
        Output parquet file (written to a temporary name, renamed when complete).
    device : {"cpu", "cuda", "auto"}
    batch_size : int
        Structures per forward pass.
    workers : int
        Processes that build graphs ahead of the model, up to ``2 * workers`` pieces of ``batch_size`` frames
        in flight (0: in this process).
    pooling : {"mean", "mean_var", "atoms"}
    cache_dir : path, optional
        Folder of the per-chunk cache (resumable runs); None disables it.
    embedder : ModelEmbedder, optional
        An already loaded model (else ``load_embedder(model, device)``).

    Returns
    -------
    EmbedResult
    """
    t0 = time.perf_counter()
    embedder = embedder or load_embedder(model, device=device)
    meta = embedder.metadata(pooling)
    model_key = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:24]
    cache = Path(cache_dir) / f"{embedder.name}-{model_key}" if cache_dir else None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".partial")
    result = EmbedResult(out=out)
    writer = None
    bar = _Progress(progress)
    executor = graph_worker_pool(workers) if workers and workers > 0 else None
    try:
        # Queue of chunks in input order: ("cached", table, None) or ("compute", frame batch, cache path).
        pending: list[tuple[str, pa.Table, Path | None]] = []

        def missing_batches():
            for batch in batches:
                hashes = structure_hashes(batch)
                ids = batch.column("id").to_pylist()
                key = hashlib.sha256("\n".join([model_key, *ids, *hashes]).encode()).hexdigest()
                path = cache / f"chunk_{key}.parquet" if cache is not None else None
                if path is not None and path.exists():
                    pending.append(("cached", pq.read_table(path), None))
                    result.n_chunks_cached += 1
                    continue
                pending.append(("compute", batch, path))
                yield batch

        # embed_frames pulls frame batches lazily; cached chunks are passed through in input order.
        stream = embed_frames(embedder, missing_batches(), batch_size=batch_size, pooling=pooling, executor=executor)
        done = iter(stream)
        while True:
            try:
                ids, X, skipped = next(done)
            except StopIteration:
                ids = None
            # Write everything queued before the computed chunk (cached chunks), then the computed chunk.
            while pending and pending[0][0] == "cached":
                _, table, _ = pending.pop(0)
                writer = _write(writer, tmp_out, table, meta)
                result.n_rows += table.num_rows
                result.n_chunks += 1
                bar.update(table.num_rows)
            if ids is None:
                break
            _, batch, path = pending.pop(0)
            for s in skipped:
                result.skip_reasons[s.reason] += 1
            result.n_skipped += len(skipped)
            table = embeddings_table(list(ids), X, meta)
            if path is not None:
                _atomic_write(table, path)
            writer = _write(writer, tmp_out, table, meta)
            result.n_rows += table.num_rows
            result.n_chunks += 1
            bar.update(table.num_rows + len(skipped))
        if writer is None:
            writer = _write(None, tmp_out, embeddings_table([], np.zeros((0, embedder.width(pooling)), np.float32),
                                                            meta), meta)
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown()
        if writer is not None:
            writer.close()
    meta = dict(meta, n_rows=result.n_rows, n_skipped=result.n_skipped,
                skip_reasons=dict(sorted(result.skip_reasons.items())))
    final = pq.read_table(tmp_out)
    final = final.replace_schema_metadata({"monoculture.embedding": json.dumps(meta, sort_keys=True, default=str)})
    pq.write_table(final, tmp_out)
    os.replace(tmp_out, out)
    result.metadata = meta
    result.elapsed_s = time.perf_counter() - t0
    return result


def _write(writer, path: Path, table: pa.Table, meta: dict):
    table = table.replace_schema_metadata({"monoculture.embedding": json.dumps(meta, sort_keys=True, default=str)})
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
    return writer


def read_embeddings(path) -> tuple[list[str], np.ndarray, dict]:
    """(ids, embeddings (n, width) float32, metadata) of a file written by :func:`embed_dataset`."""
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(b"monoculture.embedding", b"{}"))
    col = table.column("embedding").combine_chunks()
    X = col.flatten().to_numpy(zero_copy_only=False).reshape(len(table), -1)
    return table.column("id").to_pylist(), X.astype(np.float32, copy=False), meta
