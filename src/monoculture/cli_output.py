"""What every command of the ``monoculture`` command line writes the same way: the one-line usage error, JSON
files written whole or not at all, and reports (``--json FILE`` / ``--report DIR`` / ``--pdf`` / ``--context``).

Shared by :mod:`monoculture.cli` and :mod:`monoculture.cli_vectors`; imports nothing heavy at module level.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monoculture.datasets.errors import UsageError

__all__ = ["UserError", "add_report_options", "atomic_write", "write_json", "emit", "write_report"]


class UserError(UsageError):
    """An error of the command line's own checks, reported as one line and exit status 2."""


def add_report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pdf", action="store_true",
                   help="also print report.pdf with the installed Chromium (skipped with one line when there is none)")
    p.add_argument("--context", nargs="+", default=[], metavar="AUDIT.json",
                   help="audit JSON files whose datasets join the report's context table beside the dataset cards")


def atomic_write(out: str | Path, write) -> None:
    """Run ``write(tmp_path)`` on a temporary file beside ``out``, then rename it to ``out``: the file is
    written whole or not at all (the temporary file is removed on any error or Ctrl-C). The one implementation
    is :func:`monoculture.descriptors.driver.atomic_write`, imported when called (this module stays light)."""
    from monoculture.descriptors.driver import atomic_write as _atomic_write

    _atomic_write(out, write)


def write_json(doc: dict, path: str, default=None) -> None:
    """Write ``doc`` to ``path`` as strict JSON (no NaN), whole or not at all (:func:`atomic_write`)."""
    text = json.dumps(doc, indent=1, sort_keys=False, allow_nan=False, default=default) + "\n"
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def emit(doc: dict, args) -> None:
    """Write the document where the arguments ask: ``--json FILE`` and ``--report DIR``."""
    if args.json_out:
        write_json(doc, args.json_out)
    if args.report:
        sets = {k: getattr(args, f"{k}_set", None) for k in ("id", "ood") if getattr(args, f"{k}_set", None)}
        write_report(doc, args.report, pdf=getattr(args, "pdf", False), context=getattr(args, "context", ()),
                      reference=getattr(args, "reference", None) or getattr(args, "against", None), sets=sets)


def write_report(doc: dict, folder: str, pdf: bool = False, context=(), reference: str | None = None,
                  sets: dict | None = None) -> None:
    from monoculture.reports import write_report
    from monoculture.reports.writer import ReportFolderError

    try:
        paths = write_report(doc, Path(folder), pdf=pdf, context=context or (), reference_path=reference,
                             set_paths=sets or None)
    except (ReportFolderError, ValueError) as exc:
        raise UserError(str(exc)) from None
    print(f"report: {paths.get('html', folder)}")
    if paths.get("pdf"):
        print(f"pdf: {paths['pdf']}")
    elif pdf:
        print(f"monoculture: {paths.get('pdf_skipped')}", file=sys.stderr)
