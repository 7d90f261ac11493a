"""``monoculture select`` and ``monoculture prune``: which structures to compute next, and which to drop.

``select POOL --against TRAINING --budget N`` ranks up to N structures of POOL by what they add to TRAINING
(new elements, new element pairs, new regimes, then the QUESTS differential entropy of their atomic
environments against the training set plus the structures already chosen; greedy) and writes the ranked
list (``rank, id, gain_nats, ..., why``) to ``--out`` as CSV or parquet (by suffix).

``prune DATASET --keep 0.9`` orders DATASET greedily from most to least informative and keeps the shortest
prefix that holds ``keep`` of its QUESTS entropy and of its elements; the list (with a ``kept`` column) goes
to ``--out`` and the measured shares are printed.

``align-environments EMB_A EMB_B [...] --structures DATA [--against TRAINING]`` compares models' per-atom
features (``embed --pooling atoms``) per element and per cluster of QUESTS environments, calibrated against
chance, and links the agreement to how well TRAINING covers each group
(:mod:`monoculture.audit.environments.alignment`).

Definitions and approximations: :mod:`monoculture.audit.environments` (``docs/environments.md``).
Exit status as the rest of the command line: 2 for a usage error (one line), 3 when an input yields no
structure that could be described, 130 on Ctrl-C.

This module imports nothing of :mod:`monoculture.cli` (which imports it), so the two form no import cycle:
the read options come from :mod:`monoculture.cli_options` and the whole-or-nothing writers from
:mod:`monoculture.cli_output`, as for every command; errors are
:class:`~monoculture.datasets.errors.UsageError` (exit 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monoculture.cli_options import add_read_options, int_at_least, open_with_read_options
from monoculture.cli_output import atomic_write, write_json, write_report
from monoculture.datasets.errors import EXIT_NOTHING_AUDITED, UsageError

__all__ = ["add_parsers", "cmd_select", "cmd_prune", "cmd_align_environments"]

_SUFFIXES = (".csv", ".parquet")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return v


def _share(text: str) -> float:
    v = _positive_float(text)
    if v > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return v


def _bandwidth(text: str):
    if text in ("quests", "volume"):
        return text
    return _positive_float(text)


def _common(p: argparse.ArgumentParser) -> None:
    add_read_options(p)
    p.add_argument("--out", required=True, help="output table: .csv or .parquet")
    p.add_argument("--json", dest="json_out", help="also write the summary to this JSON file")
    p.add_argument("--bandwidth", type=_bandwidth, default="quests",
                   help="QUESTS kernel bandwidth: 'quests' (its default, 0.015), 'volume' (quests' rule from the "
                        "mean volume per atom) or a number (descriptor units)")
    p.add_argument("--seed", type=int, default=0, help="seed of the index training and subsamples (default 0)")
    p.add_argument("--no-regimes", action="store_true", help="do not count new thermodynamic regimes as gain")


def add_parsers(sub) -> None:
    """Add the ``select`` and ``prune`` subcommands to the ``monoculture`` subparsers ``sub``."""
    p = sub.add_parser("select", help="rank POOL structures by what they add to a training set")
    p.add_argument("paths", nargs=1, metavar="POOL", help="candidate structures (any readable dataset)")
    p.add_argument("--against", required=True, metavar="TRAINING", help="training dataset (file or folder)")
    p.add_argument("--budget", type=int_at_least(1), required=True, help="structures to rank (at most)")
    p.add_argument("--report", metavar="DIR", help="also write report.html, report.md, audit.json and figures/ "
                                                   "(ranked candidates, gain curve, what the selection adds) here")
    _common(p)
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("prune", help="smallest subset keeping a share of the entropy and the elements")
    p.add_argument("paths", nargs=1, metavar="DATASET")
    p.add_argument("--keep", type=_share, default=0.9,
                   help="share of the QUESTS entropy and of the elements to keep, in (0, 1] (default 0.9)")
    p.add_argument("--report", metavar="DIR", help="also write report.html, report.md, audit.json and figures/ "
                                                   "(kept share of entropy and elements against subset size) here")
    _common(p)
    p.set_defaults(func=cmd_prune)
    _add_align_parser(sub)


def _check_out(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in _SUFFIXES:
        raise UsageError(f"--out must end in .csv or .parquet, got {path!r}")
    return out


def _write_table(table, out: Path) -> None:
    """Write ``table`` to ``out`` (parquet or CSV by the suffix) whole or not at all; CSV floats with 10
    significant digits (summation noise such as 25.000000000003947 is not information), parquet exact."""
    if out.suffix.lower() == ".parquet":
        atomic_write(out, lambda tmp: table.to_parquet(tmp, index=False))
    else:
        atomic_write(out, lambda tmp: table.to_csv(tmp, index=False, float_format="%.10g"))


def _say(args):
    quiet = args.quiet or not sys.stderr.isatty()
    return (lambda _m: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))


def _read(path: str, args, say):
    from monoculture.audit.environments.sets import read_environments

    ds = open_with_read_options(path, args)
    say(f"describing the atomic environments of {ds.name}")
    env = read_environments(ds, progress=lambda n, m: say(f"{ds.name}: {n} structures, {m} environments"))
    acc = ds.accounting
    print(f"{ds.name}: {acc.read} read, {acc.skipped} skipped, {acc.failed} failed; {env.n_structures} "
          f"structures described ({len(env.skipped)} not: {_reasons(env.skipped)})", file=sys.stderr)
    return env


def _reasons(skipped) -> str:
    from collections import Counter

    c = Counter(r for _, r in skipped)
    return ", ".join(f"{r} {n}" for r, n in c.most_common(3)) or "none"


def _options(args):
    from monoculture.audit.environments.selection import GreedyOptions

    return GreedyOptions(bandwidth=args.bandwidth, seed=args.seed, use_regimes=not args.no_regimes)


def _json(summary: dict, args) -> None:
    if args.json_out:
        write_json(summary, args.json_out, default=float)


def _run_parameters(args, **extra) -> dict:
    return {**extra, "bandwidth": args.bandwidth, "seed": args.seed, "regimes_count_as_gain": not args.no_regimes}


def cmd_select(args) -> int:
    from monoculture.audit.environments.selection import select_structures

    out = _check_out(args.out)
    say = _say(args)
    training = _read(args.against, args, say)
    pool = _read(args.paths[0], args, say)
    if pool.n_structures == 0 or training.n_structures == 0:
        which = "POOL" if pool.n_structures == 0 else "TRAINING"
        print(f"monoculture: error: no structure of {which} could be described", file=sys.stderr)
        return EXIT_NOTHING_AUDITED
    try:
        res = select_structures(pool, training, args.budget, _options(args), progress=say)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _write_table(res.table, out)
    _json(res.summary, args)
    s = res.summary
    print(f"selected {s['n_selected']} of {s['n_pool_structures']} pool structures (budget {s['budget']}); "
          f"{s['n_pool_structures'] - s['n_selected']} not ranked"
          + ("" if s["n_selected"] == s["budget"] else " (the rest add nothing to the training set)"))
    if s.get("new_elements"):
        print(f"new elements: {' '.join(s['new_elements'])}")
    if "training_entropy_nats" in s:
        print(f"QUESTS entropy of the training set {s['training_entropy_nats']:.3f} nats -> "
              f"{s['entropy_after_nats']:.3f} with the selection (bandwidth {s['bandwidth']:g})")
    if "pool_overlap" in s:
        print(f"QUESTS overlap of the pool in the training set: {s['pool_overlap']['overlap']:.1%} of its "
              f"environments inside the training support (kernel bandwidth {s['bandwidth']:g})")
    if "pool_radius_novelty" in s:
        r = s["pool_radius_novelty"]
        print(f"radius novelty (monoculture) of the pool: {r['novelty_of_a']:.1%} of its environments farther than "
              f"{r['radius']:.3g} from every training environment (0.95 quantile of the training set's own "
              f"nearest-neighbour distances)")
    print(f"wrote {len(res.table)} rows to {out}")
    if args.report:
        from monoculture.reports.sections.selection import selection_document

        write_report(selection_document(res, pool, training, pool_path=args.paths[0], training_path=args.against,
                                         parameters=_run_parameters(args, budget=args.budget), seed=args.seed),
                      args.report)
    return 0


def cmd_prune(args) -> int:
    from monoculture.audit.environments.selection import prune_structures

    out = _check_out(args.out)
    say = _say(args)
    ds = _read(args.paths[0], args, say)
    if ds.n_structures == 0:
        print("monoculture: error: no structure of DATASET could be described", file=sys.stderr)
        return EXIT_NOTHING_AUDITED
    try:
        res = prune_structures(ds, args.keep, _options(args), progress=say)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _write_table(res.table, out)
    _json(res.summary, args)
    s = res.summary
    print(f"kept {s['n_kept']} of {s['n_structures']} structures ({s['n_kept'] / s['n_structures']:.1%}); "
          f"QUESTS entropy {s['entropy_kept_nats']:.3f} of {s['entropy_full_nats']:.3f} nats "
          f"(share {s['entropy_share']:.3f}, asked {s['keep']:g}); elements {s['n_elements_kept']} of "
          f"{s['n_elements_full']} (share {s['element_share']:.3f}); QUESTS overlap of the full set in the kept "
          f"one {s['overlap_of_full_in_kept']['overlap']:.1%}")
    print(f"wrote {len(res.table)} rows to {out}")
    if args.report:
        from monoculture.reports.sections.pruning import pruning_document

        write_report(pruning_document(res, ds, path=args.paths[0],
                                       parameters=_run_parameters(args, keep=args.keep), seed=args.seed), args.report)
    return 0


# -- align-environments ------------------------------------------------------------------------------------
def _add_align_parser(sub) -> None:
    from monoculture.audit.environments.alignment_defaults import (
        DEFAULT_CLUSTERS,
        DEFAULT_K,
        DEFAULT_MAX_PER_GROUP,
        DEFAULT_MIN_ENVIRONMENTS,
    )

    p = sub.add_parser("align-environments",
                       help="per-element and per-environment alignment of models' per-atom embeddings")
    p.add_argument("paths", nargs="+", metavar="EMB",
                   help="per-atom embedding files (`monoculture embed ... --pooling atoms`), two or more")
    p.add_argument("--structures", metavar="DATA",
                   help="the dataset the atoms came from (QUESTS descriptors for the clusters and the coverage)")
    p.add_argument("--against", metavar="TRAINING",
                   help="training dataset: how well it covers each group (needs --structures)")
    add_read_options(p)
    p.add_argument("--json", dest="json_out", help="write the full result to this JSON file")
    p.add_argument("--out", help="also write the table (one row per group and model pair): .csv or .parquet")
    p.add_argument("--k", type=int_at_least(1), default=DEFAULT_K,
                   help=f"neighbours of CKNNA and mutual k-NN, capped at 10%% of the smallest group (default "
                        f"{DEFAULT_K})")
    p.add_argument("--min-environments", type=int_at_least(4), default=DEFAULT_MIN_ENVIRONMENTS,
                   help=f"smallest group analysed, in distinct environments (default {DEFAULT_MIN_ENVIRONMENTS})")
    p.add_argument("--clusters", type=int_at_least(1), default=DEFAULT_CLUSTERS,
                   help=f"k-means clusters of environments (default {DEFAULT_CLUSTERS})")
    p.add_argument("--max-per-group", type=int_at_least(8), default=DEFAULT_MAX_PER_GROUP,
                   help=f"seeded subsample size of larger groups (default {DEFAULT_MAX_PER_GROUP})")
    p.add_argument("--permutations", type=int_at_least(1), default=200,
                   help="row permutations of each chance level (default 200)")
    p.add_argument("--bandwidth", type=_bandwidth, default="quests",
                   help="QUESTS kernel bandwidth of the coverage: 'quests' (0.015) or a number")
    p.add_argument("--no-merge", action="store_true",
                   help="keep atoms with identical features (symmetry-equivalent atoms) as separate environments")
    p.add_argument("--seed", type=int, default=0, help="seed of k-means, subsamples and permutations (default 0)")
    p.add_argument("--report", metavar="DIR", help="also write report.html, report.md, audit.json and figures/ "
                                                   "(findings, per-group tables, agreement against coverage, "
                                                   "agreement per element) here")
    p.set_defaults(func=cmd_align_environments)


def _atom_environments(path: str, args, say):
    from monoculture.audit.environments.alignment_io import read_atom_environments

    ds = open_with_read_options(path, args)
    say(f"describing the atoms of {ds.name}")
    env, skipped = read_atom_environments(ds, progress=lambda m: say(f"{ds.name}: {m} atoms"))
    print(f"{ds.name}: {len(env.ids)} atoms described ({len(skipped)} structures not: {_reasons(skipped)})",
          file=sys.stderr)
    return env


def _print_alignment(res) -> None:
    frame = res.to_frame()
    pairs = frame[["model_a", "model_b"]].drop_duplicates().shape[0]
    head = f"{'group':<12} {'atoms':>6} {'env':>5} {'used':>5} {'k/n':>6}  "
    if pairs > 1:
        head += f"{'pair':<28} "
    head += f"{'CKNNA cal (raw/chance)':>23} {'mkNN cal':>8} {'GFRE a>b':>8} {'GFRE b>a':>8}"
    if res.coverage is not None:
        head += f" {'overlap':>7} {'dH':>6}"
    print(head + "  composition")
    for r in frame.itertuples(index=False):
        line = f"{r.group:<12} {r.n_atoms:>6} {r.n_environments:>5} {r.n_used:>5} {r.k_over_n:>6.3f}  "
        if pairs > 1:
            line += f"{(r.model_a + ' / ' + r.model_b)[:28]:<28} "
        line += (f"{r.cknna_calibrated:>5.2f} ({r.cknna_raw:>5.2f}/{r.cknna_tau:>5.2f})    "
                 f"{r.mutual_knn_calibrated:>8.2f} {r.gfre_a_to_b:>8.2f} {r.gfre_b_to_a:>8.2f}")
        if res.coverage is not None:
            line += f" {r.coverage_overlap:>7.0%} {r.mean_delta_entropy_nats:>6.2f}"
        print(line + ("  " + r.description if r.kind == "cluster" else ""))
    print()
    for text in res.sentences:
        print(text)


def cmd_align_environments(args) -> int:
    import time
    from datetime import datetime, timezone

    from monoculture.audit.environments.alignment import align_environments
    from monoculture.audit.environments.alignment_io import read_atom_embedding

    if len(args.paths) < 2:
        raise UsageError(f"align-environments needs two or more embedding files, got {len(args.paths)}")
    if args.against and not args.structures:
        raise UsageError("--against needs --structures (the QUESTS descriptors of the embedded atoms)")
    if args.bandwidth == "volume":
        raise UsageError("--bandwidth volume is not available here; use 'quests' or a number")
    out = _check_out(args.out) if args.out else None
    if args.report:  # refuse a folder holding other files before the minutes of work, not after
        from monoculture.reports.writer import REPORT_ITEMS

        folder = Path(args.report)
        if folder.exists() and (not folder.is_dir() or any(q.name not in REPORT_ITEMS for q in folder.iterdir())):
            raise UsageError(f"--report {args.report}: exists and is not an empty folder or a previous report")
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    say = _say(args)
    models = []
    for path in args.paths:
        try:
            models.append(read_atom_embedding(path))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: {exc}") from None
    names = [m.name for m in models]
    if len(set(names)) < len(names):  # same model twice (e.g. two datasets): name them by file
        from dataclasses import replace

        models = [replace(m, name=f"{m.name} ({Path(p).stem})") for m, p in zip(models, args.paths)]
    env = _atom_environments(args.structures, args, say) if args.structures else None
    reference = None
    if args.against:
        say(f"describing the environments of {args.against}")
        reference = _read(args.against, args, say)
        if reference.n_environments == 0:
            print("monoculture: error: no structure of TRAINING could be described", file=sys.stderr)
            return EXIT_NOTHING_AUDITED
        ref_name, reference = reference.name, reference.X
    try:
        res = align_environments(models, environments=env, reference=reference,
                                 reference_name=ref_name if args.against else "training", k=args.k,
                                 min_environments=args.min_environments, n_clusters=args.clusters,
                                 max_per_group=args.max_per_group, n_permutations=args.permutations,
                                 bandwidth=args.bandwidth, merge=not args.no_merge, seed=args.seed)
    except ValueError as exc:
        print(f"monoculture: error: nothing could be aligned: {exc}", file=sys.stderr)
        return EXIT_NOTHING_AUDITED
    a = res.atoms
    print(f"{a['n_joined']} of {a['n_union']} atoms present in every input ("
          + ", ".join(f"{k} lacks {v}" for k, v in a["missing"].items())
          + f"); {a['n_distinct_environments']} distinct environments")
    _print_alignment(res)
    if args.json_out:
        write_json(res.to_dict(), args.json_out)
    if out is not None:
        _write_table(res.to_frame(), out)
    if args.report:
        from monoculture.reports.sections.environment_alignment import environment_alignment_document

        params = {"k": args.k, "min_environments": args.min_environments, "clusters": args.clusters,
                  "max_per_group": args.max_per_group, "permutations": args.permutations,
                  "bandwidth": args.bandwidth, "merge": not args.no_merge}  # the seed is in run.seed
        write_report(environment_alignment_document(res, embeddings=args.paths, structures=args.structures,
                                                     training=args.against, parameters=params, seed=args.seed,
                                                     started=started, elapsed_s=time.perf_counter() - clock),
                      args.report)
    return 0
