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
    """Every schema violation of ``doc`` as ``"path: message"`` lines (empty when valid).

    Parameters
    ----------
    doc : dict
        An audit document.

    Returns
    -------
    list of str
    """
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def validate_document(doc: dict) -> None:
    """Raise :class:`jsonschema.ValidationError` when ``doc`` does not follow the schema.

    Parameters
    ----------
    doc : dict
        An audit document.
    """
    _validator().validate(doc)
