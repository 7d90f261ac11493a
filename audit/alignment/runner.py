"""File-level alignment: embeddings on disk + evaluation sets as datasets -> the ``alignment`` section.

This is what ``monoculture align`` and ``monoculture demo`` run. It reads

* embeddings: parquet / npz files (one per model; the model name is the file stem) or a folder of them;
* the ID and OOD sets as datasets (any reader): their frame ids define the sets, and their frames give the
  per-id confounders (atoms per structure, elements, periodic or isolated);
* optionally a reference (training) dataset: its descriptor rows (same descriptor as the model-free entry
  of the zoo) give each evaluation structure's coverage gap, and its element counts the element rarity;

and calls :func:`~.analysis.align`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...datasets import open_dataset
from ..summary import BasicCounts
from .analysis import align
from .embeddings_io import EMBEDDING_SUFFIXES, read_embeddings, read_model_zoo, read_skip_info

__all__ = ["load_embeddings", "embedding_files", "set_frames_metadata", "reference_model_by_error",
           "run_alignment", "dropped_structures_lines"]


def embedding_files(sources) -> dict[str, Path]:
    """``{model: file}`` of embedding files and folders (a folder is a model zoo; names are file stems)."""
    if isinstance(sources, Mapping):
        sources = list(sources.values())
    if isinstance(sources, (str, Path)):
        sources = [sources]
    files: dict[str, Path] = {}
    for src in sources:
        src = Path(src)
        found = ({p.stem: p for p in sorted(src.iterdir()) if p.is_file() and p.suffix.lower() in EMBEDDING_SUFFIXES}
                 if src.is_dir() else {src.stem: src})
        for name, path in found.items():
            if name in files:
                raise ValueError(f"two embedding files are both named {name!r}")
            files[name] = path
    return files


def load_embeddings(sources) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{model: (ids, X)}`` from files and folders (a folder is a model zoo; names are file stems)."""
    if isinstance(sources, Mapping):
        sources = list(sources.values())
    if isinstance(sources, (str, Path)):
        sources = [sources]
    zoo: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for src in sources:
        src = Path(src)
        found = read_model_zoo(src) if src.is_dir() else {src.stem: read_embeddings(src)}
        for name, value in found.items():
            if name in zoo:
                raise ValueError(f"two embedding files are both named {name!r}")
            zoo[name] = value
    if not zoo:
        raise ValueError(f"no embedding files found in {[str(s) for s in sources]}")
    return zoo


def _why(entry: dict, info: dict) -> str:
    """Words for one model's entry of ``structures.per_model`` with the reasons its file records."""
    parts = []
    recorded = ", ".join(f"{r}: {c}" for r, c in sorted(info.get("recorded_skip_reasons", {}).items()))
    if entry["n_not_listed"]:
        parts.append(f"{entry['n_not_listed']} structure(s) another model embedded are not in this model's file"
                     + (f" (the file records skips: {recorded})" if recorded else " (no reason recorded)"))
    if entry["n_skipped_rows"]:
        by_id = info.get("skip_reason_by_id", {})
        counts: dict[str, int] = {}
        for i in entry.get("skipped_ids", []):
            counts[by_id.get(i, "no reason recorded")] = counts.get(by_id.get(i, "no reason recorded"), 0) + 1
        detail = ", ".join(f"{r}: {c}" for r, c in sorted(counts.items()))
        parts.append(f"{entry['n_skipped_rows']} row(s) skipped (NaN)" + (f" ({detail})" if detail else ""))
    if entry["n_dropped_for_other_models"]:
        parts.append(f"{entry['n_dropped_for_other_models']} structure(s) it embedded are dropped because another "
                     "model lacks or skipped them")
    return "; ".join(parts) if parts else "nothing dropped"


def dropped_structures_lines(section: dict) -> list[str]:
    """One line per model that lost structures, for printing (empty when nothing was dropped)."""
    st = section.get("structures") or {}
    lines = []
    for name, e in (st.get("per_model") or {}).items():
        if e.get("why") and e["why"] != "nothing dropped":
            lines.append(f"{name}: {e.get('n_listed')} listed, {e.get('n_analysed')} analysed — {e['why']}")
    if lines:
        lines.insert(0, f"aligned on the {st.get('n_analysed_before_sets')} structures every model embedded:")
    return lines


