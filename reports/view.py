"""Read the audit document into the plain numbers and rows the report shows.

Every accessor tolerates missing sections and ``{"not_applicable": reason}`` results: it returns None (or
an empty list) instead of raising, so the report renders whatever exists.
"""
from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata

__all__ = ["dig", "coverage_section", "not_applicable_reason", "dataset_summary", "priorities", "comparisons",
           "compare_section", "comparison_reason", "raw_priorities", "display_names", "report_kind",
           "reference_display_name", "named_sets", "report_title", "set_label",
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
                     "evidence": format_evidence(r.get("evidence")), "suggestion": r.get("suggestion"),
                     "why": r.get("why")})
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


def compare_section(ds: Mapping) -> dict | None:
    """``ds["compare"]`` in the layout :func:`monoculture.audit.run.run_audit` writes (``elements``,
    ``chemical_space``, ``reference``), or None."""
    raw = ds.get("compare")
    if isinstance(raw, Mapping) and ("chemical_space" in raw or "elements" in raw):
        return dict(raw)
    return None


def comparisons(ds: Mapping) -> list[dict]:
    """This dataset's descriptor-space comparison results as a list.

    Accepts the audit layout (``{"elements", "chemical_space", "reference"}``: its ``chemical_space`` is
    returned, with ``b`` set to the reference when missing), one result, a list, or ``{name: result}``.
    Results that are ``{"not_applicable": reason}`` are left out (:func:`comparison_reason` gives it).
    """
    raw = ds.get("compare")
    sec = compare_section(ds)
    if sec is not None:
        cs = sec.get("chemical_space")
        if not isinstance(cs, Mapping) or not_applicable_reason(cs) is not None:
            return []
        out = dict(cs)
        if out.get("b") is None and sec.get("reference") is not None:
            out["b"] = sec["reference"]
        return [out]
    if isinstance(raw, Mapping):
        raw = [raw] if "a" in raw or "coverage_of_b_by_a" in raw else list(raw.values())
    if not isinstance(raw, list):
        return []
    return [dict(c) for c in raw if isinstance(c, Mapping) and not_applicable_reason(c) is None]


def comparison_reason(ds: Mapping) -> str | None:
    """Why the descriptor-space comparison of this dataset is missing (None when it exists or was not asked)."""
    sec = compare_section(ds)
    if sec is None:
        return None
    return not_applicable_reason(sec.get("chemical_space"))


def raw_priorities(ds: Mapping) -> list[dict]:
    """The priority rows as the audit wrote them (``coverage.priorities``, a list or ``{"rows": [...]}``)."""
    raw = dig(ds, "coverage", "priorities")
    if isinstance(raw, Mapping):
        raw = raw.get("rows")
    return [dict(r) for r in raw if isinstance(r, Mapping)] if isinstance(raw, list) else []


