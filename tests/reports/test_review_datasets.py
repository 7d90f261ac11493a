"""A document whose ``datasets`` list holds an entry that is no dict (review finding: the per-dataset figure
plans zipped the raw list with the display names and lost datasets)."""
from __future__ import annotations

from monoculture.reports.figures import plan_figures
from monoculture.reports.sections import Report


def _plans(doc):
    return [(p.dataset, p.section, p.name) for p in plan_figures(doc)]


def test_each_dataset_skips_entries_that_are_no_dict():
    a, b = {"name": "a", "n_frames": 1}, {"name": "b", "n_frames": 2}
    r = Report({"datasets": ["junk", a, 3, b]}, names=["a", "b"])
    assert list(r.each_dataset()) == [(0, a, "a"), (1, b, "b")]


def test_a_junk_entry_loses_no_figure(full_doc):
    clean = _plans(full_doc)
    per_dataset = [p for p in clean if p[0] is not None]
    assert {p[1] for p in per_dataset} >= {"elements", "level_of_theory", "regimes", "chemical_space"}
    assert any(p[2].startswith("elements_ptable") for p in per_dataset)
    junk = dict(full_doc, datasets=["junk"] + list(full_doc["datasets"]) + [None])
    assert _plans(junk) == clean
