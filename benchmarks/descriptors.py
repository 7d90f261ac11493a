"""Throughput of monoculture's descriptor calculators next to the naive loops a user would write.

Frames: ASE ``bulk`` prototypes (rock salt, fcc, bcc, diamond, zinc blende, wurtzite, CsCl, fluorite,
perovskite) in supercells of 1-8 cells, thermally rattled, built from RawFrame records by the real FrameBuilder
(``frames_from_records``) in batches.

Baselines (timed on the same frames, in the same run):
* composition: ``Structure.from_dict`` + ``.composition`` + a matminer-style loop over elements and
  properties (pymatgen ``Element`` attributes), statistics with numpy, per structure;
* soap: dscribe ``SOAP.create`` called per structure on ready-made ``ase.Atoms`` (our timing includes
  building the atoms from the frame table);
* parallel: ``featurize`` with 2 processes against 1: full-width SOAP, SOAP with PCA to 128 and local on
  ``--n-parallel`` frames (fit excluded: the descriptors are fitted first; worker start-up included, the
  fork server's cold start of about 1.5 s in the first row).

Run: ``python benchmarks/descriptors.py [--n 10000] [--n-soap 2000] [--n-naive 2000]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

# Sibling benchmark scripts (e.g. benchmarks/coverage.py) must not shadow installed packages of the same name.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import numpy as np  # noqa: E402


def make_frames(n: int, batch_size: int = 1000, seed: int = 0):
    """``n`` rattled supercells of bulk prototypes, as frame batches."""
    from ase.build import bulk

    from monoculture.datasets.memory import frames_from_records
    from monoculture.datasets.records import RawFrame

    protos = [
        bulk("NaCl", "rocksalt", a=5.64), bulk("Cu", "fcc", a=3.61), bulk("Fe", "bcc", a=2.87),
        bulk("Si", "diamond", a=5.43), bulk("GaAs", "zincblende", a=5.65),
        bulk("ZnO", "wurtzite", a=3.25, c=5.2), bulk("CsCl", "cesiumchloride", a=4.12),
        bulk("CaF2", "fluorite", a=5.46), bulk("MgO", "rocksalt", a=4.21),
    ]
    reps = [(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2)]
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        a = protos[i % len(protos)].repeat(reps[(i // len(protos)) % len(reps)])
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        e = -4.0 * len(a) + rng.normal(0, 0.1)
        records.append(RawFrame(id=f"b{i}", key=str(i), numbers=a.numbers, positions=a.positions,
                                cell=np.array(a.cell), pbc=a.pbc, energy_eV=e, functional="PBE", temperature_K=300.0))
    batches = (frames_from_records(records[i:i + batch_size], dataset="bench", file="bench.xyz")
               for i in range(0, n, batch_size))
    return [b for b in batches if b.num_rows]


def rate(fn, n: int) -> tuple[float, float]:
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    return n / dt, dt


def naive_composition(struct_dicts):
    """What a user writes: pymatgen objects per structure, matminer-style property loop."""
    from pymatgen.core import Structure

    props = ["Z", "atomic_mass", "mendeleev_no", "row", "group", "X", "atomic_radius", "molar_volume",
             "melting_point", "ionization_energy", "electron_affinity"]
    out = []
    for d in struct_dicts:
        comp = Structure.from_dict(d).composition
        fr = comp.fractional_composition
        els = list(fr)
        w = np.array([fr[e] for e in els], dtype=float)
        row = np.zeros(103)
        for e, x in zip(els, w):
            row[e.Z - 1] = x
        feats = [row]
        for p in props:
            v = np.array([float(getattr(e, p) or np.nan) for e in els])
            mean = np.nansum(w * v)
            feats.append([mean, np.sqrt(np.nansum(w * (v - mean) ** 2)), np.nanmin(v), np.nanmax(v),
                          np.nanmax(v) - np.nanmin(v)])
        out.append(np.concatenate([np.ravel(f) for f in feats]))
    return np.array(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--n-soap", type=int, default=2_000)
    p.add_argument("--n-naive", type=int, default=2_000)
    p.add_argument("--n-parallel", type=int, default=40_000,
                   help="frames of the 1 vs 2 process rows (full-width SOAP, SOAP+PCA, local; 0: skip)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")

    from pymatgen.io.ase import AseAtomsAdaptor

    from monoculture.datasets.frames import concat_batches, iter_ase_atoms
    from monoculture.descriptors import featurize, get_descriptor

    t = time.perf_counter()
    batches = make_frames(args.n)
    n = sum(b.num_rows for b in batches)
    n_atoms = sum(int(np.sum(b.column("n_atoms").to_numpy())) for b in batches)
    print(f"{n} frames, {n_atoms} atoms, {len(batches)} batches, built in {time.perf_counter() - t:.1f} s")
    rows = []

    # composition
    comp = get_descriptor("composition").fit(batches)
    r_ours, _ = rate(lambda: [comp.transform(b) for b in batches], n)
    sub = concat_batches(batches)[: args.n_naive]
    dicts = [AseAtomsAdaptor.get_structure(a).as_dict() for a in iter_ase_atoms(sub)]
    r_naive, _ = rate(lambda: naive_composition(dicts), len(dicts))
    rows.append(("composition", n, r_ours, "pymatgen Structure.from_dict + matminer-style loop",
                 len(dicts), r_naive))

    for name in ("structure", "regime"):
        d = get_descriptor(name).fit(batches)
        r, _ = rate(lambda: [d.transform(b) for b in batches], n)
        rows.append((name, n, r, "-", 0, float("nan")))

    # local (warm the numba cache first)
    loc = get_descriptor("local").fit(batches[:1])
    loc.transform(batches[0].slice(0, 2))
    r, _ = rate(lambda: [loc.transform(b) for b in batches], n)
    rows.append(("local (quests, pooled)", n, r, "-", 0, float("nan")))

    # soap vs bare dscribe on the same frames
    soap_frames = concat_batches(batches)[: args.n_soap]
    soap_batches = [soap_frames.slice(i, 500) for i in range(0, soap_frames.num_rows, 500)]
    soap = get_descriptor("soap").fit(soap_batches)
    from dscribe.descriptors import SOAP

    bare = SOAP(species=soap.species_.tolist(), r_cut=5.0, n_max=6, l_max=4, sigma=0.5, average="inner",
                periodic=True, sparse=False)
    atoms = list(iter_ase_atoms(soap_frames))
    r_bare, t_bare = rate(lambda: [bare.create(a) for a in atoms], len(atoms))
    r_soap, t_soap = rate(lambda: [soap.transform(b) for b in soap_batches], len(atoms))
    rows.append(("soap (avg inner, 5 Å, 6, 4)", len(atoms), r_soap, "dscribe SOAP.create per structure",
                 len(atoms), r_bare))

    # parallel featurize (worker start-up included, as a user pays it; descriptors fitted beforehand)
    if args.n_parallel:
        par = make_frames(args.n_parallel, seed=1) if args.n_parallel != n else batches
        n_par = sum(b.num_rows for b in par)
        soap_pca = get_descriptor("soap", n_components=128).fit(par[:2])
        runs = [("soap, full width", soap, par, n_par), ("soap, PCA to 128", soap_pca, par, n_par),
                ("local", loc, par, n_par)]
        for name, d, bs, nn in runs:
            r1, _ = rate(lambda: featurize(bs, d, n_jobs=1), nn)
            r2, _ = rate(lambda: featurize(bs, d, n_jobs=2), nn)
            rows.append((f"featurize {name}, 2 processes", nn, r2, f"featurize {name}, 1 process", nn, r1))

    print()
    print(f"{'descriptor':32s} {'frames':>7s} {'frames/s':>10s}   {'baseline':52s} {'frames':>7s} "
          f"{'frames/s':>10s} {'ratio':>7s}")
    for name, nn, r, base, nb, rb in rows:
        ratio = f"{r / rb:7.2f}" if np.isfinite(rb) else "      -"
        rbs = f"{rb:10.1f}" if np.isfinite(rb) else "         -"
        print(f"{name:32s} {nn:7d} {r:10.1f}   {base:52s} {nb:7d} {rbs} {ratio}")
    print(f"\nSOAP overhead over bare dscribe: {100 * (t_soap / t_bare - 1):+.1f}% "
          f"({t_soap:.2f} s vs {t_bare:.2f} s, {soap.n_features_out_} features)")


if __name__ == "__main__":
    main()
