"""monoculture: audit how diverse the datasets behind atomistic ML models are.

Subpackages (data flows one way, left to right):
``monoculture.datasets`` -> ``monoculture.descriptors`` -> ``monoculture.audit`` -> ``monoculture.reports``.

The Python API (:mod:`monoculture.api`, typed results in :mod:`monoculture.results`)::

    import monoculture
    r = monoculture.audit_datasets(["mptrj_sample.json"])
    print(r.elements.to_frame())

Its names are imported on first use (PEP 562), so ``import monoculture`` (and ``monoculture --help``) stays
cheap. ``monoculture.audit`` is the subpackage; the function is :func:`audit_datasets`.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("monoculture")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

#: Public name -> module of the package defining it (imported on first use).
_LAZY = {
    "audit_datasets": "api", "compare_datasets": "api", "align_embeddings": "api", "embed": "api",
    "open_dataset": "api", "frames_from_atoms": "api", "frames_from_structures": "api",
    "AuditResult": "results", "ComparisonResult": "results", "AlignmentResult": "results",
    "load_result": "results", "SCHEMA_VERSION": "results",
    "MonocultureError": "datasets.errors", "UsageError": "datasets.errors",
    "NothingAuditedError": "datasets.errors",
}

__all__ = ["__version__", *_LAZY]


# The same PEP 562 lookup as monoculture.datasets.plugins.lazy_exports, written out here because the root
# package may import none of its subpackages at import time (tests/test_import_graph.py).
def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
