"""Print report.html to PDF with an installed Chromium (headless), so that no PDF library is needed.

Written here rather than with a PDF package because the page already has a print stylesheet and Chromium
renders it exactly as a reader's browser prints it; WeasyPrint and similar would be a new heavy dependency.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["find_chromium", "print_pdf", "CHROMIUM_NAMES"]

#: Executables tried in order (Debian's ``chromium``, other distributions' names, Google Chrome).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium executable: ``$MONOCULTURE_CHROMIUM`` when set, else the first of
    :data:`CHROMIUM_NAMES` on ``PATH``; None when there is none."""
    env = os.environ.get("MONOCULTURE_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: Path, pdf: Path, chromium: str | None = None, timeout_s: float = 180.0) -> tuple[Path | None, str | None]:
    """Print ``html`` to ``pdf`` (A4, the page's print stylesheet, no browser header or footer).

    Parameters
    ----------
    html : Path
        The report page (self-contained: no network is needed).
    pdf : Path
        Output file.
    chromium : str, optional
        Executable (default :func:`find_chromium`).
    timeout_s : float
        Longest wait for Chromium (s).

    Returns
    -------
    (Path or None, str or None)
        The PDF path, or None and one line saying why no PDF was written.
    """
    exe = chromium or find_chromium()
    if exe is None:
        return None, "no Chromium found (install chromium, or set MONOCULTURE_CHROMIUM); PDF skipped"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
           f"--print-to-pdf={Path(pdf).resolve()}", Path(html).resolve().as_uri()]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout_s)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"Chromium could not print the PDF ({type(exc).__name__}); PDF skipped"
    if not Path(pdf).exists() or Path(pdf).stat().st_size == 0:
        return None, "Chromium wrote no PDF; PDF skipped"
    return Path(pdf), None
