"""Render the report of a real audit in headless Chromium: no console error, every figure decoded, sane
height; with MONOCULTURE_UPDATE_DOCS=1 it refreshes docs/report_screenshot.png."""
from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from monoculture.reports import write_report
from monoculture.reports.figures import plan_figures

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="LOUD SKIP: no chromium on PATH (apt-get install -y chromium); "
                                                "the report was NOT checked in a real browser"),
]

# Appended to a copy of the page (the report itself has no script and forbids scripts by CSP): records, after
# load, each image's decoded size and the page height into the DOM that --dump-dom prints.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight,
                                               i.getBoundingClientRect().width]);
  const out = {imgs, svgs: document.querySelectorAll('svg').length, height: document.body.scrollHeight,
               errors: window.__errors};
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(*args, timeout=120):
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_report_renders_in_chromium(demo_doc, tmp_path):
    paths = write_report(demo_doc, tmp_path / "report")
    html_path = paths["html"]
    n_figs = len(paths["figures"]) // 2  # PNG + SVG per figure: every planned one (the context figure included)
    assert n_figs == len(plan_figures(demo_doc)) and n_figs >= 30

    # 1. the real page: screenshot and console
    shot = tmp_path / "shot.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1200,2400", "--virtual-time-budget=5000",
                    html_path.as_uri())
    assert shot.is_file() and shot.stat().st_size > 20_000, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
               or "Content Security Policy" in line or "Refused to" in line]
    assert console == [], console

    # 2. a probed copy: images decoded with non-zero size, page height
    probed = html_path.with_name("probed.html")
    text = html_path.read_text()
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    probed.write_text(text.replace("</body>", PROBE + "</body>"))
    res = _chromium("--dump-dom", "--virtual-time-budget=10000", "--window-size=1200,2400", probed.as_uri())
    m = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert m, res.stderr[-2000:]
    probe = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["errors"] == []
    assert len(probe["imgs"]) == n_figs
    bad = [i for i, (ok, w, h, shown) in enumerate(probe["imgs"]) if not ok or w < 100 or h < 100 or shown < 100]
    assert bad == [], bad
    assert 5_000 < probe["height"] < 200_000, probe["height"]

    # 3. full-page screenshot of the demo report for the docs
    height = min(int(probe["height"]) + 50, 16_000)
    full = tmp_path / "full.png"
    _chromium(f"--screenshot={full}", f"--window-size=1200,{height}", "--virtual-time-budget=5000",
              html_path.as_uri())
    assert full.is_file() and full.stat().st_size > 100_000
    if os.environ.get("MONOCULTURE_UPDATE_DOCS") == "1":  # refresh the README screenshot on request only
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(full, DOCS / "report_screenshot.png")
