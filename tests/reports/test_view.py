from monoculture.reports.view import comparisons, dataset_summary, parameters, priorities


def _ds(**extra):
    ds = {"name": "x", "n_frames": 10, "n_atoms": 40, "records": {"read": 10, "skipped": 0, "failed": 0},
          "elements": {"structures_per_element": {"Fe": 6, "O": 10}, "atoms_per_element": {"Fe": 12, "O": 28}},
          "level_of_theory": {"PBE": 7, "PBE+U": 3}, "method": {"relax": 10},
          "temperature_K": {"values": {}, "unknown": 10}}
    ds.update(extra)
    return ds


def test_summary_from_basic_counts():
    s = dataset_summary(_ds())
    assert (s["structures"], s["atoms"], s["elements_covered"]) == (10, 40, 2)
    assert s["dominant_lot"] == "PBE" and s["dominant_share"] == 0.7
    assert s["near_eq_share"] is None and s["near_eq_reason"] == "regime analyzer not run"
    assert s["top_priorities"] == []


def test_summary_uses_coverage_and_priorities():
    cov = {"regimes": {"equilibrium": {"near_equilibrium_share": 0.25, "threshold_fmax_eV_A": 0.05}},
           "level_of_theory": {"counts": {"PBE+U": 6, "PBE": 4}},
           "priorities": {"rows": [{"kind": "element", "item": s} for s in "ABCD"]}}
    s = dataset_summary(_ds(coverage=cov))
    assert s["near_eq_share"] == 0.25 and s["near_eq_threshold"] == 0.05
    assert s["dominant_lot"] == "PBE+U" and s["dominant_share"] == 0.6
    assert [r["item"] for r in s["top_priorities"]] == ["A", "B", "C"]
    assert [r["rank"] for r in priorities(_ds(coverage=cov))] == [1, 2, 3, 4]


def test_not_applicable_and_odd_shapes_do_not_crash():
    cov = {"regimes": {"not_applicable": "no forces"}, "priorities": {"not_applicable": "n/a"}}
    s = dataset_summary(_ds(coverage=cov))
    assert s["near_eq_reason"] == "no forces" and s["top_priorities"] == []
    one = {"a": "x", "b": "y", "coverage_of_b_by_a": 0.5}
    assert comparisons(_ds(compare=one)) == [one]
    assert comparisons(_ds(compare={"y": one})) == [one]
    assert comparisons(_ds(compare=[one, {"not_applicable": "r"}])) == [one]


def test_parameters_lists_run_and_analysis_settings():
    doc = {"run": {"seed": 3, "backend": "serial"},
           "datasets": [_ds(coverage={"regimes": {"equilibrium": {"threshold_fmax_eV_A": 0.05},
                                                  "histograms": {"fmax_eV_A": {"edges": [0, 0.05, 1], "counts": [1, 2]}}}})],
           "alignment": {"parameters": {"k": 25}, "metrics": {"cknna": {"k": 25}}}}
    rows = parameters(doc)
    assert ("run", "seed", 3) in rows
    assert ("x.regimes.equilibrium", "threshold_fmax_eV_A", 0.05) in rows
    assert ("x.regimes.histograms", "fmax_eV_A edges", "0, 0.05, 1") in rows
    assert ("alignment.metrics.cknna", "k", 25) in rows
