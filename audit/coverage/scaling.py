"""Feature scaling of descriptor rows before any distance is taken (k-NN, Vendi, entropy, novelty, UMAP).

Raw descriptor columns have arbitrary units (a melting point in K next to an element fraction in [0, 1]),
so without scaling one column decides every distance. Rule (documented contract, written into every result
as :meth:`FeatureScaler.describe`): each column is centred on its mean and divided by its standard deviation
(population, ``ddof = 0``) over the rows the scaler was fitted on, i.e. scikit-learn's ``StandardScaler``;
a column that is constant there (standard deviation below ``1e-12`` times ``1 + |mean|``) is centred only.
With a reference dataset, the scaler is fitted on the reference's sample and applied to every dataset, so
all of them are measured in one space (distances, and therefore radii, novelty and diversity, are
comparable across datasets only then).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FeatureScaler"]


@dataclass(frozen=True)
class FeatureScaler:
    """Per-column standardisation fitted on one set of descriptor rows.

    Attributes
    ----------
    mean : numpy.ndarray, shape (d,), float64
    scale : numpy.ndarray, shape (d,), float64
        Standard deviation of each column, 1 for constant columns.
    constant : numpy.ndarray, shape (d,), bool
        Columns that were constant where the scaler was fitted (centred only).
    fitted_on : str
        Name of the rows it was fitted on (a dataset name), for the record.
    n_rows : int
        Rows it was fitted on.
    """

    mean: np.ndarray
    scale: np.ndarray
    constant: np.ndarray
    fitted_on: str
    n_rows: int

    @classmethod
    def fit(cls, X: np.ndarray, fitted_on: str = "sample") -> "FeatureScaler":
        """Fit on the rows of ``X``, shape (n, d), n >= 1."""
        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        constant = std <= 1e-12 * (1.0 + np.abs(mean))
        return cls(mean, np.where(constant, 1.0, std), constant, fitted_on, int(X.shape[0]))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled rows, shape (n, d), float64."""
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.scale

    def describe(self) -> dict:
        """The JSON record of the scaling."""
        return {"rule": "standardised: (x - mean) / std per column (population std); constant columns centred",
                "fitted_on": self.fitted_on, "n_rows": self.n_rows, "n_columns": int(self.mean.size),
                "n_constant_columns": int(self.constant.sum())}
