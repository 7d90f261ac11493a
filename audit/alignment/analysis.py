"""The alignment analysis: model embeddings in, the ``alignment`` section of the audit document out.

:func:`align` takes per-model embeddings keyed by structure id (see :mod:`.embeddings_io` for files) and
optional in-distribution (ID) / out-of-distribution (OOD) id lists, and returns a JSON-ready dict in the
layout of ``$defs/alignment`` of ``reports/schema/audit.schema.json`` (extra keys are added, none renamed).

Pipeline (every step recorded in the output)
--------------------------------------------
1. **Join** models on ``id``: by default the structures every model embedded (ids a model lacks, or rows it
   skipped as all-NaN, are dropped for all of them and counted per model under ``structures``).
2. **Sets**: ID and OOD id lists (disjoint), or one set ``"all"``. Optional seeded cap ``max_n`` per set.
3. **Normalise** every embedding by a named method: ``"none"`` by default (each metric's reference
   definition on the embeddings as given); ``"max"`` = one reading of the study's "largest element is 1";
   ``"standard"`` is fitted on the union of the analysed rows of all sets.
4. **Near-duplicate guard** per set, before anything is estimated: rows closer than ``tau`` times the
   median nearest-neighbour distance (:func:`~.neardup.find_near_duplicates`) on the descriptor named by
   ``descriptor_name`` if given, else on every model's embedding; the *union* of the drops is removed for
   every model, so the comparison stays paired. Per-model fractions are reported for every embedding.
5. Optional **atom-count matching** of the two sets (``match_atom_count=True``, needs ``metadata``).
6. **Pairwise metrics** per set, each by a named variant (:mod:`.variants`; defaults = the reference code
   the study used): CKNNA (unbiased, k = 25) and mutual k-NN (cosine, k = 25), linear CKA, distance
   correlation (V-statistic), information imbalance (k = 50, both directions: ``matrix[i][j]`` is
   ``Delta(model_i -> model_j)``), the joint TwoNN dimension of each concatenated pair, and GFRE / LFRE
   (both directions, point estimates). Each model's k-NN search is shared by its pairs and by CKNNA and
   mutual k-NN (:class:`~.metrics.NeighbourCache`), in every subsample. Rows far from the rest of their
   set (:data:`OUTLIER_FACTOR`) are reported, not dropped.
7. **Uncertainty**: every pairwise value gets an m-out-of-n subsampling interval (``m = n // 2``, the
   scheme of :func:`~.stats.bootstrap_ci`; the same subsamples are shared by all pairs and metrics of a
   set, so the interval of the *mean over pairs* and of every ID - OOD difference come from the same
   replicates at no extra cost). Per metric also: equal-size subsets repeated ``repeats`` times
   (:func:`~.stats.equal_size_comparison`) and a permutation test of the ID/OOD labels
   (:func:`~.stats.permutation_test`, for ``permutation_metrics``: CKNNA and dCor by default) of the mean
   over model pairs.
7b. **Against chance** (:mod:`.calibration`, arXiv 2602.14486): every pair metric of every set gets a
    permutation null (P = 200 row shuffles of one model against the other): ``metrics.<name>.calibration``
    holds per set the matrices ``null_mean``, ``tau``, ``p_value``, ``calibrated``; CKNNA and mutual k-NN
    are also calibrated over the k-sweep. ``k`` and ``k_over_n`` are stated for every neighbourhood metric;
    k/n > 0.1 adds a sentence to ``warnings`` and the local verdict then uses the largest sweep k with
    k/n <= 0.1. The verdicts are stated on calibrated scores (raw beside them, under ``raw``); a verdict
    that does not survive calibration or whose calibrated local difference changes sign over the k-sweep
    at k/n <= 0.1 is "not established". ``family_tree_calibrated`` uses ``1 - calibrated CKNNA``.
8. **Intrinsic dimension** (TwoNN, the study's estimator, used by the verdict; MLE with k = 50 capped
   below n as a cross-check) per model per set on the near-duplicate-free rows, with the raw estimate
   beside it; TwoNN against scale by decimation (:func:`~.intrinsic_dim.id_vs_scale`).
9. **k sweeps** of CKNNA and mutual k-NN over k in {5, 10, 25, 50, 100} capped below the smallest n.
10. **Confounders** from per-id metadata (atom counts, elements, periodicity, single atoms) with warnings.
11. **Verdicts**: local (CKNNA; mutual k-NN supporting) and global (dCor; CKA and information imbalance
    supporting), each the mean over model pairs of ID - OOD with its interval; words follow the interval.
12. **Gap vs collapse** (needs a descriptor and a reference descriptor array): per-structure coverage gap
    against per-structure model-descriptor and model-model k-NN agreement; Spearman with bootstrap CI and
    permutation p-value, per model, pooled and per element.
13. **Family tree**: average linkage of ``1 - CKNNA`` on the ID set (or all rows) as Newick.

Cost: each of ``n_boot`` replicates evaluates every metric on every pair at ``n // 2`` rows; the
O(n^2) metrics (dCor, information imbalance) dominate. ``benchmarks/bootstrap.py`` measures it; use
``max_n`` or a smaller ``n_boot`` for large sets.
"""

from __future__ import annotations

import zlib
from itertools import combinations
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from .calibration import (CALIBRATION_QUANTILE, MAX_K_OVER_N, calibrate_pairs, calibrated_replicates,
                          calibration_matrices, k_over_n_warning, settle_verdict)
from .embeddings_io import join_embeddings
from .family_tree import family_tree
from .gap import _overlap, coverage_gap, element_rarity, parse_elements
from .intrinsic_dim import id_vs_scale, mle_id, twonn
from .neardup import find_near_duplicates
from .neighbours import knn
from .normalise import NORMALISATIONS, EmbeddingNormaliser
from .resampling import DIRECTED_METRICS, Resampled as _Resampled, mean_over as _mean_over
from .resampling import metric_functions as _metric_fns, pair_values as _pair_values, resample as _resample
from .variants import metric_function, resolve_variants
from .stats import (
    _scaled_deviations,
    _subsample_size,
    bootstrap_ci,
    equal_size_comparison,
    k_sweep,
    permutation_test,
    spearman_with_ci,
)

__all__ = ["align", "METRICS", "LOCAL_METRICS", "GLOBAL_METRICS", "HIGHER_IS_MORE_ALIGNED", "set_confounders"]

METRICS = ("cknna", "mutual_knn", "cka", "dcor", "information_imbalance")
#: Feature reconstruction errors: point estimates per set, both directions (no intervals).
RECONSTRUCTION_METRICS = ("gfre", "lfre")
LOCAL_METRICS = ("cknna", "mutual_knn")  # first one decides the verdict
GLOBAL_METRICS = ("dcor", "cka", "information_imbalance")
HIGHER_IS_MORE_ALIGNED = {"cknna": True, "mutual_knn": True, "cka": True, "dcor": True,
                          "information_imbalance": False, "twonn": False, "gfre": False, "lfre": False}
LABELS = {"cknna": "CKNNA", "mutual_knn": "mutual k-NN", "cka": "linear CKA", "dcor": "distance correlation",
          "information_imbalance": "information imbalance", "twonn": "joint TwoNN dimension",
          "gfre": "global feature reconstruction error", "lfre": "local feature reconstruction error"}
DEFAULT_KS = (5, 10, 25, 50, 100)
#: Rows farther than this many times the median distance from the median embedding are reported as outliers.
OUTLIER_FACTOR = 50.0
SET_TITLES = {"id": "in distribution", "ood": "out of distribution", "all": "all structures"}

#: Confounder thresholds above which the two sets are said to differ materially (see :func:`set_confounders`).
CONFOUNDER_THRESHOLDS = {"n_atoms_ks": 0.5, "periodic_share_diff": 0.2, "element_jaccard_min": 0.5,
                         "single_atom_share_diff": 0.05}


# -- small helpers -------------------------------------------------------------------------------------
def _seed(seed: int, *tags) -> int:
    """A child seed of ``seed`` for a named task (stable across runs and platforms)."""
    words = [int(seed)] + [zlib.crc32(str(t).encode()) for t in tags]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def _num(x):
    """float for JSON; NaN / inf -> None."""
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def _iv(pair):
    """[low, high] for JSON, or None when not finite."""
    if pair is None:
        return None
    lo, hi = float(pair[0]), float(pair[1])
    return [lo, hi] if np.isfinite(lo) and np.isfinite(hi) else None


def _matrix(M: np.ndarray) -> list:
    return [[_num(v) for v in row] for row in np.asarray(M, dtype=float)]


def _interval(est: float, reps: np.ndarray, n: int, m: int, level: float):
    """Subsampling interval of :func:`~.stats.bootstrap_ci` (``scheme="subsample"``) from replicates."""
    if not np.isfinite(est) or not np.all(np.isfinite(reps)):
        return None
    a = (1.0 - level) / 2.0
    q_lo, q_hi = np.quantile(_scaled_deviations(reps, n, m), [a, 1.0 - a])
    return float(est - q_hi), float(est - q_lo)


