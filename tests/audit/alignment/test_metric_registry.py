"""The alignment metric registry (monoculture.audit.alignment.metric_registry) and the options of align."""
from pathlib import Path

import numpy as np
import pytest

from monoculture.audit.alignment import analysis as an
from monoculture.audit.alignment import metric_registry as reg
from monoculture.audit.alignment.metric_registry import AlignmentMetric, Reference, Variant
from monoculture.audit.alignment.options import AlignOptions
from monoculture.audit.alignment.calibration import PAIR_METRICS
from monoculture.audit.alignment.resampling import pair_values
from monoculture.audit.alignment.variants import DEFAULT_VARIANTS, METRIC_VARIANTS, resolve_variants
from monoculture.reports import alignment_charts as ac

PACKAGE = Path(reg.__file__).resolve().parents[2]  # the monoculture.audit source folder


def test_existing_metrics_are_registered_with_complete_records():
    names = reg.metric_names()
    assert names[:9] == ("cknna", "mutual_knn", "cka", "dcor", "information_imbalance", "twonn", "gfre", "lfre",
                         "mle")
    for m in reg.metrics():
        assert m.label and m.short_label and callable(m.function) and m.kind in reg.KINDS
        assert m.scope in reg.SCOPES and isinstance(m.reference, Reference) and str(m.reference)
        if m.variants:
            assert m.default_variant in m.variants
    assert {m.name for m in reg.metrics(kind="directed pair")} == {"information_imbalance", "gfre", "lfre"}
    assert {m.name for m in reg.metrics() if m.directed} == {"information_imbalance", "gfre", "lfre"}
    assert reg.get_metric("information_imbalance").needs_k == "ii_k" and reg.get_metric("cknna").needs_k == "k"


def test_the_analysis_reads_labels_directions_and_verdict_roles_from_the_registry():
    assert an.LABELS == reg.labels()
    assert an.LOCAL_METRICS == ("cknna", "mutual_knn") and an.GLOBAL_METRICS == ("dcor", "cka", "information_imbalance")
    assert an.METRICS == ("cknna", "mutual_knn", "cka", "dcor", "information_imbalance")
    # the calibration's directions are the registry's (no copy kept by hand)
    assert dict(PAIR_METRICS) == {m: reg.get_metric(m).higher_is_more_aligned for m in an.METRICS}
    assert PAIR_METRICS["information_imbalance"] is False and PAIR_METRICS["cka"] is True
    assert "gfre" not in PAIR_METRICS
    # the report's figure labels are the registry's short labels
    assert ac.metric_label("cka") == "CKA" and ac.metric_label("cka", short=False) == "linear CKA"
    assert ac.metric_label("not-a-metric") == "not-a-metric"
    assert ac.is_directed("gfre") and not ac.is_directed("cknna")


def test_variants_are_the_registry_records():
    assert DEFAULT_VARIANTS == {"cknna": "unbiased", "mutual_knn": "cosine", "cka": "linear", "dcor": "v-statistic",
                                "information_imbalance": "euclidean", "gfre": "skmatter", "lfre": "skmatter"}
    for name, variants in METRIC_VARIANTS.items():
        rec = reg.get_metric(name)
        assert list(variants)[0] == rec.default_variant and dict(rec.variants) == variants
    assert "svcca" in METRIC_VARIANTS and "svcca" not in resolve_variants()
    assert resolve_variants(extra_metrics=["svcca"])["svcca"].name == "platonic-rep"
    with pytest.raises(ValueError, match="unknown variant 'x' of cka"):
        resolve_variants({"cka": "x"})


def test_resampling_pair_values_are_the_registry_pair_functions():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 7))
    Y = np.tanh(X @ rng.standard_normal((7, 5))) + 0.2 * rng.standard_normal((80, 5))
    resolved = resolve_variants({"cka": "rbf"})
    fns = reg.pair_functions(resolved)
    assert set(fns) == set(resolved) and {"gfre", "lfre", "information_imbalance"} <= set(fns)
    vals = pair_values([X, Y], [(0, 1)], list(fns), 10, 20, fns)
    for name, f in fns.items():
        if name == "information_imbalance":
            r = f(X, Y, 10, 20)
            want = {(0, 1): r.x_to_y, (1, 0): r.y_to_x}
        elif reg.get_metric(name).directed:  # both directions, row = source model
            want = {(0, 1): f(X, Y, 10, 20), (1, 0): f(Y, X, 10, 20)}
        else:
            want = {(0, 1): f(X, Y, 10, 20)}
        assert set(vals[name]) == set(want), name
        for p, v in want.items():
            assert np.allclose(vals[name][p], v, rtol=0, atol=1e-12), (name, p)


