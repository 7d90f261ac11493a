"""File names derived from data, and paths that never leave the report folder."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

__all__ = ["slugify", "safe_join"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def slugify(text: object, max_length: int = 60) -> str:
    """A file-name-safe form of ``text``: ASCII letters, digits, ``_`` and ``-`` only.

    Runs of other characters (``/``, ``.``, spaces, quotes, ``<>``...) become one ``_``; the result never
    contains ``..`` or a path separator and is never empty. When characters were replaced or the text was
    cut, an 8-character digest of the original is appended so that different names stay different.

    Parameters
    ----------
    text : object
        Anything; converted with ``str``.
    max_length : int
        Longest kept prefix before the digest.

    Returns
    -------
    str
    """
    raw = str(text)
    slug = _UNSAFE.sub("_", raw).strip("_-")[:max_length]
    if slug != raw or not slug:
        digest = hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        slug = f"{slug}_{digest}" if slug else digest
    return slug


def safe_join(root: str | Path, *parts: str) -> Path:
    """``root / part / ...`` resolved, refusing any result outside ``root``.

    Parameters
    ----------
    root : str or Path
        The report folder.
    *parts : str
        Relative path components (already slugified by the caller).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        When the joined path would lie outside ``root`` (absolute part, ``..``, symlink escape).
    """
    base = Path(root).resolve()
    out = base.joinpath(*parts).resolve()
    if out != base and base not in out.parents:
        raise ValueError(f"refusing to write outside the report folder: {out}")
    return out
