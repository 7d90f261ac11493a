"""Parquet benchmark: monoculture's LeMat-Traj reader against a bare pyarrow read of the same columns.

Writes a synthetic LeMat-Traj shard (the schema of ``LeMaterial/LeMat-Traj``; snappy, pyarrow's default as
written by HF ``push_to_hub``; row groups of 10,000 rows; mean ``--mean-atoms`` atoms per frame, random
elements per trajectory of 20 frames; random positions, forces and stresses) of about ``--mb`` MB in a temporary folder (deleted after), then
prints, every number measured in this run on this machine (best of ``--repeat`` runs):

* frames/s of a bare ``pyarrow.parquet.ParquetFile.iter_batches`` over the columns the reader reads (every
  batch's nested columns flattened to numpy, the least anyone does with them);
* frames/s of monoculture's reader (``Dataset.batches``: every frame validated and turned into a frame-table
  batch: units, signs, derived columns), and the ratio (goal >= 0.5);
* peak RSS of a fresh process reading every frame of the shard and of one 8 times smaller (memory does
  not grow with the shard: it is streamed by record batch);
* the wall time of the whole ``monoculture audit --no-umap`` command on the shard (a fresh process).

Usage: ``python benchmarks/parquet.py [--mb 300] [--mean-atoms 30] [--repeat 2] [--batch-size 4096]
[--workdir DIR] [--no-audit]``.
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

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

VEC = pa.list_(pa.list_(pa.float64()))
SCHEMA = pa.schema([
    ("elements", pa.list_(pa.string())), ("nsites", pa.int32()), ("chemical_formula_anonymous", pa.string()),
    ("chemical_formula_reduced", pa.string()), ("chemical_formula_descriptive", pa.string()),
    ("nelements", pa.int8()), ("dimension_types", pa.list_(pa.int8())), ("nperiodic_dimensions", pa.int8()),
    ("lattice_vectors", VEC), ("immutable_id", pa.string()), ("cartesian_site_positions", VEC),
    ("species", pa.string()), ("species_at_sites", pa.list_(pa.string())), ("last_modified", pa.string()),
    ("elements_ratios", pa.list_(pa.float64())), ("stress_tensor", VEC), ("energy", pa.float64()),
    ("energy_corrected", pa.float64()), ("forces", VEC), ("functional", pa.string()),
    ("cross_compatibility", pa.bool_()), ("space_group_it_number", pa.int32()), ("id", pa.string()),
    ("relaxation_step", pa.int32()), ("relaxation_number", pa.int32()),
])
#: Frames per synthetic relaxation trajectory (they share elements, species and sites, as in LeMat-Traj).
TRAJ = 20
ELEMENTS = ["H", "Li", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca", "Ti", "V", "Cr",
            "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "Se", "Sr", "Y", "Zr", "Nb", "Mo", "Ag", "Sn", "Ba", "La",
            "W", "Pt", "Au"]


def _species(symbols) -> str:
    return json.dumps([{"mass": None, "name": s, "attached": None, "nattached": None, "concentration": [1],
                        "original_name": None, "chemical_symbols": [s]} for s in symbols])


def _nested(flat: np.ndarray, lengths: np.ndarray, width: int) -> pa.Array:
    """list<list<double>> from flat values (sum(lengths) * width,) and per-row lengths."""
    inner = pa.ListArray.from_arrays(pa.array(np.arange(0, len(flat) + 1, width, dtype=np.int32)), pa.array(flat))
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), inner)


def write_shard(path: Path, target_mb: float, mean_atoms: int, seed: int = 0, chunk: int = 10_000) -> int:
    """Write a synthetic LeMat-Traj shard of about ``target_mb`` MB; returns the number of frames."""
    rng = np.random.default_rng(seed)
    writer = pq.ParquetWriter(path, SCHEMA, compression="snappy")
    frames = 0
    k = 0
    try:
        while True:
            n = chunk
            # trajectories of TRAJ frames: a frame shares its material (elements, sites) with its trajectory
            n_traj = -(-n // TRAJ)
            lengths = np.repeat(np.clip(rng.poisson(mean_atoms, n_traj), 1, None), TRAJ)[:n]
            n_el = np.repeat(rng.integers(1, 4, n_traj), TRAJ)[:n]
            mats_t = [sorted(rng.choice(len(ELEMENTS), size=m, replace=False).tolist()) for m in n_el[::TRAJ]]
            mats = [mats_t[i // TRAJ] for i in range(n)]
            sites_t = [[ELEMENTS[mat[j % len(mat)]] for j in range(L)] for mat, L in zip(mats_t, lengths[::TRAJ])]
            sites = [sites_t[i // TRAJ] for i in range(n)]
            species_t = [_species([ELEMENTS[i] for i in mat]) for mat in mats_t]
            atoms = int(lengths.sum())
            cells = (np.eye(3) * 8.0 + rng.normal(0, 0.3, (n, 3, 3))).reshape(-1)
            table = pa.table({
                "elements": [[ELEMENTS[i] for i in mat] for mat in mats],
                "nsites": pa.array(lengths, pa.int32()),
                "chemical_formula_anonymous": ["A"] * n, "chemical_formula_reduced": ["X"] * n,
                "chemical_formula_descriptive": ["X"] * n, "nelements": pa.array(n_el, pa.int8()),
                "dimension_types": pa.array([[1, 1, 1]] * n, pa.list_(pa.int8())),
                "nperiodic_dimensions": pa.array([3] * n, pa.int8()),
                "lattice_vectors": _nested(cells, np.full(n, 3), 3),
                "immutable_id": [f"mp-{(frames + i) // TRAJ}" for i in range(n)],
                "cartesian_site_positions": _nested(rng.uniform(0, 8, atoms * 3), lengths, 3),
                "species": [species_t[i // TRAJ] for i in range(n)],
                "species_at_sites": sites, "last_modified": ["2024-11-20T00:00:00"] * n,
                "elements_ratios": [[1.0 / m] * m for m in n_el],
                "stress_tensor": _nested(rng.normal(0, 20, n * 9), np.full(n, 3), 3),
                "energy": rng.normal(-5, 1, n) * lengths, "energy_corrected": rng.normal(-5, 1, n) * lengths,
                "forces": _nested(rng.normal(0, 0.5, atoms * 3), lengths, 3),
                "functional": ["pbe"] * n, "cross_compatibility": [True] * n,
                "space_group_it_number": pa.array(rng.integers(1, 231, n), pa.int32()),
                "id": [f"mp-{(frames + i) // TRAJ}-0-pbe-{i % TRAJ}" for i in range(n)],
                "relaxation_step": pa.array(np.arange(n) % TRAJ, pa.int32()),
                "relaxation_number": pa.array(np.zeros(n), pa.int32()),
            }, schema=SCHEMA)
            writer.write_table(table, row_group_size=chunk)
            frames += n
            k += 1
            if path.stat().st_size >= target_mb * 1e6 * 0.9:  # the footer is written at close
                break
    finally:
        writer.close()
    return frames


def bare_pyarrow(path: Path, columns: list[str], batch_size: int) -> int:
    """Frames read by a plain iter_batches over ``columns``, each nested column flattened to numpy."""
    n = 0
    pf = pq.ParquetFile(path)
    for rb in pf.iter_batches(batch_size=batch_size, columns=columns):
        for col in rb.columns:
            arr = col
            while pa.types.is_list(arr.type):
                arr = arr.flatten()
            if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
                arr.to_numpy(zero_copy_only=False)
        n += rb.num_rows
    return n


def monoculture_read(path: Path, batch_size: int) -> int:
    from monoculture.datasets import open_dataset

    ds = open_dataset(path, quiet=True, progress=False, batch_size=batch_size)
    n = 0
    for table in ds.batches():
        n += table.num_rows
    return n


_RSS_SCRIPT = """
import sys
from monoculture.datasets import open_dataset

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) // 1024 for line in fh if line.startswith(key))

