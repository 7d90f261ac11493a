"""Context: the user's datasets beside the datasets people know, from the bundled dataset cards or from audit
documents passed as context, in one table and one figure."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from . import view
from .style import MISSING_COLOUR, new_figure

__all__ = ["context_rows", "context_figure", "CARD_SETS"]

#: Cards shown beside a molecule set / a crystal set (the well-known training sets of each kind; MPTrj and
#: OMol25 always, as the reference points of the two communities).
CARD_SETS = {
    "molecules": ("qm9", "ani-1x", "spice", "omol25", "mptrj"),
    "crystals": ("mptrj", "salex", "omat24", "alexandria-pbe", "matpes-pbe", "matpes-r2scan", "omol25"),
}


def _lot_text(card: Mapping) -> str:
    f = card.get("functional") or "unknown"
    if card.get("hubbard_u") == "mp":
        f = f"{f}/{f}+U"
    if card.get("basis") and card.get("functional") not in (None, "unknown"):
        f = f"{f} ({card['basis']})"
    return f


def _kind_of(doc: Mapping) -> str:
    from monoculture.audit.coverage.priorities import data_kind

    kinds = set()
    for ds in doc.get("datasets") or []:
        cov = ds.get("coverage") if isinstance(ds, Mapping) else None
        try:
            kinds.add(data_kind(cov)["kind"])
        except (KeyError, TypeError):
            continue
    return "molecules" if kinds == {"molecules"} else "crystals"


def _dataset_row(name: str, ds: Mapping, source: str) -> dict:
    s = view.dataset_summary(ds)
    lot = s["dominant_lot"]
    return {"name": name, "source": source, "structures": s["structures"], "elements": s["elements_covered"],
            "level_of_theory": (f"{lot} ({100 * s['dominant_share']:.0f} %)" if lot is not None
                                and s["dominant_share"] is not None else "–"),
            "regimes": (f"{100 * s['near_eq_share']:.0f} % near equilibrium" if s["near_eq_share"] is not None
                        else (s["near_eq_reason"] or "–")),
            "user": source != "dataset card"}


def context_rows(doc: Mapping, names: Sequence[str], extra: Sequence[Mapping] = (),
                 extra_labels: Sequence[str] = ()) -> list[dict]:
    """Rows of the comparison table: the user's datasets, datasets of the context documents, then cards.

    Parameters
    ----------
    doc : dict
        The audit document of this report.
    names : sequence of str
        Display names of ``doc["datasets"]``.
    extra : sequence of dict
        Audit documents passed as context (``--context``): each of their datasets becomes a row.
    extra_labels : sequence of str
        Source label of each context document (its file name).

    Returns
    -------
    list of dict
        ``{"name", "source", "structures", "elements", "level_of_theory", "regimes", "user"}``; numbers a
        card does not give are None. Cards come from :data:`CARD_SETS` for the kind of data, largest first.
    """
    from monoculture.datasets.cards import load_cards

    rows = [_dataset_row(n, ds, "this run")
            for n, ds in zip(names, [ds for ds in doc.get("datasets") or [] if isinstance(ds, Mapping)])]
    for i, other in enumerate(extra):
        label = extra_labels[i] if i < len(extra_labels) else f"context {i + 1}"
        for n, ds in zip(view.display_names(other), [d for d in other.get("datasets") or [] if isinstance(d, Mapping)]):
            rows.append(_dataset_row(n, ds, label))
    cards = load_cards()
    shown = {r["name"].lower() for r in rows}
    card_rows = []
    for key in CARD_SETS[_kind_of(doc)]:
        c = cards.get(key)
        if c is None or key in shown:
            continue
        d = c.to_dict()
        card_rows.append({"name": c.title.split(":")[0] if c.title else c.name, "source": "dataset card",
                          "structures": c.size, "elements": None, "level_of_theory": _lot_text(d),
                          "regimes": c.regimes or "–", "user": False})
    card_rows.sort(key=lambda r: -(r["structures"] or 0))
    return rows + card_rows


def context_figure(rows: Sequence[Mapping], colours: Mapping[str, str]):
    """Horizontal bars of the number of structures (log scale) of every row, the user's in their colours.

    Parameters
    ----------
    rows : sequence of dict
        :func:`context_rows` output.
    colours : mapping of str to str
        Colour of each user dataset (the one it has in every figure of the report).

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = [r for r in rows if r.get("structures")]
    if not rows:
        raise ValueError("no row with a number of structures")
    labels = [str(r["name"]) for r in rows]
    vals = np.array([float(r["structures"]) for r in rows])
    fig, ax = new_figure(7.2, max(2.0, 0.3 * len(rows) + 1.0))
    pos = np.arange(len(rows))
    cols = [colours.get(r["name"], "#555555") if r.get("user") else MISSING_COLOUR for r in rows]
    ax.barh(pos, vals, color=cols, edgecolor=["#333333" if r.get("user") else "#999999" for r in rows],
            linewidth=0.6)
    ax.set_xscale("log")
    ax.set_yticks(pos, labels)
    ax.invert_yaxis()
    for i, r in enumerate(rows):
        lot = str(r.get("level_of_theory") or "").split(" (")[0]
        ax.annotate(f"{int(r['structures']):,}" + (f" · {lot}" if lot and lot != "–" else ""), (vals[i], i),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=8, color="#222222")
    ax.set_xlim(max(0.5, vals.min() / 2), vals.max() * 3000)
    ax.tick_params(labelsize=9)
    ax.set_xlabel("structures (count, log scale)")
    ax.set_ylabel("dataset")
    return fig
