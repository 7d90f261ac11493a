"""SevenNet embeddings (checkpoints bundled in the ``sevenn`` wheel: SevenNet-0, -l3i5, -MF-0).

Layer (read from ``sevenn/model_build.py`` and ``sevenn/nn/sequential.py``): the model is an
``AtomGraphSequential`` of named modules; five interaction blocks (``0_...`` to ``4_...``) each end in
``<i>_equivariant_gate``. The last block outputs the node features ``data["x"]`` with irreps ``128x0e``
(128 invariant scalars per atom), which the readout ``reduce_input_to_hidden`` (an ``IrrepsLinear``) then
``reduce_hidden_to_energy``, ``rescale_atomic_energy``, ``reduce_total_enegy`` and ``force_output`` consume.
The embedding is ``data["x"]`` after ``4_equivariant_gate``. The embedder keeps a copy of the model with the
readout and force/stress modules deleted (so neither energy nor any gradient is computed) and with the
gradient key unset (no ``requires_grad`` on edge vectors); it runs under ``torch.no_grad`` on a
torch-geometric ``Batch`` of ``AtomGraphData`` with ``model.set_is_batch_data(True)``.

SevenNet-MF-0 is multi-fidelity: its self-interaction layers take a one-hot of the data modality. We use
modal ``"PBE"`` (the checkpoint's ``default_modal``; the other is ``"R2SCAN"``), so its embeddings are
those of the PBE (MPtrj) fidelity.

Weights: sevenn reads checkpoints with ``torch.load(..., weights_only=False)``. Here the bundled file is read
with ``weights_only=True``, allowing only numpy array / dtype reconstruction (the checkpoint config holds
numpy arrays), and handed to ``sevenn.checkpoint.SevenNetCheckpoint`` (its private fields are filled, then
its own ``build_model`` runs; tied to sevenn 0.13).

Molecules go in as non-periodic: SevenNet's own graph builder (``unlabeled_atoms_to_graph``) handles any
``pbc``. Isolated atoms are accepted (SevenNet does not refuse them; their features then depend on the
element only). Elements outside the checkpoint's type map are skipped as ``unsupported_element``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .embedder import ModelEmbedder, UnsupportedStructure
from .collate import BatchLayout

__all__ = ["SevennetEmbedder", "SevennetGraphBuilder", "load_sevennet_model", "SEVENNET_CHECKPOINTS"]

#: registry name -> (name of the checkpoint constant in ``sevenn._const``, label, modal or None)
SEVENNET_CHECKPOINTS = {
    "sevennet-0": ("SEVENNET_0_11Jul2024", "SevenNet-0 (11Jul2024)", None),
    "sevennet-l3i5": ("SEVENNET_l3i5", "SevenNet-l3i5", None),
    "sevennet-mf-0": ("SEVENNET_MF_0", "SevenNet-MF-0", "PBE"),
}

#: Module names that start the readout (everything from here on is removed).
_READOUT_STARTS = ("reduce_input_to_hidden", "readout_FCN")


def _checkpoint_path(name: str) -> str:
    from sevenn import _const

    if name not in SEVENNET_CHECKPOINTS:
        raise ValueError(f"unknown SevenNet model {name!r}; bundled: {sorted(SEVENNET_CHECKPOINTS)}")
    path = getattr(_const, SEVENNET_CHECKPOINTS[name][0])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is not in the installed sevenn wheel (monoculture never downloads)")
    return path


def _numpy_safe_globals() -> list:
    """The numpy globals a SevenNet checkpoint's config needs: array and dtype reconstruction only."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    allowed: list = [(_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype]
    for tname in ("Float32DType", "Float64DType", "Int8DType", "Int16DType", "Int32DType", "Int64DType",
                  "UInt8DType", "BoolDType"):
        cls = getattr(getattr(np, "dtypes", None), tname, None)
        if cls is not None:
            allowed.append(cls)
    return allowed


def _load_checkpoint(path: str):
    """A ``SevenNetCheckpoint`` whose contents were read with ``torch.load(weights_only=True)``."""
    import torch
    from sevenn import checkpoint as sc

    with torch.serialization.safe_globals(_numpy_safe_globals()):
        raw = torch.load(path, map_location="cpu", weights_only=True)
    cp = sc.SevenNetCheckpoint(path)
    missing = [a for a in ("_config", "_model_state_dict", "_loaded") if not hasattr(cp, a)]
    if missing or not hasattr(sc, "_config_cp_routine"):
        raise RuntimeError(f"unexpected sevenn checkpoint layout (missing {missing}); tested with sevenn 0.13")
    cp._config_original = raw.get("config", {})
    cp._config = sc._config_cp_routine(cp._config_original)
    cp._model_state_dict = raw.get("model_state_dict", {})
    cp._optimizer_state_dict = raw.get("optimizer_state_dict", {})
    cp._scheduler_state_dict = raw.get("scheduler_state_dict", {})
    cp._epoch = raw.get("epoch")
    cp._time = raw.get("time", "Not found")
    cp._hash = raw.get("hash", "Not found")
    cp._loaded = True
    return cp


