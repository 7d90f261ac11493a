"""Content hashes of dataset files and folders (cache keys for descriptors and embeddings)."""
from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["content_hash"]


def content_hash(path, chunk: int = 1 << 22) -> str:
    """BLAKE2b (hex, 32 bytes) of a file's bytes, or of every file under a folder (sorted relative paths
    and their bytes). Reads at disk speed (about 1 GB/s), streaming."""
    path = Path(path)
    h = hashlib.blake2b(digest_size=32)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode("utf-8") + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()
