"""`monoculture embed` as a user runs it, beside the pipeline's own throughput, in one run.

For each model (default ``chgnet-0.3.0``), on a synthetic MPTrj file (``monoculture synth --like mptrj``, frames of
``--mean-atoms`` atoms):

* **command, first run**: ``python -m monoculture embed FILE --model M --device D --batch-size B --workers W`` in a
  fresh process with an empty numba cache (``NUMBA_CACHE_DIR`` pointing to a new folder: every compiled function
  is compiled again), wall time measured from outside, interpreter start included;
* **command, second run**: the same command again, the cache now warm;
* **pipeline**: :func:`~monoculture.descriptors.models.embed_frames` in this process over the same frames, read
  into memory beforehand, with W graph workers already started and the model loaded and warmed up (the figure
  ``benchmarks/embed.py`` reports); best of ``--repeat``;
* **model-only**: the forward passes alone on batches built and collated beforehand (the device's ceiling).

Printed: structures/s of each, the ratio of each command run to the pipeline, and from the command's ``--json``
summary its timeline (when the model was loaded, when the first and last forward ran) and how long the device
had a forward in flight (CUDA events; on the CPU, wall time in forwards). Also the seconds that importing the
command's modules takes in a fresh process (``import-only`` rows), to separate start-up from throughput.

Usage: ``python benchmarks/embed_command.py [--device cuda] [--frames 20000] [--mean-atoms 31]
[--batch-size 256] [--workers 8] [--models chgnet-0.3.0 sevennet-0] [--json out.json]``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# Sibling benchmark scripts (benchmarks/coverage.py) must not shadow installed packages of the same name.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def _run(cmd: list[str], env: dict) -> float:
    """Wall seconds of ``cmd`` in a fresh process (raises if it fails; its stderr is shown then)."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return dt


def import_seconds(model: str, env: dict) -> dict:
    """Seconds to import, in a fresh interpreter: the CLI module; torch; the model's library (timed from
    inside the process, so interpreter start-up is not counted)."""
    lib = "chgnet.model" if model.startswith("chgnet") else "sevenn.train.dataload"
    code = ("import time, json; t = time.perf_counter(); import monoculture.cli; a = time.perf_counter(); "
            "import monoculture.descriptors.models.pipeline; b = time.perf_counter(); import torch; "
            f"c = time.perf_counter(); torch.zeros(1, device='cuda' if torch.cuda.is_available() else 'cpu'); "
            f"d = time.perf_counter(); import {lib}; e = time.perf_counter(); "
            "print(json.dumps({'cli': a - t, 'pipeline_modules': b - a, 'torch': c - b, 'cuda_context': d - c, "
            "'model_library': e - d}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def command_runs(path: Path, model: str, args, tmp: Path) -> list[dict]:
    """First run (empty numba cache) and second run of the command; wall time and its --json summary."""
    cache = tmp / f"numba_cache_{model}"
    cache.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONUNBUFFERED="1")
    rows = []
    for run in ("first run, empty numba cache", "second run"):
        summary = tmp / f"summary_{model}_{len(rows)}.json"
        cmd = [sys.executable, "-m", "monoculture", "embed", str(path), "--model", model, "--out",
               str(tmp / f"{model}_{len(rows)}.parquet"), "--device", args.device, "--batch-size",
               str(args.batch_size), "--workers", str(args.workers), "--json", str(summary)]
        wall = _run(cmd, env)
        doc = json.loads(summary.read_text())
        rows.append({"run": run, "wall_s": wall, "summary": doc})
    rows.append({"run": "imports", "imports_s": import_seconds(model, env)})
    return rows


