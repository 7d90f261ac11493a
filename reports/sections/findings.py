"""Findings: the few sentences at the top of the page (the audit's rules, then each section's own)."""
from __future__ import annotations

from . import Report, ReportSection, register, registered


def _view(r: Report) -> dict:
    from ..findings import build_findings

    out = list(build_findings(r.doc, r.names, r.reference))
    for s in registered():
        if s.findings is not None:
            out += s.findings(r)
    return {"findings": out}


SECTION = register(ReportSection(
    name="findings", title="Findings", order=0, reads=("datasets", "alignment", "parameters.reference"),
    view=_view))
