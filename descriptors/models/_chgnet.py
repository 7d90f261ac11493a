"""CHGNet embeddings (checkpoints bundled in the ``chgnet`` wheel: 0.2.0, 0.3.0, r2SCAN).

Layer (read from ``chgnet/model/model.py``, ``CHGNet._compute``): CHGNet runs ``n_conv = 4`` atom-conv
layers; after the last one (``atom_conv_layers[-1]``) the atom features go through ``readout_norm`` (a
LayerNorm in 0.3.0 and r2SCAN, absent in 0.2.0) and then, since ``mlp_first=True`` for all three, into the
readout MLP ``model.mlp`` atom by atom. The embedding is that per-atom input of ``model.mlp``: 64 numbers
per atom, captured by a forward hook on ``readout_norm`` (or on ``atom_conv_layers[-1]`` when there is no
norm) during a ``task="e"`` forward under ``torch.no_grad`` (no forces, stress or magnetic moments).

Weights are read with ``torch.load(..., weights_only=True)`` (chgnet's own ``CHGNet.from_file`` uses
``weights_only=False``) and handed to ``CHGNet.from_dict`` with the same options as ``CHGNet.load``.

Cells: CHGNet builds graphs from a pymatgen ``Structure``, which needs three lattice vectors. Molecules and
slabs are put in vacuum with :func:`~monoculture.descriptors.models.cells.vacuum_cell`: each non-periodic
direction becomes ``extent + 2 * 6 Å`` long (``2 * 5 Å`` for 0.2.0), so no periodic image is within the
cutoff and the graph is the molecule's own. Structures with an atom that has no neighbour within the
atom-graph cutoff are refused by CHGNet's converter (``on_isolated_atoms="error"``) and skipped with reason
``isolated_atom``; elements beyond Z = 94 (size of CHGNet's embedding table) are skipped as
``unsupported_element``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._chgnet_graph import chgnet_graph_arrays
from .base import ModelEmbedder, UnsupportedStructure
from .cells import vacuum_cell

__all__ = ["ChgnetEmbedder", "ChgnetGraphBuilder", "load_chgnet_model", "CHGNET_CHECKPOINTS"]

#: Bundled checkpoint of each CHGNet model name, relative to the ``chgnet`` package folder.
CHGNET_CHECKPOINTS = {
    "0.2.0": "pretrained/0.2.0/chgnet_0.2.0_e30f77s348m32.pth.tar",
    "0.3.0": "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
    "r2scan": "pretrained/r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar",
}


def _checkpoint_path(model_name: str) -> str:
    import chgnet

    if model_name not in CHGNET_CHECKPOINTS:
        raise ValueError(f"unknown CHGNet model {model_name!r}; bundled: {sorted(CHGNET_CHECKPOINTS)}")
    return os.path.join(os.path.dirname(chgnet.__file__), CHGNET_CHECKPOINTS[model_name])


def load_chgnet_model(model_name: str = "0.3.0"):
    """The full CHGNet model of a bundled checkpoint, loaded with ``weights_only=True``, on CPU, eval mode.

    Parameters
    ----------
    model_name : {"0.2.0", "0.3.0", "r2scan"}

    Returns
    -------
    chgnet.model.CHGNet
    """
    import contextlib
    import io

    import torch
    from chgnet.model import CHGNet

    state = torch.load(_checkpoint_path(model_name), map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints a banner on construction
        # Same options as CHGNet.load: 0.2.0 was trained with a bias in the MLP output layer.
        model = CHGNet.from_dict(state["model"], mlp_out_bias=model_name == "0.2.0", version=model_name)
    return model.eval()


@dataclass
class ChgnetGraphBuilder:
    """Picklable ``ase.Atoms -> chgnet CrystalGraph`` (runs on CPU, safe in worker processes).

    Parameters
    ----------
    atom_graph_cutoff_A : float
        Atom-graph cutoff of the checkpoint (Å).
    bond_graph_cutoff_A : float
        Bond-graph cutoff of the checkpoint (Å).
    max_z : int
        Largest atomic number in the model's element table.
    algorithm : {"numpy", "chgnet"}
        ``numpy`` (default): :func:`~._chgnet_graph.chgnet_graph_arrays`, the same tensors as CHGNet's
        converter, about 10x faster; ``chgnet``: the library's ``CrystalGraphConverter(algorithm="fast")`` (in
        ``__call__`` only: :meth:`build_payload`, used by worker processes, always takes the numpy path).
    """

    atom_graph_cutoff_A: float
    bond_graph_cutoff_A: float
    max_z: int
    algorithm: str = "numpy"
    _converter: Any = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_converter"] = None
        return state

    def _get_converter(self):
        if self._converter is None:
            from chgnet.graph import CrystalGraphConverter

            self._converter = CrystalGraphConverter(
                atom_graph_cutoff=self.atom_graph_cutoff_A,
                bond_graph_cutoff=self.bond_graph_cutoff_A,
                algorithm="fast",
                on_isolated_atoms="error",
            )
        return self._converter

    def lattice_and_coords(self, atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(atomic numbers (n,), lattice (3, 3) Å, fractional coordinates (n, 3)) of the cell CHGNet sees.

        Molecules and slabs get a vacuum cell. Fractional coordinates are ``positions @ inv(lattice)``, the
        arithmetic of pymatgen's ``Lattice.get_fractional_coords``, so the graph equals the one built from
        :meth:`structure`.
        """
        numbers = np.asarray(atoms.numbers, dtype=int)
        if numbers.size == 0:
            raise UnsupportedStructure("no_atoms", "structure has no atoms")
        bad = numbers[(numbers < 1) | (numbers > self.max_z)]
        if bad.size:
            raise UnsupportedStructure(
                "unsupported_element", f"atomic number {int(bad[0])} is outside CHGNet's table (1..{self.max_z})"
            )
        positions = np.asarray(atoms.positions, dtype=np.float64)
        if not np.isfinite(positions).all():
            raise UnsupportedStructure("non_finite_positions", "non-finite atomic positions")
        pbc = np.asarray(atoms.pbc, dtype=bool)
        cell = np.array(atoms.cell[:], dtype=np.float64)
        if not pbc.all():
            try:
                cell = vacuum_cell(positions, cell, pbc, self.atom_graph_cutoff_A)
            except ValueError as exc:
                raise UnsupportedStructure("singular_cell", str(exc)) from None
        elif abs(np.linalg.det(cell)) < 1e-8:
            raise UnsupportedStructure("singular_cell", "periodic structure with a singular cell")
        return numbers, cell, np.dot(positions, np.linalg.inv(cell))

    def structure(self, atoms):
        """The pymatgen Structure CHGNet sees (molecules / slabs in a vacuum cell)."""
        from pymatgen.core import Lattice, Structure

        numbers, cell, frac = self.lattice_and_coords(atoms)
        return Structure(Lattice(cell), numbers, frac)

    def __call__(self, atoms):
        if self.algorithm == "numpy":
            return self._numpy_graph(atoms)
        if self.algorithm != "chgnet":
            raise ValueError(f"algorithm must be 'numpy' or 'chgnet', got {self.algorithm!r}")
        structure = self.structure(atoms)
        try:
            return self._get_converter()(structure, graph_id=atoms.info.get("id"))
        except ValueError as exc:
            if "isolated atom" in str(exc):
                raise UnsupportedStructure(
                    "isolated_atom", f"an atom has no neighbour within {self.atom_graph_cutoff_A} Å"
                ) from None
            raise


    def _numpy_graph(self, atoms):
        """The CrystalGraph of :meth:`lattice_and_coords`, built by :func:`chgnet_graph_arrays`."""
        return self.from_payload(self.build_payload(atoms))

    def build_payload(self, atoms) -> dict:
        """The graph as plain numpy arrays and strings (what a worker process sends back; see
        :meth:`from_payload`). Raises :class:`UnsupportedStructure` like ``__call__``."""
        from pymatgen.core import Composition, Element

        numbers, matrix, frac = self.lattice_and_coords(atoms)
        arrays = chgnet_graph_arrays(frac, matrix, self.atom_graph_cutoff_A, self.bond_graph_cutoff_A)
        missing = len(numbers) - len(np.unique(arrays["center_index"]))
        if missing:
            raise UnsupportedStructure(
                "isolated_atom", f"{missing} atom(s) have no neighbour within {self.atom_graph_cutoff_A} Å"
            )
        z, counts = np.unique(numbers, return_counts=True)
        return {
            "atomic_number": numbers.astype(np.int32),
            "atom_frac_coord": frac.astype(np.float32),
            "lattice": matrix.astype(np.float32),
            "atom_graph": arrays["atom_graph"],
            "neighbor_image": arrays["neighbor_image"].astype(np.float32),
            "directed2undirected": arrays["directed2undirected"],
            "undirected2directed": arrays["undirected2directed"],
            "bond_graph": arrays["bond_graph"],
            "graph_id": atoms.info.get("id"),
            "composition": Composition({Element.from_Z(int(e)): int(c) for e, c in zip(z, counts)}).formula,
        }

    def from_payload(self, payload: dict):
        """``chgnet.graph.CrystalGraph`` of a :meth:`build_payload` result (same tensors as CHGNet's converter)."""
        import torch
        from chgnet.graph.crystalgraph import CrystalGraph

        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in payload.items()
                   if isinstance(v, np.ndarray)}
        tensors["atom_frac_coord"].requires_grad_(True)
        tensors["lattice"].requires_grad_(True)
        return CrystalGraph(
            **tensors, graph_id=payload["graph_id"], mp_id=None, composition=payload["composition"],
            atom_graph_cutoff=self.atom_graph_cutoff_A, bond_graph_cutoff=self.bond_graph_cutoff_A,
        )


