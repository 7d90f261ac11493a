"""Scale benchmark: ingest speed against the raw parse limit and the naive loop, memory, Dask workers.

Prints one table, every number measured in this run on this machine (best of ``--repeat`` runs each):

* ingest frames/s for MPTrj JSON (small synthetic cells, and frames of the real MPTrj's mean size, 31 atoms:
  ``--mean-atoms``) and OMat24 .aselmdb: the raw parse limit, monoculture's frame production
  (``Dataset.batches``: every frame validated and turned into an Arrow batch), and the naive loops a user
  would write, with the ratios. The raw parse limit is the fastest plain decode of the bytes that was
  measured: for MPTrj the fastest of ijson ``kvitems`` over the file, orjson over the whole file, and orjson
  per material (the file cut at material boundaries as the reader cuts it); for aselmdb an lmdb cursor +
  zlib + orjson per row. Each is timed with Python's cyclic garbage collector on and paused (monoculture
  pauses it while it produces a batch), and the faster counts. Naive loops: MPTrj ``ijson`` +
  ``Structure.from_dict`` per frame; aselmdb ``LMDBDatabase.select`` + ``row.toatoms()`` (ASE only) and the
  same + ``AseAtomsAdaptor.get_structure`` (what a pymatgen user writes);
* optionally (``--jobs N``) frame production in N processes over ``Dataset.shards(N)``, as a separate row
  against the same one-process raw limit;
* peak RSS of ``monoculture audit`` on MPTrj files of 3 sizes (a fresh process each), and with
  ``--big-gb G`` on a ~G GB MPTrj file made by ``monoculture synth`` in a temporary folder (deleted after);
* the same audit with 1 and 2 Dask workers (``--dask local:N``).

Usage: ``python benchmarks/scale.py [--frames 20000] [--sizes 20000,60000,180000] [--workdir DIR]``.
``--only-ingest`` prints the ingest table alone; ``--only-big`` the ~G GB audit alone.
``--only-dask-phase`` times the distributed part alone (serial vs 1 and 2 workers).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

# Sibling benchmark scripts (benchmarks/coverage.py) must not shadow installed packages of the same name
# (numba imports `coverage` when it compiles).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def _rate(n, seconds):
    return n / seconds if seconds > 0 else float("nan")


def _timed(fn, *args, gc_paused: bool = False) -> tuple[int, float]:
    """(frames, seconds) of ``fn(*args)``, with the cyclic garbage collector paused or not."""
    was = gc.isenabled()
    if gc_paused:
        gc.disable()
    try:
        t = time.perf_counter()
        n = fn(*args)
        return n, time.perf_counter() - t
    finally:
        if was:
            gc.enable()


def _best(fn, *args, repeat: int = 3, gc_modes=(False,)) -> tuple[int, float, bool]:
    """(frames, best seconds, gc paused) over ``repeat`` runs of each garbage-collector mode."""
    best = None
    for _ in range(repeat):
        for paused in gc_modes:
            n, dt = _timed(fn, *args, gc_paused=paused)
            if best is None or dt < best[1]:
                best = (n, dt, paused)
    return best


def _ijson_kvitems(path: Path) -> int:
    import ijson

    n = 0
    with open(path, "rb") as fh:
        for _, frames in ijson.kvitems(fh, "", use_float=True):
            n += len(frames)
    return n


def _orjson_whole(path: Path) -> int:
    import orjson

    with open(path, "rb") as fh:
        doc = orjson.loads(fh.read())
    return sum(len(frames) for frames in doc.values())


def _orjson_per_material(path: Path) -> int:
    import orjson

    from monoculture.datasets.readers.mptrj import _pieces

    n = 0
    with open(path, "rb") as fh:
        for piece in _pieces(fh, True):
            for frames in orjson.loads(piece).values():
                n += len(frames)
    return n


MPTRJ_DECODERS = {
    "ijson kvitems": _ijson_kvitems,
    "orjson, whole file": _orjson_whole,
    "orjson per material": _orjson_per_material,
}


def raw_mptrj(path: Path, repeat: int = 3) -> tuple[int, float, str, list]:
    """Fastest plain decode of an MPTrj file: (frames, seconds, label, every variant's frames/s)."""
    results = []
    for label, fn in MPTRJ_DECODERS.items():
        n, dt, paused = _best(fn, path, repeat=repeat, gc_modes=(False, True))
        results.append((n, dt, label + (", GC paused" if paused else "")))
    n, dt, label = min(results, key=lambda r: r[1])
    return n, dt, label, [(lbl, _rate(m, t)) for m, t, lbl in results]


def _lmdb_zlib_orjson(folder: Path) -> int:
    import lmdb
    import orjson

    n = 0
    for shard in sorted(folder.rglob("*.aselmdb")):
        env = lmdb.open(str(shard), subdir=False, readonly=True, lock=False)
        with env.begin() as txn:
            for key, value in txn.cursor():
                if key.isdigit():
                    orjson.loads(zlib.decompress(value))
                    n += 1
        env.close()
    return n


def raw_aselmdb(folder: Path, repeat: int = 3) -> tuple[int, float, str, list]:
    """lmdb cursor + zlib + orjson over every row: (frames, seconds, label, variants)."""
    n, dt, paused = _best(_lmdb_zlib_orjson, folder, repeat=repeat, gc_modes=(False, True))
    label = "lmdb cursor + zlib + orjson" + (", GC paused" if paused else "")
    return n, dt, label, [(label, _rate(n, dt))]


def _mono_count(path: Path) -> int:
    from monoculture.datasets import open_dataset

    ds = open_dataset(path, quiet=True, progress=False)
    return sum(b.num_rows for b in ds.batches())


def mono_frames(path: Path, repeat: int = 3) -> tuple[int, float]:
    """monoculture's frame production: ``open_dataset(path).batches()``, (frames, best seconds)."""
    n, dt, _ = _best(_mono_count, path, repeat=repeat)
    return n, dt


def _shard_count(args) -> int:
    from monoculture.datasets import open_dataset

    path, shard = args
    ds = open_dataset(path, quiet=True, progress=False)
    return sum(b.num_rows for b in ds.batches(shard))


def _warm(_):
    import monoculture.datasets.readers.aselmdb  # noqa: F401
    import monoculture.datasets.readers.mptrj  # noqa: F401

    return os.getpid()


def mono_frames_parallel(path: Path, jobs: int, repeat: int = 3) -> tuple[int, float]:
    """Frame production in ``jobs`` processes over ``Dataset.shards(jobs)`` (batches counted in the
    workers): (frames, best seconds). Worker start-up and imports are done before the clock starts."""
    import multiprocessing as mp

    from monoculture.datasets import open_dataset

    units = open_dataset(path, quiet=True, progress=False).shards(jobs)
    with mp.get_context("fork").Pool(jobs) as pool:
        pool.map(_warm, range(jobs))
        best = None
        for _ in range(repeat):
            t = time.perf_counter()
            n = sum(pool.imap_unordered(_shard_count, [(path, u) for u in units], chunksize=1))
            dt = time.perf_counter() - t
            best = (n, dt) if best is None or dt < best[1] else best
    return best


def naive_mptrj(path: Path, limit: int) -> tuple[int, float]:
    """What a pymatgen user writes: ijson over the file, ``Structure.from_dict`` per frame."""
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


def _naive_aselmdb_loop(folder: Path, limit: int, per_row) -> tuple[int, float]:
    """Time ``per_row(row.toatoms())`` over ``LMDBDatabase.select()`` rows, at most ``limit`` of them."""
    from ase_db_backends.aselmdb import LMDBDatabase

    t = time.perf_counter()
    n = 0
    for shard in sorted(folder.rglob("*.aselmdb")):
        db = LMDBDatabase(shard, readonly=True)
        for row in db.select():
            per_row(row.toatoms())
            n += 1
            if n >= limit:
                break
        db.close()
        if n >= limit:
            break
    return n, time.perf_counter() - t


def naive_aselmdb(folder: Path, limit: int) -> tuple[int, float]:
    """What an ASE user writes: ``LMDBDatabase.select()`` and ``row.toatoms()`` per row."""
    return _naive_aselmdb_loop(
        folder, limit, lambda atoms: (atoms.get_chemical_formula(), atoms.get_volume(), atoms.get_potential_energy())
    )


def naive_aselmdb_pymatgen(folder: Path, limit: int) -> tuple[int, float]:
    """What a pymatgen user writes: the ASE loop, then ``AseAtomsAdaptor.get_structure`` per row."""
    from pymatgen.io.ase import AseAtomsAdaptor

    def per_row(atoms):
        s = AseAtomsAdaptor.get_structure(atoms)
        return s.composition.reduced_formula, s.volume, atoms.get_potential_energy() / len(s)

    return _naive_aselmdb_loop(folder, limit, per_row)


def _atoms_per_frame(path: Path) -> float:
    truth = Path(str(path) + ".truth.json")
    if not truth.exists():
        truth = path / "truth.json"
    t = json.loads(truth.read_text())
    return sum(t["atoms_per_element"].values()) / t["frames"]


def ingest_rows(mptrj_files: list[Path], omat: Path, naive_limit: int, repeat: int, jobs: int) -> tuple[list, list]:
    """The ingest table rows (strings) and notes on the raw decoders."""
    rows, notes = [], []
    cases = [(f"MPTrj JSON ({_atoms_per_frame(p):.0f} atoms/frame)", p, raw_mptrj,
              [("ijson + Structure.from_dict", naive_mptrj)]) for p in mptrj_files]
    cases.append((f"OMat24 aselmdb ({_atoms_per_frame(omat):.0f} atoms/frame)", omat, raw_aselmdb,
                  [("LMDBDatabase + toatoms, ASE only", naive_aselmdb),
                   ("LMDBDatabase + toatoms + AseAtomsAdaptor", naive_aselmdb_pymatgen)]))
    for label, path, raw, naives in cases:
        n_raw, t_raw, raw_label, variants = raw(path, repeat)
        n_mono, t_mono = mono_frames(path, repeat)
        r_raw, r_mono = _rate(n_raw, t_raw), _rate(n_mono, t_mono)
        notes.append(f"{label} raw decoders (frames/s): " + "; ".join(f"{lbl} {r:,.0f}" for lbl, r in variants)
                     + f" -> raw limit = {raw_label}")
        for naive_label, naive in naives:
            n_naive, t_naive = min((naive(path, naive_limit) for _ in range(repeat)), key=lambda r: r[1])
            r_naive = _rate(n_naive, t_naive)
            rows.append((f"{label}, 1 process", f"{r_raw:,.0f} /s ({raw_label})", f"{r_mono:,.0f} /s",
                         f"{r_naive:,.0f} /s ({naive_label})", f"{r_mono / r_raw:.2f}", f"{r_mono / r_naive:.1f}x"))
        if jobs > 1:
            n_par, t_par = mono_frames_parallel(path, jobs, repeat)
            r_par = _rate(n_par, t_par)
            rows.append((f"{label}, {jobs} processes (shards)", f"{r_raw:,.0f} /s (1 process)", f"{r_par:,.0f} /s",
                         "", f"{r_par / r_raw:.2f}", ""))
    return rows, notes


def big_audit(small_mptrj: Path, gigabytes: float, workdir: Path | None = None) -> tuple:
    """Synthesize a ~``gigabytes`` GB MPTrj file with ``monoculture synth`` in a temporary folder, audit it
    in a fresh process and delete it: (frames, file MiB, peak RSS MiB, audit frames/s, synth seconds)."""
    per_frame = os.path.getsize(small_mptrj) / _ijson_kvitems(small_mptrj)
    frames = int(gigabytes * 1e9 / per_frame)
    folder = Path(tempfile.mkdtemp(prefix="monoculture-big-", dir=workdir))
    path = folder / f"mptrj_{frames}.json"
    try:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "monoculture", "synth", "--like", "mptrj", "--frames", str(frames),
                        "--out", str(path), "--seed", "2"], check=True, capture_output=True)
        t_synth = time.perf_counter() - t
        mib = os.path.getsize(path) / 2**20
        rss, dt, n = audit_rss(path, [])
        return n, mib, rss, n / dt, t_synth
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def audit_rss(path: Path, extra: list[str]) -> tuple[float, float, int]:
    """(peak RSS MiB, seconds, frames) of `monoculture audit PATH` in a fresh process."""
    # The child reports VmHWM, its own peak: ru_maxrss would also include the peak of this benchmark at the
    # time it started the child, because Linux keeps ru_maxrss across exec.
    code = "\n".join([
        "import json, resource, sys, time",
        "from monoculture.cli import main",
        "def peak_mib():",
        "    try:",
        "        for line in open('/proc/self/status'):",
        "            if line.startswith('VmHWM:'):",
        "                return int(line.split()[1]) / 1024",
        "    except OSError:",
        "        pass",
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024",
        "t = time.perf_counter()",
        f"rc = main(['audit', {str(path)!r}, '--quiet', '--json', sys.argv[1]] + {extra!r})",
        "dt = time.perf_counter() - t",
        "print(json.dumps({'rc': rc, 'rss': peak_mib(), 'dt': dt}))",
    ])
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
    parser.add_argument("--mean-atoms", type=float, default=31.0,
                        help="also time an MPTrj file of this mean frame size (the real MPTrj: 31; 0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each ingest measurement (best counts)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="also time frame production in this many processes (a separate row)")
    parser.add_argument("--big-gb", type=float, default=0.0,
                        help="also audit a synthetic MPTrj file of about this many GB (made, then deleted)")
    parser.add_argument("--big", action="store_true", help="same as --big-gb 2")
    parser.add_argument("--only-ingest", action="store_true", help="only the ingest table")
    parser.add_argument("--no-ingest", action="store_true", help="skip the ingest table")
    parser.add_argument("--only-big", action="store_true", help="only the --big-gb audit")
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--only-dask-phase", action="store_true",
                        help="only time the distributed phase (serial vs 1 and 2 workers) on the largest size")
    args = parser.parse_args(argv)
    big_gb = args.big_gb or (2.0 if args.big else 0.0)

    from monoculture.datasets.synth import synthesize

    work = Path(args.workdir or tempfile.mkdtemp(prefix="monoculture-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    mptrj = work / f"mptrj_{args.frames}.json"
    omat = work / f"omat24_{args.frames}"
    if not mptrj.exists():
        synthesize("mptrj", args.frames, mptrj, seed=0)
    mptrj_files = [mptrj]
    if args.mean_atoms:
        sized = work / f"mptrj_{args.frames}_{args.mean_atoms:g}atoms.json"
        if not sized.exists():
            synthesize("mptrj", args.frames, sized, seed=0, mean_atoms=args.mean_atoms)
        mptrj_files.append(sized)
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

    print(f"\nmonoculture scale benchmark ({os.cpu_count()} cores), files in {work}\n")
    if args.only_big:
        if not big_gb:
            parser.error("--only-big needs --big-gb")
        _print_big(big_audit(mptrj, big_gb, Path(args.workdir) if args.workdir else None))
        return

    rows, notes = ([], []) if args.no_ingest else ingest_rows(mptrj_files, omat, args.naive_limit, args.repeat,
                                                              args.jobs)
    print(f"| ingest ({args.frames:,} frames) | raw parse limit | monoculture | naive loop | monoculture / raw "
          "| monoculture / naive |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    for note in notes:
        print(f"\n{note}")
    if args.only_ingest:
        return

    rss_rows = []
    sizes = [int(s) for s in args.sizes.split(",") if s]
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

    print("\n| MPTrj frames | file MiB | peak RSS MiB | audit frames/s |")
    print("|---|---|---|---|")
    for size, mib, rss, fps in rss_rows:
        print(f"| {size:,} | {mib:,.0f} | {rss:,.0f} | {fps:,.0f} |")
    if big_gb:
        _print_big(big_audit(mptrj, big_gb, Path(args.workdir) if args.workdir else None))
    if dask_rows:
        print("\n| Dask workers (local) | audit frames/s | seconds | speed-up vs 1 |")
        print("|---|---|---|---|")
        base = dask_rows[0][1]
        for n, fps, dt in dask_rows:
            print(f"| {n} | {fps:,.0f} | {dt:.1f} | {fps / base:.2f} |")


def _print_big(result) -> None:
    frames, mib, rss, fps, t_synth = result
    print(f"\n| big MPTrj file (monoculture synth, {t_synth:.0f} s to write) | file MiB | peak RSS MiB "
          "| audit frames/s |")
    print("|---|---|---|---|")
    print(f"| {frames:,} frames | {mib:,.0f} | {rss:,.0f} | {fps:,.0f} |")


if __name__ == "__main__":
    main()
