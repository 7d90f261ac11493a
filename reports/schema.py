"""The JSON Schema of the audit document, and its validation."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import jsonschema

__all__ = ["load_schema", "validate_document", "schema_errors"]


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("monoculture.reports").joinpath("schema/audit.schema.json").read_text("utf-8")


def load_schema() -> dict:
    """The audit-document schema (JSON Schema draft 2020-12) as a new dict."""
    return json.loads(_schema_text())


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema())


def schema_errors(doc: dict) -> list[str]:
    """Every schema violation of ``doc`` as ``"path: message"`` lines (empty when valid): against the audit
    schema and against the schema of every top-level key a report section declares.

    Parameters
    ----------
    doc : dict
        An audit document.

    Returns
    -------
    list of str
    """
    errors = list(_validator().iter_errors(doc))
    for key, sub in _section_schemas().items():
        if isinstance(doc, dict) and key in doc:
            for e in jsonschema.Draft202012Validator(sub).iter_errors(doc[key]):
                e.path.appendleft(key)
                errors.append(e)
    errors.sort(key=lambda e: list(map(str, e.absolute_path)))
    return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def _section_schemas() -> dict:
    """``{top-level key: schema}`` declared by the registered report sections (:mod:`.sections`)."""
    from .sections import registered

    out = {}
    for s in registered():
        out.update(s.schema or {})
    return out


def validate_document(doc: dict) -> None:
    """Raise :class:`jsonschema.ValidationError` when ``doc`` does not follow the schema (the audit schema, then
    the schemas report sections declare for their keys).

    Parameters
    ----------
    doc : dict
        An audit document.
    """
    _validator().validate(doc)
    for key, sub in _section_schemas().items():
        if isinstance(doc, dict) and key in doc:
            jsonschema.Draft202012Validator(sub).validate(doc[key])
