"""Volume strain against the composition's minimum-energy frame, checked by hand; merge equals one pass."""
import numpy as np
import pytest

from monoculture.audit.coverage.volume_strain import VolumeStrainCoverage
from monoculture.datasets import RawFrame
from monoculture.datasets.memory import frames_from_records


def _frames(specs):
    """specs: (numbers, a (Å, cubic cell), energy per atom)."""
    records = [RawFrame(id=f"f{i}", key=str(i), numbers=numbers,
                        positions=np.zeros((len(numbers), 3)) + np.arange(len(numbers))[:, None],
                        cell=np.eye(3) * a, pbc=True, energy_eV=e * len(numbers))
               for i, (numbers, a, e) in enumerate(specs)]
    return frames_from_records(records, dataset="toy", file="toy")


def _molecule():
    """One water molecule (no cell), -10 eV."""
    raw = RawFrame(id="m", key="0", numbers=[8, 1, 1], positions=np.eye(3), pbc=False, energy_eV=-10.0)
    return frames_from_records([raw], dataset="toy", file="toy")


SPECS = [
    ([11, 17], 4.0, -3.0),          # NaCl reference: V/N = 32
    ([11, 17], 4.0 * 1.1 ** (1 / 3), -2.9),   # +10 % volume
    ([11, 11, 17, 17], 4.0 * 2 ** (1 / 3) * 0.95 ** (1 / 3), -2.95),  # supercell, -5 % volume per atom
    ([26], 2.0, -8.0),              # Fe reference: V/N = 8
    ([26], 2.0 * 1.25 ** (1 / 3), -7.0),  # +25 %
]


def test_strain_by_hand():
    acc = VolumeStrainCoverage().update(_frames(SPECS))
    res = acc.result()
    edges = np.array(res["edges"])
    counts = np.array(res["counts"])
    expected = [0.0, 0.10, -0.05, 0.0, 0.25]
    idx = np.searchsorted(edges, expected, side="right") - 1
    want = np.bincount(idx, minlength=counts.size)
    np.testing.assert_array_equal(counts, want)
    assert res["n_compositions"] == 2 and res["missing"] == 0
    assert res["min"] == pytest.approx(-0.05, abs=1e-3) and res["max"] == pytest.approx(0.25, abs=2e-3)


def test_merge_equals_one_pass_in_any_order():
    t = _frames(SPECS)
    one = VolumeStrainCoverage().update(t).result()
    parts = [VolumeStrainCoverage().update(t.slice(i, 1)) for i in range(t.num_rows)]
    merged = parts[4]
    for p in (parts[2], parts[0], parts[3], parts[1]):
        merged.merge(p)
    assert merged.result() == one


def test_molecules_are_not_applicable():
    res = VolumeStrainCoverage().update(_molecule()).result()
    assert "not_applicable" in res

