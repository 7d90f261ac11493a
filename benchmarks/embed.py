"""Throughput of model embeddings: naive calculator loop vs monoculture's batched pipeline vs model-only.

For chgnet-0.3.0 and sevennet-0 on synthetic crystals (ASE bulk prototypes, supercells of 8-32 atoms,
strained and rattled), one table in structures per second:

* ``naive``: one structure at a time through the library's ASE calculator (energy + forces + stress), what a
  user without this pipeline does to get at the model;
* ``pipeline``: ``load_embedder(name).embed(atoms_list, batch_size)``: graph building plus batched forward
  without forces/stress, pooled to the mean;
* ``graphs only``: graph building alone (what worker processes would take over);
* ``model only``: the batched forward on graphs built beforehand (the ceiling for this device).

Usage: ``python benchmarks/embed.py [--device cpu|cuda|auto] [--n 300] [--batch-size 32]``
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

PROTOTYPES = [
    ("Si", "diamond", 5.43), ("C", "diamond", 3.57), ("Ge", "diamond", 5.66), ("NaCl", "rocksalt", 5.64),
    ("MgO", "rocksalt", 4.21), ("LiF", "rocksalt", 4.03), ("KCl", "rocksalt", 6.29), ("GaAs", "zincblende", 5.65),
    ("ZnS", "zincblende", 5.41), ("CsCl", "cesiumchloride", 4.12), ("Cu", "fcc", 3.61), ("Al", "fcc", 4.05),
    ("Ni", "fcc", 3.52), ("Fe", "bcc", 2.87), ("W", "bcc", 3.16), ("Mo", "bcc", 3.15), ("CaF2", "fluorite", 5.46),
    ("ZnO", "wurtzite", 3.25), ("GaN", "wurtzite", 3.19), ("Mg", "hcp", 3.21), ("Ti", "hcp", 2.95),
]


def synthetic_crystals(n: int, seed: int = 0, min_atoms: int = 8, max_atoms: int = 32):
    """``n`` crystals: a random prototype, a supercell of 8-32 atoms, +-3 % strain, 0.02-0.1 Å rattle."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        formula, kind, a = PROTOTYPES[rng.integers(len(PROTOTYPES))]
        kw = {"c": a * 1.6} if kind in ("wurtzite", "hcp") else {}
        atoms = bulk(formula, kind, a=a, cubic=bool(rng.integers(2)) and kind not in ("wurtzite", "hcp"), **kw)
        target = int(rng.integers(min_atoms, max_atoms + 1))
        reps = [1, 1, 1]
        while len(atoms) * np.prod(reps) < target:
            reps[int(np.argmin(reps))] += 1
        if not min_atoms <= len(atoms) * np.prod(reps) <= max_atoms:
            continue
        atoms = atoms.repeat(reps)
        strain = np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3))
        atoms.set_cell(atoms.cell[:] @ strain, scale_atoms=True)
        atoms.rattle(float(rng.uniform(0.02, 0.1)), seed=int(rng.integers(1 << 31)))
        atoms.info["id"] = f"s{len(out)}"
        out.append(atoms)
    return out


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def naive_calculator(name: str, device: str):
    if name.startswith("chgnet"):
        from chgnet.model.dynamics import CHGNetCalculator

        from monoculture.descriptors.models._chgnet import load_chgnet_model

        return CHGNetCalculator(model=load_chgnet_model(name.split("-", 1)[1]), use_device=device)
    from sevenn.calculator import SevenNetCalculator

    from monoculture.descriptors.models._sevennet import load_sevennet_model

    model, _ = load_sevennet_model(name)
    return SevenNetCalculator(model, file_type="model_instance", device=device)


def _best_time(fn, repeat: int) -> float:
    """Shortest wall time of ``repeat`` calls (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_model(name: str, structures, device: str, batch_size: int, n_naive: int, repeat: int) -> list[tuple]:
    from monoculture.descriptors.models import build_graphs, load_embedder

    emb = load_embedder(name, device=device)
    n = len(structures)
    emb.embed(structures[:batch_size], batch_size=batch_size)  # warm-up

    calc = naive_calculator(name, emb.device)
    sub = structures[:n_naive]
    for a in sub[:3]:  # warm-up
        a = a.copy()
        a.calc = calc
        a.get_potential_energy()
    t = time.perf_counter()
    for a in sub:
        a = a.copy()
        a.calc = calc
        a.get_potential_energy(), a.get_forces(), a.get_stress()
    naive = _rate(len(sub), time.perf_counter() - t)

    ids, x = emb.embed(structures, batch_size=batch_size)
    assert x.shape == (n, emb.dim) and np.isfinite(x).all(), "pipeline dropped structures"
    pipeline = _rate(n, _best_time(lambda: emb.embed(structures, batch_size=batch_size), repeat))

    builder, str_ids = emb.graph_builder(), [str(i) for i in range(n)]
    graphs, kept, skipped = build_graphs(builder, structures, str_ids)
    graphs_only = _rate(n, _best_time(lambda: build_graphs(builder, structures, str_ids), repeat))

    def forward_all():
        for s in range(0, len(graphs), batch_size):
            emb.forward_pooled(graphs[s : s + batch_size], "mean")

    model_only = _rate(n, _best_time(forward_all, repeat))
    return [
        (name, f"naive calculator E+F+S, 1 at a time ({len(sub)} structures)", naive),
        (name, f"pipeline embed(batch_size={batch_size})", pipeline),
        (name, "  of which graph building alone", graphs_only),
        (name, f"model-only forward on pre-built graphs (batch {batch_size})", model_only),
    ]


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--n", type=int, default=300, help="number of synthetic crystals")
    parser.add_argument("--n-naive", type=int, default=60, help="structures in the (slow) naive loop")
    parser.add_argument("--repeat", type=int, default=3, help="batched paths: best of this many runs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", nargs="+", default=["chgnet-0.3.0", "sevennet-0"])
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    structures = synthetic_crystals(args.n)
    sizes = np.array([len(a) for a in structures])
    print(f"{len(structures)} crystals, {sizes.min()}-{sizes.max()} atoms (mean {sizes.mean():.1f}); "
          f"device {args.device}; batched paths best of {args.repeat}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("\n| model | path | structures/s | x naive |\n|---|---|---:|---:|", flush=True)
    for name in args.models:
        rows = bench_model(name, structures, args.device, args.batch_size, min(args.n_naive, args.n), args.repeat)
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[2] / rows[0][2]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
