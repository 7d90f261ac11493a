"""Defaults that keep the default audit fast (issue #22): what each one decides, checked by rule, not by timing."""
import pytest

from monoculture.audit.run import AuditOptions, _open
from monoculture.datasets.options import ReadOptions
from monoculture.datasets.readers import _mptrj_scan, mptrj
from monoculture.datasets.samples import sample_dir

MB = 1 << 20


@pytest.mark.parametrize("compiled", [False, True])
def test_audit_uses_an_uncompiled_scanner_only_on_large_files(monkeypatch, compiled):
    monkeypatch.setattr(_mptrj_scan, "compiled", lambda: compiled)
    audit = ReadOptions(extra={"mptrj_scan_if_compiled": True})
    assert not mptrj._use_scanner(31 * MB, audit)  # below SCAN_MIN_BYTES: never
    assert mptrj._use_scanner(45 * MB, audit) is compiled  # 5,000 31-atom frames: only when no compile is due
    assert mptrj._use_scanner(mptrj.SCAN_COMPILE_MIN_BYTES, audit)  # large enough to pay for the compile
    plain = ReadOptions()  # other callers: the size rule alone, as before
    assert mptrj._use_scanner(45 * MB, plain)
    never = ReadOptions(extra={"mptrj_scan_min_bytes": -1, "mptrj_scan_if_compiled": True})
    assert not mptrj._use_scanner(10 << 30, never)


def test_the_audit_opens_datasets_with_the_compiled_only_rule():
    ds = _open(sample_dir() / "mptrj_sample.json", AuditOptions(quiet=True))
    assert ds.options.extra.get("mptrj_scan_if_compiled") is True


def test_compiled_answers_false_for_a_stale_or_missing_cache(monkeypatch):
    class Broken:
        signatures = []
        _cache = None  # no cache object: the answer must be False, not an error

    monkeypatch.setattr(_mptrj_scan, "scan", Broken())
    assert _mptrj_scan.compiled() is False
