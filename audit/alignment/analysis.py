"""The alignment analysis: model embeddings in, the ``alignment`` section of the audit document out.

:func:`align` takes per-model embeddings keyed by structure id (see :mod:`.embeddings_io` for files) and
optional in-distribution (ID) / out-of-distribution (OOD) id lists, and returns a JSON-ready dict in the
layout of ``$defs/alignment`` of ``reports/schema/audit.schema.json`` (extra keys are added, none renamed).

It is a short pipeline of named steps (:mod:`.steps`), each returning a typed section with ``to_json()``:
join -> sets -> normalise -> near-duplicate guard (-> atom-count matching) -> outliers -> plan (sizes, k,
``parameters``) -> pair metrics with intervals -> calibration against chance -> intrinsic dimension -> k
sweeps -> descriptor and reference comparisons -> ID - OOD comparison -> confounders -> verdicts -> gap vs
collapse -> family tree. The options are one :class:`~.options.AlignOptions`; the metrics are the records of
:mod:`.metric_registry` (the defaults, plus any registered metric asked for with ``metrics=[...]``).

What each step computes
-----------------------
1. **Join** models on ``id``: by default the structures every model embedded (ids a model lacks, or rows it
   skipped as all-NaN, are dropped for all of them and counted per model under ``structures``).
2. **Sets**: ID and OOD id lists (disjoint), or one set ``"all"``. Optional seeded cap ``max_n`` per set.
3. **Normalise** every embedding by a named method (``"none"`` by default: each metric's reference
   definition on the embeddings as given), fitted on the union of the analysed rows of all sets.
4. **Near-duplicate guard** per set: rows closer than ``tau`` times the median nearest-neighbour distance
   (:func:`~.neardup.find_near_duplicates`) on the basis embeddings; the union of the drops is removed for
   every model, so the comparison stays paired. Optional **atom-count matching**; rows far from the rest
   of their set are reported, not dropped.
5. **Pair metrics** per set, each by a named variant (defaults = the reference code the study used), with
   m-out-of-n subsampling intervals (``m = n // 2``; the same subsamples for every pair and metric of a
   set), the joint TwoNN of each pair and GFRE / LFRE (both directions, point estimates).
6. **Against chance** (arXiv 2602.14486): a permutation null per pair metric, pair and set; the verdicts
   are stated on calibrated scores (raw beside them); k/n > 0.1 moves the local verdict to the largest sweep
   k with k/n <= 0.1 and adds a warning.
7. **Intrinsic dimension** (TwoNN for the verdict, MLE as a cross-check) per model and set, and against
   scale; **k sweeps** of CKNNA and mutual k-NN.
8. **ID - OOD**: differences with intervals, equal-size repeats, permutation tests (``permutation_metrics``);
   **confounders** from metadata; **verdicts** (local: CKNNA, mutual k-NN supporting; global: dCor, CKA and
   information imbalance supporting; intrinsic dimension) in words that follow the intervals.
9. **Gap vs collapse** (descriptor + reference descriptors) and the **family tree** of ``1 - CKNNA``.

Cost: each of ``n_boot`` replicates evaluates every metric on every pair at ``n // 2`` rows; the
O(n^2) metrics (dCor, information imbalance) dominate. ``benchmarks/bootstrap.py`` measures it; use
``max_n`` or a smaller ``n_boot`` for large sets.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .metric_registry import metric_names, pair_functions
from .options import DEFAULT_KS, AlignOptions  # noqa: F401  (DEFAULT_KS re-exported)
from .steps import (calibration_step as _cal, comparison as _cmp, confounders as _conf, descriptor as _desc,
                    family as _fam, gap_collapse as _gap, intrinsic as _idim, k_sweep as _ksw, pair_metrics as _pm,
                    pairwise_ids as _pw, plan as _plan, prepare as _prep, verdicts as _ver)
from .steps._common import (cap_k as _cap_k, child_seed as _seed, diff_interval as _diff_interval,  # noqa: F401
                            interval as _interval, iv as _iv, matrix as _matrix, num as _num,
                            ordered_keys as _ordered_keys)
from .steps.calibration_step import CALIBRATION_EXPLANATION, CALIBRATION_FIELDS  # noqa: F401
from .steps.confounders import (CONFOUNDER_THRESHOLDS, atom_count_bin as _atom_count_bin,  # noqa: F401
                                match_atom_counts as _match_atom_counts, metadata_table as _metadata_table,
                                set_confounders)
from .steps.prepare import OUTLIER_FACTOR, SET_TITLES  # noqa: F401
from .steps.verdicts import GLOBAL_METRICS, LABELS, LOCAL_METRICS  # noqa: F401
from .steps.verdicts import direction as _direction  # noqa: F401
from .variants import resolve_variants

__all__ = ["align", "AlignOptions", "METRICS", "LOCAL_METRICS", "GLOBAL_METRICS",
           "LABELS", "set_confounders"]

#: The default pair metrics with intervals (registry order).
METRICS = tuple(m for m in metric_names(default=True) if m not in _pm.RECONSTRUCTION_METRICS
                and m in resolve_variants())
RECONSTRUCTION_METRICS = _pm.RECONSTRUCTION_METRICS


def align(embeddings: Mapping[str, tuple], id_ids: Sequence[str] | None = None,
          ood_ids: Sequence[str] | None = None, *, options: AlignOptions | None = None, **kwargs) -> dict:
    """Alignment section of the audit document from model embeddings.

    Parameters
    ----------
    embeddings : mapping of str to (ids, X)
        ``{model: (ids, X)}``, ``ids`` shape (n,), ``X`` shape (n, d_model); the same ids in every model
        (see :func:`~.embeddings_io.join_embeddings`). All-NaN rows are skipped structures.
    id_ids, ood_ids : sequence of str, optional
        Ids of the in- and out-of-distribution sets (disjoint). Both or neither; without them every metric
        is computed on all shared ids (set ``"all"``) and no verdict is given.
    options : AlignOptions, optional
        All options at once; keyword arguments (below) replace its fields.
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
    metrics : sequence of str
        Registered metrics computed besides the defaults (names from :func:`~.metric_registry.metric_names`
        with ``default=False``): each gets the treatment of a default pair metric (intervals, ID - OOD comparison,
        calibration) under ``metrics.<name>``, and no role in the verdicts. Default metrics named here are
        computed anyway.
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
        k/n), for sets larger than this.

    Returns
    -------
    dict
        The ``alignment`` section (JSON-serialisable; NaN written as null).

    Raises
    ------
    ValueError
        Inconsistent options or inputs (the message says which); TypeError for an unknown keyword.
    """
    opts = AlignOptions.from_kwargs(options, **kwargs)
    opts.check()
    if (id_ids is None) != (ood_ids is None):
        raise ValueError("give both id_ids and ood_ids, or neither")
    extra = opts.extra_metrics()
    resolved = resolve_variants(opts.variants, extra)
    fns = pair_functions(resolved)
    pair_metrics = METRICS + tuple(m for m in metric_names() if m in extra and m not in METRICS)

    j = _prep.join_step(embeddings, opts)
    md = _conf.metadata_table(opts.metadata) if opts.metadata is not None else None
    sets = _prep.sets_step(j, id_ids, ood_ids, opts)
    normed = _prep.normalise_step(j, sets, opts)
    nd = _prep.near_duplicate_step(j, sets, normed, opts)
    _conf.match_atom_count_step(j.joined.ids, sets, md, opts)
    _prep.finish_sets(sets, opts)
    outliers = _prep.outlier_step(j, sets, normed)
    plan = _plan.plan_step(j.models, sets, nd, j.joined.n_skipped, resolved, pair_metrics, opts)

    pm = _pm.pair_metrics_step(normed, sets, plan, fns, opts)
    cal = _cal.calibration_step(pm, plan, fns, opts)
    idim = _idim.intrinsic_dimension_step(normed, sets, pm, plan, opts)
    sweep = _ksw.k_sweep_step(pm, plan, opts)
    desc = _desc.descriptor_step(j.joined, normed, sets, pm, plan, fns, opts)
    cmp = _cmp.comparison_step(normed, sets, pm, idim, desc, plan, fns, opts)
    confounders = _conf.confounders_step(j.joined.ids, sets, md)
    verdicts = _ver.verdicts_step(pm, cmp, idim, cal, confounders, outliers, plan)
    gap = _gap.gap_vs_collapse_step(j.joined, desc, md, plan, opts)
    trees = _fam.family_tree_step(pm, cal, plan)

    section = {"models": plan.models, "sets": sets.to_json(), "structures": j.to_json(),
               "parameters": plan.to_json(), "metrics": _merge_metrics(pm, cal, cmp),
               "intrinsic_dimension": idim.to_json(), "k_sweep": sweep.to_json(), "id_vs_scale": idim.scale_json(),
               "near_duplicates": nd.to_json(), "embedding_outliers": outliers.to_json()}
    if opts.pairwise_ids:
        section["metrics_pairwise_ids"] = _pw.pairwise_ids_step(
            embeddings, plan.models, sets.requested, pair_metrics, opts.normalisation, opts.k, opts.ii_k, fns,
            {m: v.name for m, v in resolved.items()})
    reference = _desc.reference_step(pm, plan, opts)
    if reference is not None:
        section["reference_comparison"] = reference
    if desc is not None:
        section["descriptor_comparison"] = desc.to_json()
    if confounders is not None:
        section["confounders"] = confounders.to_json()
    section["family_tree"] = trees.raw
    section["warnings"] = list(plan.warnings)
    if cal is not None:
        section["family_tree_calibrated"] = trees.calibrated
        section["calibration"] = cal.to_json()
    if verdicts is not None:
        section["verdicts"] = verdicts.to_json()
    section.update(gap)
    return section


def _merge_metrics(pm, cal, cmp) -> dict:
    """The ``metrics`` block: each metric's matrices and intervals, its calibration, its ID - OOD comparison."""
    out = pm.to_json()
    for mt, entry in (cal.entries.items() if cal is not None else ()):
        items = list(out[mt].items())  # calibration right after the first set's values, as written before
        at = [k for k, _ in items].index("mean_over_pairs") + 1
        out[mt] = dict(items[:at] + [("calibration", entry)] + items[at:])
    for mt, entry in (cmp.to_json().items() if cmp is not None else ()):
        out[mt].update(entry)
    return out
