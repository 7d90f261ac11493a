"""Arrays from worker processes to their parent through shared memory instead of the result pipe.

Used for the forward batches of model embeddings (:mod:`.models`) and for the feature rows of
:func:`~.runner.featurize`. A batch of numpy arrays (about 10 MB for 256 CHGNet graphs of ~22 atoms; 15 MB for
250 rows of full-width SOAP) returned through ``concurrent.futures.ProcessPoolExecutor`` is pickled, written to
a pipe in 64 KiB pieces, read back by the executor's result thread and unpickled: three copies and hundreds of
system calls per batch, most of them holding the receiving process's GIL (measured on an H200: CHGNet's
forward passes ran 20 % slower beside that traffic). Here the worker writes the arrays once into a POSIX
shared-memory block (``multiprocessing.shared_memory``) and sends only its name and the array layout; the
receiving process maps the block and either copies the arrays where they go, then unlinks the block
(:func:`opened`, model batches), or unlinks its name at once and keeps the mapping as the arrays' memory
(:func:`adopt`, feature rows).

Blocks are registered with ``multiprocessing``'s resource tracker (started before the workers by
:func:`~.models.base.graph_worker_pool` and by ``featurize``'s pool, so workers share it), which unlinks any
block left behind by a killed run.
When ``/dev/shm`` has less than :data:`MIN_FREE_FACTOR` times a batch free (small container defaults), the
batch travels through the pipe as before.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = ["SharedBatch", "to_shared", "opened", "adopt", "discard", "MIN_FREE_FACTOR"]

#: A batch goes to shared memory only if /dev/shm has this many times its size free.
MIN_FREE_FACTOR = 8
_ALIGN = 64


@dataclass(frozen=True)
class SharedBatch:
    """Name of a shared-memory block and where each array of a batch lies in it.

    ``fields``: tuple of (key, dtype string, shape, byte offset).
    """

    name: str
    fields: tuple
    size: int


def _shm_free_bytes() -> int:
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return 0
    return int(st.f_bavail) * int(st.f_frsize)


def to_shared(batch: Mapping, min_free_factor: float = MIN_FREE_FACTOR) -> SharedBatch | Mapping:
    """Copy ``batch`` (str -> numpy array) into a new shared-memory block; returns the batch itself when
    shared memory is short (see module docstring) or the batch is empty."""
    from multiprocessing import shared_memory

    fields, offset = [], 0
    for key, arr in batch.items():
        arr = np.asarray(arr)
        fields.append((key, arr.dtype.str, tuple(arr.shape), offset))
        offset += -(-arr.nbytes // _ALIGN) * _ALIGN
    if offset == 0 or _shm_free_bytes() < min_free_factor * offset:
        return batch
    shm = shared_memory.SharedMemory(create=True, size=offset)
    try:
        for key, dtype, shape, off in fields:
            view = np.ndarray(shape, dtype=np.dtype(dtype), buffer=shm.buf, offset=off)
            view[...] = batch[key]
            del view
    except BaseException:
        shm.close()
        shm.unlink()
        raise
    shm.close()
    return SharedBatch(shm.name, tuple(fields), offset)


@contextmanager
def opened(item: SharedBatch | Mapping) -> Iterator[dict]:
    """The arrays of ``item`` as a dict of numpy arrays; a shared block is unlinked on exit.

    The arrays are views of the block: use them inside the ``with`` only (the dict is emptied on exit).
    """
    if not isinstance(item, SharedBatch):
        yield dict(item)
        return
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(name=item.name)
    views = {key: np.ndarray(shape, dtype=np.dtype(dtype), buffer=shm.buf, offset=off)
             for key, dtype, shape, off in item.fields}
    try:
        yield views
    finally:
        views.clear()
        try:
            shm.unlink()
        except FileNotFoundError:  # pragma: no cover - already unlinked
            pass
        try:
            shm.close()
        except BufferError:  # a view escaped the ``with``; the mapping goes when it is garbage-collected
            pass


def adopt(item: SharedBatch | Mapping) -> dict:
    """The arrays of ``item`` as numpy arrays that keep the block mapped for as long as they live; the block's
    name is unlinked at once, so its memory goes back when the last array (or Arrow array made from one) is
    freed. No copy: for results that are kept (feature rows), where :func:`opened` would need one.

    Maps ``/dev/shm/NAME`` (Linux); elsewhere the arrays are copied out of the block and it is unlinked.
    """
    if not isinstance(item, SharedBatch):
        return dict(item)
    import mmap
    from multiprocessing import shared_memory

    try:
        fd = os.open(f"/dev/shm/{item.name}", os.O_RDWR)
    except OSError:
        with opened(item) as views:
            return {key: np.array(view) for key, view in views.items()}
    try:
        mapping = mmap.mmap(fd, item.size)
    finally:
        os.close(fd)
    shm = shared_memory.SharedMemory(name=item.name)  # unlink through it: it unregisters from the resource tracker
    try:
        shm.unlink()
    finally:
        shm.close()
    return {key: np.ndarray(shape, dtype=np.dtype(dtype), buffer=mapping, offset=off)
            for key, dtype, shape, off in item.fields}


def discard(item: SharedBatch | Mapping) -> None:
    """Unlink the block of a batch that will not be used (e.g. prefetched when a run stops early)."""
    if isinstance(item, SharedBatch):
        with opened(item):
            pass