def _diff_interval(est_a, reps_a, n_a, m_a, est_b, reps_b, n_b, m_b, level: float):
    """Interval of ``est_a - est_b`` from independent subsample replicates of each set, as
    :func:`~.stats.bootstrap_diff_ci` (``scheme="subsample"``)."""
    if not (np.isfinite(est_a) and np.isfinite(est_b)) or not (np.all(np.isfinite(reps_a))
                                                             and np.all(np.isfinite(reps_b))):
        return None
    a = (1.0 - level) / 2.0
    dev = _scaled_deviations(reps_a, n_a, m_a) - _scaled_deviations(reps_b, n_b, m_b)
    q_lo, q_hi = np.quantile(dev, [a, 1.0 - a])
    est = est_a - est_b
    return float(est - q_hi), float(est - q_lo)


def _cap_k(k: int, n: int) -> int:
    return int(max(1, min(int(k), n - 1)))


CALIBRATION_FIELDS = (
    "per set, matrices shaped like the raw one: null_mean (mean score under row permutations), tau (the "
    "quantile of the null with the observed score included), p_value ((1 + #null at least as aligned) / (1 + P)) "
    "and calibrated (max(0, (raw - tau) / (1 - tau)); for information imbalance the calibration of 1 - Delta, "
    "higher = more aligned); arXiv 2602.14486, Algorithm 1")
CALIBRATION_EXPLANATION = (
    "Every alignment score is compared with what the same score gives when the structures of one model are "
    "shuffled against the other's, so that the two models share nothing: the calibrated score is 0 when the "
    "observed score is within what shuffling produces 95% of the time, and 1 for a perfect match. Raw scores "
    "rise with the number of features per structure and with the neighbourhood size, calibrated ones do not, so "
    "the verdicts below are stated on calibrated scores, with the raw ones beside them.")


def _calibrated_mean(cal: dict, res: "_Resampled", metric: str, pairs) -> tuple[float, np.ndarray]:
    """Mean over model pairs of the calibrated scores, and its replicates: each pair's raw subsample
    replicates mapped through that pair's tau (:func:`~.calibration.calibrated_replicates`)."""
    keys = [p for p in _ordered_keys(metric, pairs) if p in cal]
    est = float(np.mean([cal[p].calibrated for p in keys]))
    reps = np.mean([calibrated_replicates(res.reps[metric][p], cal[p]) for p in keys], axis=0)
    return est, reps


def _ordered_keys(metric: str, pairs):
    return [q for p in pairs for q in ((p, p[::-1]) if metric in DIRECTED_METRICS else (p,))]


def _concat_mean_fn(widths: Sequence[int], metric: str, k: int, ii_k: int, fns=None):
    """``fn(C, _) -> mean over model pairs`` where ``C`` is the column-concatenation of the models."""
    cuts = np.cumsum([0, *widths])
    pairs = list(combinations(range(len(widths)), 2))

    def fn(C, _unused):
        arrays = [C[:, cuts[i]:cuts[i + 1]] for i in range(len(widths))]
        vals = _pair_values(arrays, pairs, (metric,), k, ii_k, fns)[metric]
        return float(np.mean(list(vals.values())))

    return fn


# -- intrinsic dimension helpers -----------------------------------------------------------------------
def _mle(X: np.ndarray, k: int) -> float:
    n_distinct = np.unique(X, axis=0).shape[0]
    if n_distinct < 4:
        return float("nan")
    return mle_id(X, k=max(2, min(k, n_distinct - 1))).dimension


def _twonn(X: np.ndarray) -> float:
    try:
        return twonn(X).dimension
    except ValueError:
        return float("nan")


# -- confounders -----------------------------------------------------------------------------------------
def _metadata_table(metadata: pd.DataFrame) -> pd.DataFrame:
    if "id" not in metadata.columns:
        raise ValueError(f"metadata needs an 'id' column; got {list(metadata.columns)}")
    md = metadata.copy()
    md["id"] = md["id"].astype(str)
    if md["id"].duplicated().any():
        dup = md.loc[md["id"].duplicated(), "id"]
        raise ValueError(f"metadata lists {dup.size} id(s) more than once, e.g. {dup.head(5).tolist()}")
    return md.set_index("id")


def set_confounders(metadata: pd.DataFrame, sets: Mapping[str, Sequence[str]]) -> dict:
    """Describe each evaluation set by what could confound an alignment comparison.

    Parameters
    ----------
    metadata : pandas.DataFrame
        One row per id; columns ``id`` and any of ``n_atoms`` (int), ``elements`` (list of symbols or an
        ``'Fe-O'`` string) and ``periodic`` (bool).
    sets : mapping of str to sequence of str
        ``{set: ids}``.

    Returns
    -------
    dict
        ``per_set`` ({set: n, n_with_metadata, n_atoms quantiles, single_atom_share, periodic_share,
        elements}), ``between`` (for two sets: KS statistic of atom counts, element Jaccard, share of the
        second set's structures with an element absent from the first, differences of shares) and
        ``warnings`` (list of str: differences above :data:`CONFOUNDER_THRESHOLDS`).
    """
    md = _metadata_table(metadata)
    per_set, atoms, elsets, shares = {}, {}, {}, {}
    for key, ids in sets.items():
        ids = [str(i) for i in ids]
        sub = md.reindex(ids)
        have = sub.notna().any(axis=1) if len(sub.columns) else pd.Series(False, index=sub.index)
        entry = {"n": len(ids), "n_with_metadata": int(have.sum())}
        if "n_atoms" in sub:
            na = pd.to_numeric(sub["n_atoms"], errors="coerce").dropna().to_numpy(float)
            atoms[key] = na
            if na.size:
                q = np.quantile(na, [0.0, 0.25, 0.5, 0.75, 1.0])
                entry["n_atoms"] = {"min": _num(q[0]), "q25": _num(q[1]), "median": _num(q[2]),
                                    "q75": _num(q[3]), "max": _num(q[4]), "mean": _num(na.mean())}
                entry["single_atom_share"] = _num((na == 1).mean())
                shares.setdefault("single_atom_share", {})[key] = float((na == 1).mean())
        if "periodic" in sub:
            per = sub["periodic"].dropna()
            if per.size:
                val = float(per.astype(bool).mean())
                entry["periodic_share"] = val
                shares.setdefault("periodic_share", {})[key] = val
        if "elements" in sub:
            els = [parse_elements(v) for v in sub["elements"] if isinstance(v, (str, list, tuple, np.ndarray))]
            counts: dict[str, int] = {}
            for e in els:
                for s in e:
                    counts[s] = counts.get(s, 0) + 1
            elsets[key] = (set(counts), els)
            entry["elements"] = {"n_distinct": len(counts),
                                 "structures_per_element": dict(sorted(counts.items(), key=lambda t: -t[1]))}
        per_set[key] = entry

    out = {"per_set": per_set, "between": {}, "warnings": [], "thresholds": dict(CONFOUNDER_THRESHOLDS)}
    keys = list(sets)
    if len(keys) == 2:
        a, b = keys
        btw, warn = out["between"], out["warnings"]
        if a in atoms and b in atoms and atoms[a].size and atoms[b].size:
            ks = float(sps.ks_2samp(atoms[a], atoms[b]).statistic)
            btw["n_atoms_ks"] = ks
            if ks > CONFOUNDER_THRESHOLDS["n_atoms_ks"]:
                warn.append(f"atom counts differ (KS statistic {ks:.2f}; median {np.median(atoms[a]):g} in "
                            f"{a.upper()} vs {np.median(atoms[b]):g} in {b.upper()} atoms)")
        for name, limit in (("periodic_share", "periodic_share_diff"), ("single_atom_share", "single_atom_share_diff")):
            if name in shares and a in shares[name] and b in shares[name]:
                d = shares[name][a] - shares[name][b]
                btw[f"{name}_diff"] = d
                if abs(d) > CONFOUNDER_THRESHOLDS[limit]:
                    what = "periodic" if name == "periodic_share" else "single-atom"
                    warn.append(f"{what} share differs ({shares[name][a]:.0%} in {a.upper()} vs "
                                f"{shares[name][b]:.0%} in {b.upper()})")
        if a in elsets and b in elsets:
            ea, eb = elsets[a][0], elsets[b][0]
            jac = len(ea & eb) / len(ea | eb) if ea | eb else 1.0
            novel = float(np.mean([bool(set(e) - ea) for e in elsets[b][1]])) if elsets[b][1] else 0.0
            btw.update({"element_jaccard": jac, "elements_only_in_" + a: sorted(ea - eb),
                        "elements_only_in_" + b: sorted(eb - ea),
                        f"share_of_{b}_with_element_absent_from_{a}": novel})
            if jac < CONFOUNDER_THRESHOLDS["element_jaccard_min"]:
                warn.append(f"element sets overlap little (Jaccard {jac:.2f}; {len(eb - ea)} element(s) only in "
                            f"{b.upper()}, {len(ea - eb)} only in {a.upper()})")
    return out


def _atom_count_bin(n_atoms: np.ndarray) -> np.ndarray:
    """Bins 1, 2, 3-4, 5-8, 9-16, ... (ceil(log2 n))."""
    return np.ceil(np.log2(np.maximum(n_atoms, 1))).astype(int)


