import json
import re
from html.parser import HTMLParser

from monoculture.reports import validate_document, write_report
from monoculture.reports.figures import plan_figures


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(html):
    p = _Tags()
    p.feed(html)
    return p.tags


def test_files_and_json_round_trip(written):
    doc, paths = written
    for key in ("html", "markdown", "json"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    back = json.loads(paths["json"].read_text())
    validate_document(back)
    assert back == json.loads(json.dumps(doc))


def test_every_planned_figure_is_written_and_embedded(written):
    doc, paths = written
    names = [p.name for p in plan_figures(doc)]
    assert len(names) == len(set(names)) >= 20
    html = paths["html"].read_text()
    root = paths["html"].parent
    for n in names:
        for ext in (".png", ".svg"):
            f = root / "figures" / f"{n}{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f
        assert f'id="fig-{n}"' in html
    imgs = [a for t, a in _tags(html) if t == "img"]
    assert len(imgs) == len(names) and "context_dataset_sizes" in names  # the context figure is planned too
    assert all(a["src"].startswith("data:image/svg+xml;base64,") for a in imgs)
    for content in ("elements_ptable_mptrj_sample", "elements_pairs_omat24_sample", "plus_u_ptable_mptrj_sample",
                    "regimes_t_p_grid_omat24_sample", "regimes_fmax_eV_A_omat24_sample",
                    "novelty_ptable_mptrj_sample_vs_omat24_sample", "alignment_cknna",
                    "alignment_family_tree", "alignment_gap_vs_collapse"):
        assert content in names


def test_html_is_self_contained_and_scriptless(written):
    html = written[1]["html"].read_text()
    tags = _tags(html)
    assert not [t for t, _ in tags if t in ("script", "iframe", "object", "embed", "link")]
    for _, attrs in tags:
        for k, v in attrs.items():
            assert not k.startswith("on")
            if k in ("src", "href"):
                assert v.startswith(("data:", "#")), (k, v[:80])
    assert "Content-Security-Policy" in html and "default-src &#39;none&#39;" in html
    assert "@page { size: A4" in html and "@media print" in html


def test_summary_numbers_match_the_document(written):
    doc, paths = written
    html = paths["html"].read_text()
    md = paths["markdown"].read_text()
    mp = doc["datasets"][0]
    lot = mp["coverage"]["level_of_theory"]
    share = f"{100 * lot['dominant_share']:.1f} %"
    assert lot["dominant"] == "PBE" and share == "88.9 %"  # 96 of the 108 bundled MPtrj sample frames are PBE
    assert share in html
    # names as the user gave them (the file stem, not the card's name), Markdown-escaped
    row = next(line for line in md.splitlines() if line.startswith("| mptrj\\_sample | 1"))
    assert f"| {mp['n_frames']} |" in row and share in row
    eq = mp["coverage"]["regimes"]["equilibrium"]["near_equilibrium_share"]
    assert f"{100 * eq:.1f} %" in row
    first = mp["coverage"]["priorities"][0]
    assert f"| 1 | {first['suggestion']}".replace("_", "\\_").split(" (")[0] in md.replace("\\(", "(")
    for section in ("findings", "context", "summary", "accounting", "elements", "lot", "regimes", "chemical-space",
                    "comparison", "alignment", "priorities", "methods"):
        assert f'id="{section}"' in html
    assert "CC BY 4.0" in html and "Deng et al." in html  # card licence and citation
    assert "matplotlib" in html and "jinja2" in html  # versions
    assert re.search(r"threshold_fmax_eV_A</td><td class=\"mono\">0.05<", html)
    assert "95 % interval [0.03, 0.13]" in html and "inconclusive" in html
    assert re.search(r"!\[Structures per element — mptrj\\_sample\]\(figures/elements_ptable_mptrj_sample\.png\)", md)


def test_basic_document_renders_without_optional_sections(basic_doc, tmp_path):
    doc = {**basic_doc, "datasets": [{k: v for k, v in basic_doc["datasets"][0].items() if k != "coverage"}]}
    paths = write_report(doc, tmp_path)
    html = paths["html"].read_text()
    assert 'id="alignment"' not in html and 'id="comparison"' not in html and 'id="chemical-space"' not in html
    assert "regime analyzer not run" in html
    assert (tmp_path / "figures" / "elements_ptable_mptrj_sample.png").is_file()


def test_not_applicable_reasons_are_shown(basic_doc, tmp_path):
    doc = {**basic_doc, "datasets": [dict(basic_doc["datasets"][0])]}
    doc["datasets"][0]["coverage"] = {"chemical_space": {"not_applicable": "no descriptor array was given"}}
    doc["alignment"] = {"not_applicable": "no model embeddings"}
    html = write_report(doc, tmp_path)["html"].read_text()
    assert "no descriptor array was given" in html and "no model embeddings" in html
