"""Reports of a monoculture audit: a self-contained HTML page, Markdown, the JSON document and figures.

The top of the data flow: reads the audit document (a dict), imports nothing that imports it.
"""
from .findings import build_findings
from .schema import load_schema, schema_errors, validate_document
from .writer import write_report

__all__ = ["write_report", "build_findings", "load_schema", "validate_document", "schema_errors"]
