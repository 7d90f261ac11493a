"""Typed results: the JSON document of an audit, a comparison or an alignment, with sections as objects.

The document (a dict, exactly what ``--json`` writes; layout in ``reports/schema/audit.schema.json``) stays the
one source of truth: a result wraps it, its sections are read-only views with typed fields, and
:meth:`AuditResult.to_json` / :meth:`AuditResult.from_json` round-trip it exactly (same text, same
``schema_version``: :data:`SCHEMA_VERSION`, defined once in :mod:`monoculture.audit.document`).

>>> r = AuditResult.from_json(text)                         # doctest: +SKIP
>>> r.elements.to_frame()                                   # doctest: +SKIP
    dataset element   Z  structures  atoms
>>> r.datasets[0].level_of_theory.dominant_share            # doctest: +SKIP
0.889

Per dataset (:class:`DatasetResult`) the sections of :mod:`monoculture.sections`: ``records``, ``elements``,
``level_of_theory``, ``regimes``, ``chemical_space``, ``duplicates``, ``priorities`` and, with a reference,
``comparison``. Over all datasets, ``result.elements`` (etc.) is a :class:`SectionTable`: index it by dataset
name, or call ``.to_frame()`` for one long table with a ``dataset`` column. :class:`AlignmentResult` has
:class:`AlignmentMetrics` (``.metrics``).

This module sits at the top of the package (it writes reports through :mod:`monoculture.reports`); pandas is
imported only by ``to_frame``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monoculture.audit.document import SCHEMA_VERSION
from monoculture.datasets.errors import UsageError

from .sections import (
    SECTIONS,
    AlignmentMetrics,
    ChemicalSpace,
    Comparison,
    Duplicates,
    Elements,
    LevelOfTheory,
    Priorities,
    Records,
    Regimes,
    Section,
    SectionTable,
)

__all__ = ["SCHEMA_VERSION", "Section", "Records", "Elements", "LevelOfTheory", "Regimes", "ChemicalSpace",
           "Duplicates", "Priorities", "Comparison", "AlignmentMetrics", "SectionTable", "DatasetResult",
           "AuditResult", "ComparisonResult", "AlignmentResult", "load_result", "SECTIONS"]


@dataclass(frozen=True)
class DatasetResult:
    """One audited dataset of a result: identity, sizes, and its sections (see :data:`SECTIONS`)."""

    raw: dict = field(repr=False)

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def format(self) -> str:
        return self.raw.get("format")

    @property
    def files(self) -> list[str]:
        return list(self.raw.get("files") or [])

    @property
    def n_frames(self) -> int:
        """Frames audited."""
        return self.raw.get("n_frames", 0)

    @property
    def n_atoms(self) -> int:
        """Atoms in the audited frames."""
        return self.raw.get("n_atoms", 0)

    @property
    def card(self) -> dict | None:
        """The dataset card (level of theory, licence, citation), or None."""
        return self.raw.get("card")

    def section(self, name: str) -> Section:
        """The section called ``name`` (a key of :data:`SECTIONS`)."""
        try:
            cls = SECTIONS[name]
        except KeyError:
            raise UsageError(f"unknown section {name!r}; sections: {', '.join(SECTIONS)}") from None
        return cls.of_dataset(self.raw)

    records = property(lambda self: self.section("records"), doc="Record accounting (:class:`Records`).")
    elements = property(lambda self: self.section("elements"), doc=":class:`Elements`.")
    level_of_theory = property(lambda self: self.section("level_of_theory"), doc=":class:`LevelOfTheory`.")
    regimes = property(lambda self: self.section("regimes"), doc=":class:`Regimes`.")
    chemical_space = property(lambda self: self.section("chemical_space"), doc=":class:`ChemicalSpace`.")
    duplicates = property(lambda self: self.section("duplicates"), doc=":class:`Duplicates`.")
    priorities = property(lambda self: self.section("priorities"), doc=":class:`Priorities`.")
    comparison = property(lambda self: self.section("comparison"), doc=":class:`Comparison` (with a reference).")


# -- results --------------------------------------------------------------------------------------------
@dataclass
class AuditResult:
    """The document of ``monoculture audit`` with typed access.

    Parameters
    ----------
    document : dict
        The JSON document (``schema_version``, ``monoculture_version``, ``run``, ``parameters``, ``datasets``,
        optionally ``chemical_space`` and ``alignment``).
    """

    document: dict

    def __post_init__(self):
        doc = self.document
        if not isinstance(doc, Mapping) or "schema_version" not in doc or "datasets" not in doc:
            raise UsageError("not a monoculture document: expected an object with 'schema_version' and 'datasets'")
        if str(doc["schema_version"]).split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise UsageError(f"document schema_version {doc['schema_version']!r} is not readable by this "
                             f"monoculture (schema_version {SCHEMA_VERSION})")

    # document-level fields
    @property
    def schema_version(self) -> str:
        return self.document["schema_version"]

    @property
    def monoculture_version(self) -> str:
        return self.document.get("monoculture_version")

    @property
    def run(self) -> dict:
        """Volatile facts of the run (start, seconds per step, host, backend)."""
        return self.document.get("run", {})

    @property
    def parameters(self) -> dict:
        """Every parameter that shaped the results (seed, descriptor, sample size...)."""
        return self.document.get("parameters", {})

    @property
    def datasets(self) -> list[DatasetResult]:
        return [DatasetResult(ds) for ds in self.document["datasets"]]

    def dataset(self, name: str) -> DatasetResult:
        """The dataset called ``name``."""
        for ds in self.datasets:
            if ds.name == name:
                return ds
        raise UsageError(f"no dataset {name!r}; datasets: {', '.join(d.name for d in self.datasets)}")

    def _table(self, name: str) -> SectionTable:
        return SectionTable({ds.name: ds.section(name) for ds in self.datasets}, list(SECTIONS[name].COLUMNS))

    records = property(lambda self: self._table("records"), doc=":class:`SectionTable` of :class:`Records`.")
    elements = property(lambda self: self._table("elements"), doc=":class:`SectionTable` of :class:`Elements`.")
    level_of_theory = property(lambda self: self._table("level_of_theory"),
                               doc=":class:`SectionTable` of :class:`LevelOfTheory`.")
    regimes = property(lambda self: self._table("regimes"), doc=":class:`SectionTable` of :class:`Regimes`.")
    chemical_space = property(lambda self: self._table("chemical_space"),
                              doc=":class:`SectionTable` of :class:`ChemicalSpace`.")
    duplicates = property(lambda self: self._table("duplicates"),
                          doc=":class:`SectionTable` of :class:`Duplicates`.")
    priorities = property(lambda self: self._table("priorities"),
                          doc=":class:`SectionTable` of :class:`Priorities`.")

    def to_frame(self):
        """One row per dataset: name, format, frames, atoms, records read / skipped / failed."""
        rows = [{"dataset": d.name, "format": d.format, "n_frames": d.n_frames, "n_atoms": d.n_atoms,
                 "read": d.records.read, "skipped": d.records.skipped, "failed": d.records.failed}
                for d in self.datasets]
        import pandas as pd

        return pd.DataFrame(rows, columns=["dataset", "format", "n_frames", "n_atoms", "read", "skipped", "failed"])

    # JSON
    def to_json(self, path: str | Path | None = None) -> str:
        """The document as JSON text (as ``--json`` writes it); also written to ``path`` when given."""
        text = json.dumps(self.document, indent=1, sort_keys=False, allow_nan=False) + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, source: str | Path):
        """A result from JSON text or a JSON file (``--json`` output); ``from_json(r.to_json())`` equals ``r``."""
        if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
            path = Path(source)
            if not path.is_file():
                raise UsageError(f"{path}: no such file")
            source = path.read_text(encoding="utf-8")
        try:
            doc = json.loads(source)
        except json.JSONDecodeError as exc:
            raise UsageError(f"not valid JSON: {exc}") from None
        return cls(doc)

    # reports
    def report(self, folder: str | Path, **options) -> dict:
        """Write ``report.html``, ``report.md``, ``audit.json`` and ``figures/`` into ``folder`` (whole or not at
        all, as ``--report``); returns the written paths by kind (``{"html": Path, ...}``).

        ``options`` go to :func:`monoculture.reports.write_report` unchanged (e.g. ``pdf=True``).
        """
        from monoculture.reports import write_report
        from monoculture.reports.writer import ReportFolderError

        try:
            return write_report(self.document, Path(folder), **options)
        except ReportFolderError as exc:
            raise UsageError(str(exc)) from None


@dataclass
class ComparisonResult(AuditResult):
    """The document of ``monoculture compare``: an audit of new data with its :class:`Comparison` to a reference."""

    @property
    def comparison(self) -> SectionTable:
        """:class:`SectionTable` of :class:`Comparison` (coverage of the reference, novelty)."""
        return self._table("comparison")


@dataclass
class AlignmentResult(AuditResult):
    """The document of ``monoculture align``: the ``alignment`` section with :class:`AlignmentMetrics`."""

    @property
    def alignment(self) -> dict:
        """The ``alignment`` section as in the document."""
        return self.document.get("alignment", {})

    @property
    def models(self) -> list[str]:
        """Model names: the rows and columns of every metric matrix."""
        return list(self.alignment.get("models") or [])

    @property
    def metrics(self) -> AlignmentMetrics:
        return AlignmentMetrics.from_alignment(self.alignment)

    @property
    def verdicts(self) -> dict:
        """The local and global verdicts (ID vs OOD), as in the document."""
        return self.alignment.get("verdicts", {})


def load_result(source: str | Path) -> AuditResult:
    """Any result from JSON text or file: :class:`AlignmentResult` when it has an ``alignment`` section,
    :class:`ComparisonResult` when a dataset has a comparison, else :class:`AuditResult`."""
    generic = AuditResult.from_json(source)
    doc = generic.document
    if "alignment" in doc:
        return AlignmentResult(doc)
    if any("compare" in ds for ds in doc["datasets"]):
        return ComparisonResult(doc)
    return generic
