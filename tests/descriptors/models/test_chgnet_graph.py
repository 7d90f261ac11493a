"""The numpy CHGNet graph builder gives the tensors of CHGNet's own converter (exactly, except fractional
coordinates: to float rounding)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("chgnet")

from ase import Atoms  # noqa: E402
from ase.build import bulk, molecule  # noqa: E402
from chgnet.graph import CrystalGraphConverter  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

from monoculture.descriptors.models import UnsupportedStructure  # noqa: E402
from monoculture.descriptors.models._chgnet import ChgnetGraphBuilder  # noqa: E402
from monoculture.descriptors.models._chgnet_graph import chgnet_graph_arrays  # noqa: E402
from monoculture.descriptors.models.cells import vacuum_cell  # noqa: E402

pytestmark = pytest.mark.models

FIELDS = ["atomic_number", "atom_frac_coord", "atom_graph", "neighbor_image", "directed2undirected",
          "undirected2directed", "bond_graph", "lattice"]


def _structures():
    rng = np.random.default_rng(7)
    out = [
        bulk("Si", "diamond", a=5.43),
        bulk("Po", "sc", a=3.35),                    # one atom: every edge is a self-image edge
        bulk("Cu", "fcc", a=3.61).repeat((2, 2, 1)),
        bulk("ZnO", "wurtzite", a=3.25, c=5.2),
        bulk("NaCl", "rocksalt", a=5.64, cubic=True),
        molecule("C6H6"),
        molecule("CH3CH2OH"),
    ]
    for base in (bulk("GaAs", "zincblende", a=5.65), bulk("Fe", "bcc", a=2.87, cubic=True)):
        for _ in range(4):  # strained, rattled supercells (no symmetry, distances near the cutoffs)
            a = base.repeat(tuple(int(x) for x in rng.integers(1, 4, 3)))
            a.set_cell(a.cell[:] @ (np.eye(3) + rng.uniform(-0.04, 0.04, (3, 3))), scale_atoms=True)
            a.rattle(0.08, seed=int(rng.integers(1 << 30)))
            out.append(a)
    return out


def _library_graph(atoms, cutoff=6.0, bond_cutoff=3.0):
    """CHGNet's converter on the pymatgen Structure a user would build from the Atoms."""
    pbc = np.asarray(atoms.pbc, bool)
    cell = np.asarray(atoms.cell[:], float)
    if not pbc.all():
        cell = vacuum_cell(atoms.positions, cell, pbc, cutoff)
    structure = Structure(Lattice(cell), atoms.numbers, atoms.positions, coords_are_cartesian=True)
    conv = CrystalGraphConverter(atom_graph_cutoff=cutoff, bond_graph_cutoff=bond_cutoff, algorithm="fast",
                                 on_isolated_atoms="error")
    return conv(structure, graph_id="x")


@pytest.mark.parametrize("algorithm", ["numba", "numpy"])
@pytest.mark.parametrize("index", range(len(_structures())))
def test_numpy_graph_equals_chgnet_converter(index, algorithm):
    atoms = _structures()[index]
    atoms.info["id"] = "x"
    ref = _library_graph(atoms)
    got = ChgnetGraphBuilder(6.0, 3.0, 94, algorithm=algorithm)(atoms)
    assert len(ref.bond_graph) > 0 or index == 1
    for name in FIELDS:
        a, b = getattr(ref, name), getattr(got, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        if name == "atom_frac_coord":
            # Different code paths: pymatgen takes each site's fractional coordinates with a vector-matrix
            # np.dot (positions[i] @ inv(lattice)), the builder with one matrix-matrix product for all atoms;
            # BLAS sums and fuses (FMA) these differently per kernel and per CPU, so the float64 values differ
            # by a few ulp of the terms (order 1): 0.0 against 9.2e-18 for fcc Cu. Cast to float32 that is
            # at most one float32 ulp of the value (<= eps32 * |x|), or a tiny non-zero next to an exact 0.
            torch.testing.assert_close(a, b, rtol=torch.finfo(torch.float32).eps, atol=1e-12, msg=name)
        else:
            # Integers (atomic numbers, edge indices, integer-valued image offsets) and the lattice (both
            # sides cast the same float64 matrix to float32, no arithmetic): bit for bit.
            assert torch.equal(a, b), name
    assert got.composition == ref.composition
    assert got.atom_frac_coord.requires_grad and got.lattice.requires_grad


def test_both_algorithms_refuse_isolated_atoms():
    lonely = Atoms("Cu2", positions=[[0, 0, 0], [1.5, 1.5, 1.5]], cell=np.eye(3) * 40, pbc=True)
    lonely += Atoms("O", positions=[[20, 20, 20]])
    for algorithm in ("numba", "numpy", "chgnet"):
        with pytest.raises(UnsupportedStructure, match="isolated_atom"):
            ChgnetGraphBuilder(6.0, 3.0, 94, algorithm=algorithm)(lonely)


def test_unknown_algorithm_is_an_error():
    with pytest.raises(ValueError, match="algorithm"):
        ChgnetGraphBuilder(6.0, 3.0, 94, algorithm="magic")(bulk("Si", "diamond", a=5.43))


def test_compiled_and_numpy_bookkeeping_agree_on_many_cells():
    """Every array of the compiled edge bookkeeping equals the numpy reference, on 300 strained, rattled
    supercells of 1-40 atoms (self-image edges, several images per atom pair, angle-free cells) and three
    cutoff pairs."""
    rng = np.random.default_rng(11)
    prototypes = [bulk("Si", "diamond", a=5.43), bulk("Po", "sc", a=3.35), bulk("Mg", "hcp", a=3.21, c=5.2),
                  bulk("CsCl", "cesiumchloride", a=4.12), bulk("ZnO", "wurtzite", a=3.25, c=5.2),
                  bulk("Cu", "fcc", a=3.61), bulk("KCl", "rocksalt", a=6.29)]
    for n in range(300):
        atoms = prototypes[n % len(prototypes)].repeat(tuple(int(x) for x in rng.integers(1, 3, 3)))
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + rng.uniform(-0.05, 0.05, (3, 3))), scale_atoms=True)
        atoms.rattle(0.1, seed=n)
        frac = atoms.get_scaled_positions(wrap=False)
        for cutoffs in ((5.0, 3.0), (6.0, 3.0), (4.0, 4.0)):
            ref = chgnet_graph_arrays(frac, atoms.cell[:], *cutoffs, engine="numpy")
            got = chgnet_graph_arrays(frac, atoms.cell[:], *cutoffs, engine="numba")
            assert ref.keys() == got.keys()
            for key in ref:
                assert ref[key].dtype == got[key].dtype and ref[key].shape == got[key].shape, key
                np.testing.assert_array_equal(ref[key], got[key], err_msg=key)


def test_unknown_engine_is_an_error():
    with pytest.raises(ValueError, match="engine"):
        chgnet_graph_arrays(np.zeros((1, 3)), np.eye(3) * 3, 5.0, 3.0, engine="magic")
