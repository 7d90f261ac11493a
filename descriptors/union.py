"""Combined descriptor: the features of several descriptors side by side (registry names joined by ``+``).

``get_descriptor("composition+structure")`` builds a :class:`UnionDescriptor`; each part is the registry
descriptor of that name, fitted on the same frames. A frame skipped by any part is skipped by the union,
with the parts' reasons joined.

Fitting reads the frames once: the batches are handed to every part's ``fit`` running in its own thread
(through bounded queues), so a one-pass stream (what :func:`~.runner.featurize` gives) is neither read
twice nor held in memory.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from .base import FrameDescriptor

__all__ = ["UnionDescriptor", "DEFAULT_PART_PARAMS", "SEPARATOR"]

#: Joins the part names of a combined registry name.
SEPARATOR = "+"

#: Parameters a part gets inside a union unless ``part_params`` says otherwise. The structure part keeps
#: only the features that do not depend on the cell chosen to store a crystal (see
#: :data:`~.structure.FEATURE_SETS`): lattice lengths as stored, atom counts and space-group numbers are
#: poor distances between frames.
DEFAULT_PART_PARAMS: dict[str, dict[str, Any]] = {"structure": {"features": "invariant"}}

_END = object()


class UnionDescriptor(FrameDescriptor):
    """Concatenation of registry descriptors.

    Parameters
    ----------
    parts : list of str, default ("composition", "structure")
        Registry names of the parts, in output order; each at most once.
    part_params : dict of str to dict or None, default None
        Constructor parameters per part name, on top of :data:`DEFAULT_PART_PARAMS`.

    Attributes
    ----------
    parts_ : list of FrameDescriptor
        The fitted parts.
    feature_names_ : numpy.ndarray of str, shape (n_features_out_,)
        ``<part>__<feature>`` for every feature of every part, in part order.
    n_features_out_ : int
        Sum of the parts' widths.
    """

    required_columns = ("id",)

    def __init__(self, parts: tuple[str, ...] | list[str] = ("composition", "structure"),
                 part_params: dict[str, dict[str, Any]] | None = None):
        self.parts = parts
        self.part_params = part_params

    @property
    def name(self) -> str:  # type: ignore[override]
        """Registry name: the part names joined by ``+``."""
        return SEPARATOR.join(self.parts)

    @property
    def dependencies(self) -> tuple[str, ...]:  # type: ignore[override]
        """Union of the parts' dependencies."""
        return tuple(dict.fromkeys(d for p in self._parts() for d in p.dependencies))

    @property
    def preload(self) -> tuple[str, ...]:  # type: ignore[override]
        """Union of the parts' preload modules."""
        return tuple(dict.fromkeys(m for p in self._parts() for m in p.preload))

    def config(self) -> dict[str, Any]:
        """The base config plus each part's own config (with :data:`DEFAULT_PART_PARAMS` applied)."""
        return {**super().config(), "parts": [p.config() for p in self._parts()]}

    def _parts(self) -> list[FrameDescriptor]:
        return self.parts_ if self.is_fitted() else self._new_parts()

    def _new_parts(self) -> list[FrameDescriptor]:
        from .registry import get_descriptor

        names = list(self.parts)
        if len(names) < 1 or len(set(names)) != len(names) or any(SEPARATOR in n for n in names):
            raise ValueError(f"a combined descriptor needs distinct part names, got {names}")
        extra = sorted(set(self.part_params or {}) - set(names))
        if extra:
            raise ValueError(f"part_params names {extra}, which are not parts of {self.name!r}")
        return [get_descriptor(n, **{**DEFAULT_PART_PARAMS.get(n, {}), **(self.part_params or {}).get(n, {})})
                for n in names]

    def _fit_batches(self, batches: Iterator[pa.Table]) -> None:
        parts = self._new_parts()
        _fit_together(parts, batches)
        self.parts_ = parts

    def _feature_names(self) -> list[str]:
        return [f"{p.name}__{f}" for p in self.parts_ for f in p.feature_names_]

    def _transform_batch(self, batch: pa.Table) -> tuple[np.ndarray, list[tuple[int, str]]]:
        blocks, reasons = [], {}
        for p in self.parts_:
            res = p.transform_with_mask(batch)
            blocks.append(res.X)
            for i, (_, reason) in zip(np.flatnonzero(~res.ok), res.skipped):
                reasons.setdefault(int(i), []).append(f"{p.name}: {reason}")
        return np.concatenate(blocks, axis=1), [(i, "; ".join(r)) for i, r in sorted(reasons.items())]


def _fit_together(parts: list[FrameDescriptor], batches: Iterator[pa.Table]) -> None:
    """``part.fit(batches)`` for every part, reading ``batches`` once (one thread per part)."""
    queues = [queue.Queue(maxsize=2) for _ in parts]
    errors: list[BaseException | None] = [None] * len(parts)

    def stream(q: queue.Queue) -> Iterator[pa.Table]:
        while (b := q.get()) is not _END:
            yield b

    def run(k: int) -> None:
        it = stream(queues[k])
        try:
            parts[k].fit(it)
        except BaseException as exc:  # re-raised in the calling thread
            errors[k] = exc
        finally:
            for _ in it:  # keep draining so the reader never blocks on a part that stopped early
                pass

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(len(parts))]
    for t in threads:
        t.start()
    try:
        for b in batches:
            for q in queues:
                q.put(b)
    finally:
        for q in queues:
            q.put(_END)
        for t in threads:
            t.join()
    for exc in errors:
        if exc is not None:
            raise exc
