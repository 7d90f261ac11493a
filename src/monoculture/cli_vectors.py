"""``monoculture featurize``, ``embed`` and ``align``: structures to vectors (descriptors or model embeddings),
and the alignment of those vectors between models.

Registered by :func:`add_parsers` (called by :func:`monoculture.cli.build_parser`), each parser naming its
command function (``set_defaults(func=...)``). Exit status as the rest of the command line (:mod:`monoculture.cli`).
"""
from __future__ import annotations

import json
import sys

from monoculture.cli_options import add_read_options, int_at_least, open_with_read_options
from monoculture.cli_output import UserError, add_report_options, emit, write_json
from monoculture.datasets.errors import EXIT_NOTHING_AUDITED

__all__ = ["add_parsers", "cmd_featurize", "cmd_embed", "cmd_align"]


def add_parsers(sub) -> None:
    """Add the ``featurize``, ``embed`` and ``align`` subcommands to the ``monoculture`` subparsers ``sub``."""
    p = sub.add_parser("featurize", help="compute a descriptor for every structure and write parquet")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_read_options(p)
    p.add_argument("--descriptor", required=True, help="composition, soap, local, structure, molecule, regime")
    p.add_argument("--n-jobs", type=int_at_least(1), default=None, help="worker processes (default: all cores)")
    p.add_argument("--out", required=True, help="output .parquet file")
    p.add_argument("--cache-dir", default=None, help="per-batch cache folder (resumable runs)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="descriptor parameter, e.g. --param r_cut=4.5 (repeatable)")

    p = sub.add_parser("embed", help="per-structure embeddings from a bundled model (or a descriptor)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_read_options(p, batch_flag="--chunk-size")
    p.add_argument("--model", required=True,
                   help="chgnet-0.2.0, chgnet-0.3.0, chgnet-r2scan, sevennet-0, sevennet-l3i5, sevennet-mf-0, "
                        "or a descriptor name (composition, soap, local, structure, molecule)")
    p.add_argument("--out", required=True, help="output .parquet file")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch-size", dest="model_batch_size", type=int_at_least(1), default=64,
                   help="structures per forward pass")
    p.add_argument("--workers", type=int_at_least(0), default=0, help="graph-building worker processes (default 0)")
    p.add_argument("--pooling", default="mean", choices=["mean", "mean_var", "atoms"],
                   help="mean (default): one row per structure; mean_var: mean and variance over its atoms; "
                        "atoms: one row per atom, with atom_index and atomic_number columns (docs/embedding.md)")
    p.add_argument("--cache-dir", default=None, help="per-chunk cache folder (resumable runs)")
    p.add_argument("--json", dest="json_out", metavar="FILE",
                   help="write the run's summary (counts, seconds, timeline, share of the time the GPU had a "
                        "forward in flight) to this JSON file")

    p = sub.add_parser("align", help="representation alignment of model embeddings (ID vs OOD, with intervals)")
    p.add_argument("--embeddings", nargs="+", required=True, metavar="DIR_OR_FILE",
                   help="parquet/npz embedding files or a folder of them (model name = file stem)")
    p.add_argument("--id-set", nargs="+", metavar="PATH", help="in-distribution evaluation set (dataset paths)")
    p.add_argument("--ood-set", nargs="+", metavar="PATH", help="out-of-distribution evaluation set")
    p.add_argument("--reference-model", help="model that the others are compared with (information imbalance)")
    p.add_argument("--model-errors", metavar="FILE.csv",
                   help="CSV with a 'model' column (embedding file stems) and numeric error columns (lower is better); "
                        "with --error-column, the reference model is the loaded model with the lowest error")
    p.add_argument("--error-column", metavar="COLUMN", help="error column of --model-errors to minimise")
    p.add_argument("--descriptor-model", help="model-free entry of the zoo (e.g. composition, soap)")
    p.add_argument("--reference-set", nargs="+", metavar="PATH",
                   help="training / reference data for the coverage gap (gap vs collapse)")
    p.add_argument("--k", type=int_at_least(1), default=25, help="neighbours of CKNNA / mutual k-NN (default 25, the study's)")
    p.add_argument("--normalisation", default="none", choices=["none", "l2", "max", "standard"],
                   help="scaling before every metric (default none: each metric's reference definition on the "
                        "embeddings as given; max = each row divided by its largest absolute element)")
    p.add_argument("--variant", action="append", default=[], metavar="METRIC=NAME",
                   help="metric variant instead of the reference default, e.g. cknna=biased, mutual_knn=euclidean "
                        "(repeatable; docs/alignment_metrics.md lists them)")
    p.add_argument("--n-boot", type=int_at_least(1), default=200, help="bootstrap replicates (default 200)")
    p.add_argument("--repeats", type=int_at_least(1), default=20, help="equal-size repeats R (default 20)")
    p.add_argument("--match-atom-count", action="store_true", help="compare ID and OOD on atom-count-matched subsets")
    p.add_argument("--keep-near-duplicates", action="store_true", help="do not drop near-duplicates first")
    p.add_argument("--intersect-ids", action="store_true",
                   help="align on the ids every file holds (the default; kept for compatibility)")
    p.add_argument("--same-ids", action="store_true",
                   help="fail unless every embedding file lists the same ids")
    p.add_argument("--pairwise-ids", action="store_true",
                   help="also compute every pair metric on the structures both models of the pair embedded")
    p.add_argument("--no-reconstruction", action="store_true", help="skip the GFRE / LFRE matrices")
    p.add_argument("--metric", action="append", default=[], metavar="NAME",
                   help="registered metric computed besides the defaults, e.g. svcca (repeatable)")
    p.add_argument("--n-calibration", type=int_at_least(0), default=200,
                   help="row permutations of the null every pair metric is calibrated against (default 200; "
                        "0 = no calibration, raw verdicts; docs/alignment_calibration.md)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", help="write the document to this JSON file")
    p.add_argument("--report", help="write the report into this folder")
    add_report_options(p)
    for name, command in (("featurize", cmd_featurize), ("embed", cmd_embed), ("align", cmd_align)):
        sub.choices[name].set_defaults(func=command)


def _open_all(args) -> list:
    return [open_with_read_options(p, args) for p in args.paths]


def _parse_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def cmd_featurize(args) -> int:
    from monoculture.api import _Datasets
    from monoculture.datasets.hashing import content_hash
    from monoculture.descriptors import featurize, get_descriptor

    datasets = _open_all(args)
    try:
        descriptor = get_descriptor(args.descriptor, **_parse_params(args.param))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    key = [(ds.format, content_hash(ds.path)) for ds in datasets] if args.cache_dir else ()
    result = featurize(_Datasets(datasets), descriptor, n_jobs=args.n_jobs, out=args.out,
                       cache_dir=args.cache_dir, cache_key_parts=key)
    for ds in datasets:
        acc = ds.accounting
        print(f"{ds.name}: {acc.read} read, {acc.skipped} skipped, {acc.failed} failed", file=sys.stderr)
    print(f"wrote {result.n_rows} rows ({result.n_skipped} skipped by the descriptor) to {args.out}")
    if result.n_rows == result.n_skipped:
        print(f"monoculture: error: no record could be featurized with {args.descriptor} "
              f"({result.n_skipped} skipped by the descriptor, {result.n_rows} read)", file=sys.stderr)
        return EXIT_NOTHING_AUDITED
    return 0


def _start_loading(model: str, device: str):
    """A future of the loaded model (torch, the model library, the weights, the device), loaded in a thread from
    now on: about a second of this overlaps the imports, sniffing and process starts that follow
    (docs/embedding.md). The thread ends once the model is loaded (or its loading failed: the error is raised
    where the future's result is asked for)."""
    from concurrent.futures import ThreadPoolExecutor

    def load():
        from monoculture.descriptors.models import load_embedder

        return load_embedder(model, device=device)

    pool = ThreadPoolExecutor(1, thread_name_prefix="monoculture-load-model")
    loading = pool.submit(load)
    pool.shutdown(wait=False)
    return loading


def _model_summary(args, result, datasets, command_s: float, offset: float) -> dict:
    """Print the line of a model run; its ``--json`` document (``offset``: seconds from the command's start to
    the start of the embedding, the origin of ``result.timeline``)."""
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(result.skip_reasons.items())) or "none"
    tl = result.timeline
    busy = tl.get("forward_busy_s") or 0.0
    where = "GPU" if tl.get("timer") == "cuda_events" else "model"
    rows = (f"{result.n_rows} per-atom embeddings of {result.n_structures} structures" if args.pooling == "atoms"
            else f"{result.n_rows} embeddings")
    n_done = result.n_structures + result.n_skipped
    print(f"wrote {rows} of {args.model} ({result.metadata.get('layer', '')}) to {args.out}; "
          f"skipped {result.n_skipped} ({reasons}); {result.n_chunks_cached}/{result.n_chunks} chunks from cache; "
          f"{command_s:.1f} s ({n_done / command_s:.0f} structures/s); {where} busy "
          f"{busy:.1f} s ({busy / command_s:.0%} of the command), "
          + (f"first forward at {tl['first_forward_s'] + offset:.1f} s"
             if tl.get("first_forward_s") is not None else "no forward"))
    return {"model": args.model, "out": str(args.out), "device": tl.get("device", args.device),
            "n_rows": result.n_rows, "n_structures": result.n_structures, "n_skipped": result.n_skipped,
            "skip_reasons": dict(sorted(result.skip_reasons.items())),
            "n_chunks": result.n_chunks, "n_chunks_cached": result.n_chunks_cached,
            "batch_size": args.model_batch_size, "workers": args.workers,
            "command_s": command_s, "structures_per_s": n_done / command_s,
            "forward_busy_share": busy / command_s,
            "timeline_s": {"command_started": 0.0, "embed_started": offset,
                           **{k: (v + offset if k.endswith("_s") and k not in ("forward_busy_s", "forward_sum_s")
                                  and v is not None else v) for k, v in tl.items()}},
            "datasets": _accounting(datasets)}