def load_sevennet_model(name: str = "sevennet-0"):
    """The full SevenNet model of a bundled checkpoint (weights read with ``weights_only=True``), eval mode.

    Parameters
    ----------
    name : {"sevennet-0", "sevennet-l3i5", "sevennet-mf-0"}

    Returns
    -------
    model : sevenn.nn.sequential.AtomGraphSequential
        With readout and force/stress output, as sevenn builds it.
    config : dict
        The checkpoint config (cutoff, type map, modal map...).
    """
    import warnings

    cp = _load_checkpoint(_checkpoint_path(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tensor-product accelerator" notice
        model = cp.build_model()
    return model.eval(), cp.config


@dataclass
class SevennetGraphBuilder:
    """Picklable ``ase.Atoms -> AtomGraphData`` (SevenNet's own neighbour list; CPU).

    Parameters
    ----------
    cutoff_A : float
        Radial cutoff (Å).
    known_z : tuple of int
        Atomic numbers in the checkpoint's type map.
    modal : str or None
        Data modality attached to every graph (multi-fidelity models).
    """

    cutoff_A: float
    known_z: tuple
    modal: str | None = None

    def __call__(self, atoms):
        """``sevenn.atom_graph_data.AtomGraphData`` of ``atoms``, as sevenn's ``unlabeled_atoms_to_graph`` makes it."""
        import sevenn._keys as KEY
        from sevenn.atom_graph_data import AtomGraphData

        data = AtomGraphData.from_numpy_dict(self._library_dict(atoms))
        if self.modal is not None:
            data[KEY.DATA_MODALITY] = self.modal
        return data

    def _library_dict(self, atoms) -> dict:
        from sevenn.train.dataload import unlabeled_atoms_to_graph

        numbers = np.asarray(atoms.numbers, dtype=int)
        if numbers.size == 0:
            raise UnsupportedStructure("no_atoms", "structure has no atoms")
        unknown = sorted(set(numbers.tolist()) - set(self.known_z))
        if unknown:
            raise UnsupportedStructure(
                "unsupported_element", f"atomic number(s) {unknown} not in the model's type map"
            )
        if not np.isfinite(np.asarray(atoms.positions)).all():
            raise UnsupportedStructure("non_finite_positions", "non-finite atomic positions")
        if atoms.pbc.all() and abs(atoms.cell.volume) < 1e-8:
            raise UnsupportedStructure("singular_cell", "periodic structure with a singular cell")
        return unlabeled_atoms_to_graph(atoms, self.cutoff_A)

    def build_payload(self, atoms) -> dict:
        """SevenNet's graph of ``atoms`` (its own neighbour list) as a one-graph batch of numpy arrays (layout
        :data:`SEVENNET_LAYOUT`), in the dtypes sevenn gives the tensors (float32, int64). Raises
        :class:`UnsupportedStructure` for a structure the model cannot take."""
        import sevenn._keys as KEY

        d = self._library_dict(atoms)
        edge_index = np.asarray(d[KEY.EDGE_IDX], dtype=np.int64).reshape(2, -1)
        return {
            "n_atoms": np.array([len(d[KEY.ATOMIC_NUMBERS])], np.int64),
            "n_edges": np.array([edge_index.shape[1]], np.int64),
            "atomic_numbers": np.asarray(d[KEY.ATOMIC_NUMBERS], dtype=np.int64),
            "pos": np.asarray(d[KEY.POS], dtype=np.float32),
            "edge_index": np.ascontiguousarray(edge_index.T),
            "edge_vec": np.asarray(d[KEY.EDGE_VEC], dtype=np.float32).reshape(-1, 3),
            "cell_volume": np.asarray(d[KEY.CELL_VOLUME], dtype=np.float32).reshape(1),
        }

    def collate(self, graphs) -> dict:
        """One forward batch of :meth:`build_payload` results (see :class:`~.collate.BatchLayout`)."""
        return SEVENNET_LAYOUT.collate(graphs)

    def split(self, batch) -> list[dict]:
        """The one-graph batches of a :meth:`collate` result."""
        return SEVENNET_LAYOUT.split(batch)


#: Rows and index columns of SevenNet graph batches (``edge_index`` is stored as (n_edges, 2): source,
#: destination atom).
SEVENNET_LAYOUT = BatchLayout(
    kinds=("atoms", "edges"),
    arrays={
        "atomic_numbers": ("atoms", ()),
        "pos": ("atoms", ()),
        "edge_index": ("edges", ("atoms", "atoms")),
        "edge_vec": ("edges", ()),
        "cell_volume": ("graphs", ()),
    },
)


class SevennetEmbedder(ModelEmbedder):
    """Node features after SevenNet's last interaction block (the readout's input), pooled per structure.

    Parameters
    ----------
    name : {"sevennet-0", "sevennet-l3i5", "sevennet-mf-0"}
    device : {"cpu", "cuda", "auto"}
    """

    def __init__(self, name: str = "sevennet-0", device: str = "cpu"):
        super().__init__()
        import sevenn

        from ._torch import resolve_device

        _, label, modal = SEVENNET_CHECKPOINTS[name] if name in SEVENNET_CHECKPOINTS else (None, None, None)
        self.checkpoint = _checkpoint_path(name)
        self.name = name
        self.device = resolve_device(device)
        model, config = load_sevennet_model(name)
        if modal is not None and modal not in (model.modal_map or {}):
            raise RuntimeError(f"modal {modal!r} not in the checkpoint's modal map {model.modal_map}")
        names = list(model._modules)
        start = next((i for i, n in enumerate(names) if n in _READOUT_STARTS), None)
        if start is None:
            raise RuntimeError(f"no readout module found in {names}")
        last = names[start - 1]
        if not last.endswith("_equivariant_gate"):
            raise RuntimeError(f"module before the readout is {last!r}, expected an equivariant gate")
        irreps = config["irreps_manual"][-1] if config.get("irreps_manual") else model.get_irreps_in(last)
        for n in names[start:]:
            model.delete_module_by_key(n)
        model.key_grad = None  # no requires_grad on edge vectors: nothing asks for forces
        model.set_is_batch_data(True)
        self.model_ = model.to(self.device).eval()
        self.modal = modal
        self.cutoff_A = float(config["cutoff"])
        self._known_z = tuple(sorted(int(z) for z in model.type_map))
        n_blocks = sum(1 for n in names if n.endswith("_equivariant_gate"))
        self.dim = int(config["irreps_manual"][-1].split("x")[0]) if config.get("irreps_manual") else None
        if self.dim is None:
            self.dim = int(config["channel"])
        self.layer = (
            f"node features x (irreps {irreps}) output by '{last}', the last of {n_blocks} interaction blocks, "
            f"i.e. the input of the readout '{names[start]}'; {self.dim} invariant channels"
            + (f"; modal {modal} (the readout appends the modal one-hot, not included)" if modal else "")
        )
        self.version = f"{label} (sevenn {sevenn.__version__})"
        self.notes = {
            "package": f"sevenn {sevenn.__version__}",
            "non_periodic": "as non-periodic (SevenNet graph builder)",
            "isolated_atoms": "accepted",
        }
        if modal:
            self.notes["modal"] = modal

    def graph_builder(self) -> SevennetGraphBuilder:
        return SevennetGraphBuilder(self.cutoff_A, self._known_z, self.modal)

    def forward_batch(self, batch: dict) -> np.ndarray:
        """Node features of a :meth:`SevennetGraphBuilder.collate` batch: ``(n_atoms_total, dim)`` float32.

        The batch becomes the ``AtomGraphData`` that torch_geometric's ``Batch.from_data_list`` makes of the
        same graphs (same tensors, ``batch`` vector included; tested), built from a few whole-batch arrays.
        """
        import sevenn._keys as KEY
        import torch
        from sevenn.atom_graph_data import AtomGraphData

        dev = self.device
        t = {k: torch.from_numpy(np.ascontiguousarray(batch[k])).to(dev) for k in SEVENNET_LAYOUT.arrays}
        n_atoms = torch.from_numpy(batch["n_atoms"]).to(dev)
        n_graphs = int(len(batch["n_atoms"]))
        z = t["atomic_numbers"]
        data = AtomGraphData(
            x=z, edge_index=t["edge_index"].t().contiguous(), pos=t["pos"],
            **{KEY.ATOMIC_NUMBERS: z, KEY.EDGE_VEC: t["edge_vec"], KEY.CELL_VOLUME: t["cell_volume"],
               KEY.NUM_ATOMS: n_atoms, KEY.BATCH: torch.repeat_interleave(torch.arange(n_graphs, device=dev), n_atoms)},
        )
        if self.modal is not None:
            data[KEY.DATA_MODALITY] = [self.modal] * n_graphs
        with torch.no_grad():
            out = self.model_(data)
        feats = out[KEY.NODE_FEATURE]
        if feats.shape != (int(batch["n_atoms"].sum()), self.dim):
            raise RuntimeError(f"node features of shape {tuple(feats.shape)}, expected ({batch['n_atoms'].sum()}, {self.dim})")
        return feats.detach().cpu().numpy().astype(np.float32, copy=False)
