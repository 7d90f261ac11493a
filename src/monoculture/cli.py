"""The ``monoculture`` command line.

``monoculture audit PATH...``      audit datasets (JSON, HTML and Markdown reports)
``monoculture formats``            list the readers
``monoculture cards``              list the dataset cards
``monoculture demo``               audit the sample data bundled with the package

Exit status: 0 on success; 2 for an error the user can fix (missing file, unknown format or card,
unreadable container, an invalid option value), printed as one line; 3 when an input yielded no record that
could be audited (``audit`` / ``compare``: a dataset with no frame read; ``featurize`` / ``embed``: every
record skipped); the outputs of the rest are still written. 130 on Ctrl-C (one line, no traceback).
Records that cannot be read are counted in the document, not fatal. ``--json`` files and ``--report``
folders are written whole or not at all (a temporary path moved into place when complete).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from monoculture.cli_options import add_read_options, int_at_least
from monoculture.datasets import errors as _errors
from monoculture.datasets.errors import MonocultureError, UsageError

__all__ = ["main", "build_parser"]

EXIT_USAGE = _errors.EXIT_USAGE
#: An input yielded nothing that could be audited.
EXIT_NOTHING_AUDITED = _errors.EXIT_NOTHING_AUDITED
#: Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class UserError(UsageError):
    """An error of the command line's own checks, reported as one line and exit status 2."""


def _add_audit_options(p: argparse.ArgumentParser, reference: bool = True) -> None:
    p.add_argument("--seed", type=int, default=0, help="seed of every sampled step (default 0)")
    p.add_argument("--descriptor", default="auto",
                   help="descriptor of the chemical-space analysis: 'auto' (default: molecule when no frame is "
                        "periodic, else composition+structure), a name of `featurize`, names joined by '+', "
                        "or 'none' to skip")
    p.add_argument("--sample-size", type=int_at_least(2), default=5000,
                   help="reservoir size of the chemical-space analysis (frames, at least 2; default 5000)")
    p.add_argument("--no-umap", action="store_true", help="skip the 2-D UMAP map")
    if reference:
        p.add_argument("--reference", help="reference dataset (file or folder) to compare every PATH with")
    p.add_argument("--dask", metavar="ADDRESS|local:N",
                   help="run on Dask: a scheduler address, or local:N for a local cluster of N workers")


def _add_report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pdf", action="store_true",
                   help="also print report.pdf with the installed Chromium (skipped with one line when there is none)")
    p.add_argument("--context", nargs="+", default=[], metavar="AUDIT.json",
                   help="audit JSON files whose datasets join the report's context table beside the dataset cards")


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (``monoculture audit: error: ...``) and exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="monoculture", description="Audit the diversity of atomistic ML datasets.")
    parser.add_argument("--version", action="version", version=f"monoculture {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("audit", help="audit one or more datasets (each PATH is one dataset)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="file or folder of shards")
    add_read_options(p)
    p.add_argument("--json", dest="json_out", help="write the audit document to this JSON file")
    p.add_argument("--report", help="write report.html, report.md, audit.json and figures/ into this folder")
    _add_report_options(p)
    _add_audit_options(p)

    p = sub.add_parser("compare", help="audit NEW against a reference dataset REF (coverage, novelty, priorities)")
    p.add_argument("paths", nargs=1, metavar="NEW")
    p.add_argument("--against", required=True, metavar="REF", help="reference dataset (file or folder)")
    add_read_options(p)
    p.add_argument("--json", dest="json_out", help="write the document to this JSON file")
    p.add_argument("--report", help="write the report into this folder")
    _add_report_options(p)
    _add_audit_options(p, reference=False)

    sub.add_parser("formats", help="list the readers")
    sub.add_parser("cards", help="list the dataset cards")

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
    _add_report_options(p)

    p = sub.add_parser("synth", help="write a synthetic dataset in a native format (for scale tests)")
    p.add_argument("--like", required=True, choices=["mptrj", "omat24"], help="native format to imitate")
    p.add_argument("--frames", type=int_at_least(1), required=True, help="number of frames")
    p.add_argument("--out", required=True, help="output file (mptrj) or folder (omat24)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mean-atoms", type=float, default=None,
                   help="mean atoms per frame to aim at (default: small cells, about 6; the real MPTrj has 31)")

    p = sub.add_parser("demo", help="audit the sample data bundled with the package")
    p.add_argument("--out", default="demo_report", help="report folder (default ./demo_report)")
    p.add_argument("--no-models", action="store_true", help="skip the model-embedding alignment part")
    p.add_argument("--seed", type=int, default=0)
    from .cli_environments import add_parsers as _add_environment_parsers

    _add_environment_parsers(sub)
    return parser


