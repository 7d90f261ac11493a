"""Dataset cards: what is known about public datasets (level of theory, code, licence, citation).

The registry is package data (``datasets/data/cards.toml``) plus the cards reader modules declare
(``ReaderSpec.new_cards``). Readers attach the card they detect; users
override with ``--dataset-card NAME`` or ``--level-of-theory TEXT``. When nothing is known the level of
theory stays ``unknown``: it is never guessed.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources

from .errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DatasetCard", "load_cards", "get_card", "parse_level_of_theory", "UnknownCardError"]


class UnknownCardError(UsageError, KeyError):
    """Raised for a card name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class DatasetCard:
    """One dataset's card. ``hubbard_u`` is ``"mp"`` (Materials Project rules per structure), ``"none"``,
    ``"all"`` or ``"unknown"``."""

    name: str
    title: str = ""
    functional: str = "unknown"
    hubbard_u: str = "unknown"
    basis: str | None = None
    code: str | None = None
    dispersion: str | None = None
    regimes: str | None = None
    size: int | None = None
    licence: str | None = None
    citation: str | None = None
    url: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def load_cards() -> dict[str, DatasetCard]:
    """All cards, by name: those of ``cards.toml``, then those readers add (``ReaderSpec.new_cards``, the
    card of a format that is one module); a reader never replaces a card of ``cards.toml``."""
    from .registry import READERS

    text = resources.files("monoculture.datasets").joinpath("data/cards.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    cards = {name: DatasetCard(name=name, **fields) for name, fields in raw.items()}
    for spec in READERS.values():
        for name, fields in spec.new_cards.items():
            cards.setdefault(name.lower(), DatasetCard(name=name.lower(), **fields))
    return cards


def get_card(name: str) -> DatasetCard:
    """The card called ``name`` (case-insensitive); ``UnknownCardError`` lists the known names."""
    cards = load_cards()
    key = name.lower()
    if key not in cards:
        raise UnknownCardError(f"unknown dataset card {name!r}; known cards: {', '.join(sorted(cards))}")
    return cards[key]


def parse_level_of_theory(text: str) -> tuple[str, bool | None, str | None]:
    """Split a user label into (functional, hubbard_u, basis).

    ``"PBE+U"`` -> ``("PBE", True, None)``; ``"wB97M-V/def2-TZVPD"`` -> ``("wB97M-V", False, "def2-TZVPD")``;
    ``"PBE"`` -> ``("PBE", False, None)``.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty level of theory")
    functional, _, basis = text.partition("/")
    u = functional.upper().endswith("+U")
    if u:
        functional = functional[:-2]
    return functional.strip(), u, (basis.strip() or None)
