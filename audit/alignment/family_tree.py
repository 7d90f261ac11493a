"""Family tree of models: average-linkage clustering of an alignment distance, written as Newick."""

from __future__ import annotations

import re

import numpy as np
from scipy.cluster.hierarchy import linkage, to_tree
from scipy.spatial.distance import squareform

__all__ = ["family_tree", "newick_from_linkage"]

_PLAIN_LABEL = re.compile(r"^[A-Za-z0-9_.\-+]+$")


def _quote(label: str) -> str:
    """Newick label: bare when it has only safe characters, else single-quoted with '' escapes."""
    return label if _PLAIN_LABEL.match(label) else "'" + label.replace("'", "''") + "'"


def newick_from_linkage(Z: np.ndarray, labels) -> str:
    """Newick text of a scipy linkage with branch lengths.

    A merge at linkage distance h puts its node at height h; the branch above a child at height h_c is
    ``h - h_c`` long (leaves at height 0), so root-to-leaf path lengths equal the merge heights.

    Parameters
    ----------
    Z : numpy.ndarray, shape (n - 1, 4)
        scipy linkage matrix.
    labels : sequence of str, length n

    Returns
    -------
    str
        e.g. ``"((a:0.1,b:0.1):0.3,c:0.4);"``.
    """
    labels = [str(s) for s in labels]
    root = to_tree(np.asarray(Z, dtype=float))

    def walk(node, parent_height):
        length = f":{max(parent_height - node.dist, 0.0):.6g}"
        if node.is_leaf():
            return _quote(labels[node.id]) + length
        return f"({walk(node.left, node.dist)},{walk(node.right, node.dist)})" + length

    return f"({walk(root.left, root.dist)},{walk(root.right, root.dist)});"


def family_tree(similarity, labels, *, method: str = "average") -> dict:
    """Hierarchical clustering of models on ``1 - similarity``.

    Parameters
    ----------
    similarity : array-like, shape (M, M)
        Symmetric similarity in [0, 1] (e.g. CKNNA); NaN entries are treated as unrelated (distance 1)
        and counted in ``n_missing``. The matrix is symmetrised by averaging it with its transpose.
    labels : sequence of str, length M >= 2
    method : str
        scipy linkage method (``"average"`` = UPGMA).

    Returns
    -------
    dict
        ``newick``, ``labels``, ``linkage`` (list of ``[i, j, distance, count]``), ``method``,
        ``n_missing`` (pairs with NaN similarity).
    """
    S = np.asarray(similarity, dtype=float)
    M = len(labels)
    if S.shape != (M, M) or M < 2:
        raise ValueError(f"similarity must be square with one row per label (M >= 2); got {S.shape} for {M} labels")
    D = 1.0 - 0.5 * (S + S.T)
    missing = ~np.isfinite(D)
    np.fill_diagonal(missing, False)
    D[missing] = 1.0
    D = np.clip(D, 0.0, None)
    np.fill_diagonal(D, 0.0)
    Z = linkage(squareform(D, checks=False), method=method)
    return {"newick": newick_from_linkage(Z, labels), "labels": [str(s) for s in labels],
            "linkage": Z.tolist(), "method": method, "n_missing": int(missing.sum() // 2)}