def reference_model_by_error(path, column: str, models: Sequence[str]) -> tuple[str, str]:
    """The model with the lowest error in ``column`` of a CSV table, and the rule that chose it.

    Parameters
    ----------
    path : path
        CSV file with a ``model`` column (model names = embedding file stems) and numeric error columns
        (lower is better); rows of models that are not loaded are ignored.
    column : str
        Error column to minimise, e.g. ``energy_mae_eV_per_atom``.
    models : sequence of str
        The loaded models (the descriptor excluded); every one needs a finite value in ``column``.

    Returns
    -------
    model : str
        Lowest value; equal values go to the alphabetically first name.
    rule : str
        E.g. ``"lowest energy_mae_eV_per_atom in errors.csv"``.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unreadable file, no ``model`` column, unknown or non-numeric ``column``, a model listed twice, a
        loaded model missing from the table or with an empty / NaN / infinite value. Messages name the
        file and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model errors file {path} not found")
    try:
        table = pd.read_csv(path, dtype={"model": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read model errors file {path}: {exc}") from None
    table.columns = [str(c).strip() for c in table.columns]
    if "model" not in table.columns:
        raise ValueError(f"model errors file {path} has no 'model' column (columns: {', '.join(table.columns)})")
    numeric = [c for c in table.columns if c != "model"]
    if column == "model" or column not in table.columns:
        raise ValueError(f"model errors file {path} has no error column {column!r} (error columns: "
                         f"{', '.join(numeric) or 'none'})")
    names = table["model"].astype(str).str.strip()
    repeated = sorted(set(names[names.duplicated()]))
    if repeated:
        raise ValueError(f"model errors file {path} lists model(s) {repeated} more than once")
    values = pd.to_numeric(table[column], errors="coerce")
    bad = names[values.isna() & table[column].notna()].tolist()
    if bad:
        raise ValueError(f"column {column!r} of {path} is not numeric for model(s) {bad}")
    by_name = dict(zip(names, values.astype(float)))
    missing = [m for m in models if m not in by_name]
    if missing:
        raise ValueError(f"model errors file {path} has no row for model(s) {missing} (column {column!r}); "
                         f"it lists {sorted(by_name)}")
    empty = [m for m in models if not np.isfinite(by_name[m])]
    if empty:
        raise ValueError(f"column {column!r} of {path} has no finite value (empty, NaN or infinite) for model(s) "
                         f"{empty}")
    best = min(models, key=lambda m: (by_name[m], m))
    return best, f"lowest {column} in {path.name}"


def set_frames_metadata(paths: Sequence) -> pd.DataFrame:
    """Per-frame ``id``, ``n_atoms``, ``elements`` ('Fe-O'), ``periodic`` and ``regime`` (method and
    temperature, or ``isolated``) of every frame of the datasets."""
    from ase.data import chemical_symbols

    rows = []
    for p in paths:
        for batch in open_dataset(p, quiet=True, progress=False).batches():
            ids = batch.column("id").to_pylist()
            n_atoms = batch.column("n_atoms").to_numpy()
            species = batch.column("species").to_pylist()
            pbc = batch.column("pbc").to_pylist()
            method = batch.column("method").to_pylist()
            temperature = batch.column("temperature_K").to_pylist()
            for i, ident in enumerate(ids):
                periodic = bool(all(pbc[i]))
                regime = method[i] if periodic else "isolated"
                if temperature[i] is not None:
                    regime += f" {temperature[i]:g} K"
                rows.append({"id": ident, "n_atoms": int(n_atoms[i]),
                             "elements": "-".join(chemical_symbols[z] for z in species[i]),
                             "periodic": periodic, "regime": regime})
    return pd.DataFrame(rows, columns=["id", "n_atoms", "elements", "periodic", "regime"])


def _reference(paths: Sequence, descriptor: str | None):
    """(descriptor rows of the reference frames or None, element counts) of a reference dataset."""
    counts = BasicCounts()
    rows = []
    desc = None
    if descriptor:
        from ...descriptors import available_descriptors, get_descriptor

        if descriptor in available_descriptors():
            desc = get_descriptor(descriptor)
    fitted = False
    for p in paths:
        for batch in open_dataset(p, quiet=True, progress=False).batches():
            counts.update(batch)
            if desc is not None:
                if not fitted:  # fitted on the first batch, as in the audit's chemical-space analysis
                    desc.fit(batch)
                    fitted = True
                X = desc.transform(batch)
                rows.append(X[np.isfinite(X).all(axis=1)])
    ref = np.concatenate(rows) if rows else None
    return ref, counts.result()["elements"]["structures_per_element"]


def run_alignment(embeddings, id_set: Sequence | None = None, ood_set: Sequence | None = None, *,
                  descriptor: str | None = None, reference_set: Sequence | None = None,
                  reference_model: str | None = None, model_errors=None, error_column: str | None = None,
                  seed: int = 0, intersect: bool | None = None, **kwargs) -> dict:
    """The alignment section from embedding files and evaluation-set datasets.

    Parameters
    ----------
    embeddings : path, sequence of paths, or mapping
        Embedding files or model-zoo folders.
    id_set, ood_set : sequence of dataset paths, optional
        In- and out-of-distribution evaluation sets (both or neither).
    descriptor : str, optional
        Name of the model-free entry of the zoo (e.g. ``"composition"``): near-duplicate guard, information
        against a descriptor, gap vs collapse.
    reference_set : sequence of dataset paths, optional
        Training / reference data for the coverage gap (needs ``descriptor`` to be a descriptor name).
    reference_model : str, optional
        Model compared with every other one (information imbalance), given by name.
    model_errors, error_column : path and str, optional
        Choose the reference model instead as the loaded model with the lowest value in ``error_column`` of
        the CSV file ``model_errors`` (:func:`reference_model_by_error`). The section records the choice
        as ``reference_model`` and ``reference_model_rule``.
    intersect : bool, optional
        Kept for compatibility: True (or None, the default) aligns on the ids every file holds, as
        ``ids="common"`` of :func:`~.analysis.align` (structures one model could not take, e.g. isolated atoms
        for CHGNet, are dropped for every model; ``structures.per_model`` says, per model, how many and
        why, from the reasons its file records); False makes files with different ids an error
        (``ids="same"``).
    kwargs
        Passed to :func:`~.analysis.align` (k, normalisation, variants, pairwise_ids, n_boot, repeats...;
        ``metrics=[NAME, ...]`` adds optional registered metrics, see :mod:`.metric_registry`).
    """
    if (model_errors is None) != (error_column is None):
        raise ValueError("give both --model-errors and --error-column, or neither")
    if model_errors is not None and reference_model is not None:
        raise ValueError("give --reference-model or --model-errors/--error-column, not both")
    zoo = load_embeddings(embeddings)
    rule = None
    if model_errors is not None:
        reference_model, rule = reference_model_by_error(model_errors, error_column,
                                                         [m for m in zoo if m != descriptor])
    elif reference_model is not None:
        rule = "given by name"
    if intersect is not None:
        kwargs.setdefault("ids", "common" if intersect else "same")
    if (id_set is None) != (ood_set is None):
        raise ValueError("give both --id-set and --ood-set, or neither")
    id_ids = ood_ids = None
    metadata = None
    if id_set is not None:
        md_id = set_frames_metadata(id_set)
        md_ood = set_frames_metadata(ood_set)
        id_ids, ood_ids = md_id["id"].tolist(), md_ood["id"].tolist()
        metadata = pd.concat([md_id, md_ood], ignore_index=True)
        # ids no model embedded are not part of the comparison; those only some models embedded are
        # dropped (and counted) by align
        have = set.union(*(set(map(str, ids)) for ids, _ in zoo.values()))
        n_set = {"id": len(id_ids), "ood": len(ood_ids)}
        id_ids = [i for i in id_ids if i in have]
        ood_ids = [i for i in ood_ids if i in have]
        not_embedded = {"id": n_set["id"] - len(id_ids), "ood": n_set["ood"] - len(ood_ids)}
        if not id_ids or not ood_ids:
            raise ValueError("the embeddings hold no ids of the ID or of the OOD set")
    ref_desc, ref_counts = (None, None)
    if reference_set:
        ref_desc, ref_counts = _reference(reference_set, descriptor)
    section = align(zoo, id_ids, ood_ids, reference_model=reference_model, descriptor_name=descriptor,
                    metadata=metadata, reference_descriptor=ref_desc, reference_element_counts=ref_counts,
                    seed=seed, **kwargs)
    st = section.get("structures")
    if st is not None:
        files = embedding_files(embeddings)
        joined_skips = {}
        for name, entry in st["per_model"].items():
            info = read_skip_info(files[name]) if name in files else {}
            ids, X = zoo[name]
            nan_rows = np.isnan(np.asarray(X, dtype=float)).all(axis=1)
            entry["skipped_ids"] = [str(i) for i in np.asarray(ids)[nan_rows]]
            entry["recorded_skip_reasons"] = info.get("recorded_skip_reasons", {})
            entry["why"] = _why(entry, info)
            del entry["skipped_ids"]
            joined_skips[name] = entry["n_not_listed"] + entry["n_skipped_rows"]
        if id_set is not None:
            st["not_embedded_by_any_model"] = not_embedded
        section["ids_not_in_every_model"] = joined_skips
    if reference_model is not None:
        section["reference_model"] = reference_model
        section["reference_model_rule"] = rule
    return section
