"""Number and text formatting shared by the report views and templates (the Jinja filters ``pct``, ``num``, ``md``)."""
from __future__ import annotations

import math

__all__ = ["pct", "num", "md_cell"]


def pct(x, digits: int = 1) -> str:
    """A share as ``"12.3 %"`` (``"–"`` for None or a non-finite number)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{100 * float(x):.{digits}f} %"


def num(x) -> str:
    """A number for a table: thousands separators for integers, 4 significant digits otherwise, ``"–"`` for None."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "–"
        return f"{x:,.0f}" if x.is_integer() and abs(x) < 1e15 else f"{x:.4g}"
    return str(x)


_MD_SPECIAL = "\\`*_{}[]<>#|!~"


def md_cell(x) -> str:
    """Text as Markdown: every Markdown / HTML special character backslash-escaped (CommonMark escapes), newlines
    and pipes neutralised, so that the text reads as written inside a table cell or a paragraph."""
    s = "–" if x is None else str(x)
    s = s.replace("\r", " ").replace("\n", " ")
    out = "".join("\\" + c if c in _MD_SPECIAL else c for c in s)
    return "\\" + out if out[:1] in ("+", "-", "=") else out

