"""Read the audit document into the plain numbers and rows the report shows.

Every accessor tolerates missing sections and ``{"not_applicable": reason}`` results: it returns None (or
an empty list) instead of raising, so the report renders whatever exists.
"""
from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata

__all__ = ["dig", "coverage_section", "not_applicable_reason", "dataset_summary", "priorities", "comparisons",
           "accounting", "card_rows", "parameters", "package_versions", "level_of_theory_counts",
           "REPORT_PACKAGES", "PARAMETER_KEYS"]

#: Distributions whose versions the methods section lists (those installed).
REPORT_PACKAGES = ("monoculture", "numpy", "scipy", "pandas", "pyarrow", "pymatgen", "ase", "scikit-learn",
                   "umap-learn", "faiss-cpu", "dscribe", "quests", "dcor", "matplotlib", "jinja2", "jsonschema")

#: Keys whose scalar values count as parameters of an analysis (shown in the methods section).
PARAMETER_KEYS = frozenset({
    "seed", "backend", "k", "rule", "capacity", "descriptor", "dim", "index", "exact", "nlist", "nprobe",
    "bandwidth", "bandwidth_rule", "kernel", "threshold", "threshold_fmax_eV_A", "strongly_distorted_fmax_eV_A",
    "n_neighbors", "min_dist", "radius", "radius_rule", "near_threshold", "universe", "estimator", "metric",
    "method", "level", "ci_level", "n_boot", "discard_fraction", "normalisation", "scale_label",
})


def dig(obj, *keys, default=None):
    """``obj[k1][k2]...`` or ``default`` when a key is missing, a level is not a dict, or the value is None."""
    for k in keys:
        if isinstance(obj, Mapping) and k in obj and obj[k] is not None:
            obj = obj[k]
        elif isinstance(obj, list) and isinstance(k, int) and -len(obj) <= k < len(obj):
            obj = obj[k]
        else:
            return default
    return obj


def not_applicable_reason(obj) -> str | None:
    """The reason of a ``{"not_applicable": reason}`` result, else None."""
    if isinstance(obj, Mapping) and "not_applicable" in obj:
        return str(obj["not_applicable"])
    return None


def coverage_section(ds: Mapping, name: str) -> dict | None:
    """``ds["coverage"][name]`` when it is a real result (not missing, not ``not_applicable``)."""
    sec = dig(ds, "coverage", name)
    if not isinstance(sec, Mapping) or not_applicable_reason(sec) is not None:
        return None
    return dict(sec)


def level_of_theory_counts(ds: Mapping) -> dict[str, int]:
    """Frames per level-of-theory label, from the coverage analyzer when present, else the basic counts."""
    counts = dig(coverage_section(ds, "level_of_theory"), "counts") or dig(ds, "level_of_theory") or {}
    return dict(sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0])))


def priorities(ds: Mapping) -> list[dict]:
    """Ranked priority rows ``{rank, kind, item, score, evidence, suggestion}`` (empty when not computed)."""
    raw = dig(ds, "coverage", "priorities")
    if isinstance(raw, Mapping):
        raw = raw.get("rows")
    if not isinstance(raw, list):
        return []
    rows = []
    for i, r in enumerate(x for x in raw if isinstance(x, Mapping)):
        rows.append({"rank": i + 1, "kind": r.get("kind"), "item": r.get("item"), "score": r.get("score"),
                     "evidence": format_evidence(r.get("evidence")), "suggestion": r.get("suggestion")})
    return rows


def format_evidence(evidence) -> str | None:
    """Evidence counts as readable text: ``{"structures": 3, "frames": 83}`` -> ``structures 3, frames 83``."""
    if evidence is None or isinstance(evidence, str):
        return evidence
    if isinstance(evidence, Mapping):
        parts = []
        for k, v in evidence.items():
            if isinstance(v, Mapping):
                v = ", ".join(f"{kk} {vv}" for kk, vv in v.items())
                parts.append(f"{k} ({v})")
            else:
                parts.append(f"{k} {v}")
        return "; ".join(parts)
    return str(evidence)