def pipeline_rates(path: Path, model: str, args) -> dict:
    """structures/s of the pipeline (frames in memory, workers started, model warm) and of the forwards alone."""
    from monoculture.datasets import open_dataset
    from monoculture.descriptors.driver import own_buffers, row_pieces
    from monoculture.descriptors.models import embed_frames, load_embedder
    from monoculture.descriptors.models.base import build_frame_batches, forward_batches, graph_worker_pool

    batches = list(open_dataset(path, batch_size=args.chunk, quiet=True, progress=False).batches())
    n = sum(b.num_rows for b in batches)
    emb = load_embedder(model, device=args.device)
    emb.warm_up()

    def run_pipeline(pool) -> int:
        return sum(len(ids) for ids, _, _ in embed_frames(emb, batches, batch_size=args.batch_size, executor=pool))

    with graph_worker_pool(args.workers) as pool:
        assert run_pipeline(pool) == n  # starts the workers, compiles or loads their numba code
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            run_pipeline(pool)
            best = min(best, time.perf_counter() - t)
        builder = emb.graph_builder()
        pieces = [own_buffers(p) for b in batches for p in row_pieces(b, args.batch_size)]  # as sent to workers
        built = list(pool.map(build_frame_batches, [builder] * len(pieces), pieces, [args.batch_size] * len(pieces)))
    collated = [batch for done, _ in built for batch, _ in done]

    def forward_all():
        for _ in forward_batches(emb, ((b, [""] * len(b["n_atoms"])) for b in collated), "mean"):
            pass

    forward_all()
    best_fwd = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        forward_all()
        best_fwd = min(best_fwd, time.perf_counter() - t)
    return {"n": n, "pipeline_per_s": n / best, "model_only_per_s": n / best_fwd}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--frames", type=int, default=300, help="frames of the synthetic MPTrj file")
    parser.add_argument("--mean-atoms", type=int, default=31, help="mean atoms per frame (MPTrj: 31.2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=4096, help="frames per batch read (the command's default)")
    parser.add_argument("--repeat", type=int, default=2, help="pipeline and model-only: best of this many")
    parser.add_argument("--models", nargs="+", default=["chgnet-0.3.0"])
    parser.add_argument("--json", help="write every number to this JSON file")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    report = {"args": vars(args), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "synthetic_mptrj.json"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "monoculture", "synth", "--like", "mptrj", "--frames", str(args.frames),
                        "--mean-atoms", str(args.mean_atoms), "--out", str(path), "--seed", "5"], check=True,
                       capture_output=True)
        print(f"{args.frames} synthetic MPTrj frames (mean {args.mean_atoms} atoms), "
              f"{path.stat().st_size / 2**20:.0f} MiB, made in {time.perf_counter() - t:.0f} s; device {args.device}, "
              f"batch {args.batch_size}, {args.workers} workers", flush=True)
        for model in args.models:
            runs = command_runs(path, model, args, tmp)
            rates = pipeline_rates(path, model, args)
            report["models"][model] = {"runs": runs, **rates}
            pipe = rates["pipeline_per_s"]
            print(f"\n### {model}\n\n| path | seconds | structures/s | / pipeline | forward in flight | first forward at (s) |"
                  "\n|---|---:|---:|---:|---:|---:|", flush=True)
            for r in runs[:2]:
                s = r["summary"]
                n = s["n_rows"] + s["n_skipped"]
                rate = n / r["wall_s"]
                tl = s["timeline_s"]
                busy = tl.get("forward_busy_s") or 0.0
                print(f"| `monoculture embed`, {r['run']} | {r['wall_s']:.1f} | {rate:,.0f} | {rate / pipe:.2f} | "
                      f"{busy:.1f} s ({busy / r['wall_s']:.0%}) | {tl.get('first_forward_s') or float('nan'):.1f} |")
            print(f"| pipeline (frames in memory, workers and model warm) | {rates['n'] / pipe:.1f} | {pipe:,.0f} | "
                  f"1.00 | | |")
            print(f"| model-only (batches built beforehand) | {rates['n'] / rates['model_only_per_s']:.1f} | "
                  f"{rates['model_only_per_s']:,.0f} | {rates['model_only_per_s'] / pipe:.2f} | | |")
            for r in runs[:2]:
                tl = r["summary"]["timeline_s"]
                steady = (r["summary"]["n_rows"] / (tl["last_forward_s"] - tl["first_forward_s"])
                          if tl.get("first_forward_s") is not None and tl["last_forward_s"] > tl["first_forward_s"]
                          else float("nan"))
                print(f"\n{r['run']}: timeline (s after the command started): embed started "
                      f"{tl['embed_started']:.1f}, workers started {tl['workers_started_s']:.1f}, model loaded "
                      f"{tl['model_loaded_s']:.1f}, first forward {tl.get('first_forward_s') or float('nan'):.1f}, last "
                      f"forward ends {tl.get('last_forward_s') or float('nan'):.1f}, done {tl['done_s']:.1f}; "
                      f"interpreter start and imports before the command: "
                      f"{r['wall_s'] - r['summary']['command_s']:.1f} s; first to last forward "
                      f"{steady:,.0f} structures/s ({steady / pipe:.2f} of the pipeline)")
            print(f"\nimports in a fresh process (s): {json.dumps({k: round(v, 2) for k, v in runs[2]['imports_s'].items()})}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
