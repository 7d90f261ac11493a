"""The environment-alignment section judges groups by the audit's own rules (review finding: it had copies
of ``GroupAlignment.mean_calibrated`` and of the agree / chance rules with a hard-coded level)."""
from __future__ import annotations

import math

import pytest

from monoculture.audit.environments import alignment_result as ar
from monoculture.reports.sections import environment_alignment as ea


def _pair(cal, p, mk=0.3):
    return {"model_a": "a", "model_b": "b", "cknna": {"raw": 0.5, "tau": 0.1, "calibrated": cal, "p_value": p},
            "mutual_knn": {"raw": 0.4, "tau": 0.1, "calibrated": mk, "p_value": p},
            "gfre_a_to_b": 0.2, "gfre_b_to_a": 0.3}


def _group(*pairs):
    return {"kind": "element", "label": "O", "description": "", "n_atoms": 10, "n_environments": 10, "n_used": 10,
            "k": 3, "effective_dimension": {}, "pairs": list(pairs), "coverage": None}


@pytest.mark.parametrize("pairs, verdict, mean", [
    ([_pair(0.0, 0.5), _pair(0.0, 0.7)], "chance", 0.0),
    ([_pair(0.8, 0.01), _pair(0.6, 0.02)], "agree", 0.7),
    ([_pair(0.8, 0.01), _pair(0.6, None)], "weak", 0.7),        # a pair without a p-value is not above chance
    ([_pair(0.9, 0.01), _pair(0.0, 0.3)], "weak", 0.45),
    ([_pair(None, None), _pair(0.7, 0.001)], "weak", 0.7),      # the mean skips a missing score, the rule not
])
def test_verdict_and_mean_follow_the_audit(pairs, verdict, mean):
    g = _group(*pairs)
    assert ea._verdict(g) == verdict
    assert ea._mean_cal(g) == pytest.approx(mean)
    assert ea._mean_cal(g, "mutual_knn") == pytest.approx(0.3)


def test_the_audit_level_decides(monkeypatch):
    g = _group(_pair(0.8, 0.03), _pair(0.7, 0.03))
    assert ea._verdict(g) == "agree"
    monkeypatch.setattr(ar, "_ALPHA", 0.01)  # the audit's level, not a copy of it
    assert ea._verdict(g) == "weak"


def test_no_finite_score_has_no_mean():
    assert ea._mean_cal(_group(_pair(None, None))) is None
    assert not math.isfinite(ar.GroupAlignment(**{**_group(), "pairs": []}).mean_calibrated())


def test_stem_and_list():
    assert ea._stem("data/atoms.extxyz.gz") == "atoms" and ea._stem(None) is None and ea._stem("") is None
    assert ea._and(["a"]) == "a" and ea._and(["a", "b"]) == "a and b" and ea._and(["a", "b", 3]) == "a, b and 3"
