"""Typed sections of a result: read-only views of one part of the JSON document, each with ``.to_frame()``.

Per dataset: :class:`Records`, :class:`Elements`, :class:`LevelOfTheory`, :class:`Regimes`,
:class:`ChemicalSpace`, :class:`Duplicates`, :class:`Priorities`, :class:`Comparison` (with a reference); of an
alignment: :class:`AlignmentMetrics`. A section keeps its JSON value as ``raw`` and reads its typed fields from
it (a field absent from the document is None); an analyzer that could not run gives a section whose
:attr:`Section.not_applicable` holds the reason and whose frame is empty. Adding a section is one class here
and one entry of :data:`SECTIONS` (its ``PATH`` is checked against ``reports/schema/audit.schema.json`` by
``tests/test_api.py``). pandas is imported only by ``to_frame``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

__all__ = ["Section", "Records", "Elements", "LevelOfTheory", "Regimes", "ChemicalSpace", "Duplicates",
           "Priorities", "Comparison", "AlignmentMetrics", "SectionTable", "SECTIONS"]


def _frame(rows: list[dict], columns: list[str]):
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Section:
    """One section of one dataset: typed fields read from the document, and the section dict as ``raw``.

    Class attribute ``PATH``: where the section lives in a dataset object of the document (the schema's
    ``#/$defs/dataset``). A field missing from the document is None.
    """

    PATH: ClassVar[tuple[str, ...]] = ()
    #: Columns of :meth:`to_frame` (also the columns of an empty frame).
    COLUMNS: ClassVar[list[str]] = []

    raw: Any = field(default=None, repr=False)
    not_applicable: str | None = None

    @classmethod
    def from_raw(cls, raw) -> "Section":
        """The section from its JSON value (a dict, a list for :class:`Priorities`, or None when absent)."""
        if isinstance(raw, Mapping) and "not_applicable" in raw:
            return cls(raw=raw, not_applicable=str(raw["not_applicable"]))
        values = {f.name: raw.get(f.name) for f in fields(cls)
                  if f.name not in ("raw", "not_applicable")} if isinstance(raw, Mapping) else {}
        return cls(raw=raw, **values)

    @classmethod
    def of_dataset(cls, dataset: Mapping) -> "Section":
        """The section of one dataset object of the document."""
        value: Any = dataset
        for key in cls.PATH:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is None:
            return cls(raw=None, not_applicable="absent from the document")
        return cls.from_raw(value)

    def _rows(self) -> list[dict]:
        return []

    def to_frame(self):
        """The section as a ``pandas.DataFrame`` (columns :attr:`COLUMNS`; empty when not applicable)."""
        return _frame([] if self.not_applicable else self._rows(), list(self.COLUMNS))

    def to_dict(self):
        """The section's JSON value (a deep copy)."""
        return json.loads(json.dumps(self.raw))


@dataclass(frozen=True)
class Records(Section):
    """Record accounting: frames read, skipped by a rule and failed to parse, with the reasons (counts)."""

    PATH: ClassVar[tuple[str, ...]] = ("records",)
    COLUMNS: ClassVar[list[str]] = ["outcome", "reason", "records"]

    read: int | None = None
    skipped: int | None = None
    failed: int | None = None
    skipped_reasons: dict | None = None
    failed_reasons: dict | None = None

    def _rows(self) -> list[dict]:
        rows = [{"outcome": "read", "reason": "", "records": self.read}]
        for outcome, reasons in (("skipped", self.skipped_reasons), ("failed", self.failed_reasons)):
            rows += [{"outcome": outcome, "reason": k, "records": v} for k, v in sorted((reasons or {}).items())]
        return rows


@dataclass(frozen=True)
class Elements(Section):
    """Coverage of the periodic table: structures and atoms per element (counts), present / missing symbols."""

    PATH: ClassVar[tuple[str, ...]] = ("coverage", "elements")
    COLUMNS: ClassVar[list[str]] = ["element", "Z", "structures", "atoms", "share_of_structures"]

    n_frames: int | None = None
    structures_per_element: dict | None = None
    atoms_per_element: dict | None = None
    present: list | None = None
    missing: list | None = None
    pairs: dict | None = None
    arity: dict | None = None
    diversity: dict | None = None

    def _rows(self) -> list[dict]:
        from ase.data import atomic_numbers

        per = self.structures_per_element or {}
        atoms = self.atoms_per_element or {}
        n = self.n_frames or 0
        rows = [{"element": el, "Z": atomic_numbers.get(el, 0), "structures": count, "atoms": atoms.get(el, 0),
                 "share_of_structures": count / n if n else None} for el, count in per.items()]
        return sorted(rows, key=lambda r: r["Z"])


@dataclass(frozen=True)
class LevelOfTheory(Section):
    """Levels of theory: frames per label; ``dominant_share`` is the monoculture index (share of the top label)."""

    PATH: ClassVar[tuple[str, ...]] = ("coverage", "level_of_theory")
    COLUMNS: ClassVar[list[str]] = ["level_of_theory", "frames", "share"]

    n_frames: int | None = None
    counts: dict | None = None
    dominant: str | None = None
    dominant_share: float | None = None
    plus_u_share: float | None = None
    per_element: dict | None = None

    @property
    def monoculture_index(self) -> float | None:
        """Share of the frames at the dominant level of theory (0-1)."""
        return self.dominant_share

    def _rows(self) -> list[dict]:
        counts = self.counts or {}
        total = sum(counts.values())
        return [{"level_of_theory": k, "frames": v, "share": v / total if total else None}
                for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


@dataclass(frozen=True)
class Regimes(Section):
    """Thermodynamic regimes: temperature (K) x pressure (GPa) grid, histograms, distance from equilibrium."""

    PATH: ClassVar[tuple[str, ...]] = ("coverage", "regimes")
    COLUMNS: ClassVar[list[str]] = ["temperature_class", "pressure_class", "frames"]

    n_frames: int | None = None
    histograms: dict | None = None
    volume_strain: dict | None = None
    equilibrium: dict | None = None
    grid: dict | None = None
    methods: dict | None = None

    @property
    def near_equilibrium_share(self) -> float | None:
        """Share of the frames with forces whose largest force is below the threshold (0-1)."""
        return (self.equilibrium or {}).get("near_equilibrium_share")

    def _rows(self) -> list[dict]:
        grid = self.grid or {}
        t_classes, p_classes, counts = grid.get("temperature_classes", []), grid.get("pressure_classes", []), \
            grid.get("counts", [])
        return [{"temperature_class": t, "pressure_class": p, "frames": counts[i][j]}
                for i, t in enumerate(t_classes) for j, p in enumerate(p_classes)]


@dataclass(frozen=True)
class ChemicalSpace(Section):
    """Chemical space on the descriptor's sample: k-NN distances, Vendi score, entropy, near-duplicates, map."""

    PATH: ClassVar[tuple[str, ...]] = ("coverage", "chemical_space")
    COLUMNS: ClassVar[list[str]] = ["n", "vendi_score", "entropy_nats", "effective_environments", "nn1_mean",
                                    "near_duplicate_share"]

    sample: dict | None = None
    scaling: dict | None = None
    knn: dict | None = None
    vendi: dict | None = None
    entropy: dict | None = None
    near_duplicates: dict | None = None
    umap: dict | None = None

    @property
    def vendi_score(self) -> float | None:
        """Effective number of distinct structures (Vendi score, frames)."""
        return (self.vendi or {}).get("score")

    @property
    def effective_environments(self) -> float | None:
        """exp(entropy): effective number of distinct frames at the fixed bandwidth."""
        return (self.entropy or {}).get("effective_environments")

    def _rows(self) -> list[dict]:
        return [{"n": (self.sample or {}).get("size"), "vendi_score": self.vendi_score,
                 "entropy_nats": (self.entropy or {}).get("entropy_nats"),
                 "effective_environments": self.effective_environments,
                 "nn1_mean": (self.knn or {}).get("nn1_mean"),
                 "near_duplicate_share": (self.near_duplicates or {}).get("share")}]


@dataclass(frozen=True)
class Duplicates(Section):
    """Exact duplicates over every frame (same molecule, or same species and geometry in any atom order)."""

    PATH: ClassVar[tuple[str, ...]] = ("coverage", "duplicates")
    COLUMNS: ClassVar[list[str]] = ["n_frames", "n_unique", "n_duplicates", "share", "n_groups"]

    n_frames: int | None = None
    n_unique: int | None = None
    n_duplicates: int | None = None
    share: float | None = None
    n_groups: int | None = None
    examples: list | None = None

    def _rows(self) -> list[dict]:
        return [{c: getattr(self, c) for c in self.COLUMNS}]


@dataclass(frozen=True)
class Priorities(Section):
    """Ranked data-collection priorities (first = most urgent): ``rows`` as in the document."""

    PATH: ClassVar[tuple[str, ...]] = ("coverage", "priorities")
    COLUMNS: ClassVar[list[str]] = ["rank", "kind", "item", "score", "why", "suggestion"]

    rows: list | None = None

    @classmethod
    def from_raw(cls, raw) -> "Priorities":
        if isinstance(raw, list):  # the document's plain ranked list
            return cls(raw=raw, rows=raw)
        return super().from_raw(raw)

    def _rows(self) -> list[dict]:
        return [{c: row.get(c) for c in self.COLUMNS} for row in self.rows or []]


@dataclass(frozen=True)
class Comparison(Section):
    """This dataset (A) against the reference (B) in chemical space: coverage of B by A and novelty of A (shares,
    0-1) within ``radius`` (a distance in the scaled descriptor space); ``n_a`` / ``n_b`` sampled frames."""

    PATH: ClassVar[tuple[str, ...]] = ("compare", "chemical_space")
    COLUMNS: ClassVar[list[str]] = ["a", "b", "n_a", "n_b", "radius", "coverage_of_b_by_a", "novelty_of_a"]

    a: str | None = None
    b: str | None = None
    n_a: int | None = None
    n_b: int | None = None
    radius: float | None = None
    coverage_of_b_by_a: float | None = None
    novelty_of_a: float | None = None
    per_element_novelty: dict | None = None
    duplicates: dict | None = None

    def _rows(self) -> list[dict]:
        return [{c: getattr(self, c) for c in self.COLUMNS}]


@dataclass(frozen=True)
class AlignmentMetrics(Section):
    """Pair metrics of the models: ``{metric: {"id": matrix, "ood": matrix, "k", ...}}``, rows/columns ``models``.

    Set by :class:`AlignmentResult` (``models`` from the alignment section); :meth:`to_frame` gives one row per
    metric, set and ordered pair of models.
    """

    PATH: ClassVar[tuple[str, ...]] = ("metrics",)
    COLUMNS: ClassVar[list[str]] = ["metric", "set", "model_a", "model_b", "value"]

    models: list | None = None

    @classmethod
    def from_alignment(cls, section: Mapping) -> "AlignmentMetrics":
        metrics = section.get("metrics") if isinstance(section, Mapping) else None
        if metrics is None:
            reason = section.get("not_applicable", "absent") if isinstance(section, Mapping) else "absent"
            return cls(raw=None, not_applicable=str(reason))
        return cls(raw=metrics, models=list(section.get("models") or []))

    @property
    def names(self) -> list[str]:
        """The metric names."""
        return list(self.raw or {})

    def _rows(self) -> list[dict]:
        rows, models = [], self.models or []
        for metric, entry in (self.raw or {}).items():
            for set_name, matrix in entry.items():
                if not (isinstance(matrix, list) and matrix and isinstance(matrix[0], list)):
                    continue  # k, description... and non-matrix entries
                if len(matrix) != len(models):
                    continue
                rows += [{"metric": metric, "set": set_name, "model_a": models[i], "model_b": models[j],
                          "value": value} for i, row in enumerate(matrix) for j, value in enumerate(row)]
        return rows


#: The per-dataset sections, by attribute name of :class:`DatasetResult` and :class:`AuditResult`.
SECTIONS: dict[str, type[Section]] = {
    "records": Records, "elements": Elements, "level_of_theory": LevelOfTheory, "regimes": Regimes,
    "chemical_space": ChemicalSpace, "duplicates": Duplicates, "priorities": Priorities, "comparison": Comparison,
}


class SectionTable(Mapping):
    """One section over every dataset of a result: ``table[name]`` is that dataset's section.

    :meth:`to_frame` concatenates the sections' frames with a first column ``dataset``.
    """

    def __init__(self, sections: dict[str, Section], columns: list[str]):
        self._sections = sections
        self._columns = columns

    def __getitem__(self, name: str) -> Section:
        try:
            return self._sections[name]
        except KeyError:
            raise KeyError(f"no dataset {name!r}; datasets: {', '.join(self._sections)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def __repr__(self) -> str:
        return f"SectionTable({', '.join(self._sections)})"

    def to_frame(self):
        """``pandas.DataFrame``: column ``dataset``, then the section's columns; one block per dataset."""
        import pandas as pd

        frames = []
        for name, section in self._sections.items():
            frame = section.to_frame()
            frame.insert(0, "dataset", name)
            frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=["dataset", *self._columns])
        return pd.concat(frames, ignore_index=True)
