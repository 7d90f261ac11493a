"""Benchmark of the coverage analyzers.

1. Throughput (frames/s) of the exact accumulators (elements + level of theory + regimes together) on a
   synthetic frame table of ``--frames`` frames (default 1,000,000), streamed in batches: one ~10k-frame
   batch is built from bundled prototypes (``ase.build.bulk``, supercells, rattled positions, random
   temperatures / pressures / labels) with the real FrameBuilder (``frames_from_records``), then replayed with new ids
   (``<id>/<copy>``) so memory stays flat. Peak RSS is printed after the first batch and at the end.
2. k-NN compare time (:func:`monoculture.audit.coverage.compare.compare_arrays`) for A and B of 100k and 1M
   points each, d = 32 (Gaussian-mixture points), with the index the default rule picks and, for 1M, the
   IVF index (the exact one would need about 100x the 100k time).

Usage: ``python benchmarks/coverage.py [--frames N] [--knn 100000 1000000]``.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def base_batch(n: int = 10_000, seed: int = 0) -> pa.Table:
    """~n synthetic frames from ase.build.bulk prototypes with random regimes and labels."""
    from ase.build import bulk

    from monoculture.datasets.accounting import Accounting
    from monoculture.datasets.memory import frames_from_records
    from monoculture.datasets.records import RawFrame

    rng = np.random.default_rng(seed)
    protos = [
        bulk("Cu", "fcc", a=3.6), bulk("Al", "fcc", a=4.05), bulk("Fe", "bcc", a=2.87), bulk("W", "bcc", a=3.16),
        bulk("Si", "diamond", a=5.43), bulk("C", "diamond", a=3.57), bulk("Ti", "hcp", a=2.95, c=4.68),
        bulk("Mg", "hcp", a=3.21, c=5.21), bulk("NaCl", "rocksalt", a=5.64), bulk("MgO", "rocksalt", a=4.21),
        bulk("FeO", "rocksalt", a=4.3), bulk("NiO", "rocksalt", a=4.17), bulk("LiF", "rocksalt", a=4.03),
        bulk("ZnS", "zincblende", a=5.41), bulk("GaAs", "zincblende", a=5.65), bulk("CsCl", "cesiumchloride", a=4.12),
        bulk("CaF2", "fluorite", a=5.46), bulk("ZnO", "wurtzite", a=3.25, c=5.2), bulk("GaN", "wurtzite", a=3.19, c=5.19),
    ]
    records = []
    funcs = ["PBE", "PBE", "PBE", "PBE", "r2SCAN", "wB97M-V"]
    for i in range(n):
        a = protos[i % len(protos)].repeat(tuple(int(k) for k in rng.integers(1, 3, size=3)))
        if rng.random() < 0.2:
            a.numbers[0] = int(rng.integers(1, 84))
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        forces = rng.normal(scale=float(rng.choice([0.005, 0.1, 1.0])), size=(len(a), 3))
        func = funcs[int(rng.integers(len(funcs)))]
        records.append(RawFrame(
            id=f"syn-{i}", key=str(i), numbers=a.numbers, positions=a.positions, cell=a.cell[:], pbc=True,
            energy_eV=float(rng.normal(-5.0, 1.5)) * len(a), forces=forces,
            stress_GPa=rng.normal(scale=float(rng.choice([0.5, 5.0, 30.0])), size=6),
            temperature_K=None if rng.random() < 0.5 else float(rng.choice([300.0, 1000.0, 3000.0])),
            method=str(rng.choice(["relax", "static", "md", "rattled"])), functional=func,
            hubbard_u=(func == "PBE" and bool(rng.random() < 0.2)),
            basis="def2-TZVPD" if func == "wB97M-V" else "PAW_PBE_54"))
    return frames_from_records(records, dataset="synthetic", accounting=Accounting(), file="synthetic")


def stream(base: pa.Table, n_frames: int):
    """Yield batches of ``base`` with ids ``<id>/<copy>`` until ``n_frames`` frames were produced."""
    idx = base.schema.get_field_index("id")
    copy, done = 0, 0
    while done < n_frames:
        b = base if done + base.num_rows <= n_frames else base.slice(0, n_frames - done)
        ids = pc.binary_join_element_wise(b.column("id"), pa.scalar(f"{copy}"), "/")
        yield b.set_column(idx, "id", ids)
        done += b.num_rows
        copy += 1


def bench_exact(n_frames: int) -> dict:
    from monoculture.audit.coverage import ElementCoverage, LevelOfTheoryCoverage, RegimeCoverage

    t0 = time.perf_counter()
    base = base_batch()
    t_build = time.perf_counter() - t0
    accs = [ElementCoverage(), LevelOfTheoryCoverage(), RegimeCoverage()]
    t_update = 0.0
    rss_first = None
    total = 0
    t_all = time.perf_counter()
    for b in stream(base, n_frames):
        t = time.perf_counter()
        for a in accs:
            a.update(b)
        t_update += time.perf_counter() - t
        total += b.num_rows
        if rss_first is None:
            rss_first = _rss_mb()
    t_stream = time.perf_counter() - t_all
    t = time.perf_counter()
    res = [a.result() for a in accs]
    t_result = time.perf_counter() - t
    assert res[0]["n_frames"] == total
    return {"frames": total, "batch": base.num_rows, "build_base_s": t_build, "update_s": t_update,
            "stream_s": t_stream, "result_s": t_result, "frames_per_s": total / t_update,
            "frames_per_s_incl_stream": total / t_stream, "rss_after_first_mb": rss_first,
            "rss_peak_mb": _rss_mb(), "dominant_share": res[1]["dominant_share"]}


def bench_knn(n: int, d: int = 32, exact_max: int | None = None) -> dict:
    from monoculture.audit.coverage import compare_arrays
    from monoculture.audit.coverage.knn import EXACT_MAX

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(64, d))
    xb = (centres[rng.integers(64, size=n)] + rng.normal(size=(n, d))).astype(np.float32)
    xa = (centres[rng.integers(48, size=n)] + rng.normal(size=(n, d))).astype(np.float32)
    t = time.perf_counter()
    r = compare_arrays(xa, xb, exact_max=EXACT_MAX if exact_max is None else exact_max)
    dt = time.perf_counter() - t
    return {"n": n, "d": d, "index": r["knn_index"]["a_in_b"]["index"], "seconds": dt,
            "coverage_of_b_by_a": r["coverage_of_b_by_a"], "novelty_of_a": r["novelty_of_a"],
            "radius": r["radius"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=1_000_000)
    p.add_argument("--knn", type=int, nargs="*", default=[100_000, 1_000_000])
    args = p.parse_args()
    if args.frames > 0:
        r = bench_exact(args.frames)
        print("exact accumulators (elements + level_of_theory + regimes)")
        for k, v in r.items():
            print(f"  {k:26s} {v:,.3f}" if isinstance(v, float) else f"  {k:26s} {v:,}")
    print("\nk-NN compare (compare_arrays, A and B of n points each)")
    print(f"  {'n':>9s} {'d':>3s} {'index':>13s} {'seconds':>9s} {'coverage':>9s} {'novelty':>8s}")
    for n in args.knn:
        rows = [bench_knn(n)] if n < 1_000_000 else []
        rows.append(bench_knn(n, exact_max=n - 1))  # IVF
        for k in rows:
            print(f"  {k['n']:>9,} {k['d']:>3} {k['index']:>13s} {k['seconds']:>9.2f} "
                  f"{k['coverage_of_b_by_a']:>9.3f} {k['novelty_of_a']:>8.3f}")


if __name__ == "__main__":
    main()
