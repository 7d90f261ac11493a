"""Audit documents for the report tests: a real audit of the bundled samples, and one with every optional
section (coverage analyzers, chemical space, comparison, priorities, alignment)."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from monoculture.audit.run import AuditOptions, run_audit
from pathlib import Path


SAMPLES = Path(__file__).resolve().parents[2] / "datasets" / "data" / "samples"
SAMPLE_PATHS = [str(SAMPLES / n) for n in ("mptrj_sample.json", "omat24_sample", "alexandria_sample.json.bz2",
                                            "mixed_sample.extxyz")]


def alignment_section(models=("CHGNet-0.3.0", "CHGNet-0.2.0", "SevenNet-0", "SevenNet-l3i5")) -> dict:
    """A complete alignment section in the documented layout (numbers chosen by hand, linkage from scipy)."""
    from scipy.cluster.hierarchy import linkage, to_tree
    from scipy.spatial.distance import squareform

    n = len(models)
    rng = np.random.default_rng(0)
    base = np.array([[1.0, 0.8, 0.45, 0.4], [0.8, 1.0, 0.42, 0.38], [0.45, 0.42, 1.0, 0.7], [0.4, 0.38, 0.7, 1.0]])
    base = base[:n, :n]
    metrics = {}
    for j, name in enumerate(("cknna", "mutual_knn", "cka", "dcor", "information_imbalance")):
        shift = 0.05 * j
        id_m = np.clip(base - shift, 0, 1)
        ood_m = np.clip(base * 0.8 + 0.15, 0, 1)
        np.fill_diagonal(ood_m, 1.0)
        if name == "information_imbalance":
            id_m, ood_m = 1 - id_m, 1 - ood_m
        metrics[name] = {"id": id_m.round(3).tolist(), "ood": ood_m.round(3).tolist(),
                         "k": 25 if name in ("cknna", "mutual_knn") else (50 if name == "information_imbalance" else None),
                         "higher_is_more_aligned": name != "information_imbalance"}
    Z = linkage(squareform(1 - base, checks=False), method="average")
    tree = to_tree(Z)

    def newick(node):
        if node.is_leaf():
            return models[node.id]
        return f"({newick(node.left)},{newick(node.right)})"

    ks = [2, 10, 25, 50, 100]
    return {
        "models": list(models),
        "sets": {"id": {"name": "OMat24 sample", "n": 30}, "ood": {"name": "QM9 sample", "n": 30}},
        "parameters": {"k": 25, "normalisation": "max-abs 1", "n_boot": 200},
        "metrics": metrics,
        "intrinsic_dimension": {
            "estimator": "TwoNN",
            "values": {m: {"id": 9.0 + i, "ood": 5.0 + 0.5 * i} for i, m in enumerate(models)},
            "intervals": {m: {"id": [8.0 + i, 10.0 + i], "ood": [4.5 + 0.5 * i, 5.5 + 0.5 * i]} for i, m in enumerate(models)},
        },
        "k_sweep": {"metric": "cknna", "k": ks, "curves": [
            {"label": f"{models[0]} vs {models[1]}", "set": s, "values": [round(0.5 + 0.05 * i + (0.1 if s == 'id' else 0), 3) for i in range(len(ks))]}
            for s in ("id", "ood")]},
        "id_vs_scale": {"estimator": "MLE (Levina-Bickel)", "scale_label": "neighbours k (count)", "curves": [
            {"label": m, "set": "id", "scale": ks, "id": [round(8 + i + 0.3 * np.log(k), 2) for k in ks]}
            for i, m in enumerate(models)]},
        "near_duplicates": {"metric": "cknna", "threshold": 0.75, "rows": [
            {"model_a": models[0], "model_b": models[1], "set": "id", "score": 0.8}]},
        "gap_vs_collapse": {
            "x_label": "ID − OOD CKNNA gap (unitless)", "y_label": "OOD intrinsic-dimension drop (count)",
            "points": [{"label": m, "x": float(0.1 + 0.05 * i + 0.01 * rng.standard_normal()), "y": 4.0 + 0.5 * i}
                       for i, m in enumerate(models)],
            "spearman_rho": 0.8, "ci": [0.2, 1.0], "ci_level": 0.95, "n_boot": 200},
        "family_tree": {"newick": newick(tree) + ";", "labels": list(models), "linkage": Z.tolist(),
                        "metric": "1 - CKNNA", "method": "average", "set": "id"},
        "verdicts": {
            "local": {"question": "Is local (k-NN) alignment higher in distribution?", "statistic": "mean ID − OOD CKNNA",
                      "estimate": 0.08, "interval": [0.03, 0.13], "level": 0.95, "verdict": "yes",
                      "explanation": "interval excludes 0"},
            "global": {"question": "Is global alignment (dCor) higher out of distribution?", "statistic": "mean OOD − ID dCor",
                       "estimate": 0.02, "interval": [-0.04, 0.08], "level": 0.95, "verdict": "inconclusive",
                       "explanation": "interval contains 0"},
        },
    }


def _full_doc(umap: bool, paths=SAMPLE_PATHS) -> dict:
    """Every producer the CLI runs: the first path audited against the second as reference (coverage,
    chemical space, comparison, priorities), plus the hand-made alignment section."""
    options = AuditOptions(quiet=True, umap=umap, sample_size=500, quests_crosscheck=False, reference=paths[1])
    doc = run_audit(paths, options)
    doc["alignment"] = alignment_section()
    return doc


@pytest.fixture(scope="session")
def basic_doc() -> dict:
    """A real audit of the bundled samples with only the basic counts (what the CLI produces today)."""
    return run_audit(SAMPLE_PATHS, AuditOptions(quiet=True, descriptor=None))


@pytest.fixture(scope="session")
def _full_doc_cached() -> dict:
    return _full_doc(umap=False, paths=SAMPLE_PATHS[:2])


@pytest.fixture
def full_doc(_full_doc_cached) -> dict:
    """Real audit of the MPtrj and OMat24 samples + every coverage analyzer (UMAP off, for speed), comparison, priorities and alignment."""
    return copy.deepcopy(_full_doc_cached)


@pytest.fixture(scope="session")
def demo_doc() -> dict:
    """Like ``full_doc`` with UMAP on (slow to import: used by the browser test only)."""
    return _full_doc(umap=True)


@pytest.fixture(scope="session")
def written(_full_doc_cached, tmp_path_factory) -> tuple[dict, dict]:
    """``(doc, paths)`` of one report written from ``full_doc`` (rendered once per session)."""
    from monoculture.reports import write_report

    doc = copy.deepcopy(_full_doc_cached)
    return doc, write_report(doc, tmp_path_factory.mktemp("report"))


@pytest.fixture
def hand_alignment() -> dict:
    """The hand-made alignment section of :func:`alignment_section` (a fixture: test modules cannot import
    this conftest by name when several test folders are collected together)."""
    return alignment_section()