class ChgnetEmbedder(ModelEmbedder):
    """Per-atom features entering CHGNet's readout MLP, pooled per structure.

    Parameters
    ----------
    model_name : {"0.2.0", "0.3.0", "r2scan"}
        Bundled checkpoint.
    device : {"cpu", "cuda", "auto"}
    registry_name : str, optional
        Name recorded in results (defaults to ``chgnet-<model_name>``).
    """

    def __init__(self, model_name: str = "0.3.0", device: str = "cpu", registry_name: str | None = None):
        super().__init__()
        import chgnet

        from ._torch import resolve_device

        self.model_name = model_name
        self.name = registry_name or f"chgnet-{model_name}"
        self.device = resolve_device(device)
        self.checkpoint = _checkpoint_path(model_name)
        self.model_ = load_chgnet_model(model_name).to(self.device)
        args = self.model_.model_args
        self.dim = int(args.get("atom_fea_dim", 64))
        conv = self.model_.graph_converter
        self.cutoff_A = float(conv.atom_graph_cutoff)
        self._bond_cutoff_A = float(conv.bond_graph_cutoff)
        self._max_z = int(self.model_.atom_embedding.embedding.num_embeddings)
        n_conv = len(self.model_.atom_conv_layers)
        if not getattr(self.model_, "mlp_first", True):
            raise RuntimeError("this CHGNet checkpoint pools before its readout MLP; not supported")
        if self.model_.readout_norm is not None:
            self._tap = self.model_.readout_norm
            self.layer = (
                f"atom features after the last atom-conv layer (atom_conv_layers[{n_conv - 1}]) and the "
                f"readout LayerNorm (readout_norm): the per-atom input of the readout MLP, {self.dim} channels"
            )
        else:
            self._tap = self.model_.atom_conv_layers[-1]
            self.layer = (
                f"atom features after the last atom-conv layer (atom_conv_layers[{n_conv - 1}]), no readout "
                f"norm in this checkpoint: the per-atom input of the readout MLP, {self.dim} channels"
            )
        self.version = f"CHGNet {model_name} (chgnet {chgnet.__version__})"
        self.notes = {
            "package": f"chgnet {chgnet.__version__}",
            "non_periodic": f"vacuum cell, non-periodic directions extent + 2 * {self.cutoff_A:g} Å",
            "isolated_atoms": "skipped (CHGNet refuses them)",
        }

    def graph_builder(self) -> ChgnetGraphBuilder:
        return ChgnetGraphBuilder(self.cutoff_A, self._bond_cutoff_A, self._max_z)

    def forward(self, graphs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        if len(graphs) == 0:
            return np.zeros((0, self.dim), np.float32), np.zeros(0, np.int64)
        captured: list = []
        handle = self._tap.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            with torch.no_grad():
                self.model_([g.to(self.device) for g in graphs], task="e")
        finally:
            handle.remove()
        if len(captured) != 1:
            raise RuntimeError(f"expected one readout input per forward, got {len(captured)}")
        counts = np.array([int(g.atomic_number.shape[0]) for g in graphs], dtype=np.int64)
        return captured[0].detach().cpu().numpy().astype(np.float32, copy=False), counts
