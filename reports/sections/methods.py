"""Methods: parameters, package versions and schema departures of the document (always last)."""
from __future__ import annotations

from .. import view
from . import Report, ReportSection, register, registered


def _notes(r: Report) -> list[str]:
    """Methods paragraphs of the other sections on the page (their contexts are merged: methods comes last)."""
    out = []
    for s in registered():
        if s.methods is not None and s.name != "methods" and s.applies(r):
            note = s.methods(r)
            if note:
                out.append(note)
    return out


def _view(r: Report) -> dict:
    return {"parameters": view.parameters(r.doc), "versions": view.package_versions(r.doc),
            "schema_errors": r.errors or [], "method_notes": _notes(r)}


SECTION = register(ReportSection(
    name="methods", title="Methods", order=1000, reads=("run", "parameters"), view=_view))
