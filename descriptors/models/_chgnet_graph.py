"""CHGNet crystal graphs built with numpy: the same tensors as ``chgnet.graph.CrystalGraphConverter``, faster.

Why hand-written: CHGNet's converter (``algorithm="fast"``) builds a Python object per directed edge and walks
them in Python to make the bond (line) graph; for a 20-atom crystal that costs 8-12 ms on one core, which caps
an embedding run at about 100 structures/s per core, below the model's batched forward on one GPU (issue
#10). This module computes the same arrays with vectorised numpy: the neighbour list comes from the same
pymatgen routine (``find_points_in_spheres``, as ``Structure.get_neighbor_list`` calls it), then

* directed edges are the neighbour-list rows, in their order;
* the undirected edge of a directed edge ``k = (i, j, image)`` is shared with its reverse ``(j, i, -image)``:
  whichever of the two comes first in the list creates the undirected edge, numbered in order of creation
  (``directed2undirected``), and ``undirected2directed`` points to that first directed edge;
* the bond graph lists, for each undirected edge ``u`` no longer than ``bond_graph_cutoff`` (inclusive) and
  for each of its two ends (center of its first directed edge, then of its second), every other directed
  edge leaving that center shorter than the cutoff (strict), in CHGNet's order: grouped by neighbour atom
  in the order each neighbour first appears for that center, then by edge index; rows
  ``[center, u, own directed edge, other undirected edge, other directed edge]``.

These are the rules of ``chgnet.graph.graph.Graph.add_edge`` / ``line_graph_adjacency_list`` (chgnet 0.4),
restated; ``tests/descriptors/test_chgnet_graph.py`` checks that every tensor equals the library
converter's output exactly on crystals, supercells, small cells with self-image edges and molecules.
"""
from __future__ import annotations

import numpy as np

__all__ = ["chgnet_graph_arrays"]

#: Distance tolerance of pymatgen's neighbour search and of CHGNet's self-pair exclusion (Å).
NUMERICAL_TOL_A = 1e-8


def _edge_keys(src: np.ndarray, dst: np.ndarray, image: np.ndarray, n_atoms: int, half: int) -> np.ndarray:
    """One int64 key per directed edge (src, dst, image); images within [-half, half]."""
    base = 2 * half + 1
    img = image.astype(np.int64) + half
    return (((src.astype(np.int64) * n_atoms + dst) * base + img[:, 0]) * base + img[:, 1]) * base + img[:, 2]


