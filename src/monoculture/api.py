"""The Python API: audit, compare, align and embed from a notebook, with typed results.

>>> import monoculture
>>> r = monoculture.audit_datasets(["mptrj_sample.json"])          # doctest: +SKIP
>>> r.elements.to_frame()                                          # doctest: +SKIP

Every function here is what a command of ``monoculture`` runs (:mod:`monoculture.cli`), with the same
defaults and the same document: ``audit_datasets`` and ``compare_datasets`` call
:func:`monoculture.audit.run.run_audit`, ``align_embeddings`` calls
:func:`monoculture.audit.alignment.runner.run_alignment`, ``embed`` calls
:func:`monoculture.descriptors.featurize` or :func:`monoculture.descriptors.models.pipeline.embed_dataset`.
Inputs are checked here, once, with one-line :class:`~monoculture.datasets.errors.MonocultureError`\\ s.

A dataset is given as a path (a file or a folder, as on the command line), an open
:class:`~monoculture.datasets.Dataset` (:func:`open_dataset`), or a list of ASE ``Atoms`` / pymatgen
``Structure`` / ``Molecule`` objects (held in memory, read like a file).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from monoculture.datasets.errors import NothingAuditedError, UsageError

from .results import AlignmentResult, AuditResult, ComparisonResult

__all__ = ["audit_datasets", "compare_datasets", "align_embeddings", "embed", "open_dataset", "frames_from_atoms",
           "frames_from_structures"]


def _is_pathlike(obj) -> bool:
    """A path on disk (not an open dataset, which is path-like too)."""
    return isinstance(obj, (str, os.PathLike)) and not hasattr(obj, "batches")


def _kind_of_objects(objects) -> str | None:
    """``"atoms"`` / ``"structures"`` for a non-empty list of ASE Atoms / pymatgen objects, else None."""
    if isinstance(objects, (str, bytes, os.PathLike, Mapping)) or not isinstance(objects, Sequence) or not objects:
        return None
    first = objects[0]
    if hasattr(first, "get_atomic_numbers"):
        return "atoms"
    if hasattr(first, "sites") and hasattr(first, "cart_coords"):
        return "structures"
    return None


def frames_from_atoms(atoms_list, ids=None, **kwargs):
    """One frame table (``pyarrow.Table`` in ``FRAME_SCHEMA``) from ASE ``Atoms``.

    See :func:`monoculture.datasets.memory.frames_from_atoms` (``dataset=``, ``level_of_theory=``, per-frame
    fields such as ``charge=[...]``); labels as the ``ase`` reader reads them (energy eV, forces eV/Å, stress
    converted to GPa).
    """
    from monoculture.datasets.memory import frames_from_atoms as _frames

    return _frames(atoms_list, ids, **kwargs)


def frames_from_structures(structures, ids=None, **kwargs):
    """One frame table (``pyarrow.Table`` in ``FRAME_SCHEMA``) from pymatgen ``Structure`` / ``Molecule``.

    See :func:`monoculture.datasets.memory.frames_from_structures`.
    """
    from monoculture.datasets.memory import frames_from_structures as _frames

    return _frames(structures, ids, **kwargs)


def open_dataset(source, *, name: str | None = None, format: str | None = None, dataset_card: str | None = None,
                 level_of_theory: str | None = None, batch_size: int = 4096, quiet: bool = True,
                 smiles_column: str | None = None, id_column: str | None = None, config: str | None = None):
    """Open one dataset: a path, or structures held in memory.

    Parameters
    ----------
    source : str, Path, Dataset, or list of ase.Atoms / pymatgen Structure / Molecule
        A file (plain or ``.gz`` / ``.bz2`` / ``.xz``) or folder, as ``monoculture audit PATH``; an open
        dataset (returned unchanged); or structures (positions and cells in Å; labels in eV, eV/Å).
    name : str, optional
        Dataset name (default: the card name or file stem; ``atoms`` / ``structures`` for objects).
    format : str, optional
        Reader name (``monoculture formats``); sniffed by default.
    dataset_card : str, optional
        Card name (``monoculture cards``) overriding the detected one.
    level_of_theory : str, optional
        Level of theory of every frame (``"PBE+U"``, ``"wB97M-V/def2-TZVPD"``).
    batch_size : int
        Frames per batch (at least 1).
    quiet : bool
        Do not log skipped records (they are still counted).
    smiles_column, id_column : str, optional
        Columns of a CSV / TSV table.
    config : str, optional
        Configs of a Hugging Face dataset folder (comma-separated).

    Returns
    -------
    monoculture.datasets.Dataset
        Stream its frames with ``.batches()``; ``.accounting`` counts read / skipped / failed records.
    """
    from monoculture.datasets import Dataset, ReadOptions
    from monoculture.datasets import open_dataset as _open

    if isinstance(source, Dataset):
        return source
    _check_int("batch_size", batch_size, 1)
    kind = _kind_of_objects(source)
    if kind is not None:
        from monoculture.datasets import memory

        make = memory.dataset_from_atoms if kind == "atoms" else memory.dataset_from_structures
        ds = make(source, name or kind, dataset_card=dataset_card, level_of_theory=level_of_theory)
        ds.batch_size, ds.accounting.quiet = int(batch_size), quiet
        return ds
    if not _is_pathlike(source):
        raise UsageError(f"a dataset is a path, an open Dataset or a list of ase.Atoms / pymatgen structures; "
                         f"got {type(source).__name__}")
    options = ReadOptions(dataset=name, smiles_column=smiles_column, id_column=id_column, config=config)
    return _open(source, format=format, dataset_card=dataset_card, level_of_theory=level_of_theory,
                 batch_size=batch_size, quiet=quiet, options=options)


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_descriptor(descriptor: str | None) -> str | None:
    """None for ``"none"`` / None; else the name, checked against the descriptor registry (``auto`` allowed)."""
    if descriptor in (None, "none"):
        return None
    if descriptor == "auto":
        return descriptor
    from monoculture.descriptors import get_descriptor

    try:
        get_descriptor(descriptor)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return descriptor


def _source(item, read: dict, name: str | None):
    """A path is passed on as given (opened by the audit with the read options); structures are opened here
    as an in-memory dataset called ``name`` (default: ``atoms`` / ``structures``); open datasets pass as they are."""
    if _is_pathlike(item):
        return item
    return open_dataset(item, name=name, **read)


class _Datasets:
    """Several datasets read one after the other, as one source of frame batches (``.batches()``, re-readable)."""

    def __init__(self, datasets: list):
        self.datasets = datasets

    def batches(self):
        for ds in self.datasets:
            yield from ds.batches()


def audit_datasets(paths_or_datasets, *, reference=None, descriptor: str | None = "auto", sample_size: int = 5000,
                   seed: int = 0, umap: bool = True, format: str | None = None, dataset_card: str | None = None,
                   level_of_theory: str | None = None, batch_size: int = 4096, smiles_column: str | None = None,
                   id_column: str | None = None, config: str | None = None, quiet: bool = True,
                   progress: bool | None = False, client=None, allow_empty: bool = False,
                   quests_crosscheck: bool = False) -> AuditResult:
    """Audit datasets: elements, levels of theory, regimes, duplicates, chemical space, priorities.

    What ``monoculture audit PATH... --json`` computes, with the same defaults; each item is one dataset.

    Parameters
    ----------
    paths_or_datasets : path, Dataset, list of structures, a sequence of them, or a mapping name -> one of them
        The datasets (see :func:`open_dataset`). A list of structures that are not in a list of datasets is
        one dataset. A mapping names its datasets (``{"mine": atoms_list, "mptrj": "MPtrj.json"}``).
    reference : same as one item, optional
        Reference dataset: adds coverage of the reference, novelty and the priorities that need it.
    descriptor : str or None
        Descriptor of the chemical-space analysis: ``"auto"`` (``molecule`` when no frame is periodic, else
        ``composition+structure``), a descriptor name (``monoculture featurize``), names joined by ``+``, or
        None / ``"none"`` to skip it.
    sample_size : int
        Reservoir size of the chemical-space analysis (frames, at least 2).
    seed : int
        Seed of every sampled step: the same seed gives the same ``datasets`` section.
    umap : bool
        Compute the 2-D UMAP map.
    format, dataset_card, level_of_theory, batch_size, smiles_column, id_column, config
        Read options of the paths, as on the command line (see :func:`open_dataset`).
    quiet, progress : bool
        Log skipped records; print one line per step on stderr.
    client : distributed.Client, optional
        Run on Dask workers (see ``monoculture audit --dask``).
    quests_crosscheck : bool
        Also compute the entropy with the ``quests`` package on 1,000 sampled frames (a check of the
        project's own computation; its numba kernel compiles for about 3 s on first use).
    allow_empty : bool
        Return the result even when a dataset yields no frame; otherwise raise
        :class:`~monoculture.datasets.errors.NothingAuditedError` (exit status 3 on the command line), whose
        ``result`` attribute holds the result.

    Returns
    -------
    AuditResult
        The document with typed sections (``result.elements.to_frame()``...).
    """
    from monoculture.audit.run import AuditOptions, run_audit

    read = dict(format=format, dataset_card=dataset_card, level_of_theory=level_of_theory, batch_size=batch_size,
                smiles_column=smiles_column, id_column=id_column, config=config, quiet=quiet)
    if isinstance(paths_or_datasets, Mapping):
        paths_or_datasets = [open_dataset(item, name=str(name), **read) for name, item in paths_or_datasets.items()]
    items = [paths_or_datasets] if (_is_pathlike(paths_or_datasets) or _kind_of_objects(paths_or_datasets)
                                    or not isinstance(paths_or_datasets, Sequence)) else list(paths_or_datasets)
    if not items:
        raise UsageError("no dataset given")
    _check_int("sample_size", sample_size, 2)
    _check_int("batch_size", batch_size, 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"seed must be an integer, got {seed!r}")
    n_objects = sum(_kind_of_objects(item) is not None for item in items)
    sources = [_source(item, read, None if n_objects < 2 else f"{_kind_of_objects(item)}{i}")
               for i, item in enumerate(items)]
    ref = None if reference is None else _source(reference, read, "reference")
    names = [s.name for s in [*sources, ref] if s is not None and not _is_pathlike(s)]
    if len(set(names)) != len(names):
        raise UsageError(f"two open datasets share a name ({', '.join(names)}); open them with "
                         "open_dataset(..., name=...)")
    for s in [*sources, *([ref] if ref is not None else [])]:
        if _is_pathlike(s) and not Path(s).exists():
            raise UsageError(f"{s}: no such file or folder")
    options = AuditOptions(
        format=format, dataset_card=dataset_card, level_of_theory=level_of_theory, batch_size=batch_size,
        descriptor=_check_descriptor(descriptor), sample_size=sample_size, seed=seed, umap=umap, reference=ref,
        quiet=quiet, progress=progress, smiles_column=smiles_column, id_column=id_column, config=config,
        quests_crosscheck=quests_crosscheck,
    )
    doc = run_audit(sources, options, client=client)
    result = (ComparisonResult if ref is not None else AuditResult)(doc)
    empty = [ds["name"] for ds in doc["datasets"] if not ds.get("n_frames")]
    if empty and not allow_empty:
        exc = NothingAuditedError(f"no record could be audited in {', '.join(empty)}")
        exc.result = result
        raise exc
    return result


def compare_datasets(new, against, **kwargs) -> ComparisonResult:
    """Audit ``new`` against the reference ``against`` (coverage, novelty, priorities): ``monoculture compare``.

    Parameters
    ----------
    new, against : path, Dataset or list of structures
        The new data and the reference (see :func:`open_dataset`).
    **kwargs
        Options of :func:`audit_datasets` (``descriptor``, ``sample_size``, ``seed``...).

    Returns
    -------
    ComparisonResult
        ``result.comparison.to_frame()``: coverage of the reference by the new data, novelty of the new data.
    """
    if "reference" in kwargs:
        raise UsageError("compare_datasets takes the reference as `against`, not `reference`")
    return audit_datasets([new], reference=against, **kwargs)


def align_embeddings(embeddings, id_set=None, ood_set=None, *, descriptor_model: str | None = None,
                     reference_set=None, reference_model: str | None = None, model_errors=None,
                     error_column: str | None = None, k: int = 25, normalisation: str = "none",
                     variants: Mapping[str, str] | Sequence[str] | None = None, n_boot: int = 200, repeats: int = 20,
                     match_atom_count: bool = False, drop_near_duplicates: bool = True, same_ids: bool = False,
                     pairwise_ids: bool = False, reconstruction: bool = True, n_calibration: int = 200,
                     metrics: Sequence[str] = (), seed: int = 0) -> AlignmentResult:
    """Representation alignment of model embeddings, in and out of distribution: ``monoculture align``.

    Parameters
    ----------
    embeddings : path, sequence of paths, or mapping
        Embedding files (parquet / npz, from :func:`embed`; the model name is the file stem) or folders of them.
    id_set, ood_set : sequence of dataset paths, optional
        In- and out-of-distribution evaluation sets (both or neither).
    descriptor_model : str, optional
        Model-free entry of the zoo (a descriptor name, e.g. ``"composition"``).
    reference_set : sequence of dataset paths, optional
        Training / reference data for the coverage gap (gap vs collapse).
    reference_model, model_errors, error_column
        The model compared with every other one (information imbalance): by name, or the loaded model with the
        lowest ``error_column`` in the CSV file ``model_errors``.
    k : int
        Neighbours of CKNNA and mutual k-NN (the study's 25).
    normalisation : {"none", "l2", "max", "standard"}
        Row scaling before every metric (default: none, each metric's reference definition).
    variants : mapping or sequence of "METRIC=NAME", optional
        Metric variants instead of the reference defaults (``{"cknna": "biased"}``).
    n_boot, repeats : int
        Bootstrap replicates; equal-size repeats.
    match_atom_count, drop_near_duplicates, same_ids, pairwise_ids, reconstruction : bool
        As the command's ``--match-atom-count``, ``--keep-near-duplicates`` (negated), ``--same-ids``,
        ``--pairwise-ids``, ``--no-reconstruction`` (negated).
    n_calibration : int
        Row permutations of the chance null (0: no calibration).
    metrics : sequence of str
        Registered metrics computed besides the defaults (e.g. ``["svcca"]``;
        :func:`monoculture.audit.alignment.metric_names` lists them).
    seed : int

    Returns
    -------
    AlignmentResult
        ``result.metrics.to_frame()``: one row per metric, set and pair of models.
    """
    from monoculture.audit.alignment.runner import run_alignment
    from monoculture.audit.alignment.variants import parse_variant_options
    from monoculture.audit.document import alignment_document

    for name, value, minimum in (("k", k, 1), ("n_boot", n_boot, 1), ("repeats", repeats, 1),
                                 ("n_calibration", n_calibration, 0)):
        _check_int(name, value, minimum)
    if isinstance(variants, Mapping):
        variants = [f"{m}={v}" for m, v in variants.items()]
    started = datetime.now(timezone.utc)
    try:
        section = run_alignment(
            embeddings, id_set, ood_set, descriptor=descriptor_model, reference_set=reference_set,
            reference_model=reference_model, model_errors=model_errors, error_column=error_column, seed=seed, k=k,
            normalisation=normalisation, n_boot=n_boot, repeats=repeats, match_atom_count=match_atom_count,
            drop_near_duplicates=drop_near_duplicates, intersect=not same_ids,
            variants=parse_variant_options(variants), pairwise_ids=pairwise_ids, reconstruction=reconstruction,
            calibration=n_calibration > 0, n_calibration=max(1, n_calibration), metrics=tuple(metrics),
        )
    except (ValueError, FileNotFoundError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(str(exc)) from None
    return AlignmentResult(alignment_document(section, seed=seed, started=started))


def embed(paths_or_datasets, model: str, out: str | Path, *, device: str = "auto", batch_size: int = 64,
          workers: int = 0, pooling: str = "mean", cache_dir: str | Path | None = None, chunk_size: int = 4096,
          n_jobs: int | None = 1, quiet: bool = True, embedder=None, **read) -> Any:
    """Per-structure embeddings of a bundled model, or a descriptor, written to parquet: ``monoculture embed``.

    Parameters
    ----------
    paths_or_datasets : path, Dataset, list of structures, or a sequence of them
        The structures, read one dataset after the other (see :func:`open_dataset`).
    model : str
        ``chgnet-0.2.0``, ``chgnet-0.3.0``, ``chgnet-r2scan``, ``sevennet-0``, ``sevennet-l3i5``,
        ``sevennet-mf-0`` (the ``models`` extra), or a descriptor name (``composition``, ``soap``...).
    out : path
        Output ``.parquet`` file (written whole or not at all).
    device : {"auto", "cpu", "cuda"}
    batch_size : int
        Structures per forward pass (models only).
    workers : int
        Graph-building processes (models only). With ``workers > 0`` the input is also read in a process of its
        own (:class:`~monoculture.descriptors.models.pipeline.ReadAhead`) from the moment the model is checked,
        overlapping the loading of the model; the datasets must then be picklable (files and structures are).
    pooling : {"mean", "mean_var", "atoms"}
        Per-structure pooling of the per-atom features (models only).
    cache_dir : path, optional
        Per-chunk cache folder (resumable runs).
    chunk_size : int
        Frames per read batch, output chunk and cache entry.
    n_jobs : int or None
        Processes of a descriptor's transform (descriptors only; None: all cores).
    quiet : bool
        Do not log skipped records.
    embedder : ModelEmbedder or concurrent.futures.Future of one, optional
        The model already loaded, or being loaded in a thread (``monoculture embed`` starts loading it before
        anything else; see :func:`~monoculture.descriptors.models.pipeline.embed_dataset`); models only.
        Default: loaded here (``load_embedder(model, device)``).
    **read
        Read options of :func:`open_dataset` (``format``, ``dataset_card``...).

    Returns
    -------
    EmbedResult or FeaturizeResult
        Counts of the structures written and skipped (``n_rows``, ``n_skipped``), the output path (``out``).
        Raises :class:`~monoculture.datasets.errors.NothingAuditedError` when every structure was skipped.
    """
    from monoculture.descriptors import available_descriptors, is_descriptor_name

    _check_int("chunk_size", chunk_size, 1)
    items = [paths_or_datasets] if (_is_pathlike(paths_or_datasets) or _kind_of_objects(paths_or_datasets)) \
        else list(paths_or_datasets)
    datasets = [open_dataset(item, batch_size=chunk_size, quiet=quiet, **read) for item in items]
    if cache_dir is not None and any(not Path(ds.path).exists() for ds in datasets):
        raise UsageError("cache_dir needs datasets on disk (the cache is keyed by the files' content)")
    source = _Datasets(datasets)

    if is_descriptor_name(model):
        from monoculture.datasets.hashing import content_hash
        from monoculture.descriptors import featurize

        key = [(ds.format, content_hash(ds.path)) for ds in datasets] if cache_dir else ()
        if embedder is not None:
            raise UsageError(f"embedder= is for models; {model!r} is a descriptor")
        result = featurize(source, model, n_jobs=n_jobs, out=out, cache_dir=cache_dir, cache_key_parts=key)
        written = result.n_rows - result.n_skipped
    else:
        from monoculture.descriptors.models import available_models
        from monoculture.descriptors.models.pipeline import ReadAhead, embed_dataset

        known = available_models(installed_only=False)
        if model not in known:
            raise UsageError(f"unknown model {model!r}; models: {', '.join(known)}; "
                             f"descriptors: {', '.join(available_descriptors())}")
        if model not in available_models():
            raise UsageError(f"model {model!r} needs the 'models' extra: pip install 'monoculture[models]'")
        _check_int("batch_size", batch_size, 1)
        _check_int("workers", workers, 0)
        # With worker processes the input is read in its own process from now on, while the model loads.
        batches = ReadAhead(datasets) if workers > 0 else source.batches()
        result = embed_dataset(batches, model, out, device=device, batch_size=batch_size, workers=workers,
                               pooling=pooling, cache_dir=cache_dir, embedder=embedder)
        written = result.n_rows
    if written == 0:
        exc = NothingAuditedError(f"no structure could be embedded with {model}")
        exc.result = result
        raise exc
    return result
