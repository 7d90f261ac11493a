"""Representation alignment of model embeddings: verdicts, metrics, near duplicates (``alignment``)."""
from __future__ import annotations

from collections.abc import Mapping

from .. import view
from . import Report, ReportSection, register


def _view(r: Report) -> dict:
    al = r.doc.get("alignment")
    if not isinstance(al, Mapping):
        return {"alignment": None}
    verdicts = []
    for key, v in (al.get("verdicts") or {}).items():
        if isinstance(v, Mapping) and v.get("verdict") is not None:
            verdicts.append({"key": key.replace("_", " "), **{k: v.get(k) for k in (
                "question", "statistic", "estimate", "interval", "level", "verdict", "explanation")}})
    nd = al.get("near_duplicates") if isinstance(al.get("near_duplicates"), Mapping) else {}
    sets = []
    for k, v in (al.get("sets") or {}).items():
        if isinstance(v, Mapping):
            nm, n = view.dig(v, "name"), view.dig(v, "n")
            sets.append({"key": str(k).upper(), "name": nm if nm is not None else str(k).upper(), "n": n})
    return {"alignment": {
        "reason": view.not_applicable_reason(al),
        "models": [str(m) for m in al.get("models") or []],
        "sets": sets,
        "figures": r.figures_of("alignment"),
        "near_duplicates": {"metric": nd.get("metric"), "threshold": nd.get("threshold"),
                            "rows": [{"model_a": x.get("model_a") or "–", "model_b": x.get("model_b"),
                                      "set": x.get("set") or "–", "score": x.get("score"), "note": x.get("note") or ""}
                                     for x in nd.get("rows") or [] if isinstance(x, Mapping)]},
        "verdicts": verdicts,
        "warnings": [str(w) for w in al.get("warnings") or []],
        "calibration_note": view.dig(al, "calibration", "explanation"),
    }}


def _figures(r: Report) -> list:
    from ..figures import alignment_plans

    al = r.doc.get("alignment")
    if isinstance(al, Mapping) and view.not_applicable_reason(al) is None:
        return alignment_plans(al)
    return []


SECTION = register(ReportSection(
    name="alignment", title="Alignment", order=90, reads=("alignment",), view=_view, figures=_figures,
    applies=lambda r: bool(r.context["alignment"])))
