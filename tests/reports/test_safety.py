import copy
from html.parser import HTMLParser

from monoculture.reports import write_report

EVIL = "<script>alert(1)</script>\"'&"


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.handlers, self.text = 0, [], []

    def handle_starttag(self, tag, attrs):
        self.scripts += tag in ("script", "iframe", "object", "embed")
        self.handlers += [(k, v) for k, v in attrs if k.startswith("on") or "javascript:" in (v or "").lower()]

    def handle_data(self, data):
        self.text.append(data)


def _evil_doc(basic_doc):
    doc = copy.deepcopy(basic_doc)
    doc["datasets"] = doc["datasets"][:1]
    ds = doc["datasets"][0]
    ds["name"] = "../../" + EVIL
    ds["files"] = ["/data/" + EVIL + ".json"]
    ds["card"]["citation"] = EVIL
    ds["records"].update(skipped=1, skipped_reasons={EVIL: 1},
                         examples=[{"id": "mp-1" + EVIL, "smiles": "C(=O)O" + EVIL, "reason": EVIL}])
    ds["level_of_theory"] = {EVIL: 5, "PBE": 1}
    ds["coverage"] = {"priorities": [{"kind": "element", "item": EVIL, "score": 1.0, "evidence": EVIL,
                                      "suggestion": EVIL}],
                      "chemical_space": {"umap": {"ids": ["id" + EVIL] * 4, "datasets": [EVIL] * 4,
                                                  "x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 0.0, 1.0, 0.0]}}}
    ds["compare"] = {"a": ds["name"], "b": EVIL, "coverage_of_b_by_a": 0.5, "novelty_of_a": 0.1,
                     "per_element_novelty": {"Fe": {"n": 2, "novel": 1, "novelty": 0.5}}}
    doc["alignment"] = {"models": [EVIL, "m2"], "metrics": {EVIL: {"id": [[1, 0.5], [0.5, 1]]}},
                        "near_duplicates": {"rows": [{"model_a": EVIL, "model_b": "m2", "score": 0.9}]},
                        "verdicts": {EVIL: {"verdict": EVIL, "explanation": EVIL}}}
    return doc


def test_injected_strings_are_escaped_everywhere(basic_doc, tmp_path):
    out = tmp_path / "deep" / "report"
    paths = write_report(_evil_doc(basic_doc), out)
    html = paths["html"].read_text()
    parser = _Collect()
    parser.feed(html)
    assert parser.scripts == 0 and parser.handlers == []
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;" in html
    assert any(EVIL in t for t in parser.text)  # shown to the reader as text
    md = paths["markdown"].read_text()
    assert "<script>" not in md and "\\<script\\>" in md and "&lt;" not in md  # Markdown escapes, no HTML entities
    # nothing written outside the report folder; figure names are sanitised
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(out in p.parents for p in written)
    for p in (out / "figures").iterdir():
        assert ".." not in p.name and "<" not in p.name and "'" not in p.name
