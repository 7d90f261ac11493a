import numpy as np
import pytest


@pytest.fixture
def related_pair():
    """X (300, 8) and a noisy linear image Y (300, 12)."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, 8))
    Y = X @ rng.standard_normal((8, 12)) + 0.3 * rng.standard_normal((300, 12))
    return X, Y
