"""SOAP descriptor (dscribe), averaged per structure, with an optional PCA and a per-atom mode.

dscribe does the physics; this module adds what a dataset audit needs around it: species learned from the
data, periodic crystals and molecules in one batch (dscribe needs ``periodic`` fixed per object, so two
are kept), frames with unseen species skipped with a reason, a PCA to a fixed width, and a reproducible
per-structure atom subsample for local-environment coverage. Structures are passed to dscribe one at a
time (``create_single``): measured here, dscribe's own list/``n_jobs`` path is not faster for small cells,
and parallelism belongs to :func:`~monoculture.descriptors.runner.featurize`.

Width: without compression SOAP has ``(S n)(S n + 1)/2 (l + 1)`` features for ``S`` species, ``n =
n_max`` and ``l = l_max`` (454,755 for the 71 elements of ASE's dcdft set, 1.8 million for 90, with the
defaults). For many species set ``compression="mu1nu1"`` (``S n^2 (l + 1)``: 12,780 for 71) or ``"mu2"``
(species-agnostic, ``n (n + 1)/2 (l + 1)`` = 105) and ``n_components``.

Memory guard: before it allocates, the descriptor estimates what a batch needs (structures x features x
4 bytes, 8 with a PCA; the PCA sample; per-atom rows) and raises a one-line ``ValueError`` naming the
estimate and the fixes when it exceeds ``max_bytes`` (default 2 GiB). The estimate is per batch:
:func:`~.runner.featurize` holds up to ``n_jobs`` batches at once. It does not pick a compression by itself:
the width and meaning of the features stay what the parameters say.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..datasets.frames import atoms_arrays
from .base import AtomFeatures, DescriptorSizeError, FrameDescriptor, RowSample, check_batch, sampled_atom_features

__all__ = ["SOAPDescriptor", "soap_width", "GIB"]

#: Bytes in a GiB.
GIB = 1024**3


def soap_width(n_species: int, n_max: int, l_max: int, compression: str = "off") -> int:
    """Features per structure of dscribe's SOAP (dscribe 2.1 formulas, checked against it in the tests).

    Parameters
    ----------
    n_species : int
    n_max, l_max : int
    compression : {"off", "mu1nu1", "mu2", "crossover"}

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Unknown ``compression``.
    """
    s, n, l1 = int(n_species), int(n_max), int(l_max) + 1
    widths = {
        "off": (s * n) * (s * n + 1) // 2 * l1,
        "mu1nu1": s * n * n * l1,
        "mu2": n * (n + 1) // 2 * l1,
        "crossover": s * n * (n + 1) // 2 * l1,
    }
    if compression not in widths:
        raise ValueError(f"unknown SOAP compression {compression!r}; choose from {sorted(widths)}")
    return widths[compression]


def _size(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.1f} GiB" if n_bytes >= 0.1 * GIB else f"{n_bytes / 2**20:.1f} MiB"


class SOAPDescriptor(FrameDescriptor):
    """Smooth Overlap of Atomic Positions, averaged over the atoms of each structure (``average="inner"``).

    Parameters
    ----------
    species : list of int or None, default None
        Atomic numbers SOAP resolves. None: learned in ``fit`` as every element present in the data.
    r_cut : float, default 5.0
        Cutoff radius (Å).
    n_max : int, default 6
        Radial basis functions (GTO).
    l_max : int, default 4
        Maximum degree of the spherical harmonics.
    sigma : float, default 0.5
        Width of the atomic Gaussians (Å).
    compression : {"off", "mu1nu1", "mu2", "crossover"}, default "off"
        dscribe species compression (see its documentation); "mu2" makes SOAP species-agnostic.
    n_components : int or None, default None
        If set, a PCA fitted on ``pca_sample`` structure vectors projects the output to this width
        (capped at the number of samples and of raw features).
    pca_sample : int, default 2000
        Structures (bottom-k uniform sample of all fitted frames, see :class:`~.base.RowSample`) used
        to fit the PCA.
    max_atoms_per_structure : int or None, default 32
        Per-atom mode (:meth:`transform_atoms`): atoms kept per structure, chosen reproducibly from
        ``(random_state, frame id)``. None keeps every atom.
    random_state : int, default 0
        Seed for the PCA sample, the randomized PCA solver and the atom subsample.
    max_bytes : int, default 2 GiB (2**31)
        Memory guard: ``fit``, ``transform`` and ``transform_atoms`` raise ``ValueError`` before computing
        when the array they would build exceeds this many bytes. Estimated as rows x features x bytes per
        value: rows = the largest batch seen in ``fit`` (then each batch given to ``transform``), the PCA
        sample (``min(pca_sample, frames)``, float64) and the sampled atoms of a batch (float64); values
        are 4 bytes (float32) without a PCA and 8 with one. dscribe itself holds one structure's vector
        (features x 8 bytes; ``max_atoms_per_structure`` of them per atom call) on top.

    Attributes
    ----------
    species_ : numpy.ndarray of int, shape (n_species,)
    n_soap_features_ : int
        Raw dscribe width before PCA.
    pca_ : sklearn.decomposition.PCA or None
    feature_names_ : numpy.ndarray of str, shape (n_features_out_,)
    n_features_out_ : int

    Notes
    -----
    Frames without 3D positions, with elements outside ``species_``, or with partial periodicity in a
    way dscribe rejects, are skipped with a reason (NaN rows). Molecules (``pbc`` all False) use a
    non-periodic SOAP; any periodic direction uses the periodic one.
    """

    name = "soap"
    dependencies = ("dscribe", "ase", "scikit-learn")
    required_columns = ("id", "numbers", "positions", "cell", "pbc", "species")
    preload = ("dscribe.descriptors", "sklearn.decomposition", "ase")

    def __init__(
        self,
        species: list[int] | None = None,
        r_cut: float = 5.0,
        n_max: int = 6,
        l_max: int = 4,
        sigma: float = 0.5,
        compression: str = "off",
        n_components: int | None = None,
        pca_sample: int = 2000,
        max_atoms_per_structure: int | None = 32,
        random_state: int = 0,
        max_bytes: int = 2 * GIB,
    ):
        self.species = species
        self.r_cut = r_cut
        self.n_max = n_max
        self.l_max = l_max
        self.sigma = sigma
        self.compression = compression
        self.n_components = n_components
        self.pca_sample = pca_sample
        self.max_atoms_per_structure = max_atoms_per_structure
        self.random_state = random_state
        self.max_bytes = max_bytes

    # -- dscribe objects ------------------------------------------------------------------------------
    def _build_soaps(self) -> None:
        """Build the four dscribe objects once, in fit, so they travel with the pickled descriptor.

        dscribe orthonormalises its radial basis with LAPACK when a SOAP object is built; the result can
        differ in the last bits with the BLAS thread count, so rebuilding it in a worker process would
        make the output depend on ``n_jobs``.
        """
        from dscribe.descriptors import SOAP

        self._dscribe = {
            (periodic, average): SOAP(
                species=[int(z) for z in self.species_],
                r_cut=float(self.r_cut),
                n_max=int(self.n_max),
                l_max=int(self.l_max),
                sigma=float(self.sigma),
                average=average,
                compression={"mode": self.compression},
                periodic=periodic,
                sparse=False,
                dtype="float64",
            )
            for periodic in (False, True)
            for average in ("inner", "off")
        }

    def _soap(self, periodic: bool, average: str):
        return self._dscribe[(periodic, average)]

    # -- fit -------------------------------------------------------------------------------------------
    def _fit_batches(self, batches) -> None:
        sample = RowSample(self.pca_sample, self.random_state) if self.n_components else None
        seen: set[int] = set()
        largest_batch = n_frames = 0
        for b in batches:
            largest_batch = max(largest_batch, b.num_rows)
            n_frames += b.num_rows
            if self.species is None:
                seen.update(np.unique(b.column("species").combine_chunks().flatten().to_numpy()).tolist())
            if sample is not None:
                sample.update(b)
        species = self.species if self.species is not None else sorted(seen)
        if len(species) == 0:
            raise ValueError("SOAP needs at least one species: no frames were given to fit and species=None")
        self.species_ = np.asarray(sorted(int(z) for z in species), dtype=np.int64)
        self.n_soap_features_ = soap_width(len(self.species_), self.n_max, self.l_max, self.compression)
        self._check_size(largest_batch, "a batch of {rows:,} structures", self._bytes_per_value())
        if sample is not None:
            self._check_size(min(int(self.pca_sample), n_frames), "the PCA sample of {rows:,} structures", 8)
        self._build_soaps()
        self.n_soap_features_ = int(self._soap(True, "inner").get_number_of_features())
        self.pca_ = None
        if sample is not None and sample.result() is not None:
            from sklearn.decomposition import PCA

            raw, ok = self._raw_structures(sample.result())
            raw = raw[ok]
            k = int(min(self.n_components, raw.shape[0], raw.shape[1]))
            if k < 1:
                raise ValueError("no structure of the PCA sample could be featurized")
            self.pca_ = PCA(n_components=k, svd_solver="randomized", random_state=self.random_state)
            self.pca_.fit(raw)

    # -- memory guard ----------------------------------------------------------------------------------
    def _bytes_per_value(self) -> int:
        """4 (float32 output) without a PCA; 8 with one (float64 raw vectors before projecting)."""
        return 8 if self.n_components else 4

    def _check_size(self, rows: int, what: str, bytes_per_value: int) -> None:
        """Raise :class:`DescriptorSizeError` if ``rows`` x ``n_soap_features_`` x ``bytes_per_value`` exceeds max_bytes."""
        need = int(rows) * int(self.n_soap_features_) * int(bytes_per_value)
        if need <= self.max_bytes:
            return
        n_sp = len(self.species_)
        widths = ", ".join(f"{m} {soap_width(n_sp, self.n_max, self.l_max, m):,}" for m in ("mu1nu1", "mu2"))
        raise DescriptorSizeError(
            f"SOAP would need {_size(need)} for {what.format(rows=int(rows))} "
            f"({self.n_soap_features_:,} features each: {n_sp} species, n_max={self.n_max}, "
            f"l_max={self.l_max}, compression={self.compression!r}; {bytes_per_value} bytes a value), above "
            f"max_bytes={_size(self.max_bytes)}; fix with fewer species (--param species=[...], or one "
            f"run per chemical family), --param compression=mu1nu1 or mu2 (features: {widths}), smaller "
            f"--param n_max=/l_max=, a smaller --batch-size, the species-blind --descriptor local, or a "
            f"larger --param max_bytes="
        )

    def _feature_names(self) -> list[str]:
        if self.pca_ is not None:
            return [f"soap_pc{i}" for i in range(self.pca_.n_components_)]
        return [f"soap_{i}" for i in range(self.n_soap_features_)]

    # -- transform -------------------------------------------------------------------------------------
    def _frame_atoms(self, batch: pa.Table):
        """Yield (row, ase.Atoms or None, reason) for every frame of the batch."""
        from ase import Atoms

        arr = atoms_arrays(batch)
        sp_col = batch.column("species").combine_chunks()
        sp = sp_col.flatten().to_numpy(zero_copy_only=False)
        known = np.isin(sp, self.species_)
        starts = sp_col.offsets.to_numpy()[:-1] - sp_col.offsets.to_numpy()[0]
        all_known = np.logical_and.reduceat(known, starts) if len(sp) else np.ones(0, bool)
        for i in range(len(arr)):
            numbers, pos, cell, pbc = arr.frame(i)
            if pos is None:
                yield i, None, "no 3D positions"
                continue
            if not all_known[i]:
                extra = sorted(set(np.unique(numbers).tolist()) - set(self.species_.tolist()))
                yield i, None, f"elements {extra} not among the fitted SOAP species"
                continue
            yield i, Atoms(numbers=numbers, positions=pos, cell=cell, pbc=pbc), None

    def _raw_structures(self, batch: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        out = np.full((batch.num_rows, self.n_soap_features_), np.nan)
        ok = np.zeros(batch.num_rows, bool)
        for i, atoms, reason in self._frame_atoms(batch):
            if atoms is None:
                continue
            try:
                out[i] = self._soap(bool(atoms.pbc.any()), "inner").create_single(atoms)
                ok[i] = True
            except ValueError:
                continue
        return out, ok

    def _transform_batch(self, batch: pa.Table):
        self._check_size(batch.num_rows, "a batch of {rows:,} structures", self._bytes_per_value())
        # float32 straight away when there is no PCA: one pass over the (n, 15k-wide) output, not two
        dtype = np.float32 if self.pca_ is None else np.float64
        out = np.full((batch.num_rows, self.n_soap_features_), np.nan, dtype=dtype)
        skipped = []
        for i, atoms, reason in self._frame_atoms(batch):
            if atoms is None:
                skipped.append((i, reason))
                continue
            try:
                out[i] = self._soap(bool(atoms.pbc.any()), "inner").create_single(atoms)
            except ValueError as exc:  # e.g. a periodic direction with a degenerate cell
                skipped.append((i, f"dscribe: {exc}"))
        return self._project(out), skipped

    def _project(self, raw: np.ndarray) -> np.ndarray:
        if self.pca_ is None:
            return raw.astype(np.float32, copy=False)
        good = ~np.isnan(raw).any(axis=1)
        out = np.full((raw.shape[0], self.pca_.n_components_), np.nan, dtype=np.float32)
        if good.any():
            out[good] = self.pca_.transform(raw[good])
        return out

    def transform_atoms(self, X: pa.Table) -> AtomFeatures:
        """Per-atom SOAP of a reproducible subsample of atoms (``max_atoms_per_structure`` per frame).

        The PCA learned on structure vectors (if any) is applied to the atoms too, so atoms and structures
        share one space.

        Parameters
        ----------
        X : pyarrow.Table
            A frame batch (FRAME_SCHEMA).

        Returns
        -------
        AtomFeatures
            ``X`` shape (n_sampled_atoms, n_features_out_) float32, with the frame row and atom index of
            each row, and the skipped frames.
        """
        self._check_fitted()
        batch = check_batch(X, self.required_columns)

        def compute(atoms, centers):
            try:
                return self._soap(bool(atoms.pbc.any()), "off").create_single(atoms, centers=centers.tolist())
            except ValueError as exc:
                raise ValueError(f"dscribe: {exc}") from None

        counts = np.diff(batch.column("numbers").combine_chunks().offsets.to_numpy())
        cap = self.max_atoms_per_structure
        rows = int(counts.sum() if cap is None else np.minimum(counts, int(cap)).sum())
        self._check_size(rows, "the {rows:,} sampled atoms of a batch", 8)
        raw, fi, ai, skipped = sampled_atom_features(batch, self._frame_atoms(batch), compute,
                                                     self.n_soap_features_, self.max_atoms_per_structure,
                                                     self.random_state)
        return AtomFeatures(self._project(raw), fi, ai, skipped)