def _match_atom_counts(md, ids_a, ids_b, seed):
    """Seeded row subsets of two sets with the same count in every atom-count bin."""
    if "n_atoms" not in md.columns:
        raise ValueError("match_atom_count needs an 'n_atoms' metadata column")
    na = pd.to_numeric(md["n_atoms"].reindex(ids_a), errors="coerce").to_numpy(float)
    nb = pd.to_numeric(md["n_atoms"].reindex(ids_b), errors="coerce").to_numpy(float)
    if np.isnan(na).any() or np.isnan(nb).any():
        raise ValueError(f"match_atom_count: n_atoms missing for {int(np.isnan(na).sum())} ID and "
                         f"{int(np.isnan(nb).sum())} OOD structures")
    ba, bb = _atom_count_bin(na), _atom_count_bin(nb)
    rng = np.random.default_rng(seed)
    keep_a, keep_b = [], []
    for b in np.union1d(ba, bb):
        ia, ib = np.flatnonzero(ba == b), np.flatnonzero(bb == b)
        c = min(ia.size, ib.size)
        if c:
            keep_a.append(rng.choice(ia, c, replace=False))
            keep_b.append(rng.choice(ib, c, replace=False))
    if not keep_a:
        raise ValueError("match_atom_count: the two sets share no atom-count bin")
    return np.sort(np.concatenate(keep_a)), np.sort(np.concatenate(keep_b))


# -- verdicts ----------------------------------------------------------------------------------------------
def _direction(diff_interval, higher_is_more: bool) -> str:
    """Words for an ID - OOD interval of an alignment metric."""
    if diff_interval is None:
        return "not determined"
    lo, hi = diff_interval
    if not higher_is_more:
        lo, hi = -hi, -lo
    if lo > 0:
        return "higher in distribution"
    if hi < 0:
        return "higher out of distribution"
    return "no detectable difference"


def _fmt(x, signed=False):
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _verdict(kind: str, primary: str, summary: dict, supporting: Sequence[str], params: dict,
             warnings: Sequence[str]) -> dict:
    s = summary[primary]
    level = params["ci_level"]
    word = _direction(s["difference_interval"], HIGHER_IS_MORE_ALIGNED[primary])
    kname = f" (k = {s['k']})" if s.get("k") is not None else ""
    scope = "local (k-NN)" if kind == "local" else "global"
    lines = []
    iv = s["difference_interval"]
    lines.append(
        f"Mean over {s['n_pairs']} model pair(s) of {LABELS[primary]}{kname}: ID {_fmt(s['id'])}, OOD "
        f"{_fmt(s['ood'])}; ID − OOD = {_fmt(s['difference'], True)}"
        + (f", {round(100 * level)}% interval [{_fmt(iv[0], True)}, {_fmt(iv[1], True)}] "
           f"({params['n_boot']} subsamples of n/2 rows per set)" if iv else ", no interval (not computable)")
        + ".")
    if not HIGHER_IS_MORE_ALIGNED[primary]:
        lines.append(f"{LABELS[primary]} is lower when more aligned, so a negative difference means higher "
                     "alignment in distribution.")
    if word == "no detectable difference":
        lines.append(f"The interval contains 0: no detectable difference in {scope} alignment.")
    elif word != "not determined":
        lines.append(f"The interval excludes 0: {scope} alignment is {word}.")
    eq = s.get("equal_size")
    if eq:
        lines.append(f"Equal-size subsets ({eq['repeats']} × {eq['size']} rows per set): ID − OOD = "
                     f"{_fmt(eq['difference_mean'], True)} ± {_fmt(eq['difference_std'])} (mean ± s.d.)"
                     + (", the opposite sign: the set sizes matter." if np.sign(eq["difference_mean"] or 0)
                        != np.sign(s["difference"] or 0) else "."))
    pm = s.get("permutation")
    if pm:
        lines.append(f"Permutation test of the ID/OOD labels: p = {pm['p_value']:.3g} ({pm['n_perm']} shuffles).")
    agree = 0
    for other in supporting:
        o = summary[other]
        w = _direction(o["difference_interval"], HIGHER_IS_MORE_ALIGNED[other])
        agree += w == word
        oiv = o["difference_interval"]
        lines.append(f"{LABELS[other]}: ID − OOD = {_fmt(o['difference'], True)}"
                     + (f" [{_fmt(oiv[0], True)}, {_fmt(oiv[1], True)}]" if oiv else "") + f", {w}.")
    if supporting:
        lines.append(f"{agree} of {len(supporting)} supporting metric(s) agree with {LABELS[primary]}.")
    for w in warnings:
        lines.append(f"Warning: the sets differ — {w}; the difference may reflect the sets, not the models.")
    out = {
        "question": f"Is {scope} alignment between models higher in distribution or out of distribution?",
        "statistic": f"mean over model pairs of {LABELS[primary]}{kname} (ID) − {LABELS[primary]} (OOD)",
        "estimate": _num(s["difference"]),
        "level": level,
        "verdict": word,
        "explanation": " ".join(lines),
        "metric": primary,
        "higher_is_more_aligned": HIGHER_IS_MORE_ALIGNED[primary],
        "relative_effect": (_num(s["difference"] / abs(s["ood"])) if s["ood"] and s["difference"] is not None
                            else None),
        "supporting": {o: {"estimate": summary[o]["difference"], "interval": summary[o]["difference_interval"],
                           "verdict": _direction(summary[o]["difference_interval"], HIGHER_IS_MORE_ALIGNED[o])}
                       for o in supporting},
        "supporting_agree": agree,
        "warnings": list(warnings),
    }
    if iv:
        out["interval"] = list(iv)
    return out


def _calibrated_comparison(metric, by_set, pairs, level) -> dict:
    """ID and OOD means over model pairs of the calibrated scores, their difference and its interval."""
    (ca, ra), (cb, rb) = by_set["id"], by_set["ood"]
    ea, reps_a = _calibrated_mean(ca[metric], ra, metric, pairs)
    eb, reps_b = _calibrated_mean(cb[metric], rb, metric, pairs)
    div = _iv(_diff_interval(ea, reps_a, ra.n, ra.m, eb, reps_b, rb.n, rb.m, level))
    return {"id": _num(ea), "ood": _num(eb), "difference": _num(ea - eb), "difference_interval": div,
            "verdict": _direction(div, True)}


def _calibrate_verdict(v: dict, metrics: Sequence[str], by_set: dict, pairs, k_local, n_by_set, sweep_ks,
                       sweep_diffs, params) -> None:
    """Restate a raw ID-vs-OOD verdict on calibrated scores (in place), raw beside them."""
    level = params["ci_level"]
    primary = metrics[0]
    cs = {m: _calibrated_comparison(m, by_set, pairs, level) for m in metrics}
    c = cs[primary]
    word, reasons = settle_verdict(v["verdict"], c["verdict"], sweep_diffs)
    kname = f" (k = {k_local}, k/n = {k_local / min(n_by_set.values()):.2f} at most)" if k_local else ""
    iv = c["difference_interval"]
    lines = [
        f"Calibrated against chance ({params['calibration']['n_permutations']} row permutations per pair): mean "
        f"over model pairs of calibrated {LABELS[primary]}{kname}: ID {_fmt(c['id'])}, OOD {_fmt(c['ood'])}; "
        f"ID − OOD = {_fmt(c['difference'], True)}"
        + (f", {round(100 * level)}% interval [{_fmt(iv[0], True)}, {_fmt(iv[1], True)}]" if iv else "")
        + f": {c['verdict']}."]
    for other in metrics[1:]:
        o = cs[other]
        lines.append(f"Calibrated {LABELS[other]}: ID − OOD = {_fmt(o['difference'], True)}, {o['verdict']}.")
    if sweep_ks:
        lines.append("Calibrated ID − OOD over the k-sweep at k/n <= 0.1: " + ", ".join(
            f"k = {kk}: {_fmt(d, True)}" for kk, d in zip(sweep_ks, sweep_diffs)) + ".")
    if reasons:
        lines.append("Not established: " + "; ".join(reasons) + ".")
    raw = {key: v.get(key) for key in ("statistic", "estimate", "interval", "verdict")}
    v["raw"] = raw
    v["calibrated"] = {"metric": primary, "k": k_local, **c,
                       "supporting": {m: cs[m] for m in metrics[1:]},
                       "k_sweep": ({"k": list(sweep_ks), "difference": [_num(d) for d in sweep_diffs]}
                                   if sweep_ks else None),
                       "not_established_because": reasons}
    v["verdict"] = word
    v["statistic"] = (f"mean over model pairs of calibrated {LABELS[primary]}{' (k = %d)' % k_local if k_local else ''}"
                      f" (ID) − calibrated {LABELS[primary]} (OOD)")
    v["estimate"] = c["difference"]
    if iv:
        v["interval"] = list(iv)
    else:
        v.pop("interval", None)
    v["explanation"] = " ".join(lines) + f" Raw scores: {v['explanation']}"


