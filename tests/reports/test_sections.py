"""The report-section registry (issue #21) and the sections it proved itself with: ``select`` and ``prune``
reports (issue #23)."""
from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from monoculture.reports import write_report
from monoculture.reports.sections import Report, ReportSection, SectionContextError, merge_into, registered
from monoculture.reports.writer import render_context

SEEN = ("findings", "context", "priorities", "summary", "elements", "level_of_theory", "regimes", "chemical_space",
        "comparison", "selection", "pruning", "environment_alignment", "alignment", "accounting", "methods")


def test_every_section_is_registered_once_with_both_templates():
    secs = registered()
    names = [s.name for s in secs]
    assert len(names) == len(set(names))
    assert set(SEEN) <= set(names)
    assert names[0] == "findings" and names[-1] == "methods"
    assert len({s.html_id for s in secs}) == len(secs)
    root = resources.files("monoculture.reports").joinpath("templates")
    for s in secs:
        assert s.reads, s.name
        for t in (s.html_template, s.md_template):
            text = root.joinpath(t).read_text("utf-8")
            if t.endswith(".html.j2"):
                assert f'id="{s.html_id}"' in text, t  # the block carries the anchor the table of contents links


def test_two_sections_may_not_set_the_same_key():
    ctx = {"a": 1}
    merge_into(ctx, {"b": 2}, "one")
    with pytest.raises(SectionContextError, match="'a'"):
        merge_into(ctx, {"a": 3}, "two")


def test_writer_names_no_section():
    """The page loops over the registered sections: no section name is written in the writer or the page
    templates."""
    import monoculture.reports.writer as w

    src = resources.files("monoculture.reports")
    page = src.joinpath("templates/report.html.j2").read_text("utf-8") + src.joinpath(
        "templates/report.md.j2").read_text("utf-8")
    code = open(w.__file__, encoding="utf-8").read()
    for name in ("priorities", "regimes", "chemical_space", "comparison", "selection", "pruning"):
        assert not re.search(rf"\b{name}\b", page), name
        assert f'"{name}"' not in code, name


def test_sections_on_the_page_follow_the_document():
    doc = {"schema_version": "1", "monoculture_version": "0", "run": {}, "datasets": []}
    ctx = render_context(doc)
    assert [s["name"] for s in ctx["sections"]] == ["findings", "methods"]
    assert ReportSection("x", "X", 1).html_template == "sections/x.html.j2"
    assert isinstance(Report(doc).live, list)


# --- select / prune reports on built cases with a known answer ------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Training: fcc Cu and Al. Pool: copies of both, and rocksalt NaCl (new elements Na and Cl, pair Na-Cl)."""
    import ase.io
    from ase.build import bulk

    d = tmp_path_factory.mktemp("built")
    training = [bulk("Cu", "fcc", a=3.6), bulk("Al", "fcc", a=4.05)]
    pool = [bulk("Cu", "fcc", a=3.6), bulk("NaCl", "rocksalt", a=5.64), bulk("Al", "fcc", a=4.05)]
    ase.io.write(d / "training.extxyz", training, format="extxyz")
    ase.io.write(d / "pool.extxyz", pool, format="extxyz")
    return d


def test_select_report_ranks_the_new_elements_first(built, tmp_path, capsys):
    from monoculture.cli import main

    rep = tmp_path / "rep"
    rc = main(["select", str(built / "pool.extxyz"), "--against", str(built / "training.extxyz"), "--budget", "3",
               "--out", str(tmp_path / "r.csv"), "--report", str(rep), "--quiet"])
    assert rc == 0 and f"report: {rep / 'report.html'}" in capsys.readouterr().out
    doc = json.loads((rep / "audit.json").read_text())
    sel = doc["selection"]
    # the copies of the training structures add nothing: only NaCl is ranked
    assert [r["id"] for r in sel["rows"]] == ["pool.extxyz:1"] and sel["summary"]["n_selected"] == 1
    assert [e["element"] for e in sel["added"]["elements"]] == ["Na", "Cl"]
    assert sel["added"]["pairs"] == [{"pair": "Na-Cl", "rank": 1}]
    assert sel["cumulative"]["gain_nats"] == pytest.approx([sel["rows"][0]["gain_nats"]])
    html = (rep / "report.html").read_text()
    md = (rep / "report.md").read_text()
    assert "<h1>monoculture: select 1 of pool against training</h1>" in html
    assert 'id="selection"' in html and 'href="#selection"' in html and 'id="alignment"' not in html
    assert "they bring 2 elements it lacks (Na, Cl) and 1 new element pair." in html
    assert "Na-Cl (1)" in html and "Na-Cl (1)" in md
    assert "| 1 | pool.extxyz:1 (Na Cl) |" in md
    assert (rep / "figures" / "selection_cumulative_gain.svg").is_file()
    assert (rep / "figures" / "selection_new_elements_ptable.png").is_file()
    assert "Counts are exact over every frame read" not in html  # the audit's methods text is not a selection's
    assert "QUESTS overlap" in html and "None" not in re.sub(r"<[^>]+>", " ", html)


