"""Registry of descriptor calculators: one table of ``name -> (module, class)``, imported on use."""
from __future__ import annotations

from importlib import import_module
from typing import Any

from .base import FrameDescriptor

__all__ = ["DESCRIPTORS", "get_descriptor", "available_descriptors"]

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
    """Registered names, sorted."""
    return sorted(DESCRIPTORS)


def get_descriptor(name: str, **params: Any) -> FrameDescriptor:
    """An unfitted descriptor by registry name.

    Parameters
    ----------
    name : str
        One of :func:`available_descriptors`.
    **params
        Constructor parameters of that descriptor (e.g. ``r_cut=4.0`` for ``soap``).

    Returns
    -------
    FrameDescriptor

    Raises
    ------
    ValueError
        Unknown name, or a parameter the descriptor does not take.
    """
    if name not in DESCRIPTORS:
        raise ValueError(f"unknown descriptor {name!r}; choose from {available_descriptors()}")
    module, cls_name = DESCRIPTORS[name]
    cls = getattr(import_module(f"{__package__}.{module}"), cls_name)
    valid = cls().get_params(deep=False)
    bad = sorted(set(params) - set(valid))
    if bad:
        raise ValueError(f"descriptor {name!r} takes no parameter(s) {bad}; it takes {sorted(valid)}")
    return cls(**params)
