"""``monoculture demo``: the whole job on the sample data bundled with the package.

1. Audit the bundled sample datasets (MPTrj, OMat24, Alexandria, extxyz sample files and RDKit's NCI SMILES).
2. When the ``models`` extra is installed: embed the bundled crystals (in distribution for MPTrj-trained
   models) and ASE's 162 g2 molecules (out of distribution) with every bundled model and with the
   model-free ``composition`` descriptor, then run the alignment analysis (ID vs OOD, with intervals).
3. Write the report (HTML, Markdown, JSON, figures) and print where it is.
"""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["run_demo", "write_g2_molecules", "print_verdicts"]

CRYSTAL_SAMPLES = ("mptrj_sample.json", "omat24_sample", "alexandria_sample.json.bz2")
#: Bootstrap replicates of the demo's intervals (``monoculture align`` defaults to 200).
DEMO_N_BOOT = 100


def write_g2_molecules(path: Path) -> Path:
    """ASE's g2 collection (162 molecules, real geometries shipped with ASE) as extxyz, ids = names."""
    from ase.collections import g2
    from ase.io import write

    frames = []
    for name in sorted(g2.names):
        atoms = g2[name].copy()
        atoms.info = {"id": f"g2:{name}", "name": name}
        frames.append(atoms)
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, frames, format="extxyz")
    return path


def _models_available() -> list[str]:
    try:
        from monoculture.descriptors.models import available_models
    except ImportError:
        return []
    try:
        return available_models()
    except Exception:  # a broken torch install: explain, do not crash the audit demo
        return []


def _embed_all(paths: list[Path], out_dir: Path, models: list[str], log) -> dict:
    """Embed every frame of ``paths`` with each model and the composition descriptor; {name: parquet}."""
    from monoculture.datasets import open_dataset
    from monoculture.descriptors import featurize
    from monoculture.descriptors.models.pipeline import embed_dataset

    def batches():
        for p in paths:
            yield from open_dataset(p, quiet=True, progress=False).batches()

    files = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for model in models:
        res = embed_dataset(batches(), model, out_dir / f"{model}.parquet", device="auto", batch_size=32,
                            progress=False)
        log(f"  embedded {res.n_rows} structures with {model} ({res.n_skipped} skipped) in {res.elapsed_s:.0f} s")
        files[model] = res.out
    featurize(batches(), "composition", n_jobs=1, out=out_dir / "composition.parquet")
    files["composition"] = out_dir / "composition.parquet"
    return files


def run_demo(out: str | Path = "demo_report", with_models: bool | None = None, seed: int = 0) -> Path:
    """Run the demo; returns the path of ``report.html``."""
    from monoculture.audit.run import AuditOptions, run_audit
    from monoculture.datasets.samples import sample_dir, sample_paths
    from monoculture.reports import write_report

    out = Path(out)
    work = out.parent / f".{out.name}-data"  # embeddings and molecules: beside the report, which is replaced whole

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    log("auditing the bundled sample datasets ...")
    doc = run_audit([str(p) for p in sample_paths()], AuditOptions(quiet=True, progress=False, seed=seed))
    models = _models_available() if with_models is not False else []
    if models:
        from monoculture.audit.alignment.runner import run_alignment

        log(f"embedding bundled crystals (ID) and g2 molecules (OOD) with {len(models)} models ...")
        crystals = [sample_dir() / name for name in CRYSTAL_SAMPLES]
        molecules = write_g2_molecules(work / "data" / "g2_molecules.extxyz")
        files = _embed_all(crystals + [molecules], work / "embeddings", models, log)
        log("alignment analysis (bootstrap intervals, k sweep, near-duplicate guard) ...")
        doc["alignment"] = run_alignment(files, id_set=crystals, ood_set=[molecules], descriptor="composition",
                                         reference_set=[sample_dir() / "mptrj_sample.json"], seed=seed,
                                         n_boot=DEMO_N_BOOT, repeats=20, n_perm=100, intersect=True)
        from monoculture.audit.alignment.runner import dropped_structures_lines

        for line in dropped_structures_lines(doc["alignment"]):
            log(line)
        print_verdicts(doc["alignment"])
    elif with_models is False:
        log("alignment part skipped (--no-models)")
    else:
        doc["alignment"] = {"not_applicable": "the models extra (torch, chgnet, sevenn) is not installed: "
                                              "pip install 'monoculture[models]' to add the alignment demo"}
        log(doc["alignment"]["not_applicable"])
    sets = {"id": [str(p) for p in crystals], "ood": [str(molecules)]} if models else None
    paths = write_report(doc, out, set_paths=sets)
    return paths["html"]


def _est(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def print_verdicts(section: dict) -> None:
    for warning in section.get("warnings") or []:
        print(f"warning: {warning}")
    for scope, v in (section.get("verdicts") or {}).items():
        lo, hi = (v.get("interval") or [float("nan"), float("nan")])[:2]
        print(f"{scope} alignment: {v.get('verdict')} — {v.get('statistic')} = {_est(v.get('estimate'))} "
              f"[{lo:.3f}, {hi:.3f}] ({v.get('level', 0.95):.0%} CI)")
        raw = v.get("raw")
        if raw:
            rlo, rhi = (raw.get("interval") or [float("nan"), float("nan")])[:2]
            print(f"  raw: {raw.get('verdict')} — {raw.get('statistic')} = {_est(raw.get('estimate'))} "
                  f"[{rlo:.3f}, {rhi:.3f}]")
        for reason in (v.get("calibrated") or {}).get("not_established_because") or []:
            print(f"  not established: {reason}")
        for warning in v.get("warnings") or []:
            print(f"  warning: {warning}")
