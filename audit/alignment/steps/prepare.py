"""Steps 1-4 of :func:`~..analysis.align`: join the models, form the sets, normalise, guard against
near-duplicates, report outlying rows. Each returns a typed section with ``to_json()``."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..embeddings_io import JoinedEmbeddings, join_embeddings
from ..neardup import find_near_duplicates
from ..normalise import EmbeddingNormaliser
from ..options import AlignOptions
from ._common import child_seed

__all__ = ["SET_TITLES", "OUTLIER_FACTOR", "Joined", "Sets", "NearDuplicates", "Outliers", "join_step", "sets_step",
           "normalise_step", "near_duplicate_step", "finish_sets", "outlier_step"]

SET_TITLES = {"id": "in distribution", "ood": "out of distribution", "all": "all structures"}
#: Rows farther than this many times the median distance from the median embedding are reported as outliers.
OUTLIER_FACTOR = 50.0


@dataclass
class Joined:
    """The models joined on ``id`` (step 1).

    Attributes
    ----------
    joined : JoinedEmbeddings
        Arrays of shape (n, d_model) on the common ids.
    names : list of str
        Every embedding, the descriptor included.
    models : list of str
        The models (the descriptor excluded).
    policy : str
        ``"common"`` or ``"same"``.
    """

    joined: JoinedEmbeddings
    names: list
    models: list
    policy: str

    def to_json(self) -> dict:
        """The ``structures`` block."""
        return {"policy": ("structures every model embedded (ids another model lacks or skipped are dropped for all)"
                           if self.policy == "common" else "every model must list the same ids"),
                "n_analysed_before_sets": int(self.joined.ids.size),
                "per_model": self.joined.accounting()}


@dataclass
class Sets:
    """The evaluation sets (step 2): requested ids, the joined rows of each set, and what happened to them.

    ``rows`` are the rows before the near-duplicate guard; ``clean_rows`` the analysed ones (filled by
    :func:`near_duplicate_step`, :func:`~.confounders.match_atom_count_step` and :func:`finish_sets`).
    """

    requested: dict
    rows: dict
    info: dict
    clean_rows: dict = field(default_factory=dict)

    @property
    def keys(self) -> list:
        return list(self.clean_rows or self.rows)

    @property
    def two_sets(self) -> bool:
        return self.keys == ["id", "ood"]

    def to_json(self) -> dict:
        """The ``sets`` block."""
        return self.info


@dataclass
class NearDuplicates:
    """The near-duplicate guard (step 4): the basis embeddings, the rows dropped per set, the report rows."""

    tau: float
    basis: list
    dropped: bool
    drop: dict
    rows: list

    def to_json(self) -> dict:
        """The ``near_duplicates`` block."""
        return {
            "metric": "share of structures with a near-duplicate (Euclidean distance < tau × median 1-NN distance)",
            "threshold": self.tau, "basis": self.basis, "dropped": bool(self.dropped),
            "rule": "rows closer than tau times the median nearest-neighbour distance are linked; each linked "
                    "cluster keeps its first row; the union of drops over the basis embeddings is removed for "
                    "every model",
            "rows": self.rows}


@dataclass
class Outliers:
    """Rows far from the rest of their set, per model (reported, not dropped)."""

    models: dict
    warnings: list

    def to_json(self) -> dict:
        """The ``embedding_outliers`` block."""
        return {"rule": f"rows farther than {OUTLIER_FACTOR:g} times the median distance from the set's median "
                        "embedding (after normalisation, near-duplicate-free rows); reported, not dropped",
                "models": self.models, "warnings": self.warnings}


def join_step(embeddings: Mapping[str, tuple], opts: AlignOptions) -> Joined:
    """Join the models on ``id`` and check the descriptor and reference model names."""
    joined = join_embeddings(embeddings, how=opts.ids)
    names = list(joined.arrays)
    if opts.descriptor_name is not None and opts.descriptor_name not in joined.arrays:
        raise ValueError(f"descriptor {opts.descriptor_name!r} is not among the embeddings {names}")
    models = [m for m in names if m != opts.descriptor_name]
    if len(models) < 2:
        raise ValueError(f"alignment needs at least 2 models besides the descriptor; got {models}")
    if opts.reference_model is not None and opts.reference_model not in models:
        raise ValueError(f"reference model {opts.reference_model!r} is not among the models {models}")
    return Joined(joined, names, models, opts.ids)


def sets_step(j: Joined, id_ids, ood_ids, opts: AlignOptions) -> Sets:
    """The ID and OOD sets (disjoint) or one set ``"all"``, with the seeded ``max_n`` cap."""
    joined = j.joined
    position = {s: i for i, s in enumerate(joined.ids.tolist())}
    skipped_ids = joined.dropped_ids
    if id_ids is None:
        requested = {"all": list(joined.ids)}
    else:
        requested = {"id": [str(s) for s in id_ids], "ood": [str(s) for s in ood_ids]}
        both = set(requested["id"]) & set(requested["ood"])
        if both:
            raise ValueError(f"{len(both)} id(s) are in both the ID and the OOD set, e.g. {sorted(both)[:5]}")
    rows_of, set_info = {}, {}
    for key, ids in requested.items():
        if len(set(ids)) != len(ids):
            raise ValueError(f"the {key.upper()} id list has {len(ids) - len(set(ids))} repeated id(s)")
        unknown = [s for s in ids if s not in position and s not in skipped_ids]
        if unknown:
            raise ValueError(f"{len(unknown)} {key.upper()} id(s) have no embedding, e.g. {unknown[:5]}")
        rows = np.array([position[s] for s in ids if s in position], dtype=np.int64)
        info = {"name": (opts.set_names or {}).get(key, SET_TITLES[key]), "n_requested": len(ids),
                "n_skipped_by_a_model": len(ids) - rows.size}
        if opts.max_n is not None and rows.size > opts.max_n:
            rows = np.sort(np.random.default_rng(child_seed(opts.seed, "max_n", key)).choice(rows, opts.max_n,
                                                                                             replace=False))
            info["capped_to_max_n"] = int(opts.max_n)
        rows_of[key], set_info[key] = rows, info
    return Sets(requested, rows_of, set_info)


def normalise_step(j: Joined, sets: Sets, opts: AlignOptions) -> dict:
    """``{name: normalised array}`` for every embedding, the normaliser fitted on the union of analysed rows."""
    union = np.unique(np.concatenate(list(sets.rows.values())))
    return {m: EmbeddingNormaliser(opts.normalisation).fit(j.joined.arrays[m][union]).transform(j.joined.arrays[m])
            for m in j.names}


def near_duplicate_step(j: Joined, sets: Sets, normed: dict, opts: AlignOptions) -> NearDuplicates:
    """Find near-duplicates per set and embedding; drop the union over the basis for every model (in ``sets``)."""
    basis_opt, names, tau = opts.near_duplicate_basis, j.names, opts.tau
    if basis_opt == "descriptor" and opts.descriptor_name is not None:
        basis = [opts.descriptor_name]
    elif basis_opt in ("models", "descriptor"):
        basis = list(j.models)
    elif basis_opt in names:
        basis = [basis_opt]
    else:
        raise ValueError(f"near_duplicate_basis must be 'models', 'descriptor' or an embedding name, "
                         f"got {basis_opt!r}")
    drops, report = {}, []
    for key, rows in sets.rows.items():
        found = {m: find_near_duplicates(normed[m][rows], tau) for m in names}
        drop = np.zeros(rows.size, dtype=bool)
        for m in basis:
            drop |= found[m].drop_mask
        drops[key] = drop
        for m in names:
            f = found[m]
            report.append({
                "model_a": m, "model_b": m, "set": key, "score": f.fraction,
                "note": f"{f.n_dropped} of {rows.size} structures have a near-duplicate in this embedding "
                        f"(distance < {tau:g} × median 1-NN distance = {f.threshold:.3g})"
                        + ("; used for the guard" if m in basis else "; reported only")})
        report.append({
            "model_a": "all models" if len(basis) > 1 else basis[0],
            "model_b": "union" if len(basis) > 1 else basis[0], "set": key,
            "score": float(drop.mean()),
            "note": f"{int(drop.sum())} of {rows.size} structures "
                    + ("dropped for every model" if opts.drop_near_duplicates else "flagged (not dropped)")
                    + f" (union over {', '.join(basis)})"})
        sets.info[key]["n_near_duplicates"] = int(drop.sum())
    sets.clean_rows = {key: (rows[~drops[key]] if opts.drop_near_duplicates else rows)
                       for key, rows in sets.rows.items()}
    return NearDuplicates(tau, basis, opts.drop_near_duplicates, drops, report)


def finish_sets(sets: Sets, opts: AlignOptions) -> None:
    """Record the analysed size of each set; at least 8 rows are needed."""
    for key, rows in sets.clean_rows.items():
        info = sets.info[key]
        info["n"] = int(rows.size)
        info["description"] = (
            f"{rows.size} structures analysed ({info['n_requested']} requested, "
            f"{info['n_skipped_by_a_model']} skipped by a model, {info['n_near_duplicates']} "
            "near-duplicates" + (" dropped" if opts.drop_near_duplicates else " kept") + ")")
        if rows.size < 8:
            raise ValueError(f"the {key.upper()} set has {rows.size} structures left; at least 8 are needed")


def outlier_step(j: Joined, sets: Sets, normed: dict) -> Outliers:
    """Rows farther than :data:`OUTLIER_FACTOR` times the median distance from the set's median embedding."""
    outliers, warnings = {}, []
    ids = j.joined.ids
    for key, rows in sets.clean_rows.items():
        for m in j.models:
            A = normed[m][rows]
            r = np.linalg.norm(A - np.median(A, axis=0), axis=1)
            med = float(np.median(r))
            far = np.flatnonzero(r > OUTLIER_FACTOR * med) if med > 0 else np.empty(0, dtype=np.int64)
            if far.size:
                far = far[np.argsort(-r[far])]
                outliers.setdefault(m, {})[key] = [{"id": str(ids[rows[i]]), "distance_over_median":
                                                    float(r[i] / med)} for i in far[:10]]
                warnings.append(
                    f"{far.size} {key.upper()} structure(s) lie over {OUTLIER_FACTOR:g} times the median distance "
                    f"from the median embedding of {m} (largest: {ids[rows[far[0]]]}, {r[far[0]] / med:.0f} times); "
                    "global metrics (CKA, dCor, GFRE) can be dominated by them")
    return Outliers(outliers, warnings)

