"""Plug-in discovery shared by every registry of the package: the readers (:mod:`.registry`), the alignment
metrics (:mod:`monoculture.audit.alignment.metric_registry`) and the report sections
(:mod:`monoculture.reports.sections`).

A registry is a package whose public modules each register one record when imported; another installed
package adds records through a Python entry-point group (as ASE's io registry and pytest plug-ins do).
Here, in the lowest layer, so that every layer can use it without an upward import.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType

__all__ = ["public_module_names", "import_public_modules", "lazy_exports"]


def public_module_names(package: ModuleType) -> list[str]:
    """Names of the modules of ``package`` not starting with an underscore, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def import_public_modules(package: ModuleType, entry_point_group: str | None = None) -> list:
    """Import every public module of ``package`` (each registers its record), then load every entry point of
    ``entry_point_group`` if given; returns the loaded entry-point objects (in name order)."""
    for name in public_module_names(package):
        importlib.import_module(f"{package.__name__}.{name}")
    if entry_point_group is None:
        return []
    from importlib.metadata import entry_points

    eps: Iterable = sorted(entry_points(group=entry_point_group), key=lambda e: (e.name, e.value))
    return [ep.load() for ep in eps]


def lazy_exports(package: str, module_of: dict[str, str]):
    """``(__getattr__, __dir__)`` for a package whose public names are imported from their submodules on
    first use (PEP 562): ``module_of`` maps each name to its submodule, relative to ``package``; a name is
    cached in the package's namespace once looked up."""
    import sys

    def __getattr__(name: str):
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(module_of))

    return __getattr__, __dir__

