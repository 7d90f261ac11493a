"""Embedding normalisation, recorded by name so a report can say what was done."""

from __future__ import annotations

import numpy as np

from ._validation import check_embeddings

__all__ = ["NORMALISATIONS", "EmbeddingNormaliser", "normalise"]

NORMALISATIONS = ("none", "l2", "max", "standard")


class EmbeddingNormaliser:
    """Normalise embeddings by a named method (scikit-learn style).

    Methods
    -------
    ``"none"``
        Unchanged (a float64 copy).
    ``"l2"``
        Each row divided by its Euclidean norm (rows of zeros stay zero).
    ``"max"``
        Each row divided by its largest absolute element, so that element becomes +-1: what arXiv
        2512.03750 did ("rescaled so that the largest element is 1"). Rows of zeros stay zero.
    ``"standard"``
        Each column z-scored with the mean and standard deviation learned by :meth:`fit` (population std,
        ``ddof=0``); columns with zero spread are only centred.

    Row-wise methods learn nothing; ``fit`` still validates and returns ``self``.

    Parameters
    ----------
    method : {"none", "l2", "max", "standard"}

    Attributes
    ----------
    mean_ : numpy.ndarray, shape (d,)
        Column means (``"standard"`` only).
    scale_ : numpy.ndarray, shape (d,)
        Column standard deviations, 1 where zero (``"standard"`` only).
    n_features_in_ : int
    """

    def __init__(self, method: str = "none"):
        self.method = method

    def fit(self, X, y=None):
        if self.method not in NORMALISATIONS:
            raise ValueError(f"method must be one of {NORMALISATIONS}; got {self.method!r}")
        X = check_embeddings(X, min_rows=1)
        self.n_features_in_ = X.shape[1]
        if self.method == "standard":
            self.mean_ = X.mean(axis=0)
            std = X.std(axis=0)
            self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X) -> np.ndarray:
        """Apply the normalisation.

        Parameters
        ----------
        X : array-like, shape (n, d)

        Returns
        -------
        numpy.ndarray, shape (n, d), float64
        """
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError("EmbeddingNormaliser is not fitted; call fit first")
        X = check_embeddings(X, min_rows=1)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features; got {X.shape[1]}")
        if self.method == "none":
            return X.copy()
        if self.method == "standard":
            return (X - self.mean_) / self.scale_
        if self.method == "l2":
            scale = np.linalg.norm(X, axis=1, keepdims=True)
        else:  # "max"
            scale = np.abs(X).max(axis=1, keepdims=True)
        return np.divide(X, scale, out=np.zeros_like(X), where=scale > 0)

    def fit_transform(self, X, y=None) -> np.ndarray:
        return self.fit(X).transform(X)


def normalise(X, method: str = "none") -> np.ndarray:
    """Normalise embeddings ``X`` of shape (n, d) by ``method`` (see :class:`EmbeddingNormaliser`)."""
    return EmbeddingNormaliser(method).fit_transform(X)
