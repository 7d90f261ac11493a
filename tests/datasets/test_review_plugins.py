"""Plug-in loading shared by the registries: a broken third-party entry point is skipped with one warning.

A fake distribution (``*.dist-info`` with ``entry_points.txt``) and a fake registry package are put on
``sys.path``; :func:`import_public_modules` must import the package's public modules, load the good entry
point and skip the broken one with a one-line ``RuntimeWarning`` naming it (the alignment metrics and the
report sections load their plug-ins through it).
"""
from __future__ import annotations

import importlib
import sys
import warnings

import pytest

from monoculture.datasets.plugins import import_public_modules, load_entry_points

GROUP = "monoculture_review_test.plugins"
MODULES = ("toyreg", "toyreg.alpha", "toyreg.beta", "toyreg._hidden", "toy_good_plugin", "toy_broken_plugin",
           "toy_object_plugin")


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    pkg = tmp_path / "toyreg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("RECORDS = []\n")
    for name in ("alpha", "beta", "_hidden"):
        (pkg / f"{name}.py").write_text(f"import toyreg\ntoyreg.RECORDS.append({name!r})\n")
    (tmp_path / "toy_good_plugin.py").write_text("import toyreg\ntoyreg.RECORDS.append('plugin')\n")
    (tmp_path / "toy_broken_plugin.py").write_text("raise ImportError('needs a missing library\\nsecond line')\n")
    (tmp_path / "toy_object_plugin.py").write_text("THING = 42\n")
    info = tmp_path / "toy_review_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-review-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nzz_good = toy_good_plugin\naa_broken = toy_broken_plugin\n"
                                           "mm_object = toy_object_plugin:THING\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    for m in MODULES:
        sys.modules.pop(m, None)


def test_broken_entry_point_is_skipped_with_one_warning(fake_registry):
    import toyreg

    with pytest.warns(RuntimeWarning) as record:
        result = import_public_modules(toyreg, GROUP)
    assert result is None
    assert toyreg.RECORDS == ["alpha", "beta", "plugin"]  # public modules in name order, then the good plugin
    messages = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1
    (message,) = messages
    assert message == (f"{GROUP} entry point aa_broken = toy_broken_plugin: cannot be loaded "
                       "(ImportError: needs a missing library)")


def test_load_entry_points_returns_what_loaded_and_reports_problems(fake_registry):
    problems = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # with a problem callback, nothing is warned
        loaded = load_entry_points(GROUP, problems.append)
    assert [(ep.name, obj if isinstance(obj, int) else obj.__name__) for ep, obj in loaded] == [
        ("mm_object", 42), ("zz_good", "toy_good_plugin")]
    assert len(problems) == 1 and "aa_broken" in problems[0] and "cannot be loaded" in problems[0]


def test_without_a_group_only_the_package_is_imported(fake_registry):
    import toyreg

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import_public_modules(toyreg)
    assert toyreg.RECORDS == ["alpha", "beta"]