def _descriptor_summary(args, result, datasets, command_s: float) -> dict:
    """Print the line of a descriptor run (as ``featurize``'s); its ``--json`` document. A descriptor writes a
    row for every frame: ``n_rows`` counts them, ``n_structures`` those with a vector (not skipped)."""
    print(f"wrote {result.n_rows} rows ({result.n_skipped} skipped by the descriptor) of {args.model} to "
          f"{args.out}; {result.n_batches_cached}/{result.n_batches} chunks from cache; {command_s:.1f} s "
          f"({result.n_rows / command_s:.0f} structures/s)")
    return {"model": args.model, "out": str(args.out), "n_rows": result.n_rows,
            "n_structures": result.n_rows - result.n_skipped, "n_skipped": result.n_skipped,
            "n_chunks": result.n_batches, "n_chunks_cached": result.n_batches_cached,
            "command_s": command_s, "structures_per_s": result.n_rows / command_s,
            "datasets": _accounting(datasets)}


def _accounting(datasets) -> list[dict]:
    return [{"name": ds.name, "read": ds.accounting.read, "skipped": ds.accounting.skipped,
             "failed": ds.accounting.failed} for ds in datasets]


def cmd_embed(args) -> int:
    """``embed``: :func:`monoculture.api.embed` (a model or a descriptor) with the command's options, the model
    loaded in a thread from the start; prints (and with ``--json`` writes) the run's summary."""
    import time

    from monoculture.datasets.errors import NothingAuditedError

    t_start = time.perf_counter()
    datasets = _open_all(args)  # first: a path or format error is reported at once
    # a name that is neither model nor descriptor fails in api.embed (the loading thread's error is not asked for)
    loading = _start_loading(args.model, args.device) if args.model.startswith(("chgnet-", "sevennet-")) else None
    from monoculture.api import embed
    from monoculture.descriptors import is_descriptor_name

    rc = 0
    try:
        result = embed(datasets, args.model, args.out, device=args.device, batch_size=args.model_batch_size,
                       workers=args.workers, pooling=args.pooling, cache_dir=args.cache_dir, n_jobs=1,
                       embedder=loading)
    except NothingAuditedError as exc:
        result, rc = exc.result, EXIT_NOTHING_AUDITED
    command_s = time.perf_counter() - t_start
    for ds in datasets:
        acc = ds.accounting
        print(f"{ds.name}: {acc.read} read, {acc.skipped} skipped, {acc.failed} failed", file=sys.stderr)
    if not is_descriptor_name(args.model):
        # the embedding started result.elapsed_s before it returned, which was (to microseconds) command_s
        doc = _model_summary(args, result, datasets, command_s, offset=command_s - result.elapsed_s)
    else:
        doc = _descriptor_summary(args, result, datasets, command_s)
    if args.json_out:
        write_json(doc, args.json_out)
    if rc:
        print(f"monoculture: error: no record could be embedded with {args.model}", file=sys.stderr)
    return rc


def cmd_align(args) -> int:
    """``align``: :func:`monoculture.api.align_embeddings` with the command's options."""
    from monoculture.api import align_embeddings
    from monoculture.audit.alignment.runner import dropped_structures_lines
    from monoculture.demo import print_verdicts

    if args.same_ids and args.intersect_ids:
        raise UserError("give --same-ids or --intersect-ids, not both")
    result = align_embeddings(
        args.embeddings, args.id_set, args.ood_set, descriptor_model=args.descriptor_model,
        reference_set=args.reference_set, reference_model=args.reference_model, model_errors=args.model_errors,
        error_column=args.error_column, k=args.k, normalisation=args.normalisation, variants=args.variant,
        n_boot=args.n_boot, repeats=args.repeats, match_atom_count=args.match_atom_count,
        drop_near_duplicates=not args.keep_near_duplicates, same_ids=args.same_ids,
        pairwise_ids=args.pairwise_ids, reconstruction=not args.no_reconstruction,
        n_calibration=args.n_calibration, metrics=args.metric, seed=args.seed)
    doc = result.document
    emit(doc, args)
    section = doc["alignment"]
    for line in dropped_structures_lines(section):
        print(line, file=sys.stderr)
    print_verdicts(section)
    return 0