def _user_name(ds: Mapping) -> str:
    """The name the user gave: the file stem when the reader replaced it by the dataset card's name."""
    from pathlib import PurePath

    name = str(ds.get("name") or "dataset")
    card = ds.get("card") if isinstance(ds.get("card"), Mapping) else None
    files = ds.get("files") or []
    if card and card.get("name") == name and files:
        stem = PurePath(str(files[0])).name
        for suffix in (".gz", ".bz2", ".xz", ".zst"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        stem = PurePath(stem).stem or stem
        if stem and stem != name:
            return stem
    return name


def display_names(doc: Mapping) -> list[str]:
    """One distinct display name per ``doc["datasets"]`` entry, as the user gave it.

    The dataset's name, or its file stem when a dataset card's name replaced it (:func:`_user_name`). Two
    datasets of the same name are told apart by the shortest tail of their paths that differs
    (``a/g2`` and ``b/g2``), else by a number (``g2 [2]``).

    Returns
    -------
    list of str
        Same length and order as ``doc["datasets"]``.
    """
    from pathlib import PurePath

    datasets = [ds for ds in doc.get("datasets") or [] if isinstance(ds, Mapping)]
    names = [_user_name(ds) for ds in datasets]
    out = list(names)
    for name in set(names):
        idx = [i for i, n in enumerate(names) if n == name]
        if len(idx) < 2:
            continue
        parts = [PurePath(str((datasets[i].get("files") or [""])[0])).parts for i in idx]
        done = False
        for depth in range(2, max(len(p) for p in parts) + 1):
            tails = ["/".join(p[-depth:-1] + (name,)) for p in parts]
            if len(set(tails)) == len(tails):
                for i, t in zip(idx, tails):
                    out[i] = t
                done = True
                break
        if not done:
            for j, i in enumerate(idx):
                out[i] = name if j == 0 else f"{name} [{j + 1}]"
    return out


def report_kind(doc: Mapping) -> str:
    """What run made the document: ``"audit"``, ``"compare"`` (a reference was given), ``"align"`` (an
    alignment section and no dataset) or ``"audit and align"`` (both, as the demo)."""
    has_data = bool(doc.get("datasets"))
    al = doc.get("alignment")
    has_al = isinstance(al, Mapping) and not_applicable_reason(al) is None
    ref = dig(doc, "parameters", "reference") is not None
    if has_data:
        base = "compare" if ref else "audit"
        return f"{base} and align" if has_al else base
    return "align" if isinstance(al, Mapping) else "audit"


def reference_display_name(doc: Mapping, path: str | None = None) -> str | None:
    """Name of the reference dataset: the stem of ``path`` when the caller knows the path the user gave,
    else ``parameters.reference``."""
    from pathlib import PurePath

    if path:
        stem = PurePath(str(path).rstrip("/")).name
        for suffix in (".gz", ".bz2", ".xz", ".zst"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        return PurePath(stem).stem or stem
    ref = dig(doc, "parameters", "reference")
    if ref is None:
        return None
    raw = [str(ds.get("name")) for ds in doc.get("datasets") or [] if isinstance(ds, Mapping)]
    if raw.count(str(ref)) == 1:  # the reference is also one of the audited datasets: the same name
        return display_names(doc)[raw.index(str(ref))]
    return str(ref)


_GENERIC_SET_NAMES = {"id": "in distribution", "ood": "out of distribution"}


def set_label(al: Mapping, key: str) -> str:
    """``ID crystals (143 structures)``: the set's key, its name unless that only repeats the key, its size."""
    s = dig(al, "sets", key) or {}
    name = s.get("name")
    n = s.get("n")
    label = key.upper()
    if name and str(name).lower() not in (_GENERIC_SET_NAMES.get(key), key):
        label += f" {name}"
    else:
        label += " set"
    return label + (f" ({n:,} structures)" if isinstance(n, int) else "")


def report_title(doc: Mapping, names: list[str], reference: str | None) -> str:
    """Title saying what the run was: ``audit — A, B``, ``compare A against B``, ``align — ID: X, OOD: Y``."""
    kind = report_kind(doc)
    parts = []
    if kind.startswith("compare"):
        parts.append(f"compare {', '.join(names)} against {reference}")
    elif kind.startswith("audit"):
        parts.append(f"audit of {', '.join(names)}" if names else "audit")
    if kind.endswith("align"):
        al = doc.get("alignment") or {}
        sets = [set_label(al, k) for k in ("id", "ood") if isinstance(dig(al, "sets", k), Mapping)]
        n = len(al.get("models") or [])
        parts.append("align " + (f"{n} embeddings" if n else "embeddings") + (f" on {' and '.join(sets)}" if sets else ""))
    return "monoculture: " + "; ".join(parts)


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


def named_sets(doc: Mapping, set_paths: Mapping | None) -> Mapping:
    """A shallow copy of ``doc`` whose alignment sets are named by the stems of the paths the user gave
    (``{set key: paths}``); ``doc`` itself when there is nothing to name."""
    al = doc.get("alignment")
    if not set_paths or not isinstance(al, Mapping) or not isinstance(al.get("sets"), Mapping):
        return doc
    sets = {k: dict(v) if isinstance(v, Mapping) else v for k, v in al["sets"].items()}
    for key, paths in set_paths.items():
        if key in sets and isinstance(sets[key], dict) and paths:
            sets[key]["name"] = " + ".join(reference_display_name({}, str(p)) for p in paths)
    return {**doc, "alignment": {**al, "sets": sets}}
