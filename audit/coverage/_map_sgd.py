"""The compiled optimisation of the chemical-space map (:func:`~.map_layout.umap_layout`), kept apart so that
numba is imported only when a map is drawn."""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["optimize"]


@numba.njit(cache=True, fastmath=True)
def _clip(v):
    return 4.0 if v > 4.0 else (-4.0 if v < -4.0 else v)


@numba.njit(cache=True, fastmath=True, nogil=True)
def optimize(emb, head, tail, epochs_per_sample, n_epochs, a, b, gamma, initial_alpha, negative_sample_rate,
             seed):
    """umap-learn's ``optimize_layout_euclidean`` (``move_other``, one thread), all epochs in one call.

    ``emb`` (n, 2) float64 is updated in place and returned; ``head`` / ``tail`` (n_edges,) int64 are the
    edges of the fuzzy graph, ``epochs_per_sample`` (n_edges,) their sampling periods (epochs). Releases the
    GIL (``nogil``): the audit runs it in a thread beside the near-duplicate checks. Its random numbers come
    from numba's generator of the calling thread, seeded here, so the result does not depend on the thread.
    """
    np.random.seed(seed)
    n_vertices = emb.shape[0]
    dim = emb.shape[1]
    n_edges = head.shape[0]
    epochs_per_negative = epochs_per_sample / negative_sample_rate
    next_negative = epochs_per_negative.copy()
    next_sample = epochs_per_sample.copy()
    alpha = initial_alpha
    for epoch in range(n_epochs):
        for i in range(n_edges):
            if next_sample[i] > epoch:
                continue
            j = head[i]
            k = tail[i]
            d2 = 0.0
            for c in range(dim):
                diff = emb[j, c] - emb[k, c]
                d2 += diff * diff
            if d2 > 0.0:
                pb1 = d2 ** (b - 1.0)
                coeff = -2.0 * a * b * pb1 / (a * pb1 * d2 + 1.0)
            else:
                coeff = 0.0
            for c in range(dim):
                g = _clip(coeff * (emb[j, c] - emb[k, c]))
                emb[j, c] += g * alpha
                emb[k, c] -= g * alpha
            next_sample[i] += epochs_per_sample[i]
            n_neg = int((epoch - next_negative[i]) / epochs_per_negative[i])
            for _ in range(n_neg):
                k = np.random.randint(0, n_vertices)
                d2 = 0.0
                for c in range(dim):
                    diff = emb[j, c] - emb[k, c]
                    d2 += diff * diff
                if d2 > 0.0:
                    coeff = 2.0 * gamma * b / ((0.001 + d2) * (a * d2**b + 1.0))
                elif j == k:
                    continue
                else:
                    coeff = 0.0
                if coeff > 0.0:
                    for c in range(dim):
                        emb[j, c] += _clip(coeff * (emb[j, c] - emb[k, c])) * alpha
            next_negative[i] += n_neg * epochs_per_negative[i]
        alpha = initial_alpha * (1.0 - epoch / n_epochs)
    return emb