def dataset_summary(ds: Mapping) -> dict:
    """The five numbers that matter for one dataset.

    Returns
    -------
    dict
        ``structures`` (frames read), ``atoms``, ``elements_covered`` (distinct elements with at least one
        structure), ``dominant_lot`` and ``dominant_share`` (None when no frame), ``near_eq_share`` (share
        of frames with forces whose fmax is below the threshold; None when not computed),
        ``near_eq_threshold`` (eV/Å), ``near_eq_reason`` (why it is missing), ``top_priorities`` (<= 3 rows).
    """
    counts = level_of_theory_counts(ds)
    total = sum(counts.values())
    dominant = next(iter(counts), None)
    regimes = coverage_section(ds, "regimes")
    eq = dig(regimes, "equilibrium") or {}
    near = eq.get("near_equilibrium_share")
    if regimes is None:
        reason = not_applicable_reason(dig(ds, "coverage", "regimes")) or "regime analyzer not run"
    elif near is None:
        reason = "no frame has forces"
    else:
        reason = None
    elements = dig(ds, "elements", "structures_per_element") or {}
    return {
        "structures": int(ds.get("n_frames", 0) or 0),
        "atoms": int(ds.get("n_atoms", 0) or 0),
        "elements_covered": sum(1 for v in elements.values() if v),
        "dominant_lot": dominant,
        "dominant_share": (counts[dominant] / total) if dominant is not None and total else None,
        "near_eq_share": near,
        "near_eq_threshold": eq.get("threshold_fmax_eV_A"),
        "near_eq_reason": reason,
        "top_priorities": priorities(ds)[:3],
    }


def comparisons(ds: Mapping) -> list[dict]:
    """This dataset's comparison results as a list (accepts one result, a list, or ``{name: result}``)."""
    raw = ds.get("compare")
    if isinstance(raw, Mapping):
        raw = [raw] if "a" in raw or "coverage_of_b_by_a" in raw else list(raw.values())
    if not isinstance(raw, list):
        return []
    return [dict(c) for c in raw if isinstance(c, Mapping) and not_applicable_reason(c) is None]


def accounting(ds: Mapping) -> dict:
    """Read / skipped / failed counts, reasons (``[(reason, count)]``, largest first) and example records."""
    rec = ds.get("records") or {}

    def reasons(key):
        return sorted(((str(k), int(v)) for k, v in (rec.get(key) or {}).items()), key=lambda kv: (-kv[1], kv[0]))

    examples = []
    for ex in rec.get("examples") or []:
        if isinstance(ex, Mapping):
            examples.append({str(k): ex[k] for k in ex})
        else:
            examples.append({"record": ex})
    return {"read": int(rec.get("read", 0) or 0), "skipped": int(rec.get("skipped", 0) or 0),
            "failed": int(rec.get("failed", 0) or 0), "skipped_reasons": reasons("skipped_reasons"),
            "failed_reasons": reasons("failed_reasons"), "examples": examples,
            "example_keys": list(dict.fromkeys(k for ex in examples for k in ex))}


_CARD_FIELDS = (("title", "Title"), ("functional", "Functional"), ("hubbard_u", "Hubbard U"),
                ("basis", "Basis / pseudopotentials"), ("code", "Code"), ("dispersion", "Dispersion"),
                ("regimes", "Regimes"), ("size", "Size (structures, full dataset)"), ("licence", "Licence"),
                ("citation", "Citation"), ("url", "URL"))


def card_rows(ds: Mapping) -> list[tuple[str, str]]:
    """``[(field, value)]`` of the dataset card (empty when the dataset has none)."""
    card = ds.get("card")
    if not isinstance(card, Mapping):
        return []
    rows = [(label, card[key]) for key, label in _CARD_FIELDS if card.get(key) not in (None, "")]
    known = {k for k, _ in _CARD_FIELDS} | {"name"}
    rows += [(str(k), v) for k, v in card.items() if k not in known and isinstance(v, (str, int, float))]
    return [(k, f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)) for k, v in rows]


