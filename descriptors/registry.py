"""Registry of descriptor calculators: one table of ``name -> (module, class)``, imported on use.

Names joined by ``+`` (``"composition+structure"``) are accepted wherever a name is: they build a
:class:`~.union.UnionDescriptor` of those descriptors.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from .base import FrameDescriptor

__all__ = ["DESCRIPTORS", "get_descriptor", "available_descriptors", "is_descriptor_name"]

#: Registry name -> (module inside :mod:`monoculture.descriptors`, class name).
DESCRIPTORS: dict[str, tuple[str, str]] = {
    "composition": ("composition", "CompositionDescriptor"),
    "soap": ("soap", "SOAPDescriptor"),
    "local": ("local", "LocalEnvironmentDescriptor"),
    "structure": ("structure", "StructureDescriptor"),
    "molecule": ("molecule", "MoleculeDescriptor"),
    "regime": ("regime", "RegimeDescriptor"),
}


def available_descriptors() -> list[str]:
    """Registered (base) names, sorted; any of them joined by ``+`` is a name too."""
    return sorted(DESCRIPTORS)


def is_descriptor_name(name: str) -> bool:
    """Whether ``name`` is a registered name or distinct registered names joined by ``+``."""
    parts = str(name).split("+")
    return all(p in DESCRIPTORS for p in parts) and len(set(parts)) == len(parts)


def get_descriptor(name: str, **params: Any) -> FrameDescriptor:
    """An unfitted descriptor by registry name.

    Parameters
    ----------
    name : str
        One of :func:`available_descriptors`, or several joined by ``+`` (a
        :class:`~.union.UnionDescriptor`, features concatenated in that order).
    **params
        Constructor parameters of that descriptor (e.g. ``r_cut=4.0`` for ``soap``). For a ``+`` name,
        ``part__param=value`` goes to that part, and a plain ``param=value`` to every part that takes it.

    Returns
    -------
    FrameDescriptor

    Raises
    ------
    ValueError
        Unknown name, or a parameter the descriptor does not take.
    """
    if "+" in name:
        return _union(name, params)
    if name not in DESCRIPTORS:
        raise ValueError(f"unknown descriptor {name!r}; choose from {available_descriptors()} "
                         "or several joined by '+'")
    valid = _params_of(name)
    bad = sorted(set(params) - valid)
    if bad:
        raise ValueError(f"descriptor {name!r} takes no parameter(s) {bad}; it takes {sorted(valid)}")
    return _class(name)(**params)


def _union(name: str, params: dict[str, Any]) -> FrameDescriptor:
    UnionDescriptor = import_module(f"{__package__}.union").UnionDescriptor  # by name, as every entry: no cycle

    parts = name.split("+")
    if not is_descriptor_name(name):
        raise ValueError(f"unknown descriptor {name!r}: join distinct names of {available_descriptors()} "
                         "with '+'")
    taken = {p: _params_of(p) for p in parts}
    part_params: dict[str, dict[str, Any]] = {}
    for key, value in params.items():
        part, sep, param = key.partition("__")
        targets = [part] if sep else [p for p in parts if key in taken[p]]
        param = param if sep else key
        if not targets or (sep and (part not in parts or param not in taken[part])):
            raise ValueError(f"descriptor {name!r} takes no parameter {key!r}; it takes "
                             f"{sorted(f'{p}__{k}' for p in parts for k in taken[p])} (or a plain name "
                             "that a part takes)")
        for p in targets:
            part_params.setdefault(p, {})[param] = value
    return UnionDescriptor(parts=parts, part_params=part_params or None)


def _class(name: str) -> type[FrameDescriptor]:
    module, cls_name = DESCRIPTORS[name]
    return getattr(import_module(f"{__package__}.{module}"), cls_name)


def _params_of(name: str) -> set[str]:
    return set(_class(name)().get_params(deep=False))
