"""The Python API on the bundled sample data (run: ``python docs/api_example.py``; the tests run it too).

Audits the bundled MPTrj sample, prints three sections as pandas DataFrames, compares a few ASE crystals
held in memory with it, and writes the HTML / Markdown / JSON report into ./api_example_report.
"""
from ase.build import bulk

import monoculture
from monoculture.datasets.samples import sample_dir

# 1. Audit a dataset file (any path `monoculture audit` takes). umap=False skips the 2-D map, for speed.
r = monoculture.audit_datasets([sample_dir() / "mptrj_sample.json"], umap=False)
print(r.elements.to_frame().head())                # structures and atoms per element
print(r.level_of_theory.to_frame())                # the monoculture index: share of the dominant label
print(r.priorities.to_frame()[["rank", "kind", "item"]].head(3))

# 2. Structures in memory (ASE Atoms, or pymatgen Structures) against the same sample as reference.
mine = monoculture.open_dataset([bulk("Cu", "fcc", a=3.61), bulk("NaCl", "rocksalt", a=5.64),
                                 bulk("Si", "diamond", a=5.43)], name="my_crystals")
c = monoculture.compare_datasets(mine, sample_dir() / "mptrj_sample.json", umap=False)
print(c.comparison.to_frame()[["dataset", "b", "n_a", "novelty_of_a"]])

# 3. The report, and the JSON document (round-trips exactly through AuditResult.from_json).
paths = r.report("api_example_report")
print("report:", paths["html"])
assert monoculture.AuditResult.from_json(r.to_json()) == r
