"""Throughput of model embeddings: naive calculator loop vs monoculture's batched pipeline vs model-only.

For every bundled model (or ``--models``) on synthetic crystals (ASE bulk prototypes, supercells of 8-32 atoms,
strained and rattled), one table in structures per second:

* ``naive``: one structure at a time through the library's ASE calculator (energy + forces + stress), what a
  user without this pipeline does to get at the model;
* ``pipeline``: :func:`~monoculture.descriptors.models.embed_frames` over frame batches (what
  ``monoculture embed`` runs): frames to structures, graph building, batched forward without forces/stress,
  mean pooling; once with graphs built in this process, once with ``--workers`` graph-building processes
  overlapped with the forward passes;
* ``graphs only``: graph building and collation into forward batches alone, on one core (what the worker
  processes take over);
* ``model only``: the batched forward on batches built and collated beforehand, copy to the device and
  pooling included (the ceiling for this device).

``--scale N`` adds the memory and restart checks of issue #10, each through the ``monoculture embed`` command
in a fresh process on a synthetic MPTrj file (``monoculture synth``): peak RSS of a run over N frames against
one over N/10 (ratio), and a run killed (SIGKILL) after a few cached chunks then restarted, whose output must
equal the uninterrupted run's file.

The whole command as a user runs it (fresh process, first run with an empty numba cache, second run warm,
beside this pipeline figure measured in the same run) is ``benchmarks/embed_command.py``.

Usage: ``python benchmarks/embed.py [--device cpu|cuda|auto] [--n 300] [--batch-size 32] [--workers 2]
[--scale 20000]``
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# Sibling benchmark scripts (benchmarks/coverage.py) must not shadow installed packages of the same name
# (numba imports `coverage` when it compiles).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import numpy as np  # noqa: E402

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

    from monoculture.descriptors.models._sevennet import SEVENNET_CHECKPOINTS

    model, _ = load_sevennet_model(name)
    modal = SEVENNET_CHECKPOINTS[name][2]  # the multi-fidelity model needs its modal (PBE), as embed uses
    return SevenNetCalculator(model, file_type="model_instance", device=device, **({"modal": modal} if modal else {}))


def _best_time(fn, repeat: int) -> float:
    """Shortest wall time of ``repeat`` calls (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def frame_batches(structures, chunk: int):
    """The structures as frame batches (FRAME_SCHEMA tables of ``chunk`` rows), as a reader makes them."""
    from monoculture.datasets.memory import frames_from_records
    from monoculture.datasets.records import RawFrame

    records = [RawFrame(id=a.info["id"], key=a.info["id"], numbers=a.numbers, positions=a.positions,
                        cell=np.array(a.cell), pbc=a.pbc) for a in structures]
    batches = (frames_from_records(records[i:i + chunk], dataset="bench", file="bench")
               for i in range(0, len(records), chunk))
    return [b for b in batches if b.num_rows]


def _pipeline(emb, batches, batch_size, executor=None, piece_size=None, concurrency=None):
    from monoculture.descriptors.models import embed_frames

    return sum(len(ids) for ids, _, _ in embed_frames(emb, batches, batch_size=batch_size, executor=executor,
                                                      piece_size=piece_size, concurrency=concurrency))


def bench_model(name: str, structures, device: str, batch_size: int, n_naive: int, repeat: int, workers: int,
                chunk: int, piece_size: int | None = None, concurrency: int | None = None,
                n_in_process: int | None = None) -> list[tuple]:
    """Rows of one model. The slow in-process rows (pipeline without workers, graph building alone) run on the
    first ``n_in_process`` structures (rates per structure; default all), the worker pipeline and the
    model-only ceiling on all of them."""
    from monoculture.descriptors.models import load_embedder
    from monoculture.descriptors.models.base import build_frame_batches, forward_batches, graph_worker_pool

    emb = load_embedder(name, device=device)
    n = len(structures)
    small = structures[: min(n, n_in_process or n)]
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

    ids, x = emb.embed(small, batch_size=batch_size)
    assert x.shape == (len(small), emb.dim) and np.isfinite(x).all(), "pipeline dropped structures"
    small_batches = frame_batches(small, chunk)
    assert _pipeline(emb, small_batches, batch_size, concurrency=concurrency) == len(small)
    pipeline = _rate(len(small), _best_time(lambda: _pipeline(emb, small_batches, batch_size,
                                                                concurrency=concurrency), repeat))

    batches = frame_batches(structures, chunk)
    builder = emb.graph_builder()

    def build_all(executor=None):
        """Forward batches of every structure, as the pipeline cuts them (pieces of batch_size frames)."""
        pieces = [p for b in batches for p in _cut(b, batch_size)]
        if executor is None:
            done = [build_frame_batches(builder, p, batch_size) for p in pieces]
        else:
            done = list(executor.map(build_frame_batches, [builder] * len(pieces), pieces, [batch_size] * len(pieces)))
        return [batch for built, _ in done for batch, _ in built]

    rows_workers = []
    collated = None
    if workers > 0:
        with graph_worker_pool(workers) as pool:
            assert _pipeline(emb, batches, batch_size, pool, piece_size, concurrency) == n  # also starts the workers
            rate = _rate(n, _best_time(lambda: _pipeline(emb, batches, batch_size, pool, piece_size, concurrency),
                                       repeat))
            collated = build_all(pool)
        pieces = f", pieces of {piece_size}" if piece_size else ""
        rows_workers = [(name, f"pipeline, graphs in {workers} worker processes{pieces} ({n} structures)", rate)]

    small_frames = frame_batches(small, chunk)

    def build_small():
        return [build_frame_batches(builder, p, batch_size) for b in small_frames for p in _cut(b, batch_size)]

    graphs_only = _rate(len(small), _best_time(build_small, repeat))
    if collated is None:
        collated = build_all()
    assert sum(len(b["n_atoms"]) for b in collated) == n

    def forward_all():
        for _ in forward_batches(emb, ((b, [""] * len(b["n_atoms"])) for b in collated), "mean", concurrency):
            pass

    forward_all()  # warm-up
    model_only = _rate(n, _best_time(forward_all, repeat))
    return [
        (name, f"naive calculator E+F+S, 1 at a time ({len(sub)} structures)", naive),
        (name, f"pipeline, graphs in this process (batch {batch_size}, chunks of {chunk}, {len(small)} structures)",
         pipeline),
        *rows_workers,
        (name, f"graph building + collation alone, 1 process ({len(small)} structures)", graphs_only),
        (name, f"model-only forward on pre-built, pre-collated batches (batch {batch_size}, {n} structures)",
         model_only),
    ]


def _cut(batch, size):
    """``batch`` in pieces of at most ``size`` rows as a worker process receives them (own buffers)."""
    from monoculture.descriptors.driver import own_buffers, row_pieces

    return [own_buffers(piece) for piece in row_pieces(batch, size)]


def parity(structures, models, device: str, batch_size: int) -> None:
    """Largest |CPU - device| difference of the mean embeddings, and batched (device) vs one at a time (CPU)."""
    from monoculture.descriptors.models import load_embedder

    print(f"\n| model | structures | max abs difference CPU batch 1 vs {device} batch {batch_size} | "
          f"max abs value | difference / max abs value |\n|---|---:|---:|---:|---:|", flush=True)
    for name in models:
        on_cpu = load_embedder(name, device="cpu")
        ref = np.concatenate([on_cpu.embed([a])[1] for a in structures])
        _, got = load_embedder(name, device=device).embed(structures, batch_size=batch_size)
        diff, scale = float(np.abs(ref - got).max()), float(np.abs(ref).max())
        print(f"| {name} | {len(structures)} | {diff:.2e} | {scale:.2f} | {diff / scale:.1e} |", flush=True)


def _embed_cmd(path, out, model, device, workers, batch_size, chunk, cache=None) -> list[str]:
    cmd = [sys.executable, "-m", "monoculture", "embed", str(path), "--model", model, "--out", str(out),
           "--device", device, "--workers", str(workers), "--batch-size", str(batch_size), "--chunk-size",
           str(chunk)]
    return cmd + (["--cache-dir", str(cache)] if cache else [])


def _peak_rss_mib(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS of the command and its children in MiB, seconds): the command runs in a fresh process."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "dt = time.perf_counter() - t; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, dt)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], check=True, capture_output=True, text=True).stdout
    rss, dt = out.split()
    return float(rss), float(dt)


