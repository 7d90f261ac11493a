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
from numba import njit

__all__ = ["chgnet_graph_arrays", "chgnet_payload_arrays"]

#: Distance tolerance of pymatgen's neighbour search and of CHGNet's self-pair exclusion (Å).
NUMERICAL_TOL_A = 1e-8


def _edge_keys(src: np.ndarray, dst: np.ndarray, image: np.ndarray, n_atoms: int, half: int) -> np.ndarray:
    """One int64 key per directed edge (src, dst, image); images within [-half, half]."""
    base = 2 * half + 1
    img = image.astype(np.int64) + half
    return (((src.astype(np.int64) * n_atoms + dst) * base + img[:, 0]) * base + img[:, 1]) * base + img[:, 2]


def chgnet_graph_arrays(frac_coords: np.ndarray, lattice: np.ndarray, atom_graph_cutoff_A: float,
                        bond_graph_cutoff_A: float, engine: str = "numba") -> dict[str, np.ndarray]:
    """Atom and bond graph of one periodic structure, exactly as CHGNet's converter makes them.

    Parameters
    ----------
    frac_coords : numpy.ndarray, shape (n_atoms, 3), float64
        Fractional coordinates (as ``Structure.frac_coords``).
    lattice : numpy.ndarray, shape (3, 3), float64
        Lattice vectors as rows (Å).
    atom_graph_cutoff_A, bond_graph_cutoff_A : float
        Cutoffs of the atom graph and of the bonds that enter the bond graph (Å).
    engine : {"numba", "numpy"}
        ``numba`` (default): the edge bookkeeping after the neighbour search in one compiled pass
        (:func:`_bookkeeping_numba`, about 5x faster per structure); ``numpy``: the same rules with whole-array
        numpy operations (the reference the compiled pass is tested against).

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
    if engine == "numba":
        atom_graph, image, distance, d2u, u2d, bond_graph, _, _ = _numba_graph(
            frac_coords, lattice, atom_graph_cutoff_A, bond_graph_cutoff_A)
        return dict(
            atom_graph=atom_graph,
            directed2undirected=d2u,
            undirected2directed=u2d,
            bond_graph=bond_graph if len(bond_graph) else np.zeros((0,), dtype=np.int32),
            neighbor_image=image.astype(np.float64),
            distance=distance,
            center_index=atom_graph[:, 0].astype(np.int64),
        )
    if engine != "numpy":
        raise ValueError(f"engine must be 'numba' or 'numpy', got {engine!r}")
    center, neighbor, image, distance = _neighbor_list(frac_coords, lattice, atom_graph_cutoff_A)
    n_atoms = len(frac_coords)
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


def _neighbor_list(frac_coords, lattice, cutoff_A):
    """pymatgen's periodic neighbour search on a structure given as fractional coordinates and lattice rows."""
    from pymatgen.optimization.neighbors import find_points_in_spheres

    lattice = np.ascontiguousarray(lattice, dtype=float)
    cart = np.ascontiguousarray(np.dot(np.asarray(frac_coords, dtype=float), lattice), dtype=float)
    return find_points_in_spheres(cart, cart, r=float(cutoff_A), pbc=np.ones(3, dtype=np.int64), lattice=lattice,
                                  tol=NUMERICAL_TOL_A)


def _numba_graph(frac_coords, lattice, atom_graph_cutoff_A, bond_graph_cutoff_A):
    """(atom_graph, image, distance, directed2undirected, undirected2directed, bond_graph, atoms without an edge,
    largest absolute image index) from the neighbour search and :func:`_bookkeeping_numba`."""
    center, neighbor, image, distance = _neighbor_list(frac_coords, lattice, atom_graph_cutoff_A)
    (atom_graph, image, distance, d2u, u2d, bond_graph, n_missing, n_isolated,
     max_image) = _bookkeeping_numba(center.astype(np.int64, copy=False), neighbor.astype(np.int64, copy=False),
                                     np.asarray(image, dtype=np.float64).reshape(-1, 3), distance, len(frac_coords),
                                     float(bond_graph_cutoff_A), NUMERICAL_TOL_A)
    if n_missing:
        raise ValueError(f"{n_missing} directed edge(s) have no reverse edge in the neighbour list")
    return atom_graph, image, distance, d2u, u2d, bond_graph, n_isolated, max_image


