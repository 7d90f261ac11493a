"""The three report kinds (issue #19): `audit`, `compare A against B` and `align` reports say what the run was and
hold no "None", no empty heading and, in Markdown, no HTML entity."""
from __future__ import annotations

import copy
import re
import shutil
from html.parser import HTMLParser

from pathlib import Path

import pytest

from monoculture.audit.run import AuditOptions, run_audit
from monoculture.reports import write_report
from monoculture.reports.view import display_names

SAMPLES = Path(__file__).resolve().parents[2] / "datasets" / "data" / "samples"
ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);")


class _Text(HTMLParser):
    """Visible text and the sequence of headings / content of an HTML page."""

    def __init__(self):
        super().__init__()
        self.text, self.events, self._skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "title"):
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.events.append(("h", int(tag[1])))
        elif tag in ("p", "table", "figure", "ol", "ul", "div", "img"):
            self.events.append(("c", tag))

    def handle_endtag(self, tag):
        if tag in ("style", "title"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.text.append(data)


def _empty_headings(events) -> list[int]:
    """Indices of headings followed by a heading of the same or a higher level with no content between."""
    out = []
    for i, (kind, level) in enumerate(events):
        if kind != "h":
            continue
        nxt = events[i + 1] if i + 1 < len(events) else None
        if nxt is None or (nxt[0] == "h" and nxt[1] <= level):
            out.append(i)
    return out


def _md_empty_headings(md: str) -> list[str]:
    lines = [ln for ln in md.splitlines() if ln.strip()]
    bad = []
    for i, ln in enumerate(lines):
        m = re.match(r"(#+) ", ln)
        if not m:
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        m2 = re.match(r"(#+) ", nxt) if nxt else None
        if nxt is None or (m2 and len(m2.group(1)) <= len(m.group(1))):
            bad.append(ln)
    return bad


def _check(paths) -> tuple[str, str, str]:
    html = paths["html"].read_text()
    md = paths["markdown"].read_text()
    parser = _Text()
    parser.feed(html)
    text = " ".join(parser.text)
    assert "None" not in text, text[max(0, text.find("None") - 200):text.find("None") + 100]
    assert "None" not in md, md[max(0, md.find("None") - 200):md.find("None") + 100]
    assert _empty_headings(parser.events) == []
    assert _md_empty_headings(md) == []
    assert not ENTITY.search(md), ENTITY.search(md)
    h1 = re.search(r"<h1>(.*?)</h1>", html).group(1)
    return h1, text, md


@pytest.fixture(scope="module")
def audit_doc():
    return run_audit([str(SAMPLES / "mixed_sample.extxyz"), str(SAMPLES / "mptrj_sample.json")],
                     AuditOptions(quiet=True, progress=False, umap=False, sample_size=200, quests_crosscheck=False))


def test_audit_report(audit_doc, tmp_path):
    h1, text, md = _check(write_report(copy.deepcopy(audit_doc), tmp_path / "r"))
    assert h1 == "monoculture: audit of mixed_sample, mptrj_sample"
    assert "Findings" in text and "against" not in h1
    first = md.split("## Findings", 1)[1].split("##", 1)[0]
    assert 3 <= len(re.findall(r"^\d+\. ", first, re.M)) <= 8
    assert "of the 94 elements Z 1–94" in text and "of 118" not in text


def test_compare_report(full_doc, tmp_path):
    doc = copy.deepcopy(full_doc)
    del doc["alignment"]
    h1, text, md = _check(write_report(doc, tmp_path / "r", reference_path=str(SAMPLES / "omat24_sample")))
    assert h1 == "monoculture: compare mptrj_sample, omat24_sample against omat24_sample"
    assert "Comparison with omat24_sample" in text and "(B)" not in text
    assert "# monoculture: compare mptrj\\_sample, omat24\\_sample against omat24\\_sample" in md


def test_align_report(tmp_path, hand_alignment):
    doc = {"schema_version": "1", "monoculture_version": "0.1.0", "run": {"started": "2026-01-01T00:00:00+00:00",
           "backend": "serial"}, "parameters": {"seed": 0}, "datasets": [], "alignment": hand_alignment}
    paths = write_report(doc, tmp_path / "r")
    h1, text, md = _check(paths)
    assert h1 == "monoculture: align 4 embeddings on ID OMat24 sample (30 structures) and OOD QM9 sample (30 structures)"
    assert "no dataset" not in text and " s on " not in text
    assert not any(s in text for s in ("Data accounting", "Level of theory", "Thermodynamic regimes"))
    assert "Local (k-NN) alignment: yes" in text


def test_same_file_stem_kept_apart(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    shutil.copy(SAMPLES / "mixed_sample.extxyz", tmp_path / "a" / "set.extxyz")
    lines = (SAMPLES / "mixed_sample.extxyz").read_text().splitlines(keepends=True)
    (tmp_path / "b" / "set.extxyz").write_text("".join(lines[: len(lines) // 2]))
    doc = run_audit([str(tmp_path / "a" / "set.extxyz"), str(tmp_path / "b" / "set.extxyz")],
                    AuditOptions(quiet=True, progress=False, descriptor=None))
    assert display_names(doc) == ["a/set", "b/set"]
    paths = write_report(doc, tmp_path / "r")
    h1, text, _ = _check(paths)
    assert h1 == "monoculture: audit of a/set, b/set"
    figs = sorted(p.name for p in (tmp_path / "r" / "figures").glob("elements_ptable_*.png"))
    assert len(figs) == 2 and figs[0] != figs[1]
    html = paths["html"].read_text()
    # each dataset's section holds its own periodic table, not both
    assert html.count('id="fig-elements_ptable_') == 2


def test_pdf_is_printed_or_skipped_in_one_line(audit_doc, tmp_path, monkeypatch):
    monkeypatch.setenv("MONOCULTURE_CHROMIUM", str(tmp_path / "no-such-chromium"))
    paths = write_report(copy.deepcopy(audit_doc), tmp_path / "r", pdf=True)
    assert paths["pdf"] is None and "\n" not in paths["pdf_skipped"] and "PDF skipped" in paths["pdf_skipped"]
    assert not (tmp_path / "r" / "report.pdf").exists()


@pytest.mark.slow
def test_pdf_is_printed_with_chromium(audit_doc, tmp_path):
    from monoculture.reports.pdf import find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium installed")
    paths = write_report(copy.deepcopy(audit_doc), tmp_path / "r", pdf=True)
    pdf = paths["pdf"]
    assert paths["pdf_skipped"] is None and pdf == tmp_path / "r" / "report.pdf"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 3  # sections break pages


def test_context_documents_join_the_context_table(audit_doc, tmp_path):
    import json

    other = copy.deepcopy(audit_doc)
    other["datasets"] = other["datasets"][1:]
    ctx = tmp_path / "earlier_audit.json"
    ctx.write_text(json.dumps(other))
    paths = write_report(copy.deepcopy(audit_doc), tmp_path / "r", context=[ctx])
    html = paths["html"].read_text()
    table = html.split('id="context"', 1)[1].split("</table>", 1)[0]
    assert "earlier_audit.json" in table and "dataset card" in table and "MPtrj" in table
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not an audit document"):
        write_report(copy.deepcopy(audit_doc), tmp_path / "r2", context=[bad])
    assert not (tmp_path / "r2").exists()