# -- gap vs collapse ---------------------------------------------------------------------------------------
def _gap_vs_collapse(per_set, models, descriptor_name, reference_descriptor, md, reference_element_counts,
                     gap_k, k, n_boot, n_perm, level, seed, max_points) -> dict:
    """Per-structure coverage gap against per-structure collapse measures (see :mod:`.gap`)."""
    gaps, md_agree, mm_agree, set_lab, ids_all = [], {m: [] for m in models}, {m: [] for m in models}, [], []
    for key, sd in per_set.items():
        raw_desc = sd["raw_descriptor"]
        gaps.append(coverage_gap(raw_desc, reference_descriptor, k=min(gap_k, reference_descriptor.shape[0])))
        kk = _cap_k(k, sd["n"])
        nbrs = {m: knn(sd["arrays"][m], kk)[1] for m in models}
        nd = knn(sd["descriptor"], kk)[1]
        for m in models:
            md_agree[m].append(_overlap(nbrs[m], nd))
            others = [_overlap(nbrs[m], nbrs[o]) for o in models if o != m]
            mm_agree[m].append(np.mean(others, axis=0))
        set_lab += [key] * sd["n"]
        ids_all += list(sd["ids"])
    x = np.concatenate(gaps)
    measures = {
        "model_descriptor_agreement": {m: np.concatenate(v) for m, v in md_agree.items()},
        "model_model_agreement": {m: np.concatenate(v) for m, v in mm_agree.items()},
    }
    pooled = {name: np.mean(list(v.values()), axis=0) for name, v in measures.items()}

    def sp(xv, yv, tag):
        ok = np.isfinite(xv) & np.isfinite(yv)
        if ok.sum() < 3 or np.ptp(xv[ok]) == 0 or np.ptp(yv[ok]) == 0:
            return None
        r = spearman_with_ci(xv[ok], yv[ok], n_boot=n_boot, seed=_seed(seed, "spearman", tag), ci=level,
                             n_perm=n_perm)
        return {"rho": _num(r.rho), "ci": _iv((r.low, r.high)), "p_value": _num(r.p_value), "n": r.n}

    results = {}
    for name in measures:
        results[name] = {"pooled": sp(x, pooled[name], name),
                         "per_model": {m: sp(x, measures[name][m], f"{name}/{m}") for m in models}}
    rarity = None
    if md is not None and "elements" in md.columns:
        els = md["elements"].reindex(ids_all).tolist()
        by_el: dict[str, list[int]] = {}
        for i, v in enumerate(els):
            for e in parse_elements(v) if isinstance(v, (str, list, tuple, np.ndarray)) else ():
                by_el.setdefault(e, []).append(i)
        results["by_element"] = {}
        for e, rows in sorted(by_el.items()):
            if len(rows) >= 30:
                rows = np.asarray(rows)
                results["by_element"][e] = sp(x[rows], pooled["model_descriptor_agreement"][rows], f"el/{e}")
        if "regime" in md.columns:  # e.g. "md 1000 K", "relax", "molecule": the regime bin of each structure
            regimes = md["regime"].reindex(ids_all).astype(str).tolist()
            by_regime: dict[str, list[int]] = {}
            for i, r in enumerate(regimes):
                by_regime.setdefault(r, []).append(i)
            results["by_regime"] = {
                r: sp(x[np.asarray(rows)], pooled["model_descriptor_agreement"][np.asarray(rows)], f"regime/{r}")
                for r, rows in sorted(by_regime.items()) if len(rows) >= 30}
        if reference_element_counts is not None:
            rarity = element_rarity(els, reference_element_counts, reference_descriptor.shape[0])
            results["element_rarity"] = {name: sp(rarity, pooled[name], f"rarity/{name}") for name in pooled}

    main = results["model_descriptor_agreement"]["pooled"]
    y = pooled["model_descriptor_agreement"]
    order = np.arange(x.size)
    if x.size > max_points:
        order = np.sort(np.random.default_rng(_seed(seed, "points")).choice(x.size, max_points, replace=False))
    out = {
        "x_label": f"coverage gap: mean distance to the {gap_k} nearest reference descriptors ({descriptor_name} units)",
        "y_label": f"model–descriptor k-NN agreement (share of k = {_cap_k(k, min(sd['n'] for sd in per_set.values()))} "
                   "neighbours kept, mean over models)",
        "points": [{"label": set_lab[i], "x": float(x[i]), "y": float(y[i])} for i in order],
        "points_are": f"one point per structure (label = set); {order.size} of {x.size} shown",
        "spearman_rho": main["rho"] if main else None,
        "ci_level": level,
        "n_boot": int(n_boot),
        "p_value": main["p_value"] if main else None,
        "n": int(x.size),
        "descriptor": descriptor_name,
        "expected_if_collapse": "negative rho for model–descriptor agreement (models keep less of the "
                                "descriptor neighbourhood far from the reference data), positive for model–model",
        "measures": results,
    }
    if main and main["ci"]:
        out["ci"] = main["ci"]
    return out


