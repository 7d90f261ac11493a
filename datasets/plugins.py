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
import warnings
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

__all__ = ["public_module_names", "import_public_modules", "load_entry_points", "lazy_exports"]


def public_module_names(package: ModuleType) -> list[str]:
    """Names of the modules of ``package`` not starting with an underscore, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def load_entry_points(group: str, problem: Callable[[str], None] | None = None) -> list[tuple[EntryPoint, object]]:
    """Load every entry point of the group ``group``, in (name, value) order.

    Parameters
    ----------
    group : str
        Entry-point group (``monoculture.readers``, ``monoculture.alignment_metrics``...).
    problem : callable, optional
        Called with one line for each entry point that cannot be loaded (any exception of another package's
        module): ``<group> entry point <name> = <value>: cannot be loaded (<Type>: <first line>)``; the
        entry point is skipped. Default: :func:`warnings.warn` (``RuntimeWarning``).

    Returns
    -------
    list of (importlib.metadata.EntryPoint, object)
        The entry points loaded and what each loaded, in (name, value) order.
    """
    report = problem or _warn
    loaded = []
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin of another package never stops a registry
            text = str(exc).splitlines()[0][:200] if str(exc) else ""
            report(f"{group} entry point {ep.name} = {ep.value}: cannot be loaded ({type(exc).__name__}: {text})")
            continue
        loaded.append((ep, obj))
    return loaded


def import_public_modules(package: ModuleType, entry_point_group: str | None = None) -> None:
    """Import every public module of ``package`` (each registers its record), then load every entry point of
    ``entry_point_group`` if given (each registers its records when imported); an entry point that cannot be
    loaded is skipped with a one-line ``RuntimeWarning`` naming it (:func:`load_entry_points`)."""
    for name in public_module_names(package):
        importlib.import_module(f"{package.__name__}.{name}")
    if entry_point_group is not None:
        load_entry_points(entry_point_group)


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

