"""The named steps of :func:`~..analysis.align`, each a function returning a typed section.

Order of the pipeline (every step's section has ``to_json()``; :func:`~..analysis.align` assembles them into
the ``alignment`` JSON section):

1. :func:`.prepare.join_step` - join the models on ``id`` (:class:`.prepare.Joined`, ``structures``);
2. :func:`.prepare.sets_step` - the ID / OOD sets or ``all`` (:class:`.prepare.Sets`, ``sets``);
3. :func:`.prepare.normalise_step` - the named normalisation fitted on the analysed rows;
4. :func:`.prepare.near_duplicate_step` - the guard (:class:`.prepare.NearDuplicates`, ``near_duplicates``),
   then optional atom-count matching (:func:`.confounders.match_atom_count_step`) and
   :func:`.prepare.outlier_step` (``embedding_outliers``);
5. :func:`.plan.plan_step` - sizes, capped k, the k sweep and ``parameters`` (:class:`.plan.Plan`);
6. :func:`.pair_metrics.pair_metrics_step` - every pair metric per set with subsampling intervals, the joint
   TwoNN and GFRE / LFRE (:class:`.pair_metrics.PairMetrics`, ``metrics``);
7. :func:`.calibration_step.calibration_step` - against chance (:class:`.calibration_step.Calibrated`);
8. :func:`.intrinsic.intrinsic_dimension_step` - TwoNN / MLE per model and against scale;
9. :func:`.k_sweep.k_sweep_step` - CKNNA and mutual k-NN over k;
10. :func:`.descriptor.descriptor_step` / :func:`.descriptor.reference_step` - against the descriptor and
    the reference model;
11. :func:`.comparison.comparison_step` - ID - OOD differences, equal size, permutation tests;
12. :func:`.confounders.confounders_step` - what could confound the comparison;
13. :func:`.verdicts.verdicts_step` - local, global and intrinsic-dimension verdicts, raw and calibrated;
14. :func:`.gap_collapse.gap_vs_collapse_step` - coverage gap against collapse;
15. :func:`.family.family_tree_step` - the model family tree.
"""