# -- the analysis ------------------------------------------------------------------------------------------
def align(
    embeddings: Mapping[str, tuple],
    id_ids: Sequence[str] | None = None,
    ood_ids: Sequence[str] | None = None,
    *,
    reference_model: str | None = None,
    descriptor_name: str | None = None,
    k: int = 25,
    ii_k: int = 50,
    normalisation: str = "none",
    variants: Mapping[str, str] | None = None,
    ids: str = "common",
    pairwise_ids: bool = False,
    reconstruction: bool = True,
    n_boot: int = 200,
    repeats: int = 20,
    n_perm: int = 200,
    permutation_metrics: Sequence[str] = ("cknna", "dcor"),
    seed: int = 0,
    ci_level: float = 0.95,
    ks: Sequence[int] = DEFAULT_KS,
    mle_k: int = 50,
    tau: float = 0.05,
    drop_near_duplicates: bool = True,
    near_duplicate_basis: str = "models",
    metadata: pd.DataFrame | None = None,
    match_atom_count: bool = False,
    reference_descriptor=None,
    reference_element_counts: Mapping[str, int] | None = None,
    gap_k: int = 5,
    max_n: int | None = None,
    set_names: Mapping[str, str] | None = None,
    max_points: int = 2000,
    spearman_n_perm: int = 999,
    calibration: bool = True,
    n_calibration: int = 200,
    calibration_quantile: float = CALIBRATION_QUANTILE,
    calibration_subsample: int | None = 2000,
) -> dict:
    """Alignment section of the audit document from model embeddings.

    Parameters
    ----------
    embeddings : mapping of str to (ids, X)
        ``{model: (ids, X)}``, ``ids`` shape (n,), ``X`` shape (n, d_model); the same ids in every model
        (see :func:`~.embeddings_io.join_embeddings`). All-NaN rows are skipped structures.
    id_ids, ood_ids : sequence of str, optional
        Ids of the in- and out-of-distribution sets (disjoint). Both or neither; without them every metric
        is computed on all shared ids (set ``"all"``) and no verdict is given.
    reference_model : str, optional
        Model whose information imbalance to every other model is reported (``reference_comparison``);
        also restricts the k-sweep curves to pairs with it.
    descriptor_name : str, optional
        Entry of ``embeddings`` that is a model-free descriptor (e.g. ``"soap"``): excluded from the model
        matrices, used for the near-duplicate guard, ``descriptor_comparison`` and gap vs collapse.
    k : int
        Neighbours of CKNNA and mutual k-NN (study: 25), capped below the smallest subsample.
    ii_k : int
        Neighbours of information imbalance (study: 50, 200, 500), capped likewise.
    normalisation : {"none", "l2", "max", "standard"}
        Row or column scaling applied before every metric. Default ``"none"``: each metric sees the
        embeddings as given and applies its own reference definition (CKNNA and mutual k-NN L2-normalise
        rows internally, as the reference code does; CKA, dCor, TwoNN, MLE and information imbalance use
        the rows unscaled). ``"max"`` divides each row by its largest absolute element (one reading of the
        study's "largest element is 1").
    variants : mapping of str to str, optional
        ``{metric: variant name}`` overriding the defaults of :data:`~.variants.DEFAULT_VARIANTS` (see
        :data:`~.variants.METRIC_VARIANTS`; e.g. ``{"cknna": "biased"}``). Every metric's entry in the output
        names its variant.
    ids : {"common", "same"}
        ``"common"`` (default): analyse the structures that every model embedded (and did not skip); what each
        model lacks or loses is reported under ``structures``. ``"same"``: every model must list the same ids.
    pairwise_ids : bool
        Also compute every pair metric on the structures *both* models of the pair embedded (per set, no
        near-duplicate guard, point estimates): ``metrics_pairwise_ids``.
    reconstruction : bool
        Compute GFRE and LFRE matrices (both directions, point estimates per set).
    n_boot : int
        Subsampling replicates for every interval (>= 2).
    repeats : int
        Equal-size repeats R.
    n_perm : int
        ID/OOD label shuffles of the permutation tests.
    permutation_metrics : sequence of str
        Metrics that get a permutation test (default: the two verdict metrics, CKNNA and dCor; each test
        costs ``2 n_perm`` evaluations of every pair at full size, the most expensive step).
    seed : int
        Master seed; every random step uses a named child seed.
    ci_level : float
        Interval coverage.
    ks : sequence of int
        k sweep (capped below the smallest set size; duplicates removed).
    mle_k : int
        Levina-Bickel k (capped below the number of distinct rows of each subsample).
    tau : float
        Near-duplicate threshold as a fraction of the median nearest-neighbour distance.
    drop_near_duplicates : bool
        Remove near-duplicates before everything (default). If False they are still found and reported.
    near_duplicate_basis : {"models", "descriptor"} or str
        Embeddings whose near-duplicates are dropped (the union, for every model): every model (default),
        the model-free descriptor, or one named embedding. A composition descriptor makes every frame of
        the same composition (a whole relaxation trajectory) a "duplicate", so it is not the default.
    metadata : pandas.DataFrame, optional
        Per-id ``id``, ``n_atoms``, ``elements`` (list or ``'Fe-O'``), ``periodic``: confounders.
    match_atom_count : bool
        Compare ID and OOD on subsets with equal counts per atom-count bin (1, 2, 3-4, 5-8, ...).
    reference_descriptor : array-like, shape (n_ref, d_descriptor), optional
        Training / reference descriptors (same descriptor as ``descriptor_name``, raw units): enables gap
        vs collapse.
    reference_element_counts : mapping of str to int, optional
        Reference structures per element (for element rarity in gap vs collapse).
    gap_k : int
        Reference neighbours averaged in the coverage gap.
    max_n : int, optional
        Seeded cap on rows per set (cost control), applied before everything else.
    set_names : mapping, optional
        Display names, e.g. ``{"id": "OMat24 sample", "ood": "OMol25 sample"}``.
    max_points : int
        Points of gap vs collapse written to JSON (statistics use all).
    spearman_n_perm : int
        Permutations of the Spearman p-values.
    calibration : bool
        Calibrate every pair metric against chance (:mod:`.calibration`, arXiv 2602.14486): per set,
        ``metrics.<name>.calibration`` holds the null mean, tau, p-value and calibrated score of every pair,
        and the ID-vs-OOD verdicts are stated on calibrated scores (raw beside them). A verdict that does
        not survive calibration, or whose calibrated local difference changes sign across the k-sweep at
        k/n <= 0.1, is "not established".
    n_calibration : int
        Row permutations of every null (P).
    calibration_quantile : float
        q of tau (0.95).
    calibration_subsample : int or None
        Rows of the seeded subsample the information imbalance is calibrated on (with k scaled to keep
        k/n), for sets larger than this.

    Returns
    -------
    dict
        The ``alignment`` section (JSON-serialisable; NaN written as null).
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}; got {normalisation!r}")
    if (id_ids is None) != (ood_ids is None):
        raise ValueError("give both id_ids and ood_ids, or neither")
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2; got {n_boot}")
    if calibration and n_calibration < 1:
        raise ValueError(f"n_calibration must be >= 1; got {n_calibration}")
    resolved = resolve_variants(variants)
    fns = _metric_fns(resolved)
    joined = join_embeddings(embeddings, how=ids)
    names = list(joined.arrays)
    if descriptor_name is not None and descriptor_name not in joined.arrays:
        raise ValueError(f"descriptor {descriptor_name!r} is not among the embeddings {names}")
    models = [m for m in names if m != descriptor_name]
    if len(models) < 2:
        raise ValueError(f"alignment needs at least 2 models besides the descriptor; got {models}")
    if reference_model is not None and reference_model not in models:
        raise ValueError(f"reference model {reference_model!r} is not among the models {models}")
    md = _metadata_table(metadata) if metadata is not None else None
    position = {s: i for i, s in enumerate(joined.ids.tolist())}
    skipped_ids = joined.dropped_ids

    # -- sets ------------------------------------------------------------------------------------------
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
        info = {"name": (set_names or {}).get(key, SET_TITLES[key]), "n_requested": len(ids),
                "n_skipped_by_a_model": len(ids) - rows.size}
        if max_n is not None and rows.size > max_n:
            rows = np.sort(np.random.default_rng(_seed(seed, "max_n", key)).choice(rows, max_n, replace=False))
            info["capped_to_max_n"] = int(max_n)
        rows_of[key], set_info[key] = rows, info

    # -- normalisation (fitted on the union of analysed rows) ---------------------------------------------
    union = np.unique(np.concatenate(list(rows_of.values())))
    normed = {m: EmbeddingNormaliser(normalisation).fit(joined.arrays[m][union]).transform(joined.arrays[m])
              for m in names}

    # -- near-duplicate guard, per set ----------------------------------------------------------------
    if near_duplicate_basis == "descriptor" and descriptor_name is not None:
        basis = [descriptor_name]
    elif near_duplicate_basis in ("models", "descriptor"):
        basis = list(models)
    elif near_duplicate_basis in names:
        basis = [near_duplicate_basis]
    else:
        raise ValueError(f"near_duplicate_basis must be 'models', 'descriptor' or an embedding name, "
                         f"got {near_duplicate_basis!r}")
    nd_rows, nd_section_rows = {}, []
    for key, rows in rows_of.items():
        found = {m: find_near_duplicates(normed[m][rows], tau) for m in names}
        drop = np.zeros(rows.size, dtype=bool)
        for m in basis:
            drop |= found[m].drop_mask
        nd_rows[key] = drop
        for m in names:
            f = found[m]
            nd_section_rows.append({
                "model_a": m, "model_b": m, "set": key, "score": f.fraction,
                "note": f"{f.n_dropped} of {rows.size} structures have a near-duplicate in this embedding "
                        f"(distance < {tau:g} × median 1-NN distance = {f.threshold:.3g})"
                        + ("; used for the guard" if m in basis else "; reported only")})
        nd_section_rows.append({
            "model_a": "all models" if len(basis) > 1 else basis[0],
            "model_b": "union" if len(basis) > 1 else basis[0], "set": key,
            "score": float(drop.mean()),
            "note": f"{int(drop.sum())} of {rows.size} structures "
                    + ("dropped for every model" if drop_near_duplicates else "flagged (not dropped)")
                    + f" (union over {', '.join(basis)})"})
        set_info[key]["n_near_duplicates"] = int(drop.sum())
    clean_rows = {key: (rows[~nd_rows[key]] if drop_near_duplicates else rows) for key, rows in rows_of.items()}

    # -- atom-count matching ------------------------------------------------------------------------------
    if match_atom_count:
        if md is None or "ood" not in clean_rows:
            raise ValueError("match_atom_count needs metadata and both ID and OOD sets")
        ia, ib = _match_atom_counts(md, joined.ids[clean_rows["id"]], joined.ids[clean_rows["ood"]],
                                    _seed(seed, "match"))
        clean_rows["id"], clean_rows["ood"] = clean_rows["id"][ia], clean_rows["ood"][ib]
        for key in ("id", "ood"):
            set_info[key]["matched_by_atom_count"] = True

    for key, rows in clean_rows.items():
        set_info[key]["n"] = int(rows.size)
        set_info[key]["description"] = (
            f"{rows.size} structures analysed ({set_info[key]['n_requested']} requested, "
            f"{set_info[key]['n_skipped_by_a_model']} skipped by a model, {set_info[key]['n_near_duplicates']} "
            "near-duplicates" + (" dropped" if drop_near_duplicates else " kept") + ")")
        if rows.size < 8:
            raise ValueError(f"the {key.upper()} set has {rows.size} structures left; at least 8 are needed")

    # -- embedding outliers (reported, not dropped) ---------------------------------------------------------
    outliers, outlier_warnings = {}, []
    for key, rows in clean_rows.items():
        for m in models:
            A = normed[m][rows]
            r = np.linalg.norm(A - np.median(A, axis=0), axis=1)
            med = float(np.median(r))
            far = np.flatnonzero(r > OUTLIER_FACTOR * med) if med > 0 else np.empty(0, dtype=np.int64)
            if far.size:
                far = far[np.argsort(-r[far])]
                outliers.setdefault(m, {})[key] = [{"id": str(joined.ids[rows[i]]), "distance_over_median":
                                                    float(r[i] / med)} for i in far[:10]]
                outlier_warnings.append(
                    f"{far.size} {key.upper()} structure(s) lie over {OUTLIER_FACTOR:g} times the median distance from "
                    f"the median embedding of {m} (largest: {joined.ids[rows[far[0]]]}, {r[far[0]] / med:.0f} times); "
                    "global metrics (CKA, dCor, GFRE) can be dominated by them")

    # -- common sizes and k ------------------------------------------------------------------------------
    keys = list(clean_rows)
    two_sets = keys == ["id", "ood"]
    n_min = min(r.size for r in clean_rows.values())
    m_min = min(_subsample_size(r.size, None) for r in clean_rows.values())
    eq_size = n_min // 2 if two_sets else None
    smallest = min([m_min] + ([eq_size] if eq_size else []))
    k_used, ii_k_used = _cap_k(k, smallest), _cap_k(ii_k, smallest)
    k_list = sorted({_cap_k(kk, n_min) for kk in ks})
    model_pairs = list(combinations(range(len(models)), 2))
    n_by_set = {key: int(r.size) for key, r in clean_rows.items()}

    def local_enough(kk):
        return all(kk / nn <= MAX_K_OVER_N for nn in n_by_set.values())

    # the local verdict's k: k itself while k/n <= 0.1 in every set, else the largest such k of the sweep
    sweep_local = [kk for kk in k_list if local_enough(kk)]
    k_local = (k_used if local_enough(k_used) else
               max(sweep_local) if sweep_local else max(1, int(MAX_K_OVER_N * n_min)))
    section_warnings = [w for w in (
        k_over_n_warning(["CKNNA", "mutual k-NN"], k_used, n_by_set),
        k_over_n_warning(["information imbalance"], ii_k_used, n_by_set, local_verdict=False)) if w]
    cal_options = {mt: dict(resolved[mt].kwargs) for mt in METRICS}

    params = {
        "k": k_used, "k_requested": int(k), "information_imbalance_k": ii_k_used,
        "information_imbalance_k_requested": int(ii_k),
        "variants": {m: v.name for m, v in resolved.items()},
        "cknna": resolved["cknna"].description,
        "mutual_knn_metric": resolved["mutual_knn"].kwargs["metric"], "cka_kernel": resolved["cka"].description,
        "dcor_estimator": resolved["dcor"].description, "normalisation": normalisation, "n_boot": int(n_boot),
        "ci_level": ci_level,
        "interval_scheme": "m-out-of-n subsampling without replacement, m = n // 2, deviations rescaled by "
                           "sqrt(m / (n - m)); one set of subsamples shared by all pairs and metrics of a set",
        "repeats": int(repeats), "equal_size": eq_size, "n_perm": int(n_perm),
        "permutation_metrics": [m for m in METRICS if m in permutation_metrics], "seed": int(seed),
        "near_duplicate_tau": tau, "near_duplicate_basis": ", ".join(basis),
        "drop_near_duplicates": bool(drop_near_duplicates), "mle_k": int(mle_k), "twonn_discard_fraction": 0.1,
        "id_estimator_for_verdict": "twonn", "k_sweep": k_list, "match_atom_count": bool(match_atom_count),
        "max_n": max_n, "n": {key: int(r.size) for key, r in clean_rows.items()},
        "n_skipped_structures": joined.n_skipped,
        "calibration": ({"n_permutations": int(n_calibration), "quantile": float(calibration_quantile),
                         "local_verdict_k": int(k_local), "information_imbalance_subsample": calibration_subsample}
                        if calibration else None),
    }

    # -- per set ------------------------------------------------------------------------------------------
    metrics_out = {mt: {"k": (k_used if mt in LOCAL_METRICS else ii_k_used if mt == "information_imbalance"
                              else None),
                        "higher_is_more_aligned": HIGHER_IS_MORE_ALIGNED[mt], "description": "",
                        "variant": resolved[mt].name, "variant_description": resolved[mt].description,
                        "reference": resolved[mt].reference, "normalisation": normalisation} for mt in METRICS}
    for mt in ("cknna", "mutual_knn", "information_imbalance"):
        metrics_out[mt]["k_over_n"] = {key: metrics_out[mt]["k"] / nn for key, nn in n_by_set.items()}
    metrics_out["information_imbalance"]["description"] = (
        "row i, column j: Delta(model_i -> model_j), small when model_i's neighbourhoods predict model_j's; "
        "diagonal not computed")
    metrics_out["twonn"] = {"k": None, "higher_is_more_aligned": False,
                            "description": "diagonal: TwoNN dimension of each model; off-diagonal: TwoNN dimension "
                                           "of the two normalised embeddings concatenated (close to the larger "
                                           "diagonal value when one is a function of the other, to the sum when "
                                           "they are unrelated)"}
    for mt in METRICS[:4]:
        metrics_out[mt]["description"] = "symmetric; diagonal 1 by definition"
    if reconstruction:
        for mt in RECONSTRUCTION_METRICS:
            metrics_out[mt] = {
                "k": None, "higher_is_more_aligned": False, "variant": resolved[mt].name,
                "variant_description": resolved[mt].description, "reference": resolved[mt].reference,
                "normalisation": normalisation,
                "description": "row i, column j: error of reconstructing model_j from model_i on a held-out half "
                               "(0 = exact linear reconstruction, about 1 = none); diagonal not computed; point "
                               "estimates, no intervals"
                               + ("; LFRE uses the 15 nearest training structures of each test structure"
                                  if mt == "lfre" else "")}
    idim = {"estimator": "TwoNN (Facco et al. 2017; 10% largest ratios discarded), near-duplicate-free rows",
            "values": {m: {} for m in models}, "intervals": {m: {} for m in models},
            "mle": {"k": None, "values": {m: {} for m in models}, "intervals": {m: {} for m in models}},
            "raw": {"description": "before the near-duplicate guard", "twonn": {m: {} for m in models},
                    "mle": {m: {} for m in models}},
            "used_by_verdict": "twonn"}
    sweep_curves, sweep_mknn_curves, scale_curves = [], [], []
    ref_idx = models.index(reference_model) if reference_model is not None else None
    sweep_pairs = [p for p in model_pairs if ref_idx in p] if ref_idx is not None else model_pairs
    res_by_set, id_reps, desc_out, per_set_gap = {}, {}, {}, {}
    cal_by_set, local_by_set, cal_sweep = {}, {}, {}
    for key in keys:
        rows = clean_rows[key]
        arrays = [normed[m][rows] for m in models]
        n = rows.size
        res = _resample(arrays, model_pairs, METRICS, k_used, ii_k_used, n_boot, _seed(seed, "boot", key), fns)
        res_by_set[key] = res
        for mt in METRICS:
            M = np.full((len(models), len(models)), np.nan)
            IV = [[None] * len(models) for _ in models]
            for (i, j), v in res.estimate[mt].items():
                M[i, j] = v
                IV[i][j] = _iv(_interval(v, res.reps[mt][(i, j)], n, res.m, ci_level))
                if mt != "information_imbalance":
                    M[j, i], IV[j][i] = v, IV[i][j]
            if mt != "information_imbalance":
                np.fill_diagonal(M, 1.0)
            metrics_out[mt][key] = _matrix(M)
            metrics_out[mt].setdefault("intervals", {})[key] = IV
            est, reps = _mean_over(res, mt, _ordered_keys(mt, model_pairs))
            metrics_out[mt].setdefault("mean_over_pairs", {})[key] = {
                "estimate": _num(est), "interval": _iv(_interval(est, reps, n, res.m, ci_level))}
        if calibration:  # every pair metric against its permutation null (one set of permutations per pair)
            cal = calibrate_pairs(arrays, metrics=METRICS, k=k_used, ii_k=ii_k_used, n_permutations=n_calibration,
                                  quantile=calibration_quantile, seed=_seed(seed, "calibration", key),
                                  options=cal_options, ii_subsample=calibration_subsample)
            cal_by_set[key] = cal
            for mt in METRICS:
                entry = metrics_out[mt].setdefault("calibration", {
                    "n_permutations": int(n_calibration), "quantile": float(calibration_quantile),
                    "description": CALIBRATION_FIELDS})
                mats = calibration_matrices(cal[mt], len(models), directed=mt in DIRECTED_METRICS)
                first = next(iter(cal[mt].values()))
                entry[key] = {f: mats[f] for f in ("null_mean", "tau", "p_value", "calibrated")}
                entry[key].update(method=first.method, n_rows=int(first.n_rows))
                if first.n_rows != n:
                    entry[key]["raw_on_subsample"] = mats["raw"]
                est, reps = _calibrated_mean(cal[mt], res, mt, model_pairs)
                entry.setdefault("mean_over_pairs", {})[key] = {
                    "estimate": _num(est), "interval": _iv(_interval(est, reps, n, res.m, ci_level))}
            # the local metrics over the k-sweep, and at the local verdict's k
            cal_sweep[key] = {mt: [] for mt in LOCAL_METRICS}
            for kk in k_list:
                ck = calibrate_pairs(arrays, metrics=LOCAL_METRICS, k=kk, n_permutations=n_calibration,
                                     quantile=calibration_quantile, seed=_seed(seed, "calibration", key, kk),
                                     options=cal_options)
                for mt in LOCAL_METRICS:
                    cal_sweep[key][mt].append(float(np.mean([c.calibrated for c in ck[mt].values()])))
            if k_local == k_used:
                local_by_set[key] = (cal, res)
            else:
                local_by_set[key] = (
                    calibrate_pairs(arrays, metrics=LOCAL_METRICS, k=k_local, n_permutations=n_calibration,
                                    quantile=calibration_quantile, seed=_seed(seed, "calibration", key, k_local),
                                    options=cal_options),
                    _resample(arrays, model_pairs, LOCAL_METRICS, k_local, ii_k_used, n_boot,
                              _seed(seed, "boot", key), fns))
        # joint TwoNN
        J = np.full((len(models), len(models)), np.nan)
        for i, A in enumerate(arrays):
            J[i, i] = _twonn(A)
        for i, j in model_pairs:
            J[i, j] = J[j, i] = _twonn(np.hstack([arrays[i], arrays[j]]))
        metrics_out["twonn"][key] = _matrix(J)
        if reconstruction:  # GFRE / LFRE: both directions, point estimates
            rec = _pair_values(arrays, model_pairs, RECONSTRUCTION_METRICS, k_used, ii_k_used, fns)
            for mt in RECONSTRUCTION_METRICS:
                M = np.full((len(models), len(models)), np.nan)
                for (i, j), v in rec[mt].items():
                    M[i, j] = v
                metrics_out[mt][key] = _matrix(M)
        # intrinsic dimension with intervals
        s_id = _seed(seed, "id", key)
        mle_k_used = max(2, min(mle_k, res.m - 1))
        idim["mle"]["k"] = mle_k_used if idim["mle"]["k"] is None else min(idim["mle"]["k"], mle_k_used)
        for m, A in zip(models, arrays):
            ci_t = bootstrap_ci(lambda X, _: _twonn(X), A, A[:, :1], n_boot, ci_level, s_id)
            ci_m = bootstrap_ci(lambda X, _, kk=mle_k_used: _mle(X, kk), A, A[:, :1], n_boot, ci_level, s_id)
            idim["values"][m][key] = _num(ci_t.estimate)
            idim["mle"]["values"][m][key] = _num(ci_m.estimate)
            for target, c in ((idim["intervals"][m], ci_t), (idim["mle"]["intervals"][m], ci_m)):
                if _iv((c.low, c.high)):
                    target[key] = [c.low, c.high]
            id_reps[(m, key)] = ci_t
            raw = normed[m][rows_of[key]]
            idim["raw"]["twonn"][m][key] = _num(_twonn(raw))
            idim["raw"]["mle"][m][key] = _num(_mle(raw, mle_k_used))
            scale = id_vs_scale(A, seed=_seed(seed, "scale", key, m))
            scale_curves.append({"label": m, "set": key, "scale": scale["nn_distance"].tolist(),
                                 "id": [_num(v) for v in scale["id"]], "n_points": scale["n_points"].tolist(),
                                 "id_std": scale["id_std"].tolist()})
        # k sweeps
        for metric_fn, store, label in ((metric_function("cknna", resolved["cknna"]), sweep_curves, "cknna"),
                                        (metric_function("mutual_knn", resolved["mutual_knn"]), sweep_mknn_curves,
                                         "mutual_knn")):
            vals = {p: k_sweep(arrays[p[0]], arrays[p[1]], ks=k_list, metric=metric_fn)["value"].to_numpy()
                    for p in model_pairs}
            for p in sweep_pairs:
                store.append({"label": f"{models[p[0]]} vs {models[p[1]]}", "set": key,
                              "values": [_num(v) for v in vals[p]]})
            if len(model_pairs) > 1:
                store.append({"label": "mean over model pairs", "set": key,
                              "values": [_num(v) for v in np.mean(list(vals.values()), axis=0)]})
        # descriptor comparison
        if descriptor_name is not None:
            D = normed[descriptor_name][rows]
            dres = _resample(arrays + [D], [(i, len(models)) for i in range(len(models))],
                             ("cknna", "mutual_knn", "information_imbalance"), k_used, ii_k_used, n_boot,
                             _seed(seed, "boot", key), fns)
            res_by_set[(key, "descriptor")] = dres
            entry = {}
            for i, m in enumerate(models):
                d = len(models)
                entry[m] = {
                    name: {"estimate": _num(dres.estimate[mt][p]),
                           "interval": _iv(_interval(dres.estimate[mt][p], dres.reps[mt][p], n, dres.m, ci_level))}
                    for name, mt, p in (("cknna", "cknna", (i, d)), ("mutual_knn", "mutual_knn", (i, d)),
                                        ("information_imbalance_model_to_descriptor", "information_imbalance", (i, d)),
                                        ("information_imbalance_descriptor_to_model", "information_imbalance", (d, i)))}
            desc_out[key] = entry
            per_set_gap[key] = {"n": n, "ids": joined.ids[rows], "arrays": dict(zip(models, arrays)),
                                "descriptor": D, "raw_descriptor": joined.arrays[descriptor_name][rows]}

    # -- ID - OOD differences, equal size, permutation ----------------------------------------------------
    summary = {}
    if two_sets:
        ra, rb = res_by_set["id"], res_by_set["ood"]
        widths = [normed[m].shape[1] for m in models]
        C = {key: np.hstack([normed[m][clean_rows[key]] for m in models]) for key in keys}
        for mt in METRICS:
            diffs, divs = np.full((len(models), len(models)), np.nan), [[None] * len(models) for _ in models]
            for p in ra.estimate[mt]:
                i, j = p
                diffs[i, j] = ra.estimate[mt][p] - rb.estimate[mt][p]
                divs[i][j] = _iv(_diff_interval(ra.estimate[mt][p], ra.reps[mt][p], ra.n, ra.m,
                                                rb.estimate[mt][p], rb.reps[mt][p], rb.n, rb.m, ci_level))
                if mt != "information_imbalance":
                    diffs[j, i], divs[j][i] = diffs[i, j], divs[i][j]
            ea, reps_a = _mean_over(ra, mt, _ordered_keys(mt, model_pairs))
            eb, reps_b = _mean_over(rb, mt, _ordered_keys(mt, model_pairs))
            div = _diff_interval(ea, reps_a, ra.n, ra.m, eb, reps_b, rb.n, rb.m, ci_level)
            fn = _concat_mean_fn(widths, mt, k_used, ii_k_used, fns)
            eq = equal_size_comparison(fn, (C["id"], C["id"][:, :1]), (C["ood"], C["ood"][:, :1]), eq_size,
                                       repeats, _seed(seed, "equal", mt))
            pt = (permutation_test(fn, (C["id"], C["id"][:, :1]), (C["ood"], C["ood"][:, :1]), n_perm,
                                   _seed(seed, "perm", mt)) if mt in permutation_metrics else None)
            summary[mt] = {
                "id": _num(ea), "ood": _num(eb), "difference": _num(ea - eb), "difference_interval": _iv(div),
                "n_pairs": len(model_pairs), "k": metrics_out[mt]["k"],
                "equal_size": {"size": eq.size, "repeats": int(repeats), "id_mean": eq.id_mean, "id_std": eq.id_std,
                               "ood_mean": eq.ood_mean, "ood_std": eq.ood_std, "difference_mean": eq.diff_mean,
                               "difference_std": eq.diff_std},
                "permutation": ({"statistic": _num(pt.statistic), "p_value": pt.p_value, "n_perm": int(n_perm),
                                 "alternative": pt.alternative} if pt is not None else None),
                "direction": _direction(_iv(div), HIGHER_IS_MORE_ALIGNED[mt]),
            }
            metrics_out[mt]["difference"] = {"estimate": _matrix(diffs), "intervals": divs,
                                             "description": "ID − OOD per pair, with subsampling intervals"}
            metrics_out[mt]["comparison"] = summary[mt]
        # intrinsic dimension differences
        idim["difference"] = {}
        for m in models:
            a, b = id_reps[(m, "id")], id_reps[(m, "ood")]
            idim["difference"][m] = {"estimate": _num(a.estimate - b.estimate), "interval": _iv(_diff_interval(
                a.estimate, a.replicates, ra.n, a.m, b.estimate, b.replicates, rb.n, b.m, ci_level))}
        if descriptor_name is not None:
            da, db = res_by_set[("id", "descriptor")], res_by_set[("ood", "descriptor")]
            for mt in ("cknna", "information_imbalance"):
                for i, m in enumerate(models):
                    for p, name in (((i, len(models)), "model_to_descriptor"), ((len(models), i), "descriptor_to_model")):
                        if p not in da.estimate[mt]:
                            continue
                        desc_out.setdefault("difference", {}).setdefault(m, {})[f"{mt}_{name}"] = {
                            "estimate": _num(da.estimate[mt][p] - db.estimate[mt][p]),
                            "interval": _iv(_diff_interval(da.estimate[mt][p], da.reps[mt][p], da.n, da.m,
                                                           db.estimate[mt][p], db.reps[mt][p], db.n, db.m, ci_level))}

    # -- confounders ----------------------------------------------------------------------------------------
    confounders = None
    if md is not None:
        confounders = set_confounders(md.reset_index(), {key: joined.ids[clean_rows[key]].tolist() for key in keys})

    # -- assemble -------------------------------------------------------------------------------------------
    section = {
        "models": models,
        "sets": set_info,
        "structures": {
            "policy": ("structures every model embedded (ids another model lacks or skipped are dropped for all)"
                       if ids == "common" else "every model must list the same ids"),
            "n_analysed_before_sets": int(joined.ids.size),
            "per_model": joined.accounting()},
        "parameters": params,
        "metrics": metrics_out,
        "intrinsic_dimension": idim,
        "k_sweep": {"metric": "cknna", "variant": resolved["cknna"].name, "k": k_list, "curves": sweep_curves,
                    "mutual_knn": {"metric": "mutual_knn", "variant": resolved["mutual_knn"].name, "k": k_list,
                                   "curves": sweep_mknn_curves}},
        "id_vs_scale": {"estimator": "TwoNN by decimation (Facco et al. 2017), near-duplicate-free rows",
                        "scale_label": "mean second-neighbour distance (normalised embedding units)",
                        "curves": scale_curves},
        "near_duplicates": {
            "metric": "share of structures with a near-duplicate (Euclidean distance < tau × median 1-NN distance)",
            "threshold": tau, "basis": basis, "dropped": bool(drop_near_duplicates),
            "rule": "rows closer than tau times the median nearest-neighbour distance are linked; each linked "
                    "cluster keeps its first row; the union of drops over the basis embeddings is removed for "
                    "every model",
            "rows": nd_section_rows},
    }
    section["embedding_outliers"] = {
        "rule": f"rows farther than {OUTLIER_FACTOR:g} times the median distance from the set's median embedding "
                "(after normalisation, near-duplicate-free rows); reported, not dropped",
        "models": outliers, "warnings": outlier_warnings}
    if pairwise_ids:
        section["metrics_pairwise_ids"] = _pairwise_ids_section(
            embeddings, models, requested, normalisation, k, ii_k, fns, {m: v.name for m, v in resolved.items()})
    if ref_idx is not None:
        refc = {"model": reference_model, "information_imbalance": {}}
        for key in keys:
            res, n = res_by_set[key], clean_rows[key].size
            refc["information_imbalance"][key] = {}
            for i, m in enumerate(models):
                if i == ref_idx:
                    continue
                ent = {}
                for name, p in (("model_to_reference", (i, ref_idx)), ("reference_to_model", (ref_idx, i))):
                    v = res.estimate["information_imbalance"][p]
                    ent[name] = {"estimate": _num(v), "interval": _iv(_interval(
                        v, res.reps["information_imbalance"][p], n, res.m, ci_level))}
                refc["information_imbalance"][key][m] = ent
        section["reference_comparison"] = refc
    if descriptor_name is not None:
        section["descriptor_comparison"] = {"descriptor": descriptor_name,
                                            "variants": {m: resolved[m].name for m in ("cknna", "mutual_knn",
                                                                                       "information_imbalance")},
                                            **desc_out}
    if confounders is not None:
        section["confounders"] = confounders
    tree_set = "id" if two_sets else "all"
    tree = family_tree(np.array(metrics_out["cknna"][tree_set], dtype=float), models)
    section["family_tree"] = {**tree, "metric": f"1 - CKNNA (k = {k_used})", "set": tree_set}
    section["warnings"] = list(section_warnings)
    if calibration:
        S = np.array(metrics_out["cknna"]["calibration"][tree_set]["calibrated"], dtype=float)
        np.fill_diagonal(S, 1.0)
        section["family_tree_calibrated"] = {**family_tree(S, models),
                                             "metric": f"1 - calibrated CKNNA (k = {k_used})", "set": tree_set}
        section["calibration"] = {"explanation": CALIBRATION_EXPLANATION, **params["calibration"],
                                  "reference": "Gröger, Wen & Brbić (2026), arXiv 2602.14486, Algorithm 1 "
                                               "(package calibrated-similarity)",
                                  "k_sweep": {"k": k_list, "k_over_n": {key: [kk / nn for kk in k_list]
                                                                        for key, nn in n_by_set.items()},
                                              **{f"calibrated_{mt}": {key: [_num(x) for x in cal_sweep[key][mt]]
                                                                      for key in cal_sweep}
                                                 for mt in LOCAL_METRICS}}}
    if two_sets:
        warnings = (confounders["warnings"] if confounders else []) + outlier_warnings
        section["verdicts"] = {
            "local": _verdict("local", LOCAL_METRICS[0], summary, LOCAL_METRICS[1:], params, warnings),
            "global": _verdict("global", GLOBAL_METRICS[0], summary, GLOBAL_METRICS[1:], params, warnings),
        }
        section["verdicts"]["intrinsic_dimension"] = _id_verdict(idim, id_reps, models, res_by_set, params)
        if calibration:
            sweep_ks = [kk for kk in k_list if local_enough(kk)]
            sweep_diffs = [cal_sweep["id"][LOCAL_METRICS[0]][k_list.index(kk)]
                           - cal_sweep["ood"][LOCAL_METRICS[0]][k_list.index(kk)] for kk in sweep_ks]
            for scope, metrics_, by_set, kk in (
                    ("local", LOCAL_METRICS, local_by_set, k_local),
                    ("global", GLOBAL_METRICS, {key: (cal_by_set[key], res_by_set[key]) for key in keys}, None)):
                _calibrate_verdict(section["verdicts"][scope], metrics_, by_set, model_pairs, kk, n_by_set,
                                   sweep_ks if scope == "local" else [], sweep_diffs if scope == "local" else [],
                                   params)
    if descriptor_name is not None and reference_descriptor is not None:
        R = np.asarray(reference_descriptor, dtype=float)
        if R.ndim != 2 or R.shape[1] != joined.arrays[descriptor_name].shape[1]:
            raise ValueError(f"reference_descriptor must have shape (n_ref, {joined.arrays[descriptor_name].shape[1]}); "
                             f"got {R.shape}")
        section["gap_vs_collapse"] = _gap_vs_collapse(
            per_set_gap, models, descriptor_name, R, md, reference_element_counts, gap_k, k_used, n_boot,
            spearman_n_perm, ci_level, seed, max_points)
    else:
        section["gap_vs_collapse_not_computed"] = "needs descriptor_name and reference_descriptor"
    return section


def _pairwise_ids_section(embeddings, models, requested, normalisation, k, ii_k, fns, fns_names) -> dict:
    """Every pair metric on the structures both models of a pair embedded, per set (point estimates)."""
    rows = {}
    for m in models:
        ids, X = embeddings[m]
        ids, X = np.asarray(ids).astype(str), np.asarray(X, dtype=np.float64)
        ok = ~np.isnan(X).all(axis=1)
        rows[m] = (dict(zip(ids[ok].tolist(), np.flatnonzero(ok).tolist())), X)
    out = {"description": "each pair on the structures of the set that both of its models embedded (no "
                          "near-duplicate guard, point estimates); k capped below each pair's n",
           "variants": {mt: fns_names[mt] for mt in METRICS}, "n": {}, **{mt: {} for mt in METRICS}}
    for key, wanted in requested.items():
        N = np.zeros((len(models), len(models)), dtype=np.int64)
        mats = {mt: np.full((len(models), len(models)), np.nan) for mt in METRICS}
        for i, j in combinations(range(len(models)), 2):
            pos_i, Xi = rows[models[i]]
            pos_j, Xj = rows[models[j]]
            both = [s for s in wanted if s in pos_i and s in pos_j]
            N[i, j] = N[j, i] = len(both)
            if len(both) < 8:
                continue
            A = EmbeddingNormaliser(normalisation).fit_transform(Xi[[pos_i[s] for s in both]])
            B = EmbeddingNormaliser(normalisation).fit_transform(Xj[[pos_j[s] for s in both]])
            vals = _pair_values([A, B], [(0, 1)], METRICS, _cap_k(k, len(both)), _cap_k(ii_k, len(both)), fns)
            for mt in METRICS:
                for (a, b), v in vals[mt].items():
                    mats[mt][(i, j)[a], (i, j)[b]] = v
                    if mt not in DIRECTED_METRICS:
                        mats[mt][j, i] = v
        out["n"][key] = N.tolist()
        for mt in METRICS:
            out[mt][key] = _matrix(mats[mt])
    return out


def _id_verdict(idim, id_reps, models, res_by_set, params) -> dict:
    """Mean over models of TwoNN(ID) - TwoNN(OOD): does the representation lose dimensions out of distribution?"""
    level = params["ci_level"]
    a = [id_reps[(m, "id")] for m in models]
    b = [id_reps[(m, "ood")] for m in models]
    ea, eb = float(np.mean([c.estimate for c in a])), float(np.mean([c.estimate for c in b]))
    ra, rb = np.mean([c.replicates for c in a], axis=0), np.mean([c.replicates for c in b], axis=0)
    na, nb = res_by_set["id"].n, res_by_set["ood"].n
    iv = _iv(_diff_interval(ea, ra, na, a[0].m, eb, rb, nb, b[0].m, level))
    if iv is None:
        word = "not determined"
    elif iv[0] > 0:
        word = "higher in distribution"
    elif iv[1] < 0:
        word = "higher out of distribution"
    else:
        word = "no detectable difference"
    out = {
        "question": "Is the intrinsic dimension of the embeddings higher in distribution or out of distribution?",
        "statistic": "mean over models of TwoNN dimension (ID) − TwoNN dimension (OOD), near-duplicate-free rows",
        "estimate": _num(ea - eb), "level": level, "verdict": word,
        "explanation": (f"TwoNN, mean over {len(models)} model(s): ID {ea:.2f}, OOD {eb:.2f}; ID − OOD = {ea - eb:+.2f}"
                        + (f", {round(100 * level)}% interval [{iv[0]:+.2f}, {iv[1]:+.2f}]" if iv else "")
                        + f". Intrinsic dimension: {word}"
                        + (" (a lower OOD dimension is what a collapse onto a low-information representation "
                           "predicts)." if word == "higher in distribution" else ".")),
        "metric": "twonn",
    }
    if iv:
        out["interval"] = iv
    return out