def scale_checks(n: int, model: str, device: str, workers: int, batch_size: int) -> None:
    """Peak RSS of N vs N/10 frames, and a killed-then-restarted run against an uninterrupted one."""
    import pyarrow.parquet as pq

    chunk = 500
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {}
        for size in (n // 10, n):
            files[size] = tmp / f"synth_{size}.json"
            subprocess.run([sys.executable, "-m", "monoculture", "synth", "--like", "mptrj", "--frames", str(size),
                            "--out", str(files[size]), "--seed", "3"], check=True, capture_output=True)
        print(f"\n| {model}, `monoculture embed` on synthetic MPTrj | frames | peak RSS (MiB) | seconds | frames/s |"
              "\n|---|---:|---:|---:|---:|", flush=True)
        rss = {}
        for size, path in files.items():
            rss[size], dt = _peak_rss_mib(_embed_cmd(path, tmp / f"out_{size}.parquet", model, device, workers,
                                                     batch_size, chunk))
            print(f"| workers {workers}, batch {batch_size}, chunks of {chunk} | {size} | {rss[size]:.0f} | "
                  f"{dt:.1f} | {size / dt:.1f} |", flush=True)
        print(f"\npeak RSS ratio {n} / {n // 10} frames: {rss[n] / rss[n // 10]:.2f} (goal <= 1.5)", flush=True)

        small = files[n // 10]
        cache = tmp / "cache"
        proc = subprocess.Popen(_embed_cmd(small, tmp / "killed.parquet", model, device, workers, batch_size,
                                           chunk, cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            if len(list(cache.rglob("chunk_*.parquet"))) >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        n_cached = len(list(cache.rglob("chunk_*.parquet")))
        assert not (tmp / "killed.parquet").exists(), "the killed run left a final file"
        subprocess.run(_embed_cmd(small, tmp / "killed.parquet", model, device, workers, batch_size, chunk, cache),
                       check=True, capture_output=True)
        a, b = pq.read_table(tmp / f"out_{n // 10}.parquet"), pq.read_table(tmp / "killed.parquet")
        same_ids = a.column("id").to_pylist() == b.column("id").to_pylist()
        xa = np.stack(a.column("embedding").to_numpy(zero_copy_only=False))
        xb = np.stack(b.column("embedding").to_numpy(zero_copy_only=False))
        diff = float(np.abs(xa - xb).max()) if xa.size else 0.0
        print(f"killed (SIGKILL) after {n_cached} cached chunks of {chunk}, restarted: same ids {same_ids}, "
              f"{len(b)} rows, max |difference| to the uninterrupted run {diff:.2e}", flush=True)


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--n", type=int, default=300, help="number of synthetic crystals")
    parser.add_argument("--n-naive", type=int, default=60, help="structures in the (slow) naive loop")
    parser.add_argument("--repeat", type=int, default=3, help="batched paths: best of this many runs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", nargs="+", default=None, help="default: every bundled model installed")
    parser.add_argument("--workers", type=int, default=2, help="graph-building processes of the pipeline row")
    parser.add_argument("--chunk", type=int, default=512, help="frames per frame batch (output chunk)")
    parser.add_argument("--piece-size", type=int, default=None, help="frames per worker task (default: embed_frames')")
    parser.add_argument("--n-in-process", type=int, default=None,
                        help="structures for the slow in-process rows (default: all --n)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="forward batches at once, pipeline and model-only alike (default: embed_frames')")
    parser.add_argument("--scale", type=int, default=0, help="frames of the memory / restart checks (0: skip)")
    parser.add_argument("--scale-model", default="chgnet-0.3.0")
    parser.add_argument("--parity", type=int, default=0,
                        help="structures embedded on CPU and on --device, largest difference printed (0: skip)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.models is None:
        from monoculture.descriptors.models import available_models

        args.models = available_models()

    structures = synthetic_crystals(args.n)
    sizes = np.array([len(a) for a in structures])
    print(f"{len(structures)} crystals, {sizes.min()}-{sizes.max()} atoms (mean {sizes.mean():.1f}); "
          f"device {args.device}; batched paths best of {args.repeat}; forward concurrency "
          f"{args.concurrency or 'default (2 on a GPU, 1 on the CPU)'}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("\n| model | path | structures/s | x naive | / model-only |\n|---|---|---:|---:|---:|", flush=True)
    for name in args.models:
        rows = bench_model(name, structures, args.device, args.batch_size, min(args.n_naive, args.n), args.repeat,
                           args.workers, args.chunk, args.piece_size, args.concurrency, args.n_in_process)
        ceiling = rows[-1][2]
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[2] / rows[0][2]:.1f} | {r[2] / ceiling:.2f} |", flush=True)
    if args.parity and args.device != "cpu":
        parity(structures[: args.parity], args.models, args.device, args.batch_size)
    if args.scale:
        scale_checks(args.scale, args.scale_model, args.device, args.workers, args.batch_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