def _write_json(doc: dict, path: str) -> None:
    """Write ``doc`` to ``path`` whole or not at all (a temporary file beside it, then renamed)."""
    import os
    import tempfile

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, sort_keys=False, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _print_summary(doc: dict, stream=None) -> None:
    stream = sys.stdout if stream is None else stream  # looked up per call: pytest swaps sys.stdout
    for ds in doc["datasets"]:
        rec = ds["records"]
        lot = ds["level_of_theory"]
        top = max(lot.items(), key=lambda kv: kv[1]) if lot else ("-", 0)
        share = top[1] / max(1, sum(lot.values()))
        print(
            f"{ds['name']}: {rec['read']} read, {rec['skipped']} skipped, {rec['failed']} failed; "
            f"{len(ds['elements']['structures_per_element'])} elements; "
            f"dominant level of theory {top[0]} ({share:.0%})",
            file=stream,
        )


def cmd_audit(args) -> int:
    from monoculture.audit.coverage.compiled import kernels_for, warm_up
    from monoculture.audit.run import AuditOptions, run_audit

    reference = getattr(args, "reference", None) or getattr(args, "against", None)
    options = AuditOptions(
        format=args.format, dataset_card=args.dataset_card, level_of_theory=args.level_of_theory,
        batch_size=args.batch_size, seed=args.seed, quiet=args.quiet,
        descriptor=None if args.descriptor in (None, "none") else args.descriptor,
        sample_size=args.sample_size, umap=not args.no_umap, reference=reference,
        smiles_column=args.smiles_column, id_column=args.id_column, config=args.config,
    )
    # numba kernels missing from the cache are compiled by a second process from here on, while this one
    # starts up and reads (issue #22: they were most of what a first audit paid beyond a later one)
    with warm_up(kernels_for(options.descriptor, options.umap, options.quests_crosscheck)):
        client = None
        if args.dask:
            from monoculture.audit.distributed import connect

            client = connect(args.dask)
        if options.descriptor:
            _check_descriptor(options.descriptor)
        try:
            doc = run_audit(args.paths, options, client=client)
        finally:
            if client is not None:
                cluster = getattr(client, "cluster", None)
                client.close()
                if cluster is not None:
                    cluster.close()
    _emit(doc, args)
    _print_summary(doc)
    empty = [ds["name"] for ds in doc["datasets"] if not ds.get("n_frames")]
    if empty:
        print(f"monoculture: error: no record could be audited in {', '.join(empty)}", file=sys.stderr)
        return EXIT_NOTHING_AUDITED
    return 0


def _check_descriptor(name: str) -> None:
    """A one-line error (exit 2) for a descriptor name no registry entry matches, before any data is read."""
    from monoculture.descriptors import get_descriptor

    if name == "auto":
        return
    try:
        get_descriptor(name)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _emit(doc: dict, args) -> None:
    """Write the document where the arguments ask: ``--json FILE`` and ``--report DIR``."""
    if args.json_out:
        _write_json(doc, args.json_out)
    if args.report:
        sets = {k: getattr(args, f"{k}_set", None) for k in ("id", "ood") if getattr(args, f"{k}_set", None)}
        _write_report(doc, args.report, pdf=getattr(args, "pdf", False), context=getattr(args, "context", ()),
                      reference=getattr(args, "reference", None) or getattr(args, "against", None), sets=sets)


def _write_report(doc: dict, folder: str, pdf: bool = False, context=(), reference: str | None = None,
                  sets: dict | None = None) -> None:
    from monoculture.reports import write_report
    from monoculture.reports.writer import ReportFolderError

    try:
        paths = write_report(doc, Path(folder), pdf=pdf, context=context or (), reference_path=reference,
                             set_paths=sets or None)
    except (ReportFolderError, ValueError) as exc:
        raise UserError(str(exc)) from None
    print(f"report: {paths.get('html', folder)}")
    if paths.get("pdf"):
        print(f"pdf: {paths['pdf']}")
    elif pdf:
        print(f"monoculture: {paths.get('pdf_skipped')}", file=sys.stderr)


