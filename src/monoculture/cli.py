"""The ``monoculture`` command line.

``monoculture audit PATH...``      audit datasets (JSON, HTML and Markdown reports)
``monoculture formats``            list the readers
``monoculture cards``              list the dataset cards
``monoculture demo``               audit the sample data bundled with the package
``monoculture synth``              write a synthetic dataset in a native format

``featurize``, ``embed`` and ``align`` live in :mod:`monoculture.cli_vectors`; ``select``, ``prune`` and
``align-environments`` in :mod:`monoculture.cli_environments`; the JSON and report writers every command
shares in :mod:`monoculture.cli_output`. Each of those modules registers its parsers and command functions.

Exit status: 0 on success; 2 for an error the user can fix (missing file, unknown format or card,
unreadable container, an invalid option value), printed as one line; 3 when an input yielded no record that
could be audited (``audit`` / ``compare``: a dataset with no frame read; ``featurize`` / ``embed``: every
record skipped); the outputs of the rest are still written. 130 on Ctrl-C (one line, no traceback).
Records that cannot be read are counted in the document, not fatal. ``--json`` files and ``--report``
folders are written whole or not at all (a temporary path moved into place when complete).
"""
from __future__ import annotations

import argparse
import logging
import sys

from monoculture.cli_options import add_read_options, int_at_least
from monoculture.cli_output import UserError, add_report_options as _add_report_options, emit as _emit
from monoculture.cli_vectors import _open_all  # noqa: F401  (kept importable from here)
from monoculture.cli_vectors import add_parsers as add_vector_parsers
from monoculture.datasets import errors as _errors
from monoculture.datasets.errors import MonocultureError

__all__ = ["main", "build_parser"]

EXIT_USAGE = _errors.EXIT_USAGE
#: An input yielded nothing that could be audited.
EXIT_NOTHING_AUDITED = _errors.EXIT_NOTHING_AUDITED
#: Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _add_audit_options(p: argparse.ArgumentParser, reference: bool = True) -> None:
    p.add_argument("--seed", type=int, default=0, help="seed of every sampled step (default 0)")
    p.add_argument("--descriptor", default="auto",
                   help="descriptor of the chemical-space analysis: 'auto' (default: molecule when no frame is "
                        "periodic, else composition+structure), a name of `featurize`, names joined by '+', "
                        "or 'none' to skip")
    p.add_argument("--sample-size", type=int_at_least(2), default=5000,
                   help="reservoir size of the chemical-space analysis (frames, at least 2; default 5000)")
    p.add_argument("--no-umap", action="store_true", help="skip the 2-D UMAP map")
    p.add_argument("--quests-crosscheck", action="store_true",
                   help="also compute the entropy with the quests package on 1,000 sampled frames (a check)")
    if reference:
        p.add_argument("--reference", help="reference dataset (file or folder) to compare every PATH with")
    p.add_argument("--dask", metavar="ADDRESS|local:N",
                   help="run on Dask: a scheduler address, or local:N for a local cluster of N workers")


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
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("compare", help="audit NEW against a reference dataset REF (coverage, novelty, priorities)")
    p.add_argument("paths", nargs=1, metavar="NEW")
    p.add_argument("--against", required=True, metavar="REF", help="reference dataset (file or folder)")
    add_read_options(p)
    p.add_argument("--json", dest="json_out", help="write the document to this JSON file")
    p.add_argument("--report", help="write the report into this folder")
    _add_report_options(p)
    _add_audit_options(p, reference=False)
    p.set_defaults(func=cmd_audit)

    sub.add_parser("formats", help="list the readers").set_defaults(func=cmd_formats)
    sub.add_parser("cards", help="list the dataset cards").set_defaults(func=cmd_cards)

    add_vector_parsers(sub)  # featurize, embed, align (cli_vectors)

    p = sub.add_parser("synth", help="write a synthetic dataset in a native format (for scale tests)")
    p.add_argument("--like", required=True, choices=["mptrj", "omat24"], help="native format to imitate")
    p.add_argument("--frames", type=int_at_least(1), required=True, help="number of frames")
    p.add_argument("--out", required=True, help="output file (mptrj) or folder (omat24)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mean-atoms", type=float, default=None,
                   help="mean atoms per frame to aim at (default: small cells, about 6; the real MPTrj has 31)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("demo", help="audit the sample data bundled with the package")
    p.add_argument("--out", default="demo_report", help="report folder (default ./demo_report)")
    p.add_argument("--no-models", action="store_true", help="skip the model-embedding alignment part")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    from .cli_environments import add_parsers as _add_environment_parsers

    _add_environment_parsers(sub)
    return parser


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
    """``audit`` and ``compare``: :func:`monoculture.api.audit_datasets` with the command's options."""
    from monoculture.api import audit_datasets

    reference = getattr(args, "reference", None) or getattr(args, "against", None)
    descriptor = None if args.descriptor in (None, "none") else args.descriptor
    client = None
    if args.dask:
        from monoculture.audit.distributed import connect

        client = connect(args.dask)
    try:
        # numba kernels missing from the cache are compiled by a second process while the frames are read
        # (run_audit's warm_up; issue #22)
        result = audit_datasets(
            args.paths, reference=reference, descriptor=descriptor, sample_size=args.sample_size,
            seed=args.seed, umap=not args.no_umap, format=args.format, dataset_card=args.dataset_card,
            level_of_theory=args.level_of_theory, batch_size=args.batch_size,
            smiles_column=args.smiles_column, id_column=args.id_column, config=args.config,
            quiet=args.quiet, progress=None, client=client, allow_empty=True,
            quests_crosscheck=args.quests_crosscheck)
    finally:
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    doc = result.document
    _emit(doc, args)
    _print_summary(doc)
    empty = [ds["name"] for ds in doc["datasets"] if not ds.get("n_frames")]
    if empty:
        print(f"monoculture: error: no record could be audited in {', '.join(empty)}", file=sys.stderr)
        return EXIT_NOTHING_AUDITED
    return 0


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
        return args.func(args)  # every parser names its command function (set_defaults(func=...))
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