def chgnet_payload_arrays(frac_coords: np.ndarray, lattice: np.ndarray, atom_graph_cutoff_A: float,
                          bond_graph_cutoff_A: float, engine: str = "numba") -> tuple[dict[str, np.ndarray], int]:
    """What a worker sends for one structure: the arrays of :func:`chgnet_graph_arrays` that a batched forward
    cannot derive, in their smallest types, and the number of atoms without a neighbour.

    Returns
    -------
    arrays : dict of numpy.ndarray
        ``atom_graph`` (n_dir, 2) int32, ``neighbor_image`` (n_dir, 3) int8 (int32 when an image index
        exceeds 127), ``directed2undirected`` (n_dir,) int32, ``undirected2directed`` (n_und,) int32,
        ``bond_pairs`` (n_angle, 2) int32: the own and other directed edge of each angle (columns 2 and 4 of
        ``bond_graph``).
    n_isolated : int
        Atoms that are the center of no edge.
    """
    if engine == "numba":
        atom_graph, image, _, d2u, u2d, bond_graph, n_isolated, max_image = _numba_graph(
            frac_coords, lattice, atom_graph_cutoff_A, bond_graph_cutoff_A)
    else:
        arrays = chgnet_graph_arrays(frac_coords, lattice, atom_graph_cutoff_A, bond_graph_cutoff_A, engine=engine)
        atom_graph, d2u, u2d = arrays["atom_graph"], arrays["directed2undirected"], arrays["undirected2directed"]
        image, bond_graph = arrays["neighbor_image"], arrays["bond_graph"].reshape(-1, 5)
        n_isolated = int(np.count_nonzero(np.bincount(arrays["center_index"], minlength=len(frac_coords)) == 0))
        max_image = int(np.abs(image).max()) if image.size else 0
    return {
        "atom_graph": atom_graph,
        "neighbor_image": image.astype(np.int8 if max_image <= 127 else np.int32),
        "directed2undirected": d2u,
        "undirected2directed": u2d,
        "bond_pairs": np.ascontiguousarray(bond_graph[:, 2::2]),
    }, int(n_isolated)