def cmd_formats(args) -> int:
    from monoculture.datasets import READERS

    width = max(len(n) for n in READERS)
    for spec in READERS.values():
        print(f"{spec.name:<{width}}  {spec.description}")
    return 0


def cmd_cards(args) -> int:
    from monoculture.datasets import load_cards

    for card in load_cards().values():
        u = {"mp": "+U by MP rules", "none": "no +U", "all": "+U", "unknown": "+U unknown"}[card.hubbard_u]
        basis = f"/{card.basis}" if card.basis else ""
        licence = card.licence or "licence not stated"
        print(f"{card.name:<18} {card.functional}{basis} ({u}), {licence}: {card.title}")
    return 0


class _Datasets:
    """Several datasets read one after the other, as one source of frame batches."""

    def __init__(self, datasets):
        self.datasets = datasets

    def batches(self):
        for ds in self.datasets:
            yield from ds.batches()


def _open_all(args) -> list:
    from monoculture.datasets import ReadOptions, open_dataset

    options = ReadOptions(smiles_column=args.smiles_column, id_column=args.id_column, config=args.config)
    return [
        open_dataset(p, format=args.format, dataset_card=args.dataset_card, level_of_theory=args.level_of_theory,
                     batch_size=args.batch_size, quiet=args.quiet, options=options)
        for p in args.paths
    ]


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


