"""The wheel holds every subpackage and data file: pyproject's explicit package list cannot fall behind."""
from __future__ import annotations

import glob
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    cfg = _setuptools()
    listed = set(cfg["packages"])
    missing = []
    for package, folder in cfg["package-dir"].items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            name = ".".join((package, *rel.parts)) if rel.parts else package
            if "__pycache__" not in rel.parts and name not in listed:
                missing.append(name)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(set(missing))}"


def test_report_templates_are_package_data():
    cfg = _setuptools()
    patterns = cfg["package-data"]["monoculture.reports"]
    root = REPO / "reports"
    files = {p.relative_to(root).as_posix() for p in (root / "templates").rglob("*") if p.is_file()}
    assert files
    # setuptools expands package-data patterns as glob does ("*" stays within one folder, "**" recurses).
    matched = {Path(f).relative_to(root).as_posix() for pat in patterns
               for f in glob.glob(str(root / pat), recursive=True) if Path(f).is_file()}
    unmatched = sorted(files - matched)
    assert not unmatched, f"templates a wheel would miss: {unmatched}"