def chgnet_graph_arrays(frac_coords: np.ndarray, lattice: np.ndarray, atom_graph_cutoff_A: float,
                        bond_graph_cutoff_A: float) -> dict[str, np.ndarray]:
    """Atom and bond graph of one periodic structure, exactly as CHGNet's converter makes them.

    Parameters
    ----------
    frac_coords : numpy.ndarray, shape (n_atoms, 3), float64
        Fractional coordinates (as ``Structure.frac_coords``).
    lattice : numpy.ndarray, shape (3, 3), float64
        Lattice vectors as rows (Å).
    atom_graph_cutoff_A, bond_graph_cutoff_A : float
        Cutoffs of the atom graph and of the bonds that enter the bond graph (Å).

    Returns
    -------
    dict of numpy.ndarray
        Keys named as the fields of ``chgnet.graph.CrystalGraph``: ``atom_graph`` (n_dir, 2) int32, ``directed2undirected`` (n_dir,) int32, ``undirected2directed``
        (n_dir / 2,) int32, ``bond_graph`` (n_angle, 5) int32 (shape (0,) when empty, as CHGNet),
        ``neighbor_image`` (n_dir, 3) float64, ``distance`` (n_dir,) float64 (Å), ``center_index``
        (n_dir,) int64.

    Raises
    ------
    ValueError
        When a directed edge has no reverse (CHGNet's converter raises too).
    """
    from pymatgen.optimization.neighbors import find_points_in_spheres

    lattice = np.ascontiguousarray(lattice, dtype=float)
    frac_coords = np.asarray(frac_coords, dtype=float)
    n_atoms = len(frac_coords)
    cart = np.ascontiguousarray(np.dot(frac_coords, lattice), dtype=float)
    center, neighbor, image, distance = find_points_in_spheres(
        cart, cart, r=float(atom_graph_cutoff_A), pbc=np.ones(3, dtype=np.int64), lattice=lattice,
        tol=NUMERICAL_TOL_A,
    )
    keep = ~((center == neighbor) & (distance <= NUMERICAL_TOL_A))
    if not keep.all():
        center, neighbor, image, distance = center[keep], neighbor[keep], image[keep], distance[keep]
    center = center.astype(np.int64)
    neighbor = neighbor.astype(np.int64)
    image = np.asarray(image, dtype=np.int64).reshape(-1, 3)
    n_dir = len(center)

    # Reverse of every directed edge: (j, i, -image).
    half = int(np.abs(image).max()) + 1 if n_dir else 1
    base = 2 * half + 1
    keys = _edge_keys(center, neighbor, image, n_atoms, half)
    rev_keys = _edge_keys(neighbor, center, -image, n_atoms, half)
    # Keys are unique, so the reverse keys are a permutation of the keys exactly when every edge has its
    # reverse; matching the two sorted orders pairs each edge with its reverse (two sorts beat a search).
    order = np.argsort(keys, kind="stable")
    rev_order = np.argsort(rev_keys, kind="stable")
    sorted_keys = keys[order]
    if not np.array_equal(sorted_keys, rev_keys[rev_order]):
        missing = int((~np.isin(rev_keys, keys)).sum())
        raise ValueError(f"{missing} directed edge(s) have no reverse edge in the neighbour list")
    reverse = np.empty(n_dir, dtype=np.int64)
    reverse[rev_order] = order
    creators = reverse > np.arange(n_dir)  # the first of each pair creates the undirected edge
    und_of_creator = np.cumsum(creators) - 1
    directed2undirected = np.where(creators, und_of_creator, und_of_creator[reverse] if n_dir else 0)
    undirected2directed = np.flatnonzero(creators)
    second = reverse[undirected2directed]

    # Bond graph. Directed edges of each center in CHGNet's neighbour-dict order.
    # First edge (in list order) of each edge's (center, neighbour) pair: the keys sort pairs together.
    first_idx = np.empty(n_dir, dtype=np.int64)
    if n_dir:
        sorted_pair = sorted_keys // base**3
        starts = np.concatenate([[0], np.flatnonzero(np.diff(sorted_pair)) + 1])
        first_idx[order] = np.repeat(np.minimum.reduceat(order, starts), np.diff(np.append(starts, n_dir)))
    short = distance < bond_graph_cutoff_A
    short_idx = np.flatnonzero(short)
    sorted_short = short_idx[np.lexsort((short_idx, first_idx[short_idx], center[short_idx]))]
    seg_count = np.bincount(center[sorted_short], minlength=n_atoms)
    seg_start = np.concatenate([[0], np.cumsum(seg_count)[:-1]])

    valid_u = np.flatnonzero(distance[undirected2directed] <= bond_graph_cutoff_A)
    end_edge = np.stack([undirected2directed[valid_u], second[valid_u]], axis=1).reshape(-1)
    end_u = np.repeat(valid_u, 2)
    end_center = center[end_edge]
    counts = seg_count[end_center]
    rows_end = np.repeat(np.arange(len(end_edge)), counts)
    offsets = np.arange(len(rows_end)) - np.repeat(np.cumsum(counts) - counts, counts)
    other = sorted_short[np.repeat(seg_start[end_center], counts) + offsets]
    take = other != end_edge[rows_end]
    rows_end, other = rows_end[take], other[take]
    if len(other):
        bond_graph = np.stack(
            [end_center[rows_end], end_u[rows_end], end_edge[rows_end], directed2undirected[other], other], axis=1
        ).astype(np.int32)
    else:
        bond_graph = np.zeros((0,), dtype=np.int32)
    return dict(
        atom_graph=np.stack([center, neighbor], axis=1).astype(np.int32).reshape(-1, 2),
        directed2undirected=directed2undirected.astype(np.int32),
        undirected2directed=undirected2directed.astype(np.int32),
        bond_graph=bond_graph,
        neighbor_image=image.astype(np.float64),
        distance=distance,
        center_index=center,
    )