def test_select_report_when_nothing_is_new(built, tmp_path):
    from monoculture.cli import main

    rep = tmp_path / "rep"
    assert main(["select", str(built / "training.extxyz"), "--against", str(built / "training.extxyz"),
                 "--budget", "2", "--out", str(tmp_path / "r.csv"), "--report", str(rep), "--quiet"]) == 0
    html = (rep / "report.html").read_text()
    assert "No training structure adds anything to training" in html
    assert not list((rep / "figures").glob("selection_*"))


def test_prune_report_measures_the_kept_share(built, tmp_path):
    from monoculture.cli import main

    rep = tmp_path / "rep"
    assert main(["prune", str(built / "pool.extxyz"), "--keep", "0.9", "--out", str(tmp_path / "p.csv"),
                 "--report", str(rep), "--quiet"]) == 0
    doc = json.loads((rep / "audit.json").read_text())
    p = doc["pruning"]
    curve, s = p["curve"], p["summary"]
    assert curve["n_structures"][-1] == 3 and curve["entropy_share"][-1] == pytest.approx(1.0)
    assert curve["element_share"] == sorted(curve["element_share"])  # elements only accumulate along the order
    k = curve["n_structures"].index(s["n_kept"])
    assert curve["entropy_share"][k] == pytest.approx(s["entropy_share"], rel=1e-6)
    assert curve["element_share"][k] >= 0.9 and len(p["rows"]) == s["n_kept"]
    html = (rep / "report.html").read_text()
    assert f"monoculture: prune pool to {s['n_kept']} structures" in html
    assert (rep / "figures" / "pruning_kept_share.png").is_file()


def test_selection_document_validates_and_round_trips(built, tmp_path):
    from monoculture.audit.environments.selection import select_structures
    from monoculture.audit.environments.sets import read_environments
    from monoculture.datasets import open_dataset
    from monoculture.reports import schema_errors
    from monoculture.reports.sections.selection import selection_document

    pool = read_environments(open_dataset(str(built / "pool.extxyz"), quiet=True))
    training = read_environments(open_dataset(str(built / "training.extxyz"), quiet=True))
    doc = selection_document(select_structures(pool, training, 3), pool, training, parameters={"budget": 3})
    assert schema_errors(doc) == []
    paths = write_report(doc, tmp_path / "r")
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(doc))


def test_section_schemas_check_their_keys(built, tmp_path):
    from monoculture.cli import main
    from monoculture.reports import schema_errors

    rep = tmp_path / "rep"
    assert main(["select", str(built / "pool.extxyz"), "--against", str(built / "training.extxyz"), "--budget", "2",
                 "--out", str(tmp_path / "r.csv"), "--report", str(rep), "--quiet"]) == 0
    doc = json.loads((rep / "audit.json").read_text())
    assert schema_errors(doc) == []
    doc["selection"]["rows"][0]["gain_nats"] = -1.0
    del doc["selection"]["summary"]["budget"]
    errors = schema_errors(doc)
    assert any(e.startswith("/selection/rows/0/gain_nats") for e in errors)
    assert any(e.startswith("/selection/summary") and "budget" in e for e in errors)
    assert schema_errors({**doc, "selection": {"not_applicable": "no pool"}}) == []
