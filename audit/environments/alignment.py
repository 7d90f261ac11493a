"""Environment-level alignment: do two models' per-atom features agree, element by element and environment by
environment, and are the environments where they disagree the ones a training set covers least?

After arXiv 2512.05349 (per-atom latent features of MLIPs compared in a shared space) and arXiv 2512.05717
(last-layer atomic features compared by feature reconstruction errors), computed on the *atoms* of a dataset
rather than on structures:

1. **Join** (:func:`join_atoms`): the per-atom features of every model (``embed --pooling atoms``) are paired
   on ``(structure id, atom index)``; an atom some model lacks is dropped, and every model's missing atoms are
   counted; atoms whose atomic numbers disagree between inputs are dropped and counted.
2. **Distinct environments**: symmetry-equivalent atoms of a crystal have the same features in every model
   (to float32 noise). Left in, they sit at distance 0 from each other in *both* spaces, so their neighbour
   lists coincide by construction and inflate mutual k-NN and CKNNA. Atoms whose standardised features of
   every model (and QUESTS descriptor) agree within 1e-3 (:func:`~.kernel.merge_duplicates` on the
   concatenation) become one environment with a multiplicity; the metrics run on distinct environments,
   coverage shares are weighted by multiplicity.
3. **Groups**: all environments; each element with at least ``min_environments`` distinct environments (the
   rest are counted as skipped); and k-means clusters (scikit-learn, ``random_state=seed``, weighted by
   multiplicity; fitted on at most 50,000 environments, seeded, then all assigned) in a *model-independent*
   space: the QUESTS descriptor of each atom when the structures are given. Clustering on the models' own
   features would let the models under test define the groups in which they are compared (a cluster is, by
   construction, a region where the dominant model's neighbourhoods are compact), and QUESTS is also the
   space in which coverage by the training set is measured, so a cluster is one kind of environment for both
   questions. Without descriptors the concatenated standardised model
   features are used (each model scaled to unit total variance so a wide model does not dominate), and the
   result says so.
4. **Per group and model pair**: CKNNA (reference variant: unbiased HSIC, cosine kernel) and mutual k-NN with
   their permutation nulls and calibrated scores ``max(0, (s - tau) / (1 - tau))`` (``tau`` = 95 % quantile of
   the null, :func:`monoculture.audit.alignment.calibrate_pairs`), one ``k`` for every group (the requested
   ``k`` capped at 10 % of the smallest group analysed, so every score stays local; ``k/n`` is reported per
   group), and GFRE in both directions (:func:`~monoculture.audit.alignment.global_reconstruction_error`:
   ~0 when one model's features are a linear function of the other's, ~1 when they carry nothing of them).
   Large groups are subsampled (seeded, ``max_per_group`` distinct environments). Per model, the effective
   dimension (participation ratio of the covariance spectrum) flags a collapsed representation. For groups of
   several elements, CKNNA is also calibrated against permutations *within* elements (the agreement beyond
   both models encoding the element), and the calibrated mutual k-NN gets a 95 % bootstrap interval over the
   group's atoms (neighbour graphs fixed). The nulls and the interval reuse each model's k-NN graph, built once
   by ``calibrate_pairs`` (its ``graphs`` argument; ``audit.alignment.calibration.graph_nulls``).
5. **Coverage** (optional, against a training set's QUESTS descriptors): per group, the share of its atoms
   inside the training support (QUESTS overlap, ``dH < 1e-5``) and their mean differential entropy
   (:func:`~.entropy.differential_entropy`); across clusters (and across elements), the Spearman correlation
   of coverage with the mean calibrated CKNNA, with a bootstrap interval
   (:func:`monoculture.audit.alignment.spearman_with_ci`).

The result (:class:`~.alignment_result.EnvironmentAlignment`) carries the numbers, a table and sentences
produced from them by fixed rules (:mod:`.alignment_result`).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from .alignment_defaults import (DEFAULT_CLUSTERS, DEFAULT_K, DEFAULT_MAX_PER_GROUP,  # noqa: F401
                                 DEFAULT_MIN_ENVIRONMENTS)
from .alignment_result import (
    EnvironmentAlignment,
    GroupAlignment,
    PairScores,
    coverage_link,
    sentences,
)

__all__ = ["AtomFeatures", "JoinedAtoms", "join_atoms", "align_environments", "effective_dimension",
           "DEFAULT_K", "DEFAULT_MIN_ENVIRONMENTS", "DEFAULT_CLUSTERS", "DEFAULT_MAX_PER_GROUP", "MAX_K_OVER_N"]

#: Largest neighbourhood share k/n of the smallest group (above it a k-NN score is no longer local).
MAX_K_OVER_N = 0.1
#: Largest number of environments k-means is fitted on (the rest are assigned to the nearest centre).
KMEANS_FIT_MAX = 50_000
#: Merge tolerance of step 2: distance in the concatenated standardised features, in units of 1.
_MERGE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class AtomFeatures:
    """Per-atom rows of one source: a model's embedding, or the QUESTS descriptors of the structures.

    Attributes
    ----------
    name : str
    ids : numpy.ndarray of str, shape (n,)
        Structure id of every atom.
    atom_index : numpy.ndarray of int, shape (n,)
        0-based index of the atom in its structure.
    X : numpy.ndarray, shape (n, d)
        Features (any float dtype).
    atomic_numbers : numpy.ndarray of int, shape (n,), optional
    """

    name: str
    ids: np.ndarray
    atom_index: np.ndarray
    X: np.ndarray
    atomic_numbers: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.ids)
        if np.ndim(self.X) != 2 or len(self.X) != n or len(self.atom_index) != n or (
                self.atomic_numbers is not None and len(self.atomic_numbers) != n):
            raise ValueError(f"{self.name}: ids, atom_index, atomic_numbers and the rows of X must have one entry "
                             f"per atom; got {n} ids, {len(self.atom_index)} atom indices and X of shape "
                             f"{np.shape(self.X)}")


@dataclass
class JoinedAtoms:
    """Atoms present in every input, sorted by (structure id, atom index).

    Attributes
    ----------
    ids, atom_index, atomic_numbers : numpy.ndarray, shape (n,)
    features : list of numpy.ndarray, shape (n, d_m), float64
        One per model, rows paired.
    names : list of str
    environments : numpy.ndarray, shape (n, d_q), optional
        QUESTS descriptors of the same atoms (when given).
    accounting : dict
        ``n_union`` (atoms in any input), ``n_joined``, ``missing`` ({input name: atoms of the union it
        lacks}), ``n_atomic_number_mismatch``, ``n_non_finite`` (atoms with a NaN or infinite feature in some
        input, dropped), ``n_duplicate_keys`` ({input name: repeated keys dropped}).
    """

    ids: np.ndarray
    atom_index: np.ndarray
    atomic_numbers: np.ndarray
    features: list
    names: list
    environments: np.ndarray | None
    accounting: dict


def _frame(src: AtomFeatures, pos: int) -> tuple[pd.DataFrame, int]:
    df = pd.DataFrame({"id": np.asarray(src.ids).astype(str), "atom_index": np.asarray(src.atom_index, np.int64),
                       f"row{pos}": np.arange(len(src.ids))})
    if src.atomic_numbers is not None:
        df[f"z{pos}"] = np.asarray(src.atomic_numbers, np.int64)
    dup = df.duplicated(["id", "atom_index"], keep="first")
    return df[~dup], int(dup.sum())


def join_atoms(models, environments: AtomFeatures | None = None) -> JoinedAtoms:
    """Pair the atoms of every model (and of the QUESTS descriptors) on ``(id, atom_index)``.

    Parameters
    ----------
    models : sequence of AtomFeatures
        At least two; names must be distinct.
    environments : AtomFeatures, optional
        QUESTS descriptors of the atoms (from the structures); atoms it lacks are dropped as well.

    Returns
    -------
    JoinedAtoms

    Raises
    ------
    ValueError
        Fewer than two models, repeated names, or no atomic numbers anywhere.
    """
    models = list(models)
    if len(models) < 2:
        raise ValueError(f"alignment needs at least two models; got {len(models)}")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be distinct; got {names}")
    sources = models + ([environments] if environments is not None else [])
    frames, dups = [], {}
    for pos, src in enumerate(sources):
        df, dups[src.name] = _frame(src, pos)
        frames.append(df)
    keys = pd.concat([f[["id", "atom_index"]] for f in frames]).drop_duplicates()
    missing = {src.name: int(len(keys) - len(f)) for src, f in zip(sources, frames)}
    joined = frames[0]
    for f in frames[1:]:
        joined = joined.merge(f, on=["id", "atom_index"], how="inner")
    zcols = [c for c in joined.columns if c.startswith("z")]
    if not zcols:
        raise ValueError("no input gives atomic numbers")
    Z = joined[zcols].to_numpy()
    agree = (Z == Z[:, :1]).all(axis=1)
    n_mismatch = int((~agree).sum())
    joined = joined[agree].sort_values(["id", "atom_index"], kind="stable").reset_index(drop=True)
    feats = [np.asarray(m.X, dtype=np.float64)[joined[f"row{p}"].to_numpy()] for p, m in enumerate(models)]
    env = None
    if environments is not None:
        env = np.asarray(environments.X, dtype=np.float64)[joined[f"row{len(models)}"].to_numpy()]
    finite = np.ones(len(joined), dtype=bool)
    for F in feats + ([env] if env is not None else []):
        finite &= np.isfinite(F).all(axis=1)
    if not finite.all():  # e.g. NaN rows of skipped structures
        feats = [F[finite] for F in feats]
        env = env[finite] if env is not None else None
        joined = joined[finite].reset_index(drop=True)
    acc = {"n_union": int(len(keys)), "n_joined": int(len(joined)), "missing": missing,
           "n_atomic_number_mismatch": n_mismatch, "n_non_finite": int((~finite).sum()), "n_duplicate_keys": dups}
    return JoinedAtoms(joined["id"].to_numpy(dtype=object), joined["atom_index"].to_numpy(np.int64),
                       joined[zcols[0]].to_numpy(np.int64), feats, names, env, acc)


def _standardised(X: np.ndarray) -> np.ndarray:
    """Centred, scaled to unit total variance (sum of column variances = 1; constant input left at 0)."""
    Xc = X - X.mean(axis=0)
    tv = float((Xc**2).sum() / max(len(X), 1))
    return Xc / np.sqrt(tv) if tv > 0 else Xc


def effective_dimension(X: np.ndarray) -> float:
    """Participation ratio ``(sum l)^2 / sum l^2`` of the covariance eigenvalues ``l`` of ``X`` (n, d).

    1 for features on a line, ``d`` for isotropic ones; NaN below 2 rows or for constant features.
    """
    if len(X) < 2:
        return float("nan")
    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False) ** 2
    return float(s.sum() ** 2 / (s**2).sum()) if s.sum() > 0 else float("nan")


def _group_seed(seed: int, kind: str, label: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), zlib.crc32(f"{kind}:{label}".encode())])


def _row_overlap_interval(gx, gy, cal, n_boot: int, seed) -> list:
    """95 % bootstrap interval (over atoms, neighbour graphs fixed) of the calibrated mutual k-NN.

    Mutual k-NN is the mean over atoms of ``|N_a(i) ∩ N_b(i)| / k``; the atoms are resampled with replacement
    and each replicate mean is mapped through the calibration's fixed ``tau``
    (:func:`monoculture.audit.alignment.calibration.calibrated_replicates`). It measures how much the score
    depends on which atoms the group holds, not the noise of rebuilding the graphs.
    """
    from ..alignment.calibration import calibrated_replicates

    k = gx.indices.shape[1]
    share = (gx.indices[:, :, None] == gy.indices[:, None, :]).sum(axis=(1, 2)) / max(k, 1)
    rng = np.random.default_rng(seed)
    n = len(share)
    reps = np.array([share[rng.integers(0, n, n)].mean() for _ in range(n_boot)])
    low, high = np.quantile(calibrated_replicates(reps, cal), [0.025, 0.975])
    return [float(low), float(high)]


def _within_element(arrays, graphs, Z, n_permutations, seed) -> dict:
    """CKNNA of every pair calibrated against permutations *within* elements: {(i, j): Calibration dict}.

    A row permutation that keeps every atom's element keeps whatever agreement two models owe to both
    encoding the element; the score against this null is the agreement beyond element identity. Empty for
    single-element groups (there it is the ordinary null).
    """
    from ..alignment.calibration import calibrate_scores, graph_nulls

    if len(np.unique(Z)) < 2:
        return {}
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(Z == z) for z in np.unique(Z)]
    perms = np.empty((n_permutations, len(Z)), np.int64)
    for p in range(n_permutations):
        for rows in members:
            perms[p, rows] = rng.permutation(rows)
    out = {}
    for i, j in combinations(range(len(arrays)), 2):
        raw, null = graph_nulls(graphs[i], graphs[j], perms)["cknna"]
        out[(i, j)] = calibrate_scores(raw, null, n_rows=len(Z),
                                       method="permutation within elements (each atom keeps its element)").as_dict()
    return out


def _score_group(feats, Z, mult, rows, *, kind, label, k, n_permutations, max_per_group, seed, coverage,
                 names, description, n_boot) -> GroupAlignment:
    """Metrics of one group of distinct environments ``rows``."""
    from ..alignment import calibrate_pairs, global_reconstruction_error

    n_env = int(len(rows))
    n_atoms = int(mult[rows].sum())
    used = rows
    if n_env > max_per_group:
        rng = np.random.default_rng(_group_seed(seed, kind, label))
        used = np.sort(rng.choice(rows, max_per_group, replace=False))
    arrays = [F[used] for F in feats]
    kk = int(min(k, len(used) - 1))
    built: dict = {}  # {(model, k, metric): CosineGraph}, the k-NN graphs calibrate_pairs builds
    cal = calibrate_pairs(arrays, metrics=("cknna", "mutual_knn"), k=kk, n_permutations=n_permutations,
                          seed=int(_group_seed(seed, kind, label).generate_state(1)[0]), workers=1, graphs=built)
    graphs = [built[(i, kk, "cosine")] for i in range(len(arrays))]  # default variants: one cosine graph each
    within = _within_element(arrays, graphs, Z[used], n_permutations, _group_seed(seed, kind, label + ":element"))
    boot_seed = _group_seed(seed, kind, label + ":bootstrap")
    pairs = []
    for i, j in combinations(range(len(arrays)), 2):
        mk = cal["mutual_knn"][(i, j)]
        pairs.append(PairScores(names[i], names[j], cal["cknna"][(i, j)].as_dict(), mk.as_dict(),
                                global_reconstruction_error(arrays[i], arrays[j]),
                                global_reconstruction_error(arrays[j], arrays[i]),
                                within.get((i, j)),
                                _row_overlap_interval(graphs[i], graphs[j], mk, n_boot, boot_seed)))
    cov = None
    if coverage is not None:
        dH, inside = coverage
        w = mult[rows]
        cov = {"overlap": float(np.sum(w * inside[rows]) / w.sum()),
               "mean_delta_entropy_nats": float(np.sum(w * dH[rows]) / w.sum())}
    return GroupAlignment(kind, label, description, n_atoms, n_env, int(len(used)), kk,
                          {nm: effective_dimension(A) for nm, A in zip(names, arrays)}, pairs, cov)


def _element_symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"Z={z}"


def _cluster_description(Z: np.ndarray, w: np.ndarray) -> str:
    """Dominant elements of a cluster by atom share, e.g. ``"O 62%, Si 38%"``."""
    zs, inv = np.unique(Z, return_inverse=True)
    share = np.bincount(inv, weights=w) / w.sum()
    order = np.argsort(-share, kind="stable")[:3]
    text = ", ".join(f"{_element_symbol(int(zs[i]))} {share[i]:.0%}" for i in order)
    return text + (", ..." if len(zs) > 3 else "")


def align_environments(models, *, environments: AtomFeatures | None = None, reference: np.ndarray | None = None,
                       reference_name: str = "training", k: int = DEFAULT_K,
                       min_environments: int = DEFAULT_MIN_ENVIRONMENTS, n_clusters: int = DEFAULT_CLUSTERS,
                       max_per_group: int = DEFAULT_MAX_PER_GROUP, n_permutations: int = 200,
                       bandwidth=None, merge: bool = True, seed: int = 0, n_boot: int = 1000
                       ) -> EnvironmentAlignment:
    """Per-element and per-environment-cluster alignment of models' per-atom features (module docstring).

    Parameters
    ----------
    models : sequence of AtomFeatures
        Per-atom features of each model (at least two).
    environments : AtomFeatures, optional
        QUESTS descriptors (shape (n, 63) with quests' defaults) of the same atoms, from the structures: the
        space of the clusters and of the coverage. Without it, clusters use the concatenated standardised
        model features and no coverage is computed.
    reference : numpy.ndarray, shape (m, d_q), optional
        QUESTS descriptors of the training set's environments; needs ``environments``.
    reference_name : str
    k : int
        Neighbours of CKNNA and mutual k-NN, capped at ``floor(0.1 n)`` of the smallest group analysed.
    min_environments : int
        Smallest group analysed (distinct environments); smaller element groups and clusters are skipped
        and listed.
    n_clusters : int
        k-means clusters (reduced to ``n_distinct // min_environments`` when there are too few environments).
    max_per_group : int
        Seeded subsample size of larger groups.
    n_permutations : int
        Row permutations of each null.
    bandwidth : None, "quests", "volume" or float
        QUESTS bandwidth of the coverage (:func:`~.entropy.resolve_bandwidth`; "volume" is not available
        here: no volumes).
    merge : bool
        Merge atoms with identical features (step 2). Off, symmetry-equivalent atoms are kept as they are.
    seed : int
        Seed of k-means, subsamples, permutations and the bootstrap.
    n_boot : int
        Bootstrap resamples of the coverage correlation and of the per-group interval of the calibrated
        mutual k-NN (atoms resampled, neighbour graphs fixed).

    Returns
    -------
    EnvironmentAlignment

    Raises
    ------
    ValueError
        Fewer than two models, no joined atoms, ``reference`` without ``environments``, or no group with at
        least ``min_environments`` distinct environments.
    """
    from sklearn.cluster import KMeans

    from .kernel import merge_duplicates

    if reference is not None and environments is None:
        raise ValueError("coverage against a reference needs the QUESTS descriptors of the atoms (environments)")
    if min_environments < 4:
        raise ValueError(f"min_environments must be >= 4; got {min_environments}")
    joined = join_atoms(models, environments)
    n = len(joined.ids)
    if n == 0:
        raise ValueError(f"no atom is present in every input (atoms each one lacks: {joined.accounting['missing']}); "
                         "do the files come from the same dataset, with the same structure ids?")
    names = joined.names
    blocks = [_standardised(F) for F in joined.features]
    if joined.environments is not None:
        blocks.append(_standardised(joined.environments))
    merged = merge_duplicates(np.hstack(blocks), 1.0, _MERGE_TOLERANCE if merge else 0.0)
    _, reps = np.unique(merged.inverse, return_index=True)  # first member of every merged group
    mult = merged.weights
    feats = [F[reps] for F in joined.features]
    Z = joined.atomic_numbers[reps]
    n_distinct = len(reps)

    coverage = None
    cov_info = None
    if reference is not None:
        from .entropy import OVERLAP_DEFINITION, OVERLAP_EPS, differential_entropy

        dH, info = differential_entropy(joined.environments[reps], np.asarray(reference), bandwidth, seed=seed)
        coverage = (dH, (dH < OVERLAP_EPS).astype(np.float64))
        cov_info = {"reference": reference_name, "n_reference_environments": int(len(reference)),
                    "bandwidth": info["bandwidth"], "bandwidth_rule": info["bandwidth_rule"],
                    "definition": OVERLAP_DEFINITION, "eps": OVERLAP_EPS,
                    "overlap_all": float(np.sum(mult * coverage[1]) / mult.sum()),
                    "measured_error": info.get("measured_error")}

    # groups
    zs, zcount = np.unique(Z, return_counts=True)
    elements = [(int(z), np.flatnonzero(Z == z)) for z, c in zip(zs, zcount) if c >= min_environments]
    skipped_el = {_element_symbol(int(z)): int(c) for z, c in zip(zs, zcount) if c < min_environments}
    if joined.environments is not None:
        space = joined.environments[reps]
        space_rule = "QUESTS descriptors of the atoms (model-independent; the space of the coverage)"
    else:
        space = np.hstack([_standardised(F) for F in feats])
        space_rule = ("concatenated model features, each centred and scaled to unit total variance (no QUESTS "
                      "descriptors given: the clusters depend on the models compared)")
    n_cl = int(max(1, min(n_clusters, n_distinct // min_environments)))
    labels = np.zeros(n_distinct, np.int64)
    if n_cl > 1:  # fitted on a seeded subsample of at most KMEANS_FIT_MAX environments, then every one assigned
        fit = np.arange(n_distinct)
        if n_distinct > KMEANS_FIT_MAX:
            fit = np.sort(np.random.default_rng(_group_seed(seed, "kmeans", "fit")).choice(
                n_distinct, KMEANS_FIT_MAX, replace=False))
        km = KMeans(n_clusters=n_cl, random_state=seed, n_init=10).fit(space[fit], sample_weight=mult[fit])
        labels = km.predict(space)
    clusters = [(c, np.flatnonzero(labels == c)) for c in range(n_cl)]
    skipped_cl = {f"cluster {c}": int(len(r)) for c, r in clusters if len(r) < min_environments}
    clusters = [(c, r) for c, r in clusters if len(r) >= min_environments] if n_cl > 1 else []
    sizes = [n_distinct] + [len(r) for _, r in elements] + [len(r) for _, r in clusters]
    if n_distinct < min_environments:
        raise ValueError(f"only {n_distinct} distinct environments joined; at least {min_environments} are needed")
    smallest = min(min(sizes), max_per_group)
    k_used = int(max(1, min(k, np.floor(MAX_K_OVER_N * smallest))))

    common = dict(k=k_used, n_permutations=n_permutations, max_per_group=max_per_group, seed=seed,
                  coverage=coverage, names=names, n_boot=n_boot)
    groups = [_score_group(feats, Z, mult, np.arange(n_distinct), kind="all", label="all",
                           description=f"all {n_distinct} distinct environments", **common)]
    groups += [_score_group(feats, Z, mult, r, kind="element", label=_element_symbol(z),
                            description=f"atoms of {_element_symbol(z)}", **common) for z, r in elements]
    groups += [_score_group(feats, Z, mult, r, kind="cluster", label=f"cluster {c}",
                            description=_cluster_description(Z[r], mult[r]), **common) for c, r in clusters]

    link = coverage_link(groups, seed=seed, n_boot=n_boot) if coverage is not None else {}
    settings = {"k_requested": int(k), "k": k_used,
                "k_rule": f"requested k capped at floor({MAX_K_OVER_N:g} x the smallest group analysed, "
                          f"{smallest} environments), one k for every group",
                "cknna_variant": "unbiased HSIC, cosine kernel, self pairs excluded (reference code's default)",
                "mutual_knn_metric": "cosine", "n_permutations": int(n_permutations), "quantile": 0.95,
                "calibrated": "max(0, (raw - tau) / (1 - tau)), tau = 95 % quantile of the row-permutation null",
                "min_environments": int(min_environments), "max_per_group": int(max_per_group),
                "n_clusters_requested": int(n_clusters), "n_clusters": n_cl, "cluster_space": space_rule,
                "cluster_rule": f"scikit-learn KMeans (n_init=10, random_state=seed, weighted by multiplicity) "
                                f"fitted on at most {KMEANS_FIT_MAX} environments (seeded), all assigned",
                "merge": bool(merge), "merge_rule": (f"atoms whose standardised features of every input agree "
                                                     f"within {_MERGE_TOLERANCE:g} are one environment")
                if merge else "off", "seed": int(seed),
                "gfre": "global feature reconstruction error (skmatter procedure), ~0 linear map, ~1 unrelated"}
    atoms = {**joined.accounting, "n_distinct_environments": int(n_distinct),
             "n_merged": int(n - n_distinct)}
    result = EnvironmentAlignment(names, atoms, settings, groups, skipped_el, skipped_cl, cov_info, link, [])
    result.sentences = sentences(result)
    return result
