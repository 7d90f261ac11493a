"""Argument types and option groups shared by the command modules (:mod:`monoculture.cli`,
:mod:`monoculture.cli_environments`).

Imports nothing but :mod:`argparse`, so that building the parser (``monoculture --help``) stays light.
"""
from __future__ import annotations

import argparse

__all__ = ["int_at_least", "add_read_options", "open_with_read_options"]


def int_at_least(minimum: int):
    """argparse type: an integer >= ``minimum``, with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def add_read_options(p: argparse.ArgumentParser, batch_flag: str = "--batch-size") -> None:
    """The read options of every command that reads datasets (format, card, level of theory, batch size, ...)."""
    p.add_argument("--format", help="reader name (see `monoculture formats`); sniffed by default")
    p.add_argument("--dataset-card", help="dataset card name (see `monoculture cards`) overriding detection")
    p.add_argument("--level-of-theory", help="level of theory for every frame, e.g. 'PBE+U' or 'wB97M-V/def2-TZVPD'")
    p.add_argument(batch_flag, dest="batch_size", type=int_at_least(1), default=4096,
                   help="frames per batch read (default 4096; for embed, one output/cache chunk)")
    p.add_argument("--quiet", action="store_true", help="do not print skipped records (they are still counted)")
    p.add_argument("--smiles-column", metavar="NAME",
                   help="column of a CSV/TSV table holding the SMILES (default: one named like 'smiles')")
    p.add_argument("--id-column", metavar="NAME",
                   help="column of a CSV/TSV table holding the molecule id (default: 'id', 'name' or 'mol_id')")
    p.add_argument("--config", metavar="NAME[,NAME]",
                   help="configs of a Hugging Face dataset folder to read, e.g. compatible_pbe (default: every "
                        "config holding frames)")


def open_with_read_options(path: str, args):
    """The dataset at ``path`` opened with the read options of :func:`add_read_options` found in ``args``
    (imports the datasets layer only when called)."""
    from monoculture.datasets import ReadOptions, open_dataset

    options = ReadOptions(smiles_column=args.smiles_column, id_column=args.id_column, config=args.config)
    return open_dataset(path, format=args.format, dataset_card=args.dataset_card,
                        level_of_theory=args.level_of_theory, batch_size=args.batch_size, quiet=args.quiet,
                        options=options)
