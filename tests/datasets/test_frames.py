"""Unit conversions and the frame builder, with numbers checked by hand."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from monoculture.datasets import Accounting, FrameBuilder, RawFrame, atoms_arrays, level_of_theory_label
from monoculture.datasets.records import as_row, record_batches
from monoculture.datasets.frames import (
    EV_PER_A3_TO_GPA,
    hill_formula,
    pressure_from_voigt,
    stress_ase_ev_a3_to_gpa,
    stress_vasp_kbar_to_ase_gpa,
)


def test_vasp_kbar_to_ase_gpa():
    # 10 kBar compressive (VASP sign +) is 1 GPa compressive: ASE sign -1 GPa, pressure +1 GPa.
    s = np.diag([10.0, 10.0, 10.0])
    v = stress_vasp_kbar_to_ase_gpa(s)
    assert np.allclose(v, [-1, -1, -1, 0, 0, 0])
    assert pressure_from_voigt(v) == pytest.approx(1.0)
    off = np.array([[0, 3, 2], [3, 0, 1], [2, 1, 0]], float)
    assert np.allclose(stress_vasp_kbar_to_ase_gpa(off), [0, 0, 0, -0.1, -0.2, -0.3])


def test_ase_ev_a3_to_gpa():
    assert EV_PER_A3_TO_GPA == pytest.approx(160.21766208)
    v = stress_ase_ev_a3_to_gpa([0.01, 0.02, 0.03, 0.0, 0.0, 0.0])
    assert np.allclose(v, [1.6021766208, 3.2043532416, 4.8065298624, 0, 0, 0])
    # Tensile (positive) stress is negative pressure.
    assert pressure_from_voigt(v) == pytest.approx(-3.2043532416)
    from ase.units import GPa

    assert 1 / GPa == pytest.approx(EV_PER_A3_TO_GPA, rel=1e-6)


def test_hill_formula():
    assert hill_formula([1, 6, 8], [4, 1, 1]) == "CH4O"
    assert hill_formula([11, 17], [4, 4]) == "Cl4Na4"
    assert hill_formula([8, 26], [3, 2]) == "Fe2O3"


def test_level_of_theory_label():
    assert level_of_theory_label("PBE", True, "PAW-PBE-54 (VASP)") == "PBE+U"
    assert level_of_theory_label("wB97M-V", False, "def2-TZVPD") == "wB97M-V/def2-TZVPD"
    assert level_of_theory_label(None, None) == "unknown"


def _raw(i, **kw):
    base = dict(id=f"f{i}", key=str(i), numbers=[11, 17], positions=[[0, 0, 0], [2.82, 0, 0]],
                cell=np.eye(3) * 5.64, pbc=True, energy_eV=-6.0)
    base.update(kw)
    return RawFrame(**base)


def test_builder_columns_and_validation():
    acc = Accounting(quiet=True)
    raws = [_raw(0, forces=[[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]], stress_GPa=[1, 2, 3, 0, 0, 0]),
            _raw(1, energy_eV=float("nan")), _raw(2, numbers=[11, 200]), _raw(3, forces=[[0, 0, 0]]),
            _raw(4, numbers=[], positions=np.zeros((0, 3))), _raw(5, pbc=False, cell=None, energy_eV=None)]
    t = FrameBuilder("toy", "toy.file", acc).build([[as_row(r) for r in raws]])
    assert t.num_rows == 2 and acc.read == 2
    assert acc.skipped_reasons == {"nan_energy": 1, "unknown_element": 1, "bad_forces": 1, "no_atoms": 1}
    row = t.to_pylist()[0]
    assert row["source"] == "toy.file::0"
    assert row["energy_per_atom_eV"] == pytest.approx(-3.0)
    assert row["fmax_eV_A"] == pytest.approx(5.0)
    assert row["frms_eV_A"] == pytest.approx(np.sqrt(25 / 2))
    assert row["pressure_GPa"] == pytest.approx(-2.0)
    assert row["volume_A3"] == pytest.approx(5.64**3)
    assert row["species"] == [11, 17] and row["species_counts"] == [1, 1] and row["formula"] == "ClNa"
    mol = t.to_pylist()[1]
    assert mol["volume_A3"] is None and mol["energy_eV"] is None
    arr = atoms_arrays(t)
    assert arr.offsets.tolist() == [0, 2, 4]
    assert arr.positions.shape == (4, 3)
    assert np.allclose(arr.positions[1], [2.82, 0, 0])


def test_records_are_batched_at_batch_size():
    acc = Accounting(quiet=True)
    b = FrameBuilder("toy", "f", acc)
    out = [b.build(batch) for batch in record_batches((_raw(i) for i in range(7)), 3)]
    assert [t.num_rows for t in out] == [3, 3, 1] and acc.read == 7


def test_records_in_memory_build_the_same_table():
    """frames_from_records (records held in memory) is the builder's one input form, one batch of rows: the same
    table as build() of those rows and as the batches a per-record reader makes, with the same accounting."""
    from monoculture.datasets.memory import frames_from_records

    raws = [_raw(i) for i in range(7)] + [_raw(7, energy_eV=float("nan")), _raw(8, numbers=[11, 200])]
    acc = Accounting(quiet=True)
    t = frames_from_records(raws, dataset="toy", accounting=acc, file="f")
    whole_acc = Accounting(quiet=True)
    whole = FrameBuilder("toy", "f", whole_acc).build([[as_row(r) for r in raws]])
    assert t.num_rows == 7 and t.equals(whole)
    assert acc.to_dict() == whole_acc.to_dict() and acc.read == 7
    assert acc.skipped_reasons == {"nan_energy": 1, "unknown_element": 1}
    b = FrameBuilder("toy", "f", Accounting(quiet=True))
    out = [b.build(batch) for batch in record_batches(raws, 3)]
    assert [x.num_rows for x in out] == [3, 3, 1]
    assert pa.concat_tables(out).equals(t)
    default = frames_from_records(raws[:2], dataset="toy")
    assert default.column("source").to_pylist() == ["<memory>/toy::0", "<memory>/toy::1"]
    assert default.drop_columns(["source"]).equals(t.slice(0, 2).drop_columns(["source"]))
    pbe_u = frames_from_records(raws[:2], dataset="toy", level_of_theory="PBE+U")
    assert pbe_u.column("level_of_theory").to_pylist() == ["PBE+U", "PBE+U"]
    assert t.column("level_of_theory").to_pylist() == ["unknown"] * 7
    empty = frames_from_records(raws[7:], accounting=Accounting(quiet=True))
    assert empty.num_rows == 0 and empty.schema.equals(t.schema)
