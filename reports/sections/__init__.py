"""Report sections: one module per section, each registering one :class:`ReportSection`.

A section declares which keys of the document it reads, when it applies, the template context it adds
(document-wide and per dataset), its figures, the findings it contributes and its template block
(``templates/sections/<name>.html.j2`` and ``.md.j2``). The writer (:mod:`monoculture.reports.writer`) knows
no section by name: it plans the figures of every registered section, merges their contexts, and the page
templates include the block of every section that applies, in :attr:`ReportSection.order`.

Sections are discovered: every module of this package is imported once by :func:`registered`, and a module
registers its section with :func:`register` at import. Adding a section is one module here and its two
templates (``docs/reports.md``).
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from monoculture.datasets.plugins import import_public_modules

__all__ = ["ReportSection", "Report", "register", "registered", "SectionContextError"]


class SectionContextError(ValueError):
    """Two sections put the same key into the template context (or into one dataset's context)."""


@dataclass
class Report:
    """Everything a section may read while the report is built.

    Attributes
    ----------
    doc : dict
        The document (audit, comparison, alignment or selection), with alignment sets named as the user gave them.
    names : list of str
        Display name of each ``doc["datasets"]`` entry (:func:`monoculture.reports.view.display_names`).
    reference : str or None
        Display name of the reference dataset.
    colours : dict of str to str
        Colour of each dataset and of the reference (the same in every figure).
    figs : dict
        ``{(dataset index or None, figure section): [figure dict]}`` of the drawn figures (empty while the
        figures are planned). A figure dict holds ``title``, ``caption``, ``src`` (data URI), ``name``,
        ``png``, ``svg``, ``width``, ``height``.
    errors : list of str
        Schema violations of the document.
    context_docs, context_labels : list
        Audit documents passed as context (``--context``) and their labels.
    datasets : list of dict
        Per-dataset template contexts (filled by :attr:`ReportSection.dataset_view`).
    context : dict
        The template context merged so far (sections are viewed in order).
    """

    doc: Mapping
    names: list = field(default_factory=list)
    reference: str | None = None
    colours: dict = field(default_factory=dict)
    figs: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    context_docs: list = field(default_factory=list)
    context_labels: list = field(default_factory=list)
    datasets: list = field(default_factory=list)
    context: dict = field(default_factory=dict)

    @classmethod
    def build(cls, doc: Mapping, figs: dict | None = None, errors=(), *, reference_path: str | None = None,
              set_paths: Mapping | None = None, context_docs=(), context_labels=()) -> Report:
        """The report of ``doc`` as the writer names it.

        Alignment sets are named by the stems of ``set_paths`` (:func:`~monoculture.reports.view.named_sets`),
        datasets by :func:`~monoculture.reports.view.display_names`, the reference by the stem of
        ``reference_path`` (else ``parameters.reference``); colours follow that order
        (:func:`~monoculture.reports.style.dataset_colours`).
        """
        from .. import view
        from ..style import dataset_colours

        doc = view.named_sets(doc, set_paths)
        names = view.display_names(doc)
        reference = view.reference_display_name(doc, reference_path)
        colours = dataset_colours(names + ([reference] if reference else []))
        return cls(doc, names=names, reference=reference, colours=colours, figs=figs or {}, errors=list(errors or []),
                   context_docs=list(context_docs), context_labels=list(context_labels))

    @property
    def raw_datasets(self) -> list:
        """The dataset objects of the document (those that are dicts), in order."""
        return [ds for ds in self.doc.get("datasets") or [] if isinstance(ds, Mapping)]

    def each_dataset(self) -> Iterator[tuple[int, Mapping, str]]:
        """``(index, dataset, display name)`` of each dataset object of the document, in order.

        ``index`` counts the dict entries of ``doc["datasets"]`` only (an entry that is no dict, which the
        schema check reports, is skipped), as :attr:`names`, :attr:`datasets` and the figure keys do.
        """
        yield from ((i, ds, nm) for i, (ds, nm) in enumerate(zip(self.raw_datasets, self.names)))

    @property
    def live(self) -> list:
        """Per-dataset contexts of the datasets with at least one frame."""
        return [d for d in self.datasets if not d["empty"]]

    def figures_of(self, section: str, dataset: int | None = None) -> list:
        """Figure dicts drawn for ``(dataset, section)``."""
        return self.figs.get((dataset, section), [])


def _always(_report: Report) -> bool:
    return True


@dataclass(frozen=True)
class ReportSection:
    """One section of the report.

    Parameters
    ----------
    name : str
        Unique name; the template block is ``templates/sections/<name>.html.j2`` and ``.md.j2``.
    title : str
        Label in the page's table of contents.
    order : float
        Position on the page (ascending).
    reads : tuple of str
        Keys of the document the section reads (dotted, ``datasets[].`` for per-dataset keys); documentation
        and a test check them against the schema's top-level keys.
    applies : callable (Report) -> bool
        Whether the section is on the page; called after every section's context is merged
        (``report.context``), so it may test the document or a context key.
    view : callable (Report) -> dict, optional
        Keys this section adds to the template context (a key given by two sections is an error).
    dataset_view : callable (dataset dict, dataset context, Report) -> dict, optional
        Keys this section adds to one dataset's context (``d.<key>`` in the templates).
    figures : callable (Report) -> list of FigurePlan, optional
        Figures of this section (drawn by the writer into ``figures/`` and ``report.figs``).
    findings : callable (Report) -> list of dict, optional
        Findings (``{"rule", "text", "weak"}``) added after the audit's own at the top of the page.
    headline : callable (Report) -> str or None, optional
        What the run was, for the page title (``"select 20 of pool against training"``).
    methods : callable (Report) -> str or None, optional
        A paragraph for the Methods section (definitions, approximations). When a section gives one and the
        document holds neither a dataset nor an alignment, the audit's own methods paragraph is left out.
    anchor : str, optional
        HTML id of the section (default: ``name`` with ``-`` for ``_``).
    toc : bool
        Listed in the table of contents.
    schema : mapping, optional
        ``{top-level key: JSON Schema}`` of the document keys this section introduces: :func:`~monoculture.
        reports.schema.schema_errors` checks them beside ``reports/schema/audit.schema.json`` (which accepts
        extra keys), so that a new section does not edit the shared schema file.
    """

    name: str
    title: str
    order: float
    reads: tuple = ()
    applies: Callable[[Report], bool] = _always
    view: Callable[[Report], Mapping] | None = None
    dataset_view: Callable[[Mapping, dict, Report], Mapping] | None = None
    figures: Callable[[Report], list] | None = None
    findings: Callable[[Report], list] | None = None
    headline: Callable[[Report], str | None] | None = None
    methods: Callable[[Report], str | None] | None = None
    anchor: str | None = None
    toc: bool = True
    schema: Mapping | None = None

    @property
    def html_id(self) -> str:
        return self.anchor or self.name.replace("_", "-")

    @property
    def html_template(self) -> str:
        return f"sections/{self.name}.html.j2"

    @property
    def md_template(self) -> str:
        return f"sections/{self.name}.md.j2"


_REGISTRY: dict[str, ReportSection] = {}
_DISCOVERED = False


def register(section: ReportSection) -> ReportSection:
    """Add ``section`` to the registry (at import of its module); returns it.

    Raises
    ------
    ValueError
        When another section of that name is registered.
    """
    old = _REGISTRY.get(section.name)
    if old is not None and old is not section:
        raise ValueError(f"report section {section.name!r} is registered twice")
    _REGISTRY[section.name] = section
    return section


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    import_public_modules(sys.modules[__name__])
    _DISCOVERED = True


def registered() -> list[ReportSection]:
    """Every registered section, in page order (modules of this package are imported on the first call)."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))


def merge_into(target: dict, extra: Mapping | None, owner: str, where: str = "template context") -> None:
    """Add ``extra`` to ``target``; a key already there raises :class:`SectionContextError`."""
    for k, v in (extra or {}).items():
        if k in target:
            raise SectionContextError(f"report section {owner!r} sets {k!r} in the {where}, which is already set")
        target[k] = v