try:  # reset the peak (VmHWM) to the current RSS, so the peak below is the reading's own
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
except OSError:
    pass
before = status("VmRSS")
n = sum(t.num_rows for t in open_dataset(sys.argv[1], quiet=True, progress=False).batches())
print(n, before, status("VmHWM"))
"""


def peak_rss_mb(path: Path) -> tuple[int, int]:
    """(RSS after the imports, peak RSS while reading every frame) in MB, of a fresh process (Linux /proc)."""
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(path)], capture_output=True, text=True, check=True)
    _, before, after = map(int, out.stdout.split())
    return before, after


def best(fn, *args, repeat: int) -> tuple[int, float]:
    times = []
    n = 0
    for _ in range(repeat):
        t = time.perf_counter()
        n = fn(*args)
        times.append(time.perf_counter() - t)
    return n, min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=300.0)
    ap.add_argument("--mean-atoms", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--workdir")
    ap.add_argument("--no-audit", action="store_true")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mono_parquet_", dir=args.workdir))
    try:
        shard = work / "compatible_pbe" / "train-00000-of-00001.parquet"
        shard.parent.mkdir(parents=True)
        t = time.perf_counter()
        frames = write_shard(shard, args.mb, args.mean_atoms)
        write_s = time.perf_counter() - t
        size_mb = shard.stat().st_size / 1e6
        from monoculture.datasets.readers import lemat

        columns = [c for c in lemat.COLUMNS if c in pq.read_schema(shard).names]
        n_bare, s_bare, n_mono, s_mono = 0, float("inf"), 0, float("inf")
        for _ in range(args.repeat):  # interleaved, so that both see the same page cache and CPU load
            n_bare, s = best(bare_pyarrow, shard, columns, args.batch_size, repeat=1)
            s_bare = min(s_bare, s)
            n_mono, s = best(monoculture_read, shard, args.batch_size, repeat=1)
            s_mono = min(s_mono, s)
        assert n_mono == n_bare == frames, (n_mono, n_bare, frames)
        small = work / "small.parquet"
        small_frames = write_shard(small, args.mb / 8, args.mean_atoms, seed=1)
        rss_small, rss_big = peak_rss_mb(small), peak_rss_mb(shard)
        print(f"synthetic LeMat-Traj shard: {frames:,} frames, mean {args.mean_atoms} atoms, {size_mb:.0f} MB "
              f"(snappy, row groups of 10,000), written in {write_s:.0f} s; columns read: {len(columns)}")
        print(f"{'reader':<44} {'frames/s':>12} {'seconds':>9}")
        print(f"{'bare pyarrow iter_batches (same columns)':<44} {n_bare / s_bare:>12,.0f} {s_bare:>9.2f}")
        print(f"{'monoculture Dataset.batches (frame table)':<44} {n_mono / s_mono:>12,.0f} {s_mono:>9.2f}")
        print(f"ratio monoculture / bare pyarrow: {s_bare / s_mono:.2f} (goal >= 0.5)")
        print(f"peak RSS of a fresh process while reading every frame: {rss_small[1]} MB for a "
              f"{small.stat().st_size / 1e6:.0f} MB shard ({small_frames:,} frames), {rss_big[1]} MB for the "
              f"{size_mb:.0f} MB shard (RSS after the imports: {rss_small[0]} and {rss_big[0]} MB)")
        if not args.no_audit:
            exe = Path(sys.executable).with_name("monoculture")
            cmd = [str(exe), "audit", str(shard), "--no-umap", "--quiet", "--json", str(work / "audit.json")]
            t = time.perf_counter()
            rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            audit_s = time.perf_counter() - t
            doc = json.loads((work / "audit.json").read_text()) if rc.returncode == 0 else {}
            read = doc.get("datasets", [{}])[0].get("records", {}).get("read")
            print(f"monoculture audit --no-umap on the shard: {audit_s:.1f} s wall (exit {rc.returncode}, "
                  f"{read:,} frames read, {frames / audit_s:,.0f} frames/s)" if read else
                  f"monoculture audit failed (exit {rc.returncode}): {rc.stderr.strip()[-300:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
