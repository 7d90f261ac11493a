"""``monoculture select`` and ``monoculture prune``: which structures to compute next, and which to drop.

``select POOL --against TRAINING --budget N`` ranks up to N structures of POOL by what they add to TRAINING
(new elements, new element pairs, new regimes, then the QUESTS differential entropy of their atomic
environments against the training set plus the structures already chosen; greedy) and writes the ranked
list (``rank, id, gain_nats, ..., why``) to ``--out`` as CSV or parquet (by suffix).

``prune DATASET --keep 0.9`` orders DATASET greedily from most to least informative and keeps the shortest
prefix that holds ``keep`` of its QUESTS entropy and of its elements; the list (with a ``kept`` column) goes
to ``--out`` and the measured shares are printed.

Definitions and approximations: :mod:`monoculture.audit.environments` (``docs/environments.md``).
Exit status as the rest of the command line: 2 for a usage error (one line), 3 when an input yields no
structure that could be described, 130 on Ctrl-C.

This module imports nothing of :mod:`monoculture.cli` (which imports it), so the two form no import cycle:
the read options are declared here the same way (``tests/test_cli_environments.py`` checks that they stay
the same as ``featurize``'s), errors are :class:`~monoculture.datasets.errors.UsageError` (exit 2).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from monoculture.cli_options import add_read_options, int_at_least
from monoculture.datasets.errors import EXIT_NOTHING_AUDITED, UsageError

__all__ = ["add_parsers", "cmd_select", "cmd_prune"]

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
    _common(p)
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("prune", help="smallest subset keeping a share of the entropy and the elements")
    p.add_argument("paths", nargs=1, metavar="DATASET")
    p.add_argument("--keep", type=_share, default=0.9,
                   help="share of the QUESTS entropy and of the elements to keep, in (0, 1] (default 0.9)")
    _common(p)
    p.set_defaults(func=cmd_prune)


def _check_out(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in _SUFFIXES:
        raise UsageError(f"--out must end in .csv or .parquet, got {path!r}")
    return out


def _atomic(out: Path, write) -> None:
    """Run ``write(tmp_path)`` on a temporary file beside ``out``, then rename it to ``out`` (whole or nothing)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_table(table, out: Path) -> None:
    """Write ``table`` to ``out`` (parquet or CSV by the suffix) whole or not at all."""
    if out.suffix.lower() == ".parquet":
        _atomic(out, lambda tmp: table.to_parquet(tmp, index=False))
    else:
        _atomic(out, lambda tmp: table.to_csv(tmp, index=False))


def _say(args):
    quiet = args.quiet or not sys.stderr.isatty()
    return (lambda _m: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))


def _read(path: str, args, say):
    from monoculture.audit.environments.sets import read_environments
    from monoculture.datasets import ReadOptions, open_dataset

    options = ReadOptions(smiles_column=args.smiles_column, id_column=args.id_column, config=args.config)
    ds = open_dataset(path, format=args.format, dataset_card=args.dataset_card,
                      level_of_theory=args.level_of_theory, batch_size=args.batch_size, quiet=args.quiet,
                      options=options)
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
        text = json.dumps(summary, indent=1, default=float, allow_nan=False) + "\n"
        _atomic(Path(args.json_out), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


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
    return 0
