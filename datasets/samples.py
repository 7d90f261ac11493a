"""Sample data bundled with the package (for ``monoculture demo``, the docs and the tests).

The files under ``datasets/data/samples`` are SAMPLE DATA made by ``scripts/make_samples.py`` from real
reference structures (ASE ``bulk`` prototypes, ``ase.collections`` g2 molecules and dcdft elemental
solids); their energies, forces and stresses are CHGNet 0.3.0 predictions, not DFT. Use them to exercise
readers and analyzers, never as reference physics. RDKit's own ``Data/NCI/first_5K.smi`` (5,000 real
molecules from the NCI database) ships with the ``rdkit`` dependency and is used in place.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["sample_dir", "sample_paths", "nci_smiles_path"]

_ORDER = ("mptrj_sample.json", "omat24_sample", "alexandria_sample.json.bz2", "mixed_sample.extxyz")


def sample_dir() -> Path:
    """Folder of the bundled sample files."""
    return Path(str(resources.files("monoculture.datasets").joinpath("data/samples")))


def nci_smiles_path() -> Path:
    """RDKit's bundled ``Data/NCI/first_5K.smi`` (5,000 SMILES)."""
    from rdkit import RDConfig

    return Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"


def sample_paths(include_smiles: bool = True) -> list[Path]:
    """The bundled sample datasets, in a fixed order (each path is one dataset)."""
    base = sample_dir()
    paths = [base / name for name in _ORDER if (base / name).exists()]
    if include_smiles and nci_smiles_path().exists():
        paths.append(nci_smiles_path())
    return paths