def _scalar_params(obj, path: str, out: list, depth: int = 0) -> None:
    if depth > 4 or not isinstance(obj, Mapping):
        return
    for k, v in obj.items():
        if isinstance(v, Mapping):
            _scalar_params(v, f"{path}.{k}", out, depth + 1)
        elif k in PARAMETER_KEYS and isinstance(v, (str, int, float, bool)):
            out.append((path, str(k), v))


def _edges_text(edges) -> str:
    return ", ".join(f"{e:g}" for e in edges)


def parameters(doc: Mapping) -> list[tuple[str, str, object]]:
    """Every parameter the document records, as ``(where, name, value)`` rows.

    Collected from ``run`` (seed, backend, free-form ``run.parameters``), each dataset's coverage results
    (keys in :data:`PARAMETER_KEYS`, histogram edges, the level-of-theory override) and ``alignment``
    (its ``parameters`` and per-metric ``k``).
    """
    rows: list[tuple[str, str, object]] = []
    run = doc.get("run") or {}
    for k in ("seed", "backend"):
        if k in run:
            rows.append(("run", k, run[k]))
    for k, v in (run.get("parameters") or {}).items():
        rows.append(("run.parameters", str(k), v))
    for k, v in (doc.get("parameters") or {}).items():
        rows.append(("parameters", str(k), v))
    for ds in doc.get("datasets") or []:
        name = str(ds.get("name", "?"))
        if ds.get("level_of_theory_override"):
            rows.append((name, "level_of_theory_override", ds["level_of_theory_override"]))
        cov = ds.get("coverage") or {}
        for sec, res in cov.items():
            if not isinstance(res, Mapping) or "not_applicable" in res:
                continue
            found: list = []
            _scalar_params({k: v for k, v in res.items() if k not in ("per_element", "histograms", "umap")},
                           f"{name}.{sec}", found)
            if isinstance(res.get("umap"), Mapping):
                _scalar_params({k: v for k, v in res["umap"].items() if k in PARAMETER_KEYS},
                               f"{name}.{sec}.umap", found)
            rows += found
            for hname, h in (res.get("histograms") or {}).items():
                if isinstance(h, Mapping) and "edges" in h:
                    rows.append((f"{name}.{sec}.histograms", f"{hname} edges", _edges_text(h["edges"])))
        for c in comparisons(ds):
            found = []
            _scalar_params({k: v for k, v in c.items() if k not in ("per_element_novelty",)},
                           f"{name}.compare[{c.get('b', '?')}]", found)
            rows += found
    al = doc.get("alignment")
    if isinstance(al, Mapping) and "not_applicable" not in al:
        for k, v in (al.get("parameters") or {}).items():
            rows.append(("alignment.parameters", str(k), v))
        for metric, m in (al.get("metrics") or {}).items():
            if isinstance(m, Mapping) and m.get("k") is not None:
                rows.append((f"alignment.metrics.{metric}", "k", m["k"]))
        for key in ("intrinsic_dimension", "k_sweep", "id_vs_scale", "near_duplicates", "gap_vs_collapse",
                    "family_tree"):
            sub = al.get(key)
            if isinstance(sub, Mapping):
                _scalar_params({k: v for k, v in sub.items() if not isinstance(v, (list, Mapping))},
                               f"alignment.{key}", rows)
    return rows


def package_versions(doc: Mapping | None = None) -> dict[str, str]:
    """Python and package versions of the environment writing the report (those installed), updated with
    ``doc["run"]["versions"]`` of the audit run when the document records them."""
    out = {"python": platform.python_version()}
    for dist in REPORT_PACKAGES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    recorded = dig(doc or {}, "run", "versions") or {}
    out.update({str(k): str(v) for k, v in recorded.items()})
    return out