def cmd_embed(args) -> int:
    import time

    t_start = time.perf_counter()
    datasets = _open_all(args)  # first: a path or format error is reported at once
    loading = None
    if args.model.startswith(("chgnet-", "sevennet-")):
        # Load the model (torch, the model library, the weights, the device) in a thread from now on: about a
        # second of this overlaps the imports, sniffing and process starts below (docs/embedding.md).
        from concurrent.futures import ThreadPoolExecutor

        def load():
            from monoculture.descriptors.models import load_embedder

            return load_embedder(args.model, device=args.device)

        pool = ThreadPoolExecutor(1, thread_name_prefix="monoculture-load-model")
        loading = pool.submit(load)
        pool.shutdown(wait=False)  # the thread ends once the model is loaded
    from monoculture.descriptors import available_descriptors, is_descriptor_name

    if is_descriptor_name(args.model):
        ns = argparse.Namespace(**{**vars(args), "descriptor": args.model, "n_jobs": 1, "param": []})
        return cmd_featurize(ns)
    from monoculture.descriptors.models import available_models
    from monoculture.descriptors.models.pipeline import ReadAhead, embed_dataset

    known = available_models(installed_only=False)
    if args.model not in known:
        raise UserError(f"unknown model {args.model!r}; models: {', '.join(known)}; "
                        f"descriptors: {', '.join(available_descriptors())}")
    if args.model not in available_models():
        raise UserError(f"model {args.model!r} needs the 'models' extra: pip install 'monoculture[models]'")
    # With worker processes the input is read in its own process from now on, while the model loads.
    batches = ReadAhead(datasets) if args.workers > 0 else _Datasets(datasets).batches()
    t_embed = time.perf_counter()
    result = embed_dataset(batches, args.model, args.out, device=args.device,
                           batch_size=args.model_batch_size, workers=args.workers, pooling=args.pooling,
                           cache_dir=args.cache_dir, embedder=loading)
    command_s = time.perf_counter() - t_start
    for ds in datasets:
        acc = ds.accounting
        print(f"{ds.name}: {acc.read} read, {acc.skipped} skipped, {acc.failed} failed", file=sys.stderr)
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
          + (f"first forward at {tl['first_forward_s'] + t_embed - t_start:.1f} s"
             if tl.get("first_forward_s") is not None else "no forward"))
    if args.json_out:
        offset = t_embed - t_start  # the timeline's origin, in seconds after the command started
        doc = {"model": args.model, "out": str(args.out), "device": tl.get("device", args.device),
               "n_rows": result.n_rows, "n_structures": result.n_structures, "n_skipped": result.n_skipped,
               "skip_reasons": dict(sorted(result.skip_reasons.items())),
               "n_chunks": result.n_chunks, "n_chunks_cached": result.n_chunks_cached,
               "batch_size": args.model_batch_size, "workers": args.workers,
               "command_s": command_s, "structures_per_s": n_done / command_s,
               "forward_busy_share": busy / command_s,
               "timeline_s": {"command_started": 0.0, "embed_started": offset,
                              **{k: (v + offset if k.endswith("_s") and k not in ("forward_busy_s", "forward_sum_s")
                                     and v is not None else v) for k, v in tl.items()}},
               "datasets": [{"name": ds.name, "read": ds.accounting.read, "skipped": ds.accounting.skipped,
                             "failed": ds.accounting.failed} for ds in datasets]}
        path = Path(args.json_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
        tmp.replace(path)
    if result.n_rows == 0:
        print(f"monoculture: error: no record could be embedded with {args.model}", file=sys.stderr)
        return EXIT_NOTHING_AUDITED
    return 0


def cmd_align(args) -> int:
    from datetime import datetime, timezone

    from monoculture.audit.alignment.runner import run_alignment
    from monoculture.audit.document import alignment_document

    from monoculture.audit.alignment.runner import dropped_structures_lines
    from monoculture.audit.alignment.variants import parse_variant_options

    started = datetime.now(timezone.utc)
    try:
        if args.same_ids and args.intersect_ids:
            raise ValueError("give --same-ids or --intersect-ids, not both")
        section = run_alignment(
            args.embeddings, args.id_set, args.ood_set, descriptor=args.descriptor_model,
            reference_set=args.reference_set, reference_model=args.reference_model,
            model_errors=args.model_errors, error_column=args.error_column, seed=args.seed, k=args.k,
            normalisation=args.normalisation, n_boot=args.n_boot, repeats=args.repeats,
            match_atom_count=args.match_atom_count, drop_near_duplicates=not args.keep_near_duplicates,
            intersect=not args.same_ids, variants=parse_variant_options(args.variant),
            pairwise_ids=args.pairwise_ids, reconstruction=not args.no_reconstruction, metrics=args.metric,
            calibration=args.n_calibration > 0, n_calibration=max(1, args.n_calibration),
        )
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    doc = alignment_document(section, seed=args.seed, started=started)
    _emit(doc, args)
    from monoculture.demo import print_verdicts

    for line in dropped_structures_lines(section):
        print(line, file=sys.stderr)
    print_verdicts(section)
    return 0


def cmd_synth(args) -> int:
    from monoculture.datasets.synth import synthesize

    if args.frames < 1:
        raise UserError("--frames must be at least 1")
    truth = synthesize(args.like, args.frames, args.out, seed=args.seed, mean_atoms=args.mean_atoms)
    print(f"wrote {truth['frames']} synthetic frames to {args.out} (truth counts beside it)")
    return 0


def cmd_demo(args) -> int:
    from monoculture.demo import run_demo

    html = run_demo(args.out, with_models=False if args.no_models else None, seed=args.seed)
    print(f"report: {html}")
    return 0


_COMMANDS = {"audit": cmd_audit, "compare": cmd_audit, "formats": cmd_formats, "cards": cmd_cards, "demo": cmd_demo, "synth": cmd_synth,
             "featurize": cmd_featurize, "embed": cmd_embed, "align": cmd_align}


def _exit_code(exc: BaseException) -> int | None:
    """Exit status of an error shown as one line (a :class:`MonocultureError`'s own, 2 for a missing file);
    None for anything else (a bug: its traceback is kept)."""
    if isinstance(exc, MonocultureError):
        return exc.exit_code
    if isinstance(exc, FileNotFoundError):
        return EXIT_USAGE
    return None


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="monoculture: %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    try:
        # A command registered by another module (``add_parsers`` of cli_environments) sets ``func`` itself.
        command = getattr(args, "func", None) or _COMMANDS[args.command]
        return command(args)
    except KeyboardInterrupt:
        print("monoculture: interrupted; nothing was written for this run", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        print(f"monoculture: error: {exc}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
