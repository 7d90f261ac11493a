"""Per-structure coverage gap and per-structure collapse measures, and their rank correlation.

*Coverage gap* of an evaluation structure: how far its descriptor sits from a training / reference set,
the mean Euclidean distance to its ``k`` nearest reference descriptors (descriptor units); optionally
*element rarity*, the surprisal of its rarest element in the reference set.

*Collapse measures* of a structure (k-NN sets within the evaluation set, :func:`~.neighbours.knn`):

* model-descriptor agreement ``a_i = |N_model(i) ∩ N_descriptor(i)| / k``: how much of the structure's
  model-free neighbourhood a model keeps. Low = the model no longer separates what the descriptor does;
* model-model agreement: the same overlap between two models (mean over the other models), i.e. the
  per-row term of mutual k-NN. High while model-descriptor agreement is low = the models agree with each
  other on something the descriptor does not see (collapse onto a shared representation).
"""

from __future__ import annotations

import numpy as np

from ._validation import check_embeddings, check_k
from .neighbours import knn

__all__ = ["coverage_gap", "knn_overlap_per_sample", "element_rarity", "parse_elements"]


def coverage_gap(X, reference, k: int = 5, *, block_size: int = 1024) -> np.ndarray:
    """Mean Euclidean distance from each row of ``X`` to its ``k`` nearest rows of ``reference``.

    Exact (float64, blocked brute force). A row of ``X`` that also occurs in ``reference`` has gap 0 for
    that neighbour: pass a reference set disjoint from the evaluation set.

    Parameters
    ----------
    X : array-like, shape (n, d)
        Evaluation descriptors.
    reference : array-like, shape (n_ref, d)
        Training / reference descriptors (same descriptor, same units).
    k : int
        Reference neighbours averaged, ``1 <= k <= n_ref``.
    block_size : int
        Rows of ``X`` per block (memory ~ ``block_size * n_ref * 8`` bytes).

    Returns
    -------
    numpy.ndarray, shape (n,)
        Gap in descriptor units.
    """
    X = check_embeddings(X, "X", min_rows=1)
    R = check_embeddings(reference, "reference", min_rows=1)
    if X.shape[1] != R.shape[1]:
        raise ValueError(f"X and reference must have the same width; got {X.shape[1]} and {R.shape[1]}")
    if not 1 <= k <= R.shape[0]:
        raise ValueError(f"k must satisfy 1 <= k <= n_ref = {R.shape[0]}; got {k}")
    centre = R.mean(axis=0)
    Rc, Xc = R - centre, X - centre
    rsq = np.einsum("ij,ij->i", Rc, Rc)
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], block_size):
        B = Xc[start:start + block_size]
        d2 = np.einsum("ij,ij->i", B, B)[:, None] + rsq[None, :] - 2.0 * (B @ Rc.T)
        part = np.partition(np.maximum(d2, 0.0), k - 1, axis=1)[:, :k]
        out[start:start + B.shape[0]] = np.sqrt(part).mean(axis=1)
    return out


def knn_overlap_per_sample(X, Y, k: int, *, metric: str = "euclidean") -> np.ndarray:
    """Per-row overlap of the k-NN sets of two paired embeddings, ``|N_X(i) ∩ N_Y(i)| / k``.

    Its mean over rows is :func:`~monoculture.audit.alignment.mutual_knn`.

    Parameters
    ----------
    X : array-like, shape (n, d_a)
    Y : array-like, shape (n, d_b)
    k : int
        ``1 <= k <= n - 1``.
    metric : {"euclidean", "cosine"}

    Returns
    -------
    numpy.ndarray, shape (n,)
        Values in {0, 1/k, ..., 1}.
    """
    X = check_embeddings(X, "X")
    Y = check_embeddings(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have paired rows; got {X.shape[0]} and {Y.shape[0]}")
    k = check_k(k, X.shape[0])
    _, ix = knn(X, k, metric=metric)
    _, iy = knn(Y, k, metric=metric)
    return _overlap(ix, iy)


def _overlap(ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Row-wise |ix_i ∩ iy_i| / k for neighbour index arrays of shape (n, k)."""
    ix, iy = np.sort(ix, axis=1), np.sort(iy, axis=1)
    n, k = ix.shape
    # position of each ix entry in the sorted iy row; a hit when the value there is equal
    pos = np.empty_like(ix)
    for r in range(n):
        pos[r] = np.searchsorted(iy[r], ix[r])
    pos = np.minimum(pos, k - 1)
    return (np.take_along_axis(iy, pos, axis=1) == ix).sum(axis=1) / k


def parse_elements(value) -> tuple[str, ...]:
    """Elements of one structure from a list/array of symbols or a ``'Fe-O'`` style string.

    Separators ``-``, ``,`` and whitespace are accepted; duplicates are removed, order kept.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        parts = value.replace(",", " ").replace("-", " ").split()
    else:
        parts = [str(v) for v in value]
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


def element_rarity(elements, reference_counts, reference_n: int) -> np.ndarray:
    """Surprisal of each structure's rarest element in a reference set.

    ``rarity_i = max_{e in elements_i} -ln((c_e + 1) / (N + 1))`` with ``c_e`` the number of reference
    structures containing e and N the reference size (add-one smoothing, so an unseen element scores
    ``ln(N + 1)``). Structures without elements get NaN.

    Parameters
    ----------
    elements : sequence, length n
        Per structure, a list of symbols or an ``'Fe-O'`` string.
    reference_counts : mapping of str to int
        Reference structures containing each element.
    reference_n : int
        Reference structures, N >= 1.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Nats.
    """
    if reference_n < 1:
        raise ValueError(f"reference_n must be >= 1; got {reference_n}")
    out = np.full(len(elements), np.nan)
    for i, value in enumerate(elements):
        els = parse_elements(value)
        if els:
            out[i] = max(-np.log((reference_counts.get(e, 0) + 1.0) / (reference_n + 1.0)) for e in els)
    return out
