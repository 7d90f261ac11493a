"""MPTrj whole-file read throughput and peak memory, and the compiled scanner it replaced (issue #21).

Issue #21 keeps one MPTrj read path unless the compiled scanner (``datasets/readers/_mptrj_scan.py``, in
the tree until its removal) keeps an advantage of 2x or more on a file of the real MPTrj's shape. This
benchmark measures it: every run is a fresh Python process that reads the whole file with
``Dataset.batches()`` (every frame parsed, validated and turned into an Arrow batch, the work
``monoculture audit`` does before the descriptors) and reports

* frames read / skipped / failed, atoms, and the sum of the energies (every path must agree exactly);
* wall time, CPU time (user + system of the process, steadier than wall time on a shared machine) and
  frames/s on both;
* peak RSS (``ru_maxrss``) of the process.

Rows:

``reference``
    The reader of this working tree (the one MPTrj path: orjson per material).
``REV reference`` / ``REV scanner-cold`` / ``REV scanner-warm`` (with ``--against REV``)
    The datasets layer of git revision ``REV`` (e.g. ``b9516e1``, the last with the scanner), exported
    into a temporary folder and put first on ``PYTHONPATH``: its reference reader
    (``ReadOptions.extra["mptrj_scan_min_bytes"] = -1``), its scanner with an empty ``NUMBA_CACHE_DIR``
    (the first use on a machine, numba compilation included) and its scanner again with the cache the
    cold run filled (what every later run costs).

The file is written by ``monoculture synth --like mptrj --mean-atoms 31`` (the real MPTrj has 31 atoms per
frame on average; its JSON is ~11 GB for 1.58 M frames, about 7 kB a frame; the synthetic frames are about
9 kB) into a temporary folder, deleted afterwards, unless ``--path`` names an existing file (kept).

Usage: ``python benchmarks/mptrj_read.py [--frames 120000] [--repeat 1] [--path FILE] [--against REV]``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Sibling benchmark scripts (benchmarks/coverage.py) must not shadow installed packages of the same name
# (numba imports `coverage` when it compiles).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
import numpy as np
import monoculture.datasets as md
from monoculture.datasets import ReadOptions, open_dataset
path, min_bytes = sys.argv[1], int(sys.argv[2])
ds = open_dataset(path, quiet=True, options=ReadOptions(extra={"mptrj_scan_min_bytes": min_bytes}))
frames = atoms = 0
energy = 0.0
for table in ds.batches():
    frames += table.num_rows
    atoms += int(np.sum(table.column("n_atoms").to_numpy()))
    energy += float(np.nansum(table.column("energy_eV").to_numpy(zero_copy_only=False)))
acc = ds.accounting
print(json.dumps({"frames": frames, "atoms": atoms, "energy_sum": energy, "read": acc.read,
                  "skipped": acc.skipped, "failed": acc.failed, "wall_s": time.perf_counter() - t0,
                  "cpu_s": time.process_time() - c0, "datasets": md.__file__,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_REPO = Path(_HERE).parent


def _run(path: Path, min_bytes: int, cache_dir: str, pythonpath: str | None = None) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(min_bytes)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _export(rev: str, root: Path) -> str:
    """The ``monoculture`` package with the datasets layer of git revision ``rev``, laid out as installed
    (``src/monoculture`` with ``datasets`` inside), under ``root``; returns the folder for ``PYTHONPATH``."""
    raw = root / "export"
    raw.mkdir()
    archive = subprocess.run(["git", "-C", str(_REPO), "archive", rev, "src/monoculture", "datasets"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(raw)], input=archive, check=True)
    pkg = root / "pkg"
    shutil.copytree(raw / "src" / "monoculture", pkg / "monoculture")
    shutil.copytree(raw / "datasets", pkg / "monoculture" / "datasets")
    return str(pkg)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=120_000, help="frames of the synthetic file (default 120000)")
    ap.add_argument("--mean-atoms", type=float, default=31.0)
    ap.add_argument("--path", type=Path, help="an existing MPTrj file to read (kept) instead of a synthetic one")
    ap.add_argument("--repeat", type=int, default=1, help="runs of reference and scanner-warm (best counts)")
    ap.add_argument("--against", metavar="REV", help="also time the reader and scanner of this git revision")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="mptrj_read_"))
    try:
        path = args.path
        if path is None:
            path = work / "mptrj_synthetic.json"
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "monoculture", "synth", "--like", "mptrj", "--frames",
                            str(args.frames), "--mean-atoms", str(args.mean_atoms), "--seed", "1", "--out", str(path)],
                           check=True, capture_output=True)
            print(f"wrote {path.name}: {time.perf_counter() - t:.0f} s", flush=True)
        size = path.stat().st_size
        print(f"file: {path} ({size / 1e9:.2f} GB); load average before: {os.getloadavg()}", flush=True)
        cache = str(work / "numba_cache")
        os.makedirs(cache, exist_ok=True)
        plan = [("reference", -1, None)] * args.repeat
        if args.against:
            old = _export(args.against, work)
            rev = args.against
            plan += ([(f"{rev} reference", -1, old)] * args.repeat + [(f"{rev} scanner-cold", 0, old)]
                     + [(f"{rev} scanner-warm", 0, old)] * args.repeat)
        rows = []
        for name, min_bytes, pythonpath in plan:
            r = _run(path, min_bytes, cache, pythonpath)
            r.update(path=name, load=os.getloadavg()[0])
            rows.append(r)
            print(f"{name:24s} frames {r['frames']:>8d} (skipped {r['skipped']}, failed {r['failed']})  "
                  f"wall {r['wall_s']:7.1f} s ({r['frames'] / r['wall_s']:8.0f} frames/s)  "
                  f"cpu {r['cpu_s']:7.1f} s ({r['frames'] / r['cpu_s']:8.0f} frames/s)  "
                  f"peak RSS {r['peak_rss_mb']:6.0f} MB  load {r['load']:.2f}  [{r['datasets']}]", flush=True)
        keys = ("frames", "atoms", "read", "skipped", "failed")
        same = all(all(r[k] == rows[0][k] for k in keys) and abs(r["energy_sum"] - rows[0]["energy_sum"])
                   <= 1e-9 * abs(rows[0]["energy_sum"]) for r in rows)
        best = {}
        for r in rows:
            if r["path"] not in best or r["cpu_s"] < best[r["path"]]["cpu_s"]:
                best[r["path"]] = r
        ref = best["reference"]
        for name, r in best.items():
            if name != "reference":
                print(f"{name}: {ref['cpu_s'] / r['cpu_s']:.2f}x the reference in CPU time, "
                      f"{ref['wall_s'] / r['wall_s']:.2f}x in wall time; peak RSS {r['peak_rss_mb']:.0f} MB "
                      f"vs {ref['peak_rss_mb']:.0f} MB")
        print(f"same frames, counts and energies on every path: {same}")
        if args.json:
            args.json.write_text(json.dumps({"file_bytes": size, "rows": rows, "same": same}, indent=1))
        return 0 if same else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
