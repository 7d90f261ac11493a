"""monoculture: audit how diverse the datasets behind atomistic ML models are.

Subpackages (data flows one way, left to right):
``monoculture.datasets`` -> ``monoculture.descriptors`` -> ``monoculture.audit`` -> ``monoculture.reports``.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("monoculture")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
