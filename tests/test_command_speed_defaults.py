"""Defaults that keep the default audit fast (issue #22): what each one decides, checked by rule, not by timing.

The MPTrj reader's compiled scanner (and the audit's rule of using it only when already compiled) was removed
with the scanner (``datasets/readers/mptrj.py``); its tests went with it.
"""
import numpy as np

from monoculture.audit.coverage.chemical_space import UMAP_EPOCHS, ChemicalSpaceCoverage
from monoculture.audit.coverage.compiled import KERNELS, example_arguments, kernels_for
from monoculture.audit.run import AuditOptions, run_audit
from monoculture.datasets.samples import sample_dir


def test_the_default_audit_warms_up_every_kernel_it_uses():
    o = AuditOptions()
    # the quests cross-check is opt-in (its numba kernel cost a first audit ~3 s of compilation)
    assert not o.quests_crosscheck and not ChemicalSpaceCoverage().quests_crosscheck
    assert kernels_for(o.descriptor, o.umap, o.quests_crosscheck) == ["map"]
    assert kernels_for(o.descriptor, o.umap, True) == list(KERNELS) == ["map", "quests"]
    assert kernels_for(o.descriptor, False, True) == ["quests"]  # --no-umap: the map's kernel is not compiled
    assert kernels_for(None, True, True) == []  # --descriptor none: no chemical-space analysis, no kernel
    assert kernels_for("none", True, True) == []


def test_the_warm_up_signatures_are_the_audits():
    # the types (not the values) define what numba compiles: C-contiguous float64 / int64 arrays, Python
    # floats and ints, as chemical_space._entropy (via quests.entropy.entropy) and map_layout.umap_layout pass them
    x, y, h, batch = example_arguments("quests")
    assert x.dtype == np.float64 and x.ndim == 2 and x.flags.c_contiguous and x.flags.writeable
    assert isinstance(h, float) and isinstance(batch, int)
    emb, head, tail, eps, epochs, *floats, seed = example_arguments("map")
    assert emb.dtype == np.float64 and emb.shape[1] == 2 and head.dtype == tail.dtype == np.int64
    assert eps.dtype == np.float64 and isinstance(epochs, int) and isinstance(seed, int)
    assert all(isinstance(v, float) for v in floats) and len(floats) == 5


def test_the_default_map_keeps_its_documented_settings():
    cs = ChemicalSpaceCoverage()
    assert cs.umap and cs.umap_max == cs.sample_size == 5000
    assert UMAP_EPOCHS == 200


def test_the_audit_document_has_every_default_section(tmp_path):
    doc = run_audit([sample_dir() / "mptrj_sample.json"], AuditOptions(quiet=True, progress=False))
    space = doc["datasets"][0]["coverage"]["chemical_space"]
    assert {"knn", "vendi", "entropy", "near_duplicates", "umap"} <= set(space)
    assert "entropy_nats" in space["entropy"] and "quests_entropy_nats" not in space["entropy"]
    assert "x" in space["umap"]
    assert doc["parameters"]["umap"] is True and doc["parameters"]["quests_crosscheck"] is False
    checked = run_audit([sample_dir() / "mptrj_sample.json"],
                        AuditOptions(quiet=True, progress=False, quests_crosscheck=True))
    e = checked["datasets"][0]["coverage"]["chemical_space"]["entropy"]
    assert e["quests_abs_diff"] < 1e-6 * max(1.0, abs(e["entropy_nats"]))
