"""``plan_figures`` plans what the writer draws (review finding: the writer built its own list, and
``plan_figures`` ignored the reference path and the alignment set paths)."""
from __future__ import annotations

from monoculture.reports.figures import plan_figures
from monoculture.reports.sections import Report


def test_plan_figures_takes_the_writer_arguments(full_doc, hand_alignment):
    full_doc["alignment"] = hand_alignment
    paths = {"id": ["/data/crystals_a.extxyz"], "ood": ["/data/molecules_b.xyz"]}
    plans = plan_figures(full_doc, reference_path="/data/ref_set.json.gz", set_paths=paths)
    report = Report.build(full_doc, reference_path="/data/ref_set.json.gz", set_paths=paths)
    assert report.reference == "ref_set"
    assert [(p.dataset, p.section, p.name, p.title, p.caption) for p in plans] == [
        (p.dataset, p.section, p.name, p.title, p.caption) for p in plan_figures(report)]
    text = " ".join(p.title + " " + p.caption for p in plans)
    assert "ref_set" in text
    assert "ref_set" not in " ".join(p.title + " " + p.caption for p in plan_figures(full_doc))
    assert len({p.name for p in plans}) == len(plans)