@njit(cache=True, nogil=True)
def _bookkeeping_numba(center_in, neighbor_in, image_in, distance_in, n_atoms, bond_cutoff, tol):  # pragma: no cover
    """Directed and undirected edges and bond graph of a neighbour list in one compiled pass (the rules of the
    module docstring, as the numpy path applies them).

    Why compiled: for a 20-atom crystal the numpy path makes about 60 whole-array calls on arrays of ~900
    edges; their fixed cost (~270 µs) was three quarters of the graph time, four times the neighbour search
    itself, and capped the graph building that feeds CHGNet 0.2.0's GPU forward (issue #10).

    Parameters: the neighbour list as ``find_points_in_spheres`` returns it, ``center_in``, ``neighbor_in``
    (m,) int64, ``image_in`` (m, 3) float64, ``distance_in`` (m,) float64 (Å); ``n_atoms``; ``bond_cutoff``
    (Å); ``tol``, the self-pair distance tolerance (Å).
    Returns, for the directed edges without self pairs, ``atom_graph`` (n_dir, 2) int32 (center, neighbour),
    ``image`` (n_dir, 3) int64, ``distance`` (n_dir,) float64; then ``directed2undirected`` (n_dir,)
    int32, ``undirected2directed`` (n_und,) int32, ``bond_graph`` (n_angle, 5) int32, the number of directed
    edges without a reverse (the three previous outputs are empty when it is not 0), the number of atoms
    without an edge and the largest absolute image index.
    """
    m_in = center_in.shape[0]
    n_dir = 0
    for k in range(m_in):
        if not (center_in[k] == neighbor_in[k] and distance_in[k] <= tol):
            n_dir += 1
    center = np.empty(n_dir, np.int64)
    neighbor = np.empty(n_dir, np.int64)
    atom_graph = np.empty((n_dir, 2), np.int32)
    image = np.empty((n_dir, 3), np.int64)
    distance = np.empty(n_dir, np.float64)
    max_image = 0
    k = 0
    for q in range(m_in):
        if not (center_in[q] == neighbor_in[q] and distance_in[q] <= tol):
            center[k] = center_in[q]
            neighbor[k] = neighbor_in[q]
            atom_graph[k, 0] = center_in[q]
            atom_graph[k, 1] = neighbor_in[q]
            for d in range(3):
                image[k, d] = np.int64(image_in[q, d])
                if abs(image[k, d]) > max_image:
                    max_image = abs(image[k, d])
            distance[k] = distance_in[q]
            k += 1
    # Directed edges grouped by center and by neighbour (counting sorts: stable, so list order within a group).
    out_start = np.zeros(n_atoms + 1, np.int64)
    in_start = np.zeros(n_atoms + 1, np.int64)
    for k in range(n_dir):
        out_start[center[k] + 1] += 1
        in_start[neighbor[k] + 1] += 1
    n_isolated = 0
    for i in range(n_atoms):
        if out_start[i + 1] == 0:
            n_isolated += 1
        out_start[i + 1] += out_start[i]
        in_start[i + 1] += in_start[i]
    out_edges = np.empty(n_dir, np.int64)
    in_edges = np.empty(n_dir, np.int64)
    out_fill = out_start[:-1].copy()
    in_fill = in_start[:-1].copy()
    for k in range(n_dir):
        out_edges[out_fill[center[k]]] = k
        out_fill[center[k]] += 1
        in_edges[in_fill[neighbor[k]]] = k
        in_fill[neighbor[k]] += 1

    # Per center c: the edges of each pair (c, j) as a list in edge order (head[j], then next_same[k]); the
    # first edge of a pair is its head. The reverse of an incoming edge (i, c, image) is the edge of pair
    # (c, i) with the opposite image.
    head = np.full(n_atoms, -1, np.int64)
    tail = np.full(n_atoms, -1, np.int64)
    next_same = np.full(n_dir, -1, np.int64)
    first = np.empty(n_dir, np.int64)
    reverse = np.full(n_dir, -1, np.int64)
    n_missing = 0
    for c in range(n_atoms):
        for t in range(out_start[c], out_start[c + 1]):
            k = out_edges[t]
            j = neighbor[k]
            if head[j] < 0:
                head[j] = k
            else:
                next_same[tail[j]] = k
            tail[j] = k
            first[k] = head[j]
        for t in range(in_start[c], in_start[c + 1]):
            k = in_edges[t]
            q = head[center[k]]
            while q >= 0:
                if (image[q, 0] == -image[k, 0] and image[q, 1] == -image[k, 1]
                        and image[q, 2] == -image[k, 2]):
                    break
                q = next_same[q]
            if q < 0:
                n_missing += 1
            reverse[k] = q
        for t in range(out_start[c], out_start[c + 1]):
            head[neighbor[out_edges[t]]] = -1
    if n_missing:
        return (atom_graph, image, distance, np.empty(0, np.int32), np.empty(0, np.int32),
                np.empty((0, 5), np.int32), n_missing, n_isolated, max_image)

    # The first of each pair (in list order) creates the undirected edge.
    d2u = np.empty(n_dir, np.int32)
    n_und = 0
    for k in range(n_dir):
        if reverse[k] > k:
            d2u[k] = n_und
            n_und += 1
    u2d = np.empty(n_und, np.int32)
    for k in range(n_dir):
        if reverse[k] > k:
            u2d[d2u[k]] = k
        else:
            d2u[k] = d2u[reverse[k]]

    # Short edges of each center in CHGNet's order: by the neighbour's first appearance, then edge index.
    seg_count = np.zeros(n_atoms, np.int64)
    for k in range(n_dir):
        if distance[k] < bond_cutoff:
            seg_count[center[k]] += 1
    seg_start = np.zeros(n_atoms, np.int64)
    for i in range(1, n_atoms):
        seg_start[i] = seg_start[i - 1] + seg_count[i - 1]
    sorted_short = np.empty(seg_start[n_atoms - 1] + seg_count[n_atoms - 1] if n_atoms else 0, np.int64)
    for c in range(n_atoms):
        s = seg_start[c]
        for t in range(out_start[c], out_start[c + 1]):
            k = out_edges[t]
            if first[k] == k:
                q = k
                while q >= 0:
                    if distance[q] < bond_cutoff:
                        sorted_short[s] = q
                        s += 1
                    q = next_same[q]

    # Angles: for each short enough undirected edge, at each of its two ends, every other short edge there.
    n_rows = 0
    for u in range(n_und):
        e1 = u2d[u]
        if distance[e1] <= bond_cutoff:
            for end in range(2):
                e = e1 if end == 0 else reverse[e1]
                n_rows += seg_count[center[e]] - (1 if distance[e] < bond_cutoff else 0)
    bond_graph = np.empty((n_rows, 5), np.int32)
    r = 0
    for u in range(n_und):
        e1 = u2d[u]
        if distance[e1] <= bond_cutoff:
            for end in range(2):
                e = e1 if end == 0 else reverse[e1]
                c = center[e]
                for t in range(seg_start[c], seg_start[c] + seg_count[c]):
                    o = sorted_short[t]
                    if o != e:
                        bond_graph[r, 0] = c
                        bond_graph[r, 1] = u
                        bond_graph[r, 2] = e
                        bond_graph[r, 3] = d2u[o]
                        bond_graph[r, 4] = o
                        r += 1
    return atom_graph, image, distance, d2u, u2d, bond_graph, 0, n_isolated, max_image


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) the edge bookkeeping, for the argument types of every real
    call, by building the graph of a two-atom cubic cell.

    ``_bookkeeping_numba`` is compiled with ``cache=True``: numba keeps the machine code in ``__pycache__`` next
    to this file (or in ``NUMBA_CACHE_DIR`` when set, or in the user's cache folder when the package folder is
    read-only), so only the first use on a machine compiles (6.1 s on a shared 2-core machine with an empty
    ``NUMBA_CACHE_DIR``); later processes load it (0.35 s there). The graph worker processes of ``monoculture
    embed`` fork from one process that called this (:mod:`._warm_chgnet`), so the work is done once per run, not
    once per worker.
    """
    frac = np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]])
    lattice = np.eye(3) * 3.0
    chgnet_payload_arrays(frac, lattice, 5.0, 3.0)
