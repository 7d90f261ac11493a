"""Confounders of an ID-vs-OOD comparison (step 12) and the optional atom-count matching of the sets (step 4b)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..gap import parse_elements
from ..options import AlignOptions
from ._common import child_seed, num as _num

__all__ = ["CONFOUNDER_THRESHOLDS", "Confounders", "set_confounders", "metadata_table", "atom_count_bin",
           "match_atom_counts", "match_atom_count_step", "confounders_step"]

#: Confounder thresholds above which the two sets are said to differ materially (see :func:`set_confounders`).
CONFOUNDER_THRESHOLDS = {"n_atoms_ks": 0.5, "periodic_share_diff": 0.2, "element_jaccard_min": 0.5,
                         "single_atom_share_diff": 0.05}


@dataclass
class Confounders:
    """What could confound the comparison: per set, between the sets, and warnings (:func:`set_confounders`)."""

    per_set: dict
    between: dict
    warnings: list
    thresholds: dict

    def to_json(self) -> dict:
        """The ``confounders`` block."""
        return {"per_set": self.per_set, "between": self.between, "warnings": self.warnings,
                "thresholds": self.thresholds}


def metadata_table(metadata: pd.DataFrame) -> pd.DataFrame:
    """The metadata indexed by ``id`` (as str); ValueError without an ``id`` column or with repeated ids."""
    if "id" not in metadata.columns:
        raise ValueError(f"metadata needs an 'id' column; got {list(metadata.columns)}")
    md = metadata.copy()
    md["id"] = md["id"].astype(str)
    if md["id"].duplicated().any():
        dup = md.loc[md["id"].duplicated(), "id"]
        raise ValueError(f"metadata lists {dup.size} id(s) more than once, e.g. {dup.head(5).tolist()}")
    return md.set_index("id")


def set_confounders(metadata: pd.DataFrame, sets: Mapping[str, Sequence[str]]) -> dict:
    """Describe each evaluation set by what could confound an alignment comparison.

    Parameters
    ----------
    metadata : pandas.DataFrame
        One row per id; columns ``id`` and any of ``n_atoms`` (int), ``elements`` (list of symbols or an
        ``'Fe-O'`` string) and ``periodic`` (bool).
    sets : mapping of str to sequence of str
        ``{set: ids}``.

    Returns
    -------
    dict
        ``per_set`` ({set: n, n_with_metadata, n_atoms quantiles, single_atom_share, periodic_share,
        elements}), ``between`` (for two sets: KS statistic of atom counts, element Jaccard, share of the
        second set's structures with an element absent from the first, differences of shares) and
        ``warnings`` (list of str: differences above :data:`CONFOUNDER_THRESHOLDS`).
    """
    md = metadata_table(metadata)
    per_set, atoms, elsets, shares = {}, {}, {}, {}
    for key, ids in sets.items():
        ids = [str(i) for i in ids]
        sub = md.reindex(ids)
        have = sub.notna().any(axis=1) if len(sub.columns) else pd.Series(False, index=sub.index)
        entry = {"n": len(ids), "n_with_metadata": int(have.sum())}
        if "n_atoms" in sub:
            na = pd.to_numeric(sub["n_atoms"], errors="coerce").dropna().to_numpy(float)
            atoms[key] = na
            if na.size:
                q = np.quantile(na, [0.0, 0.25, 0.5, 0.75, 1.0])
                entry["n_atoms"] = {"min": _num(q[0]), "q25": _num(q[1]), "median": _num(q[2]),
                                    "q75": _num(q[3]), "max": _num(q[4]), "mean": _num(na.mean())}
                entry["single_atom_share"] = _num((na == 1).mean())
                shares.setdefault("single_atom_share", {})[key] = float((na == 1).mean())
        if "periodic" in sub:
            per = sub["periodic"].dropna()
            if per.size:
                val = float(per.astype(bool).mean())
                entry["periodic_share"] = val
                shares.setdefault("periodic_share", {})[key] = val
        if "elements" in sub:
            els = [parse_elements(v) for v in sub["elements"] if isinstance(v, (str, list, tuple, np.ndarray))]
            counts: dict[str, int] = {}
            for e in els:
                for s in e:
                    counts[s] = counts.get(s, 0) + 1
            elsets[key] = (set(counts), els)
            entry["elements"] = {"n_distinct": len(counts),
                                 "structures_per_element": dict(sorted(counts.items(), key=lambda t: -t[1]))}
        per_set[key] = entry

    out = {"per_set": per_set, "between": {}, "warnings": [], "thresholds": dict(CONFOUNDER_THRESHOLDS)}
    keys = list(sets)
    if len(keys) == 2:
        a, b = keys
        btw, warn = out["between"], out["warnings"]
        if a in atoms and b in atoms and atoms[a].size and atoms[b].size:
            ks = float(sps.ks_2samp(atoms[a], atoms[b]).statistic)
            btw["n_atoms_ks"] = ks
            if ks > CONFOUNDER_THRESHOLDS["n_atoms_ks"]:
                warn.append(f"atom counts differ (KS statistic {ks:.2f}; median {np.median(atoms[a]):g} in "
                            f"{a.upper()} vs {np.median(atoms[b]):g} in {b.upper()} atoms)")
        for name, limit in (("periodic_share", "periodic_share_diff"), ("single_atom_share", "single_atom_share_diff")):
            if name in shares and a in shares[name] and b in shares[name]:
                d = shares[name][a] - shares[name][b]
                btw[f"{name}_diff"] = d
                if abs(d) > CONFOUNDER_THRESHOLDS[limit]:
                    what = "periodic" if name == "periodic_share" else "single-atom"
                    warn.append(f"{what} share differs ({shares[name][a]:.0%} in {a.upper()} vs "
                                f"{shares[name][b]:.0%} in {b.upper()})")
        if a in elsets and b in elsets:
            ea, eb = elsets[a][0], elsets[b][0]
            jac = len(ea & eb) / len(ea | eb) if ea | eb else 1.0
            novel = float(np.mean([bool(set(e) - ea) for e in elsets[b][1]])) if elsets[b][1] else 0.0
            btw.update({"element_jaccard": jac, "elements_only_in_" + a: sorted(ea - eb),
                        "elements_only_in_" + b: sorted(eb - ea),
                        f"share_of_{b}_with_element_absent_from_{a}": novel})
            if jac < CONFOUNDER_THRESHOLDS["element_jaccard_min"]:
                warn.append(f"element sets overlap little (Jaccard {jac:.2f}; {len(eb - ea)} element(s) only in "
                            f"{b.upper()}, {len(ea - eb)} only in {a.upper()})")
    return out


def atom_count_bin(n_atoms: np.ndarray) -> np.ndarray:
    """Bins 1, 2, 3-4, 5-8, 9-16, ... (ceil(log2 n))."""
    return np.ceil(np.log2(np.maximum(n_atoms, 1))).astype(int)


def match_atom_counts(md, ids_a, ids_b, seed):
    """Seeded row subsets of two sets with the same count in every atom-count bin."""
    if "n_atoms" not in md.columns:
        raise ValueError("match_atom_count needs an 'n_atoms' metadata column")
    na = pd.to_numeric(md["n_atoms"].reindex(ids_a), errors="coerce").to_numpy(float)
    nb = pd.to_numeric(md["n_atoms"].reindex(ids_b), errors="coerce").to_numpy(float)
    if np.isnan(na).any() or np.isnan(nb).any():
        raise ValueError(f"match_atom_count: n_atoms missing for {int(np.isnan(na).sum())} ID and "
                         f"{int(np.isnan(nb).sum())} OOD structures")
    ba, bb = atom_count_bin(na), atom_count_bin(nb)
    rng = np.random.default_rng(seed)
    keep_a, keep_b = [], []
    for b in np.union1d(ba, bb):
        ia, ib = np.flatnonzero(ba == b), np.flatnonzero(bb == b)
        c = min(ia.size, ib.size)
        if c:
            keep_a.append(rng.choice(ia, c, replace=False))
            keep_b.append(rng.choice(ib, c, replace=False))
    if not keep_a:
        raise ValueError("match_atom_count: the two sets share no atom-count bin")
    return np.sort(np.concatenate(keep_a)), np.sort(np.concatenate(keep_b))



def match_atom_count_step(joined_ids: np.ndarray, sets, md: pd.DataFrame | None, opts: AlignOptions) -> None:
    """Restrict the ID and OOD sets (in place) to equal counts per atom-count bin (``match_atom_count``)."""
    if not opts.match_atom_count:
        return
    clean = sets.clean_rows
    if md is None or "ood" not in clean:
        raise ValueError("match_atom_count needs metadata and both ID and OOD sets")
    ia, ib = match_atom_counts(md, joined_ids[clean["id"]], joined_ids[clean["ood"]], child_seed(opts.seed, "match"))
    clean["id"], clean["ood"] = clean["id"][ia], clean["ood"][ib]
    for key in ("id", "ood"):
        sets.info[key]["matched_by_atom_count"] = True


def confounders_step(joined_ids: np.ndarray, sets, md: pd.DataFrame | None) -> Confounders | None:
    """:func:`set_confounders` of the analysed rows of each set (None without metadata)."""
    if md is None:
        return None
    out = set_confounders(md.reset_index(), {key: joined_ids[rows].tolist() for key, rows in sets.clean_rows.items()})
    return Confounders(**out)
