from pathlib import Path

import pytest

from monoculture.reports.paths import safe_join, slugify


@pytest.mark.parametrize("text", ["../../etc/passwd", "<script>alert(1)</script>", "a/b\\c", "..", "", "x\"'y",
                                  "naïve name", "/abs/path"])
def test_slugify_gives_plain_file_names(text):
    s = slugify(text)
    assert s and ".." not in s and "/" not in s and "\\" not in s
    assert set(s) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def test_slugify_keeps_safe_names_and_separates_unsafe_ones():
    assert slugify("mptrj") == "mptrj"
    assert slugify("omat24-rattled_300") == "omat24-rattled_300"
    assert slugify("a/b") != slugify("a_b")  # digest keeps them apart
    assert slugify("a b") == slugify("a b")


def test_safe_join_refuses_escape(tmp_path):
    assert safe_join(tmp_path, "figures", "x") == (tmp_path / "figures" / "x").resolve()
    for bad in (("..", "x"), ("figures", "..", "..", "x"), ("/etc/passwd",)):
        with pytest.raises(ValueError):
            safe_join(tmp_path, *bad)
    assert isinstance(safe_join(str(tmp_path), "a"), Path)
