"""Shared fixtures: paths of the real-format sample files (bundled and ../shared/samples)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

# numba looks for the `coverage` package when its compiler is first imported. Once pytest's prepend import
# mode has put tests/audit on sys.path, the test folder tests/audit/coverage would be found under that name
# (and numba then fails on it), depending on which tests run first. Import the compiler before any of that.
import numba.core.compiler  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "samples"


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared/samples is not present next to the checkout")
    return SHARED


@pytest.fixture(scope="session")
def truth(shared_samples) -> dict:
    return json.loads((shared_samples / "TRUTH.json").read_text())


@pytest.fixture(scope="session")
def bundled_samples() -> Path:
    from monoculture.datasets.samples import sample_dir

    return sample_dir()
