"""Scale benchmark: ingest speed against the raw parse limit and the naive loop, memory, Dask workers.

Prints one table, every number measured in this run on this machine:

* ingest frames/s for MPTrj JSON and OMat24 .aselmdb: the raw parse limit (ijson ``kvitems`` over the
  bytes; lmdb cursor + zlib + orjson), monoculture's frame production (``Dataset.batches``), and the naive
  loop a user would write (``Structure.from_dict`` per frame; ``LMDBDatabase.select`` + ``toatoms``), with
  the ratios;
* audit frames/s (frame production + the coverage accumulators);
* peak RSS of ``monoculture audit`` on MPTrj files of 3 sizes (a fresh process each);
* the same audit with 1 and 2 Dask workers (``--dask local:N``).

Usage: ``python benchmarks/scale.py [--frames 20000] [--sizes 20000,60000,180000] [--workdir DIR]``.
``--big`` adds a ~2 GB MPTrj file (about 850k frames; takes tens of minutes) to the RSS sizes.
``--only-dask-phase`` times the distributed part alone (serial vs 1 and 2 workers).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path


def _rate(n, seconds):
    return n / seconds if seconds > 0 else float("nan")


def raw_mptrj(path: Path) -> tuple[int, float]:
    import ijson

    t = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for _, frames in ijson.kvitems(fh, "", use_float=True):
            n += len(frames)
    return n, time.perf_counter() - t


def raw_aselmdb(folder: Path) -> tuple[int, float]:
    import lmdb
    import orjson

    t = time.perf_counter()
    n = 0
    for shard in sorted(folder.rglob("*.aselmdb")):
        env = lmdb.open(str(shard), subdir=False, readonly=True, lock=False)
        with env.begin() as txn:
            for key, value in txn.cursor():
                if key.isdigit():
                    orjson.loads(zlib.decompress(value))
                    n += 1
        env.close()
    return n, time.perf_counter() - t


def mono_frames(path: Path) -> tuple[int, float]:
    from monoculture.datasets import open_dataset

    t = time.perf_counter()
    ds = open_dataset(path, quiet=True, progress=False)
    n = sum(b.num_rows for b in ds.batches())
    return n, time.perf_counter() - t


def naive_mptrj(path: Path, limit: int) -> tuple[int, float]:
    import ijson
    from pymatgen.core import Structure

    t = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for _, frames in ijson.kvitems(fh, "", use_float=True):
            for rec in frames.values():
                s = Structure.from_dict(rec["structure"])
                _ = (s.composition.reduced_formula, s.volume, rec["uncorrected_total_energy"] / len(s))
                n += 1
            if n >= limit:
                break
    return n, time.perf_counter() - t


def naive_aselmdb(folder: Path, limit: int) -> tuple[int, float]:
    from ase_db_backends.aselmdb import LMDBDatabase

    t = time.perf_counter()
    n = 0
    for shard in sorted(folder.rglob("*.aselmdb")):
        db = LMDBDatabase(shard, readonly=True)
        for row in db.select():
            atoms = row.toatoms()
            _ = (atoms.get_chemical_formula(), atoms.get_volume(), atoms.get_potential_energy())
            n += 1
            if n >= limit:
                break
        db.close()
        if n >= limit:
            break
    return n, time.perf_counter() - t


def audit_rss(path: Path, extra: list[str]) -> tuple[float, float, int]:
    """(peak RSS MiB, seconds, frames) of `monoculture audit PATH` in a fresh process."""
    code = (
        "import resource, sys, time, json;"
        "from monoculture.cli import main;"
        "t=time.perf_counter();"
        f"rc=main(['audit', {str(path)!r}, '--quiet', '--json', sys.argv[1]] + {extra!r});"
        "dt=time.perf_counter()-t;"
        "print(json.dumps({'rc': rc, 'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 'dt': dt}))"
    )
    out_json = Path(tempfile.mkstemp(suffix=".json")[1])
    proc = subprocess.run([sys.executable, "-c", code, str(out_json)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    doc = json.loads(out_json.read_text())
    frames = sum(d["records"]["read"] for d in doc["datasets"])
    return info["rss"], info["dt"], frames


def dask_phase(path: Path, workers: int) -> float:
    """Seconds of the distributed part alone (shards read and audited on the workers, tree merge), without
    the once-per-dataset chemical-space analysis on the client; UMAP and the quests cross-check off."""
    from monoculture.audit.distributed import connect, dask_audit
    from monoculture.audit.run import AuditOptions, _open, fit_descriptor

    opts = AuditOptions(quiet=True, progress=False, umap=False, quests_crosscheck=False)
    ds = _open(path, opts)
    desc = fit_descriptor(ds, opts)
    client = connect(f"local:{workers}")
    try:
        client.run(lambda: __import__("monoculture.audit.run"))  # worker start-up and imports not timed
        t = time.perf_counter()
        dask_audit(path, ds, opts, desc, client)
        return time.perf_counter() - t
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def serial_phase(path: Path) -> float:
    """Seconds of the same work in one process (``audit_shard`` over the whole file)."""
    from monoculture.audit.run import AuditOptions, _open, audit_shard, fit_descriptor

    opts = AuditOptions(quiet=True, progress=False, umap=False, quests_crosscheck=False)
    ds = _open(path, opts)
    desc = fit_descriptor(ds, opts)
    t = time.perf_counter()
    audit_shard(ds, None, opts, desc)
    return time.perf_counter() - t


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000, help="frames of the ingest files")
    parser.add_argument("--sizes", default="20000,60000,180000", help="MPTrj sizes (frames) for peak RSS")
    parser.add_argument("--naive-limit", type=int, default=2000, help="frames timed for the naive loops")
    parser.add_argument("--big", action="store_true", help="add a ~2 GB MPTrj file to the RSS sizes")
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--only-dask-phase", action="store_true",
                        help="only time the distributed phase (serial vs 1 and 2 workers) on the largest size")
    args = parser.parse_args(argv)

    from monoculture.datasets.synth import synthesize

    work = Path(args.workdir or tempfile.mkdtemp(prefix="monoculture-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    mptrj = work / f"mptrj_{args.frames}.json"
    omat = work / f"omat24_{args.frames}"
    if not mptrj.exists():
        synthesize("mptrj", args.frames, mptrj, seed=0)
    if not omat.exists():
        synthesize("omat24", args.frames, omat, seed=0)

    if args.only_dask_phase:
        size = [int(x) for x in args.sizes.split(",") if x][-1]
        path = work / f"mptrj_rss_{size}.json"
        if not path.exists():
            synthesize("mptrj", size, path, seed=1)
        t0 = serial_phase(path)
        t1, t2 = dask_phase(path, 1), dask_phase(path, 2)
        print(f"\n| {size:,} MPTrj frames, reading + accumulators | seconds | frames/s | speed-up vs 1 worker |")
        print("|---|---|---|---|")
        for label, t in (("serial (one process)", t0), ("Dask, 1 worker", t1), ("Dask, 2 workers", t2)):
            print(f"| {label} | {t:.1f} | {size / t:,.0f} | {t1 / t:.2f} |")
        return
    rows = []
    for label, path, raw, naive in (("MPTrj JSON", mptrj, raw_mptrj, naive_mptrj),
                                    ("OMat24 aselmdb", omat, raw_aselmdb, naive_aselmdb)):
        n_raw, t_raw = raw(path)
        n_mono, t_mono = mono_frames(path)
        n_naive, t_naive = naive(path, args.naive_limit)
        r_raw, r_mono, r_naive = _rate(n_raw, t_raw), _rate(n_mono, t_mono), _rate(n_naive, t_naive)
        rows.append((f"ingest {label}", f"raw {r_raw:,.0f} /s", f"monoculture {r_mono:,.0f} /s",
                     f"naive {r_naive:,.0f} /s", f"mono/raw {r_mono / r_raw:.2f}", f"mono/naive {r_mono / r_naive:.1f}x"))

    rss_rows = []
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.big:
        sizes.append(850_000)
    for size in sizes:
        path = work / f"mptrj_rss_{size}.json"
        if not path.exists():
            synthesize("mptrj", size, path, seed=1)
        rss, dt, frames = audit_rss(path, [])
        rss_rows.append((size, os.path.getsize(path) / 2**20, rss, frames / dt))

    dask_rows = []
    if not args.no_dask:
        path = work / f"mptrj_rss_{sizes[-1]}.json"
        for n in (1, 2):
            rss, dt, frames = audit_rss(path, ["--dask", f"local:{n}"])
            dask_rows.append((n, frames / dt, dt))

    print(f"\nmonoculture scale benchmark ({os.cpu_count()} cores), files in {work}\n")
    print("| measurement | raw parse limit | monoculture | naive loop | monoculture / raw | monoculture / naive |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print("\n| MPTrj frames | file MiB | peak RSS MiB | audit frames/s |")
    print("|---|---|---|---|")
    for size, mib, rss, fps in rss_rows:
        print(f"| {size:,} | {mib:,.0f} | {rss:,.0f} | {fps:,.0f} |")
    if dask_rows:
        print("\n| Dask workers (local) | audit frames/s | seconds | speed-up vs 1 |")
        print("|---|---|---|---|")
        base = dask_rows[0][1]
        for n, fps, dt in dask_rows:
            print(f"| {n} | {fps:,.0f} | {dt:.1f} | {fps / base:.2f} |")


if __name__ == "__main__":
    main()