def _toy_metric(X, Y, power: float = 1.0) -> float:
    """|Pearson correlation| of the first columns, raised to ``power`` (a stand-in third-party metric)."""
    return float(abs(np.corrcoef(X[:, 0], Y[:, 0])[0, 1]) ** power)


def test_a_metric_registered_at_run_time_is_computed_by_align_when_asked():
    toy = AlignmentMetric(name="toy_first_column", label="first-column correlation", function=_toy_metric,
                          kind="pair", higher_is_more_aligned=True, scope="global", default=False,
                          variants={"abs": Variant("abs", "|r| of the first columns", {"power": 1.0}),
                                    "squared": Variant("squared", "r^2 of the first columns", {"power": 2.0})})
    reg.register_metric(toy)
    try:
        with pytest.raises(ValueError, match="already registered"):
            reg.register_metric(AlignmentMetric(name="toy_first_column", label="x", function=_toy_metric,
                                                kind="pair", higher_is_more_aligned=True, scope="global"))
        rng = np.random.default_rng(1)
        ids = [f"s{i}" for i in range(40)]
        Z = rng.standard_normal((40, 3))
        emb = {m: (ids, Z @ rng.standard_normal((3, 5)) + 0.1 * rng.standard_normal((40, 5))) for m in "abc"}
        sec = align_fast(emb, metrics=["toy_first_column"], variants={"toy_first_column": "squared"})
        entry = sec["metrics"]["toy_first_column"]
        X, Y = (np.asarray(emb[m][1]) for m in "ab")
        assert entry["variant"] == "squared" and entry["all"][0][1] == pytest.approx(_toy_metric(X, Y, 2.0))
        assert entry["higher_is_more_aligned"] is True and entry["k"] is None and len(entry["intervals"]["all"]) == 3
        assert "toy_first_column" not in align_fast(emb)["metrics"]
    finally:
        reg._REGISTRY.pop("toy_first_column", None)


def align_fast(emb, **kw):
    return an.align(emb, n_boot=3, repeats=2, n_perm=2, n_calibration=5, reconstruction=False, **kw)


def test_records_are_checked():
    with pytest.raises(ValueError, match="kind"):
        AlignmentMetric(name="x", label="x", function=_toy_metric, kind="triple", higher_is_more_aligned=True,
                        scope="global")
    with pytest.raises(ValueError, match="default variant"):
        AlignmentMetric(name="x", label="x", function=_toy_metric, kind="pair", higher_is_more_aligned=True,
                        scope="global", variants={"a": Variant("a", "")}, default_variant="b")
    with pytest.raises(ValueError, match="unknown alignment metric"):
        reg.get_metric("no_such_metric")


def test_options_group_the_keyword_arguments():
    opts = AlignOptions.from_kwargs(k=10, n_boot=5)
    assert opts.k == 10 and opts.n_boot == 5 and opts.ii_k == 50
    assert AlignOptions.from_kwargs(opts, k=12).n_boot == 5
    with pytest.raises(TypeError, match="unexpected keyword"):
        AlignOptions.from_kwargs(n_bootstrap=5)
    with pytest.raises(ValueError, match="per-model"):
        AlignOptions(metrics=("twonn",)).check()
    assert AlignOptions(metrics=("cknna", "svcca", "svcca")).extra_metrics() == ("svcca",)


def test_svcca_is_known_only_to_its_own_module():
    """Adding a metric is one file plus its test: no other package module names SVCCA."""
    own = PACKAGE / "alignment" / "metric_registry" / "svcca.py"
    assert own.is_file()
    others = [p for p in PACKAGE.rglob("*.py") if p != own and "svcca" in p.read_text(encoding="utf-8").lower()]
    assert others == []


def test_no_step_module_is_long():
    for p in [*(PACKAGE / "alignment" / "steps").glob("*.py"), *(PACKAGE / "alignment" / "metric_registry").glob("*.py"),
              PACKAGE / "alignment" / "analysis.py", PACKAGE / "alignment" / "options.py"]:
        assert len(p.read_text(encoding="utf-8").splitlines()) <= 500, p.name
