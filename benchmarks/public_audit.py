"""The default `monoculture audit` on public data nobody on the project wrote, as a user runs it.

Builds ASE's dcdft elemental solids (71), a narrow set of the same size (71 copies of three cells, fcc Cu,
rock-salt NaCl and diamond Si, each atom displaced by 0.03 Å rms, seed 0), ASE's g2 molecules (162), RDKit's
NCI library (first_5K.smi, 5,000 SMILES) and a 16-SMILES isomer set (five hexane isomers, three molecules
written twice, eight others),
then runs ``python -m monoculture.audit FILE --json OUT`` for each in a fresh process and prints one row
per input: exit status, descriptor, Vendi score, entropy (nats), exact and near-duplicate counts, and the
whole command's wall time (s) and peak memory (MiB, the child's maximum RSS).

``--pythonpath DIR`` runs another checkout of the package (a folder holding ``monoculture/``), so the same
table can be printed for an earlier commit beside the current one::

    python benchmarks/public_audit.py                      # this checkout
    python benchmarks/public_audit.py --pythonpath /tmp/oldpkg --label before
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

ISOMERS = ["CCCCCC", "CC(C)CCC", "CCC(C)CC", "CC(C)(C)CC", "CC(C)C(C)C", "c1ccccc1", "c1ccccc1", "CCO", "OCC",
           "CC(=O)O", "CC(=O)O", "CCN", "CCCl", "C1CCCCC1", "O=C=O", "N#N"]


def build_inputs(root: Path) -> dict[str, Path]:
    import ase.io
    import numpy as np
    import rdkit
    from ase.build import bulk
    from ase.collections import dcdft, g2

    paths = {"dcdft solids": root / "dcdft.extxyz", "3 cells x 71, rattled": root / "narrow.extxyz",
             "g2 molecules": root / "g2.extxyz", "NCI 5K SMILES": root / "nci5k.smi",
             "isomer set": root / "isomers.smi"}
    ase.io.write(paths["dcdft solids"], list(dcdft), format="extxyz")
    rng = np.random.default_rng(0)
    protos = [bulk("Cu", "fcc", a=3.6, cubic=True), bulk("NaCl", "rocksalt", a=5.64), bulk("Si", "diamond", a=5.43)]
    narrow = []
    for i in range(71):
        atoms = protos[i % 3].copy()
        atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
        narrow.append(atoms)
    ase.io.write(paths["3 cells x 71, rattled"], narrow, format="extxyz")
    ase.io.write(paths["g2 molecules"], list(g2), format="extxyz")
    paths["NCI 5K SMILES"].write_bytes((Path(rdkit.__file__).parent / "Data" / "NCI" / "first_5K.smi").read_bytes())
    paths["isomer set"].write_text("\n".join(ISOMERS) + "\n")
    return paths


def _dig(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def run_one(path: Path, out: Path, pythonpath: str | None, extra: list[str]) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "monoculture.audit", str(path), "--json", str(out), "--quiet", *extra]
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if timer:  # GNU time reports the child's own peak RSS (KiB) on its last stderr line
        cmd = [timer, "-f", "MAXRSS_KIB %M", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = proc.stderr.strip().splitlines()
    peak = None
    if timer and lines and lines[-1].startswith("MAXRSS_KIB"):
        peak = int(lines.pop().split()[1]) / 1024
    lines = [ln for ln in lines if not ln.startswith("Command exited")]
    row = {"rc": proc.returncode, "wall_s": wall, "peak_mib": peak,
           "error": lines[-1][:100] if proc.returncode and lines else ""}
    if out.exists() and proc.returncode in (0, 3):
        doc = json.loads(out.read_text())
        ds = doc["datasets"][0]
        cs = _dig(ds, "coverage", "chemical_space") or {}
        row.update(descriptor=doc["parameters"].get("descriptor"), vendi=_dig(cs, "vendi", "score"),
                   entropy=_dig(cs, "entropy", "entropy_nats"), exact=_dig(ds, "coverage", "duplicates", "n_duplicates"),
                   near=_dig(cs, "near_duplicates", "n"), sample=_dig(cs, "sample", "size"),
                   skipped=_dig(cs, "descriptor_skipped", "frames"))
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pythonpath", help="folder holding another monoculture/ package to run instead")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--no-umap", action="store_true", help="pass --no-umap to every audit")
    args = ap.parse_args()
    extra = ["--no-umap"] if args.no_umap else []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = build_inputs(root)
        print(f"# monoculture audit on public data ({args.label}{', --no-umap' if extra else ''}); "
              f"{os.cpu_count()} CPUs")
        print("| input | exit | descriptor | sample | desc. skipped | Vendi | entropy (nats) | exact dup. | near dup. "
              "| wall (s) | peak (MiB) |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        fmt = lambda v, f="{:.2f}": "–" if v is None else (f.format(v) if isinstance(v, float) else str(v))  # noqa: E731
        for name, path in paths.items():
            r = run_one(path, root / f"{path.stem}.json", args.pythonpath, extra)
            print(f"| {name} | {r['rc']} | {r.get('descriptor') or r['error'] or '–'} | {fmt(r.get('sample'))} | "
                  f"{fmt(r.get('skipped'))} | {fmt(r.get('vendi'))} | {fmt(r.get('entropy'))} | {fmt(r.get('exact'))} | "
                  f"{fmt(r.get('near'))} | {r['wall_s']:.1f} | {fmt(r['peak_mib'], '{:.0f}')} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
