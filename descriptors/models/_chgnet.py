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
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._chgnet_graph import chgnet_payload_arrays
from .embedder import ModelEmbedder, UnsupportedStructure
from .collate import BatchLayout
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


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (``np.cross`` costs ~15 µs of argument handling per call)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


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
    algorithm : {"numba", "numpy", "chgnet"}
        ``numba`` (default): :func:`~._chgnet_graph.chgnet_graph_arrays` with its compiled edge bookkeeping, the
        same tensors as CHGNet's converter, 20-35x its speed per core (2,800-3,700 against 104-135 structures/s
        on the GPU host); ``numpy``: the same function with whole-array numpy operations (about half the speed
        of ``numba``); ``chgnet``: the library's
        ``CrystalGraphConverter(algorithm="fast")`` (in ``__call__`` only: :meth:`build_payload`, used by worker
        processes, takes the ``numba`` path).
    """

    atom_graph_cutoff_A: float
    bond_graph_cutoff_A: float
    max_z: int
    algorithm: str = "numba"
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
        elif abs(np.dot(cell[0], _cross(cell[1], cell[2]))) < 1e-8:
            raise UnsupportedStructure("singular_cell", "periodic structure with a singular cell")
        return numbers, cell, np.dot(positions, np.linalg.inv(cell))

    def structure(self, atoms):
        """The pymatgen Structure CHGNet sees (molecules / slabs in a vacuum cell)."""
        from pymatgen.core import Lattice, Structure

        numbers, cell, frac = self.lattice_and_coords(atoms)
        return Structure(Lattice(cell), numbers, frac)

    def __call__(self, atoms):
        if self.algorithm in ("numba", "numpy"):
            return self._numpy_graph(atoms)
        if self.algorithm != "chgnet":
            raise ValueError(f"algorithm must be 'numba', 'numpy' or 'chgnet', got {self.algorithm!r}")
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
        """The CrystalGraph of :meth:`lattice_and_coords`, built by :func:`~._chgnet_graph.chgnet_payload_arrays`
        (``numba`` or ``numpy`` engine as ``algorithm`` says)."""
        return self.from_payload(self.build_payload(atoms), graph_id=atoms.info.get("id"))

    def build_payload(self, atoms) -> dict:
        """The graph as a one-graph batch of numpy arrays (layout :data:`CHGNET_LAYOUT`): what a worker
        process builds, :meth:`collate` batches and :meth:`ChgnetEmbedder.forward_batch` runs. Raises
        :class:`UnsupportedStructure` like ``__call__``."""
        numbers, matrix, frac = self.lattice_and_coords(atoms)
        arrays, missing = chgnet_payload_arrays(frac, matrix, self.atom_graph_cutoff_A, self.bond_graph_cutoff_A,
                                                engine="numpy" if self.algorithm == "numpy" else "numba")
        if missing:
            raise UnsupportedStructure(
                "isolated_atom", f"{missing} atom(s) have no neighbour within {self.atom_graph_cutoff_A} Å"
            )
        # Only what the batch forward cannot derive travels (half the bytes): images as small integers, and
        # the two directed bonds of each angle (center atom and undirected bonds follow from atom_graph and
        # directed2undirected; see from_payload).
        return {
            "n_atoms": np.array([len(numbers)], np.int64),
            "n_directed": np.array([len(arrays["atom_graph"])], np.int64),
            "n_undirected": np.array([len(arrays["undirected2directed"])], np.int64),
            "n_angles": np.array([len(arrays["bond_pairs"])], np.int64),
            "atomic_number": numbers.astype(np.int32),
            "atom_frac_coord": frac.astype(np.float32),
            "lattice": matrix.astype(np.float32)[None],
            **arrays,
        }

    def collate(self, graphs) -> dict:
        """One forward batch of :meth:`build_payload` results (see :class:`~.collate.BatchLayout`)."""
        return CHGNET_LAYOUT.collate(graphs)

    def split(self, batch) -> list[dict]:
        """The one-graph batches of a :meth:`collate` result."""
        return CHGNET_LAYOUT.split(batch)

    def from_payload(self, payload: dict, graph_id: str | None = None):
        """``chgnet.graph.CrystalGraph`` of a one-graph :meth:`build_payload` result (the tensors of CHGNet's
        converter)."""
        import torch
        from chgnet.graph.crystalgraph import CrystalGraph
        from pymatgen.core import Composition, Element

        if len(payload["n_atoms"]) != 1:
            raise ValueError("from_payload takes a one-graph payload; split a batch first")
        arrays = {k: np.ascontiguousarray(payload[k]) for k in CHGNET_LAYOUT.arrays}
        pairs = arrays.pop("bond_pairs")
        d2u = arrays["directed2undirected"]
        bond_graph = np.stack([arrays["atom_graph"][pairs[:, 0], 0], d2u[pairs[:, 0]], pairs[:, 0], d2u[pairs[:, 1]],
                               pairs[:, 1]], axis=1).astype(np.int32)
        arrays["bond_graph"] = bond_graph if len(bond_graph) else bond_graph.reshape(0)  # as CHGNet's converter
        arrays["neighbor_image"] = arrays["neighbor_image"].astype(np.float32)
        arrays["lattice"] = arrays["lattice"][0]
        tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
        tensors["atom_frac_coord"].requires_grad_(True)
        tensors["lattice"].requires_grad_(True)
        z, counts = np.unique(payload["atomic_number"], return_counts=True)
        composition = Composition({Element.from_Z(int(e)): int(c) for e, c in zip(z, counts)}).formula
        return CrystalGraph(
            **tensors, graph_id=graph_id, mp_id=None, composition=composition,
            atom_graph_cutoff=self.atom_graph_cutoff_A, bond_graph_cutoff=self.bond_graph_cutoff_A,
        )


#: Rows and index columns of CHGNet graph batches: atoms, directed and undirected atom-graph edges, and
#: bond-graph angles. ``bond_pairs`` holds the two directed bonds of each angle: columns 2 and 4 of
#: ``chgnet.graph.CrystalGraph.bond_graph``, whose other columns (center atom, undirected bonds) follow from
#: ``atom_graph`` and ``directed2undirected``.
CHGNET_LAYOUT = BatchLayout(
    kinds=("atoms", "directed", "undirected", "angles"),
    arrays={
        "atomic_number": ("atoms", ()),
        "atom_frac_coord": ("atoms", ()),
        "lattice": ("graphs", ()),
        "atom_graph": ("directed", ("atoms", "atoms")),
        "neighbor_image": ("directed", ()),
        "directed2undirected": ("directed", ("undirected",)),
        "undirected2directed": ("undirected", ("directed",)),
        "bond_pairs": ("angles", ("directed", "directed")),
    },
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
        self._capture = threading.local()
        self._tap.register_forward_hook(self._keep_readout_input)
        for layer in self.model_.bond_conv_layers:
            if layer is not None:
                layer.register_forward_hook(self._keep_bonds_of_graphs_without_angles, with_kwargs=True)
        self.version = f"CHGNet {model_name} (chgnet {chgnet.__version__})"
        self.notes = {
            "package": f"chgnet {chgnet.__version__}",
            "non_periodic": f"vacuum cell, non-periodic directions extent + 2 * {self.cutoff_A:g} Å",
            "isolated_atoms": "skipped (CHGNet refuses them)",
        }

    def _keep_readout_input(self, _module, _inputs, output) -> None:
        """Forward hook on the readout input: kept for the :meth:`forward_batch` call of this thread only."""
        into = getattr(self._capture, "into", None)
        if into is not None:
            into.append(output)

    def _keep_bonds_of_graphs_without_angles(self, _module, _args, kwargs, output):
        """Forward hook on the bond-conv layers: bonds of graphs without angles keep their input features.

        CHGNet runs its bond (and angle) layers only when the batch has an angle; alone, a graph without angles
        (no two bonds shorter than the bond-graph cutoff share an atom, e.g. hcp Mg) skips them. Batched with
        graphs that have angles, its bonds would go through them anyway (a bond without angles still gets the
        layer's output bias and residual: up to 0.6 change in CHGNet 0.2.0's embedding, measured). Restoring
        them here gives every graph its one-at-a-time features in any batch.
        """
        frozen = getattr(self._capture, "frozen_bonds", None)
        if frozen is None:
            return None
        previous = kwargs.get("bond_feas")
        if previous is None or previous.shape != output.shape:
            raise RuntimeError("unexpected CHGNet bond-conv call; tested with chgnet 0.4.2")
        import torch

        return torch.where(frozen, previous, output)

    def graph_builder(self) -> ChgnetGraphBuilder:
        return ChgnetGraphBuilder(self.cutoff_A, self._bond_cutoff_A, self._max_z)

    def _warm_up_builder(self) -> ChgnetGraphBuilder:
        """The numpy engine (the same arrays, tested): the warm-up never waits for the numba compilation."""
        from dataclasses import replace

        return replace(self.graph_builder(), algorithm="numpy")

    def forward_batch(self, batch: dict) -> np.ndarray:
        """Per-atom readout inputs of a :meth:`ChgnetGraphBuilder.collate` batch: ``(n_atoms_total, dim)`` float32.

        Does in a few whole-batch tensor operations what ``BatchedGraph.from_graphs`` does graph by graph
        (Cartesian coordinates, bond vectors with periodic images, the model's bond and angle basis expansions,
        index offsets), then runs ``CHGNet._compute`` with ``task="e"`` under ``torch.no_grad``. The numbers
        equal CHGNet's own forward on the same graphs to float32 rounding (tested).
        """
        import torch
        from chgnet.model.model import BatchedGraph

        dev = self.device
        t = {k: torch.from_numpy(np.ascontiguousarray(batch[k])).to(dev) for k in CHGNET_LAYOUT.arrays}
        n_atoms = torch.from_numpy(batch["n_atoms"]).to(dev)
        n_graphs = int(len(batch["n_atoms"]))
        graph_index = torch.arange(n_graphs, device=dev)
        atom_owner = torch.repeat_interleave(graph_index, n_atoms)
        edge_owner = torch.repeat_interleave(graph_index, torch.from_numpy(batch["n_directed"]).to(dev))
        lattice = t["lattice"]
        model = self.model_
        captured: list = []
        self._capture.into = captured  # per thread: forwards may run in several threads (see embed_frames)
        no_angles = np.asarray(batch["n_angles"]) == 0
        self._capture.frozen_bonds = (
            torch.from_numpy(np.repeat(no_angles, batch["n_undirected"])[:, None]).to(dev)
            if no_angles.any() and not no_angles.all() else None
        )
        try:
            with torch.no_grad():
                cart = torch.bmm(t["atom_frac_coord"].unsqueeze(1), lattice[atom_owner]).squeeze(1)
                ag = t["atom_graph"]
                shift = torch.bmm(t["neighbor_image"].to(cart.dtype).unsqueeze(1), lattice[edge_owner]).squeeze(1)
                zero = cart.new_zeros(())
                # The library's encoder adds image @ lattice for one lattice; here the shift is already added.
                bond_basis_ag, bond_basis_bg, bond_vectors = model.bond_basis_expansion(
                    center=cart[ag[:, 0]], neighbor=cart[ag[:, 1]] + shift,
                    undirected2directed=t["undirected2directed"], image=zero.expand(len(ag), 3),
                    lattice=zero.expand(3, 3),
                )
                pairs = t["bond_pairs"]
                if len(pairs):
                    angle_bases = model.angle_basis_expansion(
                        torch.index_select(bond_vectors, 0, pairs[:, 0]), torch.index_select(bond_vectors, 0, pairs[:, 1])
                    )
                    d2u = t["directed2undirected"]
                    # CHGNet's batched bond graph: center atom, undirected bond i, undirected bond j.
                    batched_bond_graph = torch.stack([ag[pairs[:, 0], 0], d2u[pairs[:, 0]], d2u[pairs[:, 1]]], dim=1)
                else:
                    angle_bases = torch.tensor([], device=dev)
                    batched_bond_graph = torch.tensor([], device=dev)
                volumes = (lattice[:, 0] * torch.linalg.cross(lattice[:, 1], lattice[:, 2])).sum(-1)
                graph = BatchedGraph(
                    atomic_numbers=t["atomic_number"], bond_bases_ag=bond_basis_ag, bond_bases_bg=bond_basis_bg,
                    angle_bases=angle_bases, batched_atom_graph=ag, batched_bond_graph=batched_bond_graph,
                    atom_owners=atom_owner.to(torch.int32), directed2undirected=t["directed2undirected"],
                    atom_positions=[], strains=[], volumes=volumes,
                )
                model._compute(graph, compute_force=False, compute_stress=False, compute_magmom=False)
        finally:
            self._capture.into = None
            self._capture.frozen_bonds = None
        if len(captured) != 1:
            raise RuntimeError(f"expected one readout input per forward, got {len(captured)}")
        return captured[0].detach().cpu().numpy().astype(np.float32, copy=False)
