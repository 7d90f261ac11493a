import pickle

import numpy as np
import pytest
from sklearn.base import clone

from conftest import frames_from_atoms
from monoculture.descriptors import available_descriptors, get_descriptor
from monoculture.descriptors.base import FrameDescriptor, RowSample, atom_subsample


def test_registry_names_and_params():
    assert available_descriptors() == ["composition", "local", "molecule", "regime", "soap", "structure"]
    for name in available_descriptors():
        d = get_descriptor(name)
        assert d.name == name and not d.is_fitted()
        cfg = d.config()
        assert cfg["name"] == name and pickle.loads(pickle.dumps(d)).get_params() == d.get_params()
        assert clone(d).get_params() == d.get_params()
    assert get_descriptor("soap", r_cut=3.0).r_cut == 3.0
    with pytest.raises(ValueError, match="takes no parameter"):
        get_descriptor("soap", cutoff=3.0)
    with pytest.raises(ValueError, match="unknown descriptor"):
        get_descriptor("coulomb")


def test_every_descriptor_on_crystals_and_molecules(crystals, molecules):
    batch = frames_from_atoms(crystals + molecules, charge=[None] * 5 + [0] * 5)
    for name in ["composition", "structure", "regime", "molecule", "soap", "local", "composition+structure"]:
        d = get_descriptor(name).fit(batch)
        res = d.transform_with_mask(batch)
        assert res.X.shape == (10, d.n_features_out_) and res.X.dtype == np.float32
        assert len(res.skipped) == (~res.ok).sum()
        assert np.isnan(res.X[~res.ok]).all() and np.isfinite(res.X[res.ok]).all()
        assert res.ok.all() or name == "molecule"
        assert d.transform(batch.slice(0, 0)).shape == (0, d.n_features_out_)


def test_atom_subsample_is_per_frame():
    offsets = np.array([0, 3, 13, 113])
    fi, ai = atom_subsample(["a", "b", "c"], offsets, 5, seed=1)
    assert np.bincount(fi).tolist() == [3, 5, 5]
    fi2, ai2 = atom_subsample(["c"], np.array([0, 100]), 5, seed=1)
    np.testing.assert_array_equal(ai2, ai[fi == 2])
    _, ai3 = atom_subsample(["c"], np.array([0, 100]), 5, seed=2)
    assert not np.array_equal(ai3, ai2)
    fi4, ai4 = atom_subsample(["a", "b"], np.array([0, 2, 5]), None, seed=0)
    assert fi4.tolist() == [0, 0, 1, 1, 1] and ai4.tolist() == [0, 1, 0, 1, 2]


def test_row_sample_deterministic(crystals):
    batch = frames_from_atoms(crystals * 4, ids=[f"r{i}" for i in range(20)])
    picks = []
    for _ in range(2):
        s = RowSample(7, seed=3)
        s.update(batch.slice(0, 8))
        s.update(batch.slice(8))
        picks.append(s.result().column("id").to_pylist())
    assert picks[0] == picks[1] and len(set(picks[0])) == 7
    s = RowSample(50, seed=3)
    s.update(batch)
    assert s.result().num_rows == 20


class _Toy(FrameDescriptor):
    """Three columns: ``a`` imputed 5 (indicator ``a_missing``), ``b`` and ``c`` not imputable."""

    name = "toy"
    imputed_features = {"a": (5.0, "a_missing"), "zz": (0.0, "unused_missing")}

    def __init__(self, values=None, names=("a", "b", "c")):
        self.values = values
        self.names = names

    def _feature_names(self):
        return list(self.names)

    def _transform_batch(self, batch):
        return np.array(self.values, dtype=np.float64), [(3, "toy reason")]


def test_base_imputes_flags_and_skips_non_finite(crystals):
    batch = frames_from_atoms(crystals[:4])
    nan, inf = float("nan"), float("inf")
    d = _Toy([[nan, 1, 2], [0, nan, 2], [1, 2, -inf], [nan, nan, nan]]).fit(batch)
    assert list(d.feature_names_) == ["a", "b", "c", "a_missing"] and d.n_features_out_ == 4
    res = d.transform_with_mask(batch)
    np.testing.assert_array_equal(res.X[0], [5, 1, 2, 1])  # imputed and flagged
    assert res.ok.tolist() == [True, False, False, False]
    assert res.skipped == [("f1", "non-finite feature(s) ['b']"), ("f2", "non-finite feature(s) ['c']"),
                           ("f3", "toy reason")]
    assert np.isnan(res.X[1:]).all()
    res = _Toy([[1.0] + [nan] * 8] * 4, names=tuple("abcdefghi")).fit(batch).transform_with_mask(batch)
    assert res.skipped[0][1] == "non-finite feature(s) ['b', 'c', 'd', 'e', 'f'] and 3 more"


def test_descriptors_import_without_scikit_learn():
    """``import monoculture.descriptors`` (what ``monoculture embed`` pays) loads neither scikit-learn nor scipy
    (issue #22); the parameter contract comes from descriptors/_params.py."""
    import subprocess
    import sys

    code = "import sys, monoculture.descriptors; print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_scikit_learn_contract_clone_pipeline_and_params(crystals, molecules):
    """clone, set_params (nested through a Pipeline), get_params(deep), NotFittedError and repr behave as on a
    scikit-learn estimator, and a Pipeline gives the numbers of its steps run by hand."""
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler

    batch = frames_from_atoms(crystals)
    soap = get_descriptor("soap", r_cut=3.5, n_max=3, l_max=2)
    assert repr(soap) == "SOAPDescriptor(l_max=2, n_max=3, r_cut=3.5)"
    copy = clone(soap)
    assert copy is not soap and copy.get_params() == soap.get_params() and not copy.is_fitted()
    assert copy.set_params(r_cut=4.0) is copy and copy.r_cut == 4.0 and soap.r_cut == 3.5
    with pytest.raises(ValueError, match="invalid parameter 'cutoff'"):
        copy.set_params(cutoff=1.0)
    with pytest.raises(NotFittedError):
        soap.transform(batch)

    comp = get_descriptor("composition")
    pipe = Pipeline([("desc", comp), ("scale", StandardScaler())])
    assert pipe.get_params()["desc__" + next(iter(comp.get_params()))] is not None
    expected = StandardScaler().fit_transform(clone(comp).fit(batch).transform(batch))
    np.testing.assert_allclose(pipe.fit_transform(batch), expected, atol=1e-5)
    np.testing.assert_allclose(clone(pipe).fit(batch).transform(batch), expected, atol=1e-5)
    assert pipe.named_steps["desc"] is comp and comp.is_fitted()  # Pipeline.fit fits its own steps
    union = get_descriptor("composition+structure")
    deep = union.get_params(deep=True)
    assert set(union.get_params(deep=False)) <= set(deep)
    np.testing.assert_allclose(make_pipeline(clone(union)).fit(batch).transform(batch),
                               clone(union).fit(batch).transform(batch), atol=0)
