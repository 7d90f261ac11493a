"""Hugging Face dataset folders: which data files form which config.

A folder is a Hugging Face dataset when ``README.md``'s YAML front matter lists ``configs:``
(``config_name``, ``data_files`` as a glob, a list of globs, or ``{split, path}`` entries), or, without such
a README, by its sub-folders of data files (each sub-folder a config; files at the top level are the config
``default``). Data files are parquet or Arrow files (:data:`DATA_SUFFIXES`). What the configs hold (frames
or metadata) is decided by :mod:`._parquet` from their schemas.
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["DATA_SUFFIXES", "is_data_file", "hf_configs", "front_matter"]

#: Suffixes of the data files of a dataset folder.
DATA_SUFFIXES = (".parquet", ".arrow")


def is_data_file(path: Path) -> bool:
    """A parquet or Arrow file (not hidden; not a ``cache-*.arrow`` left by ``datasets.Dataset.map``)."""
    name = path.name
    if name.startswith(".") or (name.startswith("cache-") and name.endswith(".arrow")):
        return False
    return path.suffix.lower() in DATA_SUFFIXES



def front_matter(readme: Path) -> dict:
    """The YAML front matter of a dataset card (``---`` ... ``---``), {} when absent or unreadable."""
    try:
        text = readme.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    m = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", text, re.S)
    if not m:
        return {}
    import yaml

    try:
        doc = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _glob(root: Path, pattern: str) -> list[Path]:
    """Files under ``root`` matching an HF ``data_files`` pattern (``co/*.parquet``, ``x/train-*``, ``**``)."""
    pattern = pattern.strip().lstrip("./")
    if not any(ch in pattern for ch in "*?["):
        p = root / pattern
        if p.is_dir():
            return sorted(f for f in p.rglob("*") if f.is_file() and is_data_file(f))
        return [p] if p.is_file() else []
    return sorted(f for f in root.glob(pattern) if f.is_file() and is_data_file(f))


def hf_configs(path: Path) -> dict[str, list[Path]]:
    """Configs of a dataset folder and their data files (sorted), in the order the card lists them.

    From ``README.md`` ``configs:`` when present; else each sub-folder holding data files is a config named
    after it, and data files at the top level form the config ``default``.
    """
    path = Path(path)
    card = front_matter(path / "README.md") if (path / "README.md").is_file() else {}
    configs: dict[str, list[Path]] = {}
    entries = card.get("configs")
    if isinstance(entries, list):
        for entry in entries:
            if not isinstance(entry, dict) or "config_name" not in entry:
                continue
            spec = entry.get("data_files", [])
            patterns: list[str] = []
            for item in spec if isinstance(spec, list) else [spec]:
                if isinstance(item, str):
                    patterns.append(item)
                elif isinstance(item, dict):
                    p = item.get("path", [])
                    patterns.extend(p if isinstance(p, list) else [p])
            files = sorted({f for pat in patterns if isinstance(pat, str) for f in _glob(path, pat)})
            configs[str(entry["config_name"])] = files
        if configs:
            return configs
    top = sorted(f for f in path.iterdir() if f.is_file() and is_data_file(f))
    if top:
        configs["default"] = top
    for sub in sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")):
        files = sorted(f for f in sub.rglob("*") if f.is_file() and is_data_file(f)
                       and not any(part.startswith(".") for part in f.relative_to(path).parts))
        if files:
            configs[sub.name] = files
    return configs
