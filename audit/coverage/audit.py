"""One entry point bundling every coverage accumulator: ``update`` per batch, ``merge``, ``result``.

Typical use (the CLI)::

    audit = CoverageAudit(descriptor_sample_size=5000, seed=0)
    for batch in dataset.batches():
        audit.update(batch)                      # or audit.update(batch, descriptors=X_batch)
    doc = audit.result()                         # -> datasets[i].coverage
    cmp = audit.compare(reference_audit)         # -> datasets[i].compare

The exact accumulators (elements, level of theory, regimes, exact duplicates) see every frame; the
chemical-space part sees a seeded reservoir sample of the frames that came with a descriptor array. With a
reference, the descriptor columns of both datasets are standardised with the reference's scaling, so both
are measured in one space.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .chemical_space import ChemicalSpaceCoverage
from .compare import compare_samples
from .duplicates import ExactDuplicates
from .elements import ElementCoverage
from .level_of_theory import LevelOfTheoryCoverage
from .priorities import build_priorities
from .regimes import RegimeCoverage
from .volume_strain import VolumeStrainCoverage

__all__ = ["CoverageAudit"]


class CoverageAudit:
    """Bundle of the coverage accumulators of one dataset.

    Parameters
    ----------
    descriptor_sample_size : int
        Reservoir capacity of the chemical-space analysis (frames).
    seed : int
        Seed of the reservoir hash, UMAP and k-means.
    descriptor : str
        Name of the descriptor given to :meth:`update` (reported).
    k : int
        Neighbours of the k-NN distance distribution.
    umap : bool
        Compute the UMAP embedding in :meth:`result`.
    quests_crosscheck : bool
        Cross-check the entropy with the ``quests`` package (default off).
    entropy_bandwidth : float, optional
        QUESTS bandwidth in standardised descriptor units (default 1.0: one standard deviation).
    """

    def __init__(self, descriptor_sample_size: int = 5000, seed: int = 0, descriptor: str = "descriptor",
                 k: int = 10, umap: bool = True, quests_crosscheck: bool = False,
                 entropy_bandwidth: float | None = None):
        self.descriptor_sample_size = descriptor_sample_size
        self.seed = seed
        self.descriptor = descriptor
        self.k = k
        self.umap = umap
        self.quests_crosscheck = quests_crosscheck
        self.entropy_bandwidth = entropy_bandwidth
        self.elements_ = ElementCoverage()
        self.level_of_theory_ = LevelOfTheoryCoverage()
        self.regimes_ = RegimeCoverage()
        self.volume_strain_ = VolumeStrainCoverage()
        self.duplicates_ = ExactDuplicates()
        self.chemical_space_ = ChemicalSpaceCoverage(
            sample_size=descriptor_sample_size, seed=seed, k=k, descriptor=descriptor, umap=umap,
            umap_max=descriptor_sample_size, quests_crosscheck=quests_crosscheck,
            entropy_bandwidth=entropy_bandwidth)

    def update(self, batch: pa.Table, descriptors: np.ndarray | None = None) -> "CoverageAudit":
        """Add a frame batch, optionally with one descriptor row per frame, shape (batch.num_rows, d)."""
        self.elements_.update(batch)
        self.level_of_theory_.update(batch)
        self.regimes_.update(batch)
        self.volume_strain_.update(batch)
        self.duplicates_.update(batch)
        if descriptors is not None:
            self.chemical_space_.update(batch, descriptors)
        return self

    def merge(self, other: "CoverageAudit") -> "CoverageAudit":
        """Merge another audit of the same parameters (e.g. from a Dask worker); returns self."""
        self.elements_.merge(other.elements_)
        self.level_of_theory_.merge(other.level_of_theory_)
        self.regimes_.merge(other.regimes_)
        self.volume_strain_.merge(other.volume_strain_)
        self.duplicates_.merge(other.duplicates_)
        self.chemical_space_.merge(other.chemical_space_)
        return self

    def exact_result(self) -> dict:
        """``elements``, ``level_of_theory``, ``regimes``, ``duplicates`` results (no sample analysis)."""
        regimes = self.regimes_.result()
        if "not_applicable" in regimes.get("volume_strain", {}):  # no volume_strain column: compute it here
            regimes["volume_strain"] = self.volume_strain_.result()
        return {"elements": self.elements_.result(), "level_of_theory": self.level_of_theory_.result(),
                "regimes": regimes, "duplicates": self.duplicates_.result()}

    def scaler(self):
        """Column scaling of this dataset's descriptor sample (None without a sample of 2 frames or more)."""
        s = self.chemical_space_.sample()
        return self.chemical_space_.scaler() if s is not None and len(s) >= 2 else None

    def compare(self, reference: "CoverageAudit", **kwargs) -> dict:
        """Compare this dataset (A) with a reference audit (B).

        Returns
        -------
        dict
            ``elements`` (``missing_vs_reference``: symbols the reference has and this dataset lacks, order
            of Z; ``pairs_missing_vs_reference``: ``{pair: reference structures}``), and ``chemical_space``:
            :func:`~monoculture.audit.coverage.compare.compare_samples` in the reference's column scaling,
            whose ``duplicates.exact`` counts every frame of this dataset whose identity occurs anywhere in
            the reference (``scope``: ``"all frames"``), or ``{"not_applicable": reason}`` when either side
            has no descriptors. ``kwargs`` go to ``compare_samples``.
        """
        mine = self.elements_.result()
        ref = reference.elements_.result()
        missing = [el for el in ref["structures_per_element"] if el not in mine["structures_per_element"]]
        pairs = {p: c for p, c in ref["pairs"]["counts"].items() if p not in mine["pairs"]["counts"]}
        a, b = self.chemical_space_.sample(), reference.chemical_space_.sample()
        if a is None or b is None or len(a) < 2 or len(b) < 2:
            space = {"not_applicable": "both datasets need descriptor arrays (2 frames or more)"}
        elif a.X.shape[1] != b.X.shape[1]:
            space = {"not_applicable": f"descriptor widths differ ({a.X.shape[1]} vs {b.X.shape[1]})"}
        else:
            kwargs.setdefault("seed", self.seed)
            kwargs.setdefault("scaler", reference.scaler())
            space = compare_samples(a, b, **kwargs)
            mine_keys, ref_keys = self.duplicates_.keys_, reference.duplicates_.keys_
            if mine_keys and ref_keys:
                inside = np.isin(np.concatenate(mine_keys), np.concatenate(ref_keys))
                dup = space["duplicates"]
                dup.update(exact=int(inside.sum()), exact_share=float(inside.mean()), scope="exact: all frames; "
                           "near: samples", exact_rule="frames whose identity (same molecule, or same species "
                           "and geometry) occurs anywhere in the reference")
        return {"elements": {"missing_vs_reference": missing, "pairs_missing_vs_reference": pairs},
                "chemical_space": space}

    def result(self, reference: "CoverageAudit | None" = None, compare: dict | None = None) -> dict:
        """The ``datasets[i].coverage`` document.

        Parameters
        ----------
        reference : CoverageAudit, optional
            Reference dataset for the priorities (element pairs, reference weights).
        compare : dict, optional
            :meth:`compare` result against that reference (descriptor regions in the priorities).

        Returns
        -------
        dict
            ``elements``, ``level_of_theory``, ``regimes``, ``duplicates``, ``chemical_space`` (in the
            reference's column scaling when there is one), ``priorities`` (list of rows).
        """
        doc = self.exact_result()
        scaler = reference.scaler() if reference is not None else None
        doc["chemical_space"] = self.chemical_space_.result(scaler=scaler)
        ref_doc = reference.exact_result() if reference is not None else None
        space_cmp = compare.get("chemical_space") if compare else None
        if space_cmp is not None and "not_applicable" in space_cmp:
            space_cmp = None
        doc["priorities"] = build_priorities(doc, ref_doc, space_cmp)
        return doc
