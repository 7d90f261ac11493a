"""Input checks shared by the alignment metrics (validation happens once, at the public boundary)."""

from __future__ import annotations

import numpy as np

__all__ = ["check_embeddings", "check_pair", "check_k"]


def check_embeddings(X, name: str = "X", min_rows: int = 2) -> np.ndarray:
    """Return ``X`` as a finite, C-contiguous float64 array of shape (n, d).

    Parameters
    ----------
    X : array-like, shape (n, d)
        Embeddings, one row per structure.
    name : str
        Name used in error messages.
    min_rows : int
        Smallest accepted number of rows.

    Returns
    -------
    numpy.ndarray, shape (n, d), float64
    """
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (n_samples, n_features); got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows; got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} needs at least one feature column; got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_pair(X, Y, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validate two paired embedding matrices (same rows, any widths).

    Returns
    -------
    X : numpy.ndarray, shape (n, d_a), float64
    Y : numpy.ndarray, shape (n, d_b), float64
    """
    X = check_embeddings(X, "X", min_rows)
    Y = check_embeddings(Y, "Y", min_rows)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must have paired rows; got {X.shape[0]} rows in X and {Y.shape[0]} rows in Y"
        )
    return X, Y


def check_k(k, n: int, name: str = "k") -> int:
    """Check a neighbour count: an integer with 1 <= k <= n - 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {k!r}")
    k = int(k)
    if not 1 <= k <= n - 1:
        raise ValueError(f"{name} must satisfy 1 <= {name} <= n - 1 = {n - 1}; got {k}")
    return k
