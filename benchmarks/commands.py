"""The commands as a user runs them: a fresh process each, cold and warm numba caches, wall time and peak memory.

Each row runs ``python -m monoculture ...`` in a new process under GNU ``time`` (the child's own peak RSS)
and prints its wall time (s), CPU time (user + system, s), peak RSS (MiB) and, for ``audit`` / ``compare``,
the start-up (wall time before ``run_audit`` starts: imports and argument parsing, ``wall - run.elapsed_s``)
and the steps of ``run.steps_s``. Beside each command it runs, in the same run, the inner figure it is
measured against and prints the ratio:

* ``audit`` of 5,000 molecules (RDKit's ``first_5K.smi``) and of 5,000 crystals (``synth --like mptrj
  --frames 5000 --mean-atoms 31``) against the same command with ``--no-umap``;
* ``audit`` of a 40,000-frame MPTrj file (``synth --like mptrj --frames 40000``) against a bare
  ``orjson.loads`` of the file in a fresh process;
* ``--help`` and ``formats`` against ``python -c pass`` (the interpreter's own start-up).

*Cold* runs get an empty ``NUMBA_CACHE_DIR`` (everything numba compiles is compiled in that process);
*warm* runs reuse the folder the cold run filled. With ``--pythonpath DIR`` every row is also run with
another copy of the package (a folder holding ``monoculture/``, e.g. the previous main) and the table shows
both, with the ratio before / now; the map of each version is scored against the same descriptor sample
(trustworthiness, scikit-learn, and the share of each frame's 15 nearest neighbours in the descriptor space
that are among its 15 nearest on the map), so a faster map is seen to be as faithful as the old one::

    mkdir -p /tmp/oldmain /tmp/oldpkg && git archive HEAD | tar -x -C /tmp/oldmain
    cp -r /tmp/oldmain/src/monoculture /tmp/oldpkg/monoculture
    for d in datasets descriptors audit reports; do cp -r /tmp/oldmain/$d /tmp/oldpkg/monoculture/$d; done
    python benchmarks/commands.py --pythonpath /tmp/oldpkg

The load average (``/proc/loadavg``) is printed before and after every row: on a shared machine the wall
times move with it, the CPU times much less. CPU times are GNU ``time``'s user + system of the command and
of every child it waited for (a cold audit's warm-up process included: see
:mod:`monoculture.audit.coverage.compiled`); the ratio to the bare parse is printed for both.

``--only nci5k,mptrj40k`` runs a subset of the rows; ``--data DIR`` keeps the input files there and reuses
them; ``--install-warmup`` adds, for each audit row, a run on a fresh cache filled only by the install-time
warm-up (``python -m monoculture.audit.coverage.compiled``, the last step of ``make install``).
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

# run as a script, this folder is sys.path[0], and its coverage.py would shadow the `coverage` package that numba
# imports: drop it
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

TIMER = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def run(cmd: list[str], env: dict, json_out: Path | None = None) -> dict:
    """Run ``cmd`` in a fresh process; wall (s), CPU (s), peak RSS (MiB), exit status and the JSON's run block."""
    full = [TIMER, "-f", "TIMER %e %U %S %M", *cmd] if TIMER else cmd
    load0 = loadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(full, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    row = {"rc": proc.returncode, "wall_s": wall, "cpu_s": None, "peak_mib": None, "load": f"{load0}-{loadavg()}"}
    lines = proc.stderr.strip().splitlines()
    if TIMER and lines and lines[-1].startswith("TIMER"):
        _, _, user, system, rss = lines.pop().split()
        row.update(cpu_s=float(user) + float(system), peak_mib=int(rss) / 1024)
    if proc.returncode != 0:
        row["error"] = (lines[-1] if lines else "")[:160]
    if json_out is not None and json_out.exists() and proc.returncode == 0:
        doc = json.loads(json_out.read_text())
        row["elapsed_s"] = doc["run"]["elapsed_s"]
        row["startup_s"] = wall - doc["run"]["elapsed_s"]
        row["steps_s"] = doc["run"].get("steps_s", {})
        if "numba_warmup" in doc["run"]:
            row["steps_s"] = {**row["steps_s"], "blocked on the numba warm-up": doc["run"]["numba_warmup"]["waited_s"]}
        row["doc"] = doc
    return row


def build_inputs(root: Path, python: str, keys=("nci5k", "mptrj5k", "mptrj40k")) -> dict[str, Path]:
    """The input files of ``keys`` in ``root`` (made there with ``synth`` / copied from RDKit unless present)."""
    import rdkit

    paths = {"nci5k": root / "nci5k.smi", "mptrj5k": root / "mptrj5k_31atoms.json",
             "mptrj40k": root / "mptrj40k.json"}
    if "nci5k" in keys and not paths["nci5k"].exists():
        paths["nci5k"].write_bytes((Path(rdkit.__file__).parent / "Data" / "NCI" / "first_5K.smi").read_bytes())
    for key, extra in (("mptrj5k", ["--frames", "5000", "--mean-atoms", "31"]), ("mptrj40k", ["--frames", "40000"])):
        if key in keys and not paths[key].exists():
            subprocess.run([python, "-m", "monoculture", "synth", "--like", "mptrj", *extra, "--out",
                            str(paths[key])], check=True, capture_output=True)
    return paths


def map_quality(doc: dict, sample, X) -> dict | None:
    """Trustworthiness (k = 15) and 15-NN preservation of a document's first map, on ``X`` (standardised rows)."""
    import numpy as np
    from sklearn.manifold import trustworthiness

    from monoculture.audit.coverage.knn import knn_self

    umap = doc["datasets"][0]["coverage"]["chemical_space"].get("umap", {})
    if "x" not in umap:
        return None
    pos = {str(i): r for r, i in enumerate(sample.ids)}
    rows = np.array([pos[i] for i in umap["ids"]])
    Xm = X[rows]
    E = np.c_[umap["x"], umap["y"]]
    _, hi, _ = knn_self(Xm, 15)
    _, lo, _ = knn_self(E, 15)
    kept = float(np.mean([len(set(a) & set(b)) / 15 for a, b in zip(hi, lo)]))
    return {"trustworthiness": float(trustworthiness(Xm, E, n_neighbors=15)), "knn15_preserved": kept,
            "n": int(len(rows)), "method": umap.get("method", "umap-learn UMAP (spectral init, 500 epochs)")}


def descriptor_sample(path: Path):
    """The chemical-space sample of ``audit`` on ``path`` and its standardised rows (this checkout's code)."""
    from monoculture.audit.run import AuditOptions, _resolve_descriptor, audit_dataset

    options = _resolve_descriptor([path], AuditOptions(quiet=True, progress=False))
    cs = audit_dataset(path, options).audit.coverage.chemical_space_
    s = cs.sample()
    return s, cs.scaler().transform(s.X)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pythonpath", help="folder holding another monoculture/ package (the 'before' column)")
    ap.add_argument("--repeat", type=int, default=1, help="warm runs per row (the fastest is kept)")
    ap.add_argument("--only", default="",
                    help="comma-separated subset: help,formats,nci5k,mptrj5k,mptrj40k,compare,report")
    ap.add_argument("--json", help="write every measurement to this JSON file")
    ap.add_argument("--data", help="folder of the input files, reused when present (default: a temporary one)")
    ap.add_argument("--install-warmup", action="store_true",
                    help="also run each audit row (now) on a cache filled only by the install-time warm-up "
                         "(`python -m monoculture.audit.coverage.compiled`, run by `make install`)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    want = lambda name: not only or name in only  # noqa: E731
    python = sys.executable
    versions = {"now": None}
    if args.pythonpath:
        versions = {"before": args.pythonpath, "now": None}
    results: dict = {"cpus": os.cpu_count(), "load_start": loadavg(), "rows": []}
    print(f"# whole-command benchmark: {os.cpu_count()} CPUs, load average {loadavg()} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = Path(args.data) if args.data else root
        data.mkdir(parents=True, exist_ok=True)
        keys = [k for k in ("nci5k", "mptrj5k", "mptrj40k") if want(k) or (k in ("mptrj5k", "mptrj40k")
                                                                           and want("compare"))]
        paths = build_inputs(data, python, keys + (["nci5k"] if want("report") else []))
        caches = {v: root / f"numba_{v}" for v in versions}

        def env_for(version: str, cold: bool) -> dict:
            env = dict(os.environ)
            pp = versions[version]
            if pp:
                env["PYTHONPATH"] = pp + os.pathsep + env.get("PYTHONPATH", "")
            cache = caches[version]
            if cold:
                shutil.rmtree(cache, ignore_errors=True)
            cache.mkdir(exist_ok=True)
            env["NUMBA_CACHE_DIR"] = str(cache)
            return env

        def row(name: str, argv: list[str], cold: bool, json_name: str | None = None) -> dict:
            out = {}
            for version in versions:
                best = None
                for _ in range(1 if cold else max(1, args.repeat)):
                    j = root / f"{json_name}_{version}.json" if json_name else None
                    if j is not None and j.exists():
                        j.unlink()
                    cmd = [python, "-m", "monoculture", *argv] + (["--json", str(j), "--quiet"] if j else [])
                    r = run(cmd, env_for(version, cold), j)
                    if best is None or r["wall_s"] < best["wall_s"]:
                        best = r
                out[version] = best
            rec = {"row": name, "cold": cold, **{v: {k: x for k, x in r.items() if k != "doc"} for v, r in out.items()}}
            results["rows"].append(rec)
            cells = []
            for v, r in out.items():
                extra = f", start-up {r['startup_s']:.1f} s" if "startup_s" in r else ""
                err = f" EXIT {r['rc']}: {r.get('error', '')}" if r["rc"] else ""
                cells.append(f"{v}: {r['wall_s']:.2f} s wall, {r['cpu_s'] or float('nan'):.1f} s CPU, "
                             f"{r['peak_mib'] or float('nan'):.0f} MiB{extra} (load {r['load']}){err}")
            ratio = (f"; before/now {out['before']['wall_s'] / out['now']['wall_s']:.1f}x"
                     if "before" in out else "")
            print(f"{name} [{'cold' if cold else 'warm'}]: " + " | ".join(cells) + ratio, flush=True)
            for v, r in out.items():
                if r.get("steps_s"):
                    print(f"    {v} steps: " + ", ".join(f"{k} {s:.1f} s" for k, s in r["steps_s"].items()), flush=True)
            return out

        def inner(name: str, argv: list[str], outer: dict, label: str) -> dict:
            r = run([python, *argv], env_for("now", False))
            ratio = outer["now"]["wall_s"] / r["wall_s"]
            cpu = (outer["now"]["cpu_s"] / r["cpu_s"]) if outer["now"]["cpu_s"] and r["cpu_s"] else float("nan")
            results["rows"].append({"row": name, "inner_of": label, "now": r, "ratio": ratio, "cpu_ratio": cpu})
            before = ""
            if "before" in outer and outer["before"]["cpu_s"] and r["cpu_s"]:
                before = (f"; before: {outer['before']['wall_s'] / r['wall_s']:.1f}x wall, "
                          f"{outer['before']['cpu_s'] / r['cpu_s']:.1f}x CPU")
            print(f"  inner: {name}: {r['wall_s']:.2f} s wall, {r['cpu_s'] or float('nan'):.1f} s CPU "
                  f"(load {r['load']}); {label} / inner = {ratio:.1f}x wall, {cpu:.1f}x CPU (now){before}",
                  flush=True)
            return r

        if want("help"):
            h = row("monoculture --help", ["--help"], cold=False)
            inner("python -c pass", ["-c", "pass"], h, "--help")
        if want("formats"):
            f = row("monoculture formats", ["formats"], cold=False)
            inner("python -c pass", ["-c", "pass"], f, "formats")
        def install_row(p: Path, key: str) -> dict:
            """``audit p`` (now) on a fresh cache that only the install-time warm-up has filled."""
            env = env_for("now", cold=True)
            w = run([python, "-m", "monoculture.audit.coverage.compiled"], env)
            j = root / f"{key}_installed.json"
            r = run([python, "-m", "monoculture", "audit", str(p), "--json", str(j), "--quiet"], env, j)
            results["rows"].append({"row": f"audit {p.name}", "cache": "install warm-up", "warmup": w,
                                    "now": {k: x for k, x in r.items() if k != "doc"}})
            print(f"audit {p.name} [after install warm-up ({w['wall_s']:.1f} s wall, {w['cpu_s'] or 0:.1f} s CPU)]: "
                  f"now: {r['wall_s']:.2f} s wall, {r['cpu_s'] or float('nan'):.1f} s CPU, "
                  f"{r['peak_mib'] or float('nan'):.0f} MiB, start-up {r.get('startup_s', float('nan')):.1f} s "
                  f"(load {r['load']})", flush=True)
            return {"now": r}

        quality_inputs = []
        for key in ("nci5k", "mptrj5k", "mptrj40k"):
            if not want(key):
                continue
            p = paths[key]
            cold = row(f"audit {p.name}", ["audit", str(p)], cold=True, json_name=f"{key}_cold")
            warm = row(f"audit {p.name}", ["audit", str(p)], cold=False, json_name=key)
            installed = None
            if args.install_warmup:
                installed = install_row(p, key)
            if key == "mptrj40k":
                code = f"import orjson; orjson.loads(open({str(p)!r}, 'rb').read())"
                inner("bare orjson parse of the file", ["-c", code], warm, "audit (warm)")
                inner("bare orjson parse of the file", ["-c", code], cold, "audit (cold)")
                if installed is not None:
                    inner("bare orjson parse of the file", ["-c", code], installed, "audit (after install warm-up)")
            else:
                row(f"audit {p.name} --no-umap", ["audit", str(p), "--no-umap"], cold=False, json_name=f"{key}_noumap")
            quality_inputs.append((key, p, warm))
        if want("compare"):
            row(f"compare {paths['mptrj5k'].name} --against {paths['mptrj40k'].name}",
                ["compare", str(paths["mptrj5k"]), "--against", str(paths["mptrj40k"])], cold=False, json_name="compare")
        if want("report"):
            rep = root / "report"
            for version in versions:
                shutil.rmtree(f"{rep}_{version}", ignore_errors=True)
            out = {}
            for version in versions:
                cmd = [python, "-m", "monoculture", "audit", str(paths["nci5k"]), "--report", f"{rep}_{version}",
                       "--quiet"]
                out[version] = run(cmd, env_for(version, False))
                print(f"audit nci5k.smi --report [warm]: {version}: {out[version]['wall_s']:.2f} s wall, "
                      f"{out[version]['cpu_s'] or float('nan'):.1f} s CPU, {out[version]['peak_mib'] or 0:.0f} MiB "
                      f"(load {out[version]['load']})", flush=True)
            results["rows"].append({"row": "audit nci5k.smi --report", **out})
        for key, p, warm in quality_inputs:
            sample, X = descriptor_sample(p)
            for version, r in warm.items():
                if "doc" not in r:
                    continue
                q = map_quality(r["doc"], sample, X)
                if q is None:
                    continue
                results["rows"].append({"row": f"map quality {p.name}", "version": version, **q})
                print(f"map quality {p.name} ({version}, {q['method'][:60]}): trustworthiness "
                      f"{q['trustworthiness']:.4f}, 15-NN preserved {q['knn15_preserved']:.4f} (n = {q['n']})",
                      flush=True)
    results["load_end"] = loadavg()
    print(f"# load average {loadavg()} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
