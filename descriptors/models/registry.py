"""Registry of embedding models: one table of (name, package, loader), loaded only when asked for."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from ..embedding_files import embeddings_table  # noqa: F401 - re-exported: the writer lives with the reader
from .base import ModelEmbedder

__all__ = ["MODELS", "ModelSpec", "available_models", "load_embedder", "embeddings_table", "graph_worker_modules"]


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes
    ----------
    name : str
        Registry name.
    package : str
        Python package holding code and weights.
    family : str
        ``chgnet`` or ``sevennet``.
    checkpoint : str
        Checkpoint key within the family.
    description : str
    """

    name: str
    package: str
    family: str
    checkpoint: str
    description: str


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("chgnet-0.2.0", "chgnet", "chgnet", "0.2.0", "CHGNet 0.2.0, MPtrj (PBE/PBE+U), 5 Å cutoff"),
        ModelSpec("chgnet-0.3.0", "chgnet", "chgnet", "0.3.0", "CHGNet 0.3.0, MPtrj (PBE/PBE+U), 6 Å cutoff"),
        ModelSpec("chgnet-r2scan", "chgnet", "chgnet", "r2scan", "CHGNet 0.3.0 transfer-learned on MP r2SCAN"),
        ModelSpec("sevennet-0", "sevenn", "sevennet", "sevennet-0", "SevenNet-0 (11Jul2024), MPtrj, l_max 2"),
        ModelSpec("sevennet-l3i5", "sevenn", "sevennet", "sevennet-l3i5", "SevenNet-l3i5, MPtrj, l_max 3"),
        ModelSpec("sevennet-mf-0", "sevenn", "sevennet", "sevennet-mf-0",
                  "SevenNet-MF-0, MPtrj + MP r2SCAN, PBE modal used"),
    )
}


def available_models(installed_only: bool = True) -> list[str]:
    """Names accepted by :func:`load_embedder`.

    Parameters
    ----------
    installed_only : bool
        Keep only models whose package (and torch) can be imported here.
    """
    if not installed_only:
        return list(MODELS)

    def has(pkg: str) -> bool:
        return importlib.util.find_spec(pkg) is not None

    return [n for n, s in MODELS.items() if has("torch") and has(s.package)]


#: Modules the graph-building processes of each model family need, imported (and, for CHGNet, compiled) once in
#: the process the workers fork from (:func:`~.base.graph_worker_pool`). CHGNet's need no torch; SevenNet's
#: neighbour list lives in ``sevenn``, which imports torch.
_GRAPH_WORKER_MODULES = {
    "chgnet": ("pyarrow", "monoculture.datasets.frames", "monoculture.descriptors.models._warm_chgnet"),
    "sevennet": ("pyarrow", "monoculture.datasets.frames", "monoculture.descriptors.models._sevennet",
                 "sevenn.train.dataload"),
}


def graph_worker_modules(name: str) -> tuple[str, ...]:
    """Modules to import in the graph-building worker processes of model ``name`` before they start (empty for
    an unknown name)."""
    spec = MODELS.get(name)
    return _GRAPH_WORKER_MODULES.get(spec.family, ()) if spec is not None else ()


def load_embedder(name: str, device: str = "cpu") -> ModelEmbedder:
    """Load a bundled model as an embedder (offline: weights come from the installed wheel).

    Parameters
    ----------
    name : str
        One of :func:`available_models`.
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    ModelEmbedder
        With ``.name``, ``.version``, ``.layer``, ``.dim`` and ``.embed(atoms_list, batch_size, pooling)``.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    spec = MODELS[name]
    if importlib.util.find_spec(spec.package) is None or importlib.util.find_spec("torch") is None:
        raise ImportError(f"model {name!r} needs torch and {spec.package}: pip install 'monoculture[models]'")
    if spec.family == "chgnet":
        from ._chgnet import ChgnetEmbedder

        return ChgnetEmbedder(spec.checkpoint, device=device, registry_name=name)
    from ._sevennet import SevennetEmbedder

    return SevennetEmbedder(spec.checkpoint, device=device)
