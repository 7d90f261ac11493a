"""The environment-alignment report section (issues #21 and #23): built on a result of
:func:`~monoculture.audit.environments.alignment.align_environments` with a known answer, and through
``align-environments --report``."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from monoculture.audit.environments.alignment import AtomFeatures, align_environments
from monoculture.reports import schema_errors, write_report
from monoculture.reports.sections.environment_alignment import KEY, environment_alignment_document

P = 50  # permutations: enough for tau at the 95 % level, keeps the test fast


def _case(seed=6, n_clusters=6, per=60):
    """Two elements (O, Si) in well-separated QUESTS clusters; model b drifts from model a more the farther a
    cluster is from the training set (cluster c: the first ``shares[c]`` of its atoms are in training)."""
    rng = np.random.default_rng(seed)
    n = n_clusters * per
    ids = np.array([f"c{c}-{i // 2}" for c in range(n_clusters) for i in range(per)], dtype=object)
    index = np.array([i % 2 for c in range(n_clusters) for i in range(per)], dtype=np.int64)
    which = np.repeat(np.arange(n_clusters), per)
    env = rng.normal(size=(n_clusters, 63))[which] + 0.01 * rng.normal(size=(n, 63))
    Z = np.where(index == 0, 8, 14)
    A = rng.normal(size=(n, 8))
    B = A + np.linspace(0.0, 3.0, n_clusters)[which][:, None] * rng.normal(size=(n, 8))
    shares = np.linspace(1.0, 0.0, n_clusters)
    ref = np.concatenate([env[which == c][: int(round(shares[c] * per))] for c in range(n_clusters)])
    models = [AtomFeatures("model-a", ids, index, A, Z), AtomFeatures("model-b", ids, index, B, Z)]
    return models, AtomFeatures("QUESTS", ids, index, env, Z), ref


@pytest.fixture(scope="module")
def result():
    models, env, ref = _case()
    return align_environments(models, environments=env, reference=ref, reference_name="train", n_clusters=6,
                              n_permutations=P, min_environments=30, n_boot=200)


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    doc = environment_alignment_document(result, embeddings=["a.parquet", "b.parquet"], structures="atoms.extxyz",
                                         training="train.json", parameters={"k": 10, "permutations": P})
    out = tmp_path_factory.mktemp("rep") / "rep"
    write_report(doc, out)
    return doc, out


def test_document_carries_the_result_and_validates(result, written):
    doc, out = written
    sec = doc[KEY]
    assert sec["models"] == ["model-a", "model-b"] and sec["sentences"] == result.sentences
    assert sec["inputs"] == {"embeddings": ["a.parquet", "b.parquet"], "structures": "atoms.extxyz",
                             "training": "train.json"}
    assert schema_errors(doc) == []
    assert json.loads((out / "audit.json").read_text())[KEY]["groups"] == sec["groups"]
    bad = json.loads(json.dumps(doc))
    bad[KEY]["groups"][0]["kind"] = "molecule"
    bad[KEY]["groups"][0]["pairs"][0]["cknna"]["calibrated"] = 1.5
    errors = schema_errors(bad)
    assert any(e.startswith(f"/{KEY}/groups/0/kind") for e in errors)
    assert any(e.startswith(f"/{KEY}/groups/0/pairs/0/cknna/calibrated") for e in errors)


def test_report_shows_sentences_tables_and_figures(result, written):
    _doc, out = written
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert "<h1>monoculture: align environments of model-a and model-b on atoms against train</h1>" in html
    assert "a = model-a, b = model-b. GFRE a→b" in html
    assert 'id="environment-alignment"' in html and 'href="#environment-alignment"' in html
    for s in result.sentences:  # findings first: every sentence of the result, in order, before the section
        assert s.replace("'", "&#39;").replace(">", "&gt;") in html
    first = html.index(result.sentences[0].split(":")[0])
    assert first < html.index('id="environment-alignment"')
    # one row per group and pair: the numbers of the table are the result's, rounded
    groups = {g.label: g for g in result.groups}
    for label in ("all", "O", "Si", "cluster 0"):
        p = groups[label].pairs[0]
        low, high = p.mutual_knn_interval
        cells = (rf"\| {re.escape(label)}( \([^|]*\))? \| {groups[label].n_atoms:,} \| [^|]+ \| "
                 rf"{groups[label].k / groups[label].n_used:.3f} \| {p.cknna['calibrated']:.2f} \| "
                 rf"{p.cknna['raw']:.2f} / {p.cknna['tau']:.2f} \| [^|]+ \| {p.mutual_knn['calibrated']:.2f} "
                 rf"\[{low:.2f}–{high:.2f}\] \|")
        assert re.search(cells, md), label
        assert f"{p.gfre_a_to_b:.2f}" in md
    clusters = [g for g in result.groups if g.kind == "cluster"]
    assert md.count("| cluster ") == len(clusters) == 6
    # within-element CKNNA is shown where the group holds two elements (all, clusters), not for elements
    w = groups["all"].pairs[0].cknna_within_element
    assert f"{w['calibrated']:.2f} ({w['tau']:.2f})" in md
    # the coverage link in words, with its interval and the weak-evidence verdict (6 clusters < 8)
    link = result.coverage_link["cluster"]["overlap"]
    assert (f"Across 6 clusters, coverage measured by overlap share and the mean calibrated CKNNA: Spearman rho "
            f"{link['rho']:.2f} (95 % bootstrap {link['low']:.2f} to {link['high']:.2f}") in md
    assert "weak evidence (only 6 groups" in html
    assert result.coverage_link["element"]["overlap"]["reason"] == "2 groups; 3 or more are needed"
    assert md.count("Across elements, coverage was not linked to agreement: 2 groups; 3 or more are needed.") == 1
    # figures: files, embedded in the page, linked from Markdown, with the correlation in the caption
    for stem in ("environment_alignment_coverage", "environment_alignment_elements"):
        assert (out / "figures" / f"{stem}.png").is_file() and (out / "figures" / f"{stem}.svg").is_file()
        assert f'id="fig-{stem}"' in html and f"figures/{stem}.png" in md
    assert not (out / "figures" / "environment_alignment_ptable.png").exists()  # two elements: no table view
    cap = html[html.index('id="fig-environment_alignment_coverage"'):]
    assert f"rho {link['rho']:.2f}, 95 % bootstrap {link['low']:.2f} to {link['high']:.2f}: weak evidence" in cap
    # methods: the k rule, permutations, clustering space, merging
    assert "k = " in md and f"Chance levels from {P} row permutations" in md
    assert "QUESTS descriptors of the atoms" in html and "Symmetry-equivalent atoms merged" in html
    for text in (html, md):
        assert not re.search(r"\bNone\b|\bnan\b|\bNaN\b", text)


def test_without_training_and_with_many_elements():
    """No --against: no coverage column, no scatter, a sentence saying so; 3+ elements: the periodic table."""
    rng = np.random.default_rng(3)
    n_struct, per = 60, 4
    ids = np.repeat([f"s{i}" for i in range(n_struct)], per).astype(object)
    index = np.tile(np.arange(per), n_struct)
    Z = np.array([26, 28, 29, 78])[index]
    A = rng.normal(size=(len(ids), 6))
    B = A @ np.linalg.qr(rng.normal(size=(6, 6)))[0]
    B[Z == 78] = rng.normal(size=((Z == 78).sum(), 6))  # unrelated on Pt
    res = align_environments([AtomFeatures("x", ids, index, A, Z), AtomFeatures("y", ids, index, B, Z)],
                             n_permutations=P, n_clusters=1, min_environments=40)
    doc = environment_alignment_document(res, embeddings=["x.parquet", "y.parquet"])
    from monoculture.reports.writer import render_context

    ctx = render_context(doc)
    v = ctx[KEY]
    assert v["coverage"] is None and v["links"] == []
    assert [t["kind"] for t in v["tables"]] == ["all", "element"]
    pt = next(r for r in v["tables"][1]["rows"] if r["label"] == "Pt")
    assert pt["cknna"] == "0.00" and pt["overlap"] is None
    assert "Agreement collapses to chance (every pair's CKNNA within its permutation null) in Pt." in [
        f["text"] for f in ctx["findings"]]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        paths = write_report(doc, Path(d) / "rep")
        names = sorted(p.name for p in paths["figures"])
        html = paths["html"].read_text()
        md = paths["markdown"].read_text()
    assert "environment_alignment_ptable.png" in names and "environment_alignment_coverage.png" not in names
    assert "No training set was given" in html and "overlap" not in md.split("### All environments")[1].split("\n")[2]
    for text in (html, md):
        assert not re.search(r"\bNone\b|\bnan\b|\bNaN\b", text)


def test_page_without_the_key_has_no_section():
    from monoculture.reports.writer import render_context

    doc = {"schema_version": "1", "monoculture_version": "0", "run": {}, "datasets": []}
    assert KEY not in [s["name"] for s in render_context(doc)["sections"]]
    doc[KEY] = {"not_applicable": "no atoms joined"}
    assert KEY not in [s["name"] for s in render_context(doc)["sections"]]


def test_align_environments_report_option(tmp_path, capsys):
    """The command line writes the report from two per-atom embedding files (no --structures: the clusters
    come from the model features, and the report says so)."""
    import pyarrow.parquet as pq

    from monoculture.cli import main
    from monoculture.descriptors.embedding_files import embeddings_table

    rng = np.random.default_rng(4)
    n = 240
    ids = [f"s{i // 4}" for i in range(n)]
    index = np.arange(n) % 4
    Z = np.where(index < 2, 8, 14)
    A = rng.normal(size=(n, 5))
    B = A @ np.linalg.qr(rng.normal(size=(5, 5)))[0]
    paths = []
    for name, X in (("m-a", A), ("m-b", B)):  # the layout of `embed --pooling atoms`
        paths.append(tmp_path / f"{name}.parquet")
        pq.write_table(embeddings_table(ids, X, {"model": name, "pooling": "atoms"}, index, Z), paths[-1])
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    rc = main(["align-environments", *map(str, paths), "--report", str(tmp_path / "taken"), "--quiet"])
    assert rc == 2 and "is not an empty folder or a previous report" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]  # refused before any work
    rep = tmp_path / "rep"
    rc = main(["align-environments", *map(str, paths), "--permutations", "30", "--clusters", "2",
               "--report", str(rep), "--quiet"])
    assert rc == 0 and f"report: {rep / 'report.html'}" in capsys.readouterr().out
    doc = json.loads((rep / "audit.json").read_text())
    assert doc[KEY]["models"] == ["m-a", "m-b"] and doc["parameters"]["permutations"] == 30
    html = (rep / "report.html").read_text()
    assert 'id="environment-alignment"' in html and "concatenated model features" in html
    assert (rep / "figures" / "environment_alignment_elements.svg").is_file()
