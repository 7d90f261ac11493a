"""The Python API (``monoculture.audit_datasets`` ...), its typed results and its typed errors."""
from __future__ import annotations

import ast
import json
import pickle
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import monoculture
from monoculture.audit.document import SCHEMA_VERSION
from monoculture.datasets.errors import (
    DatasetOpenError,
    MonocultureError,
    NothingAuditedError,
    UnknownFormatError,
    UsageError,
)
from monoculture.results import SECTIONS, AlignmentMetrics, AuditResult, ComparisonResult, LevelOfTheory, load_result

REPO = Path(__file__).resolve().parents[1]
FAST = dict(descriptor="composition", sample_size=50, umap=False)


@pytest.fixture(scope="module")
def samples():
    from monoculture.datasets.samples import sample_dir

    return sample_dir()


@pytest.fixture(scope="module")
def audited(samples) -> AuditResult:
    """The bundled MPTrj sample (108 frames: 96 PBE, 12 PBE+U) and the mixed extxyz sample (19 read, 1 skipped)."""
    return monoculture.audit_datasets([samples / "mptrj_sample.json", samples / "mixed_sample.extxyz"], **FAST)


# -- import cost -------------------------------------------------------------------------------------------
def test_import_monoculture_stays_light():
    code = ("import sys, monoculture; f = monoculture.audit_datasets; "
            "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'monoculture.audit.run') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"  # not even the API's own import pulls the data stack


def test_cli_help_imports_no_data_stack():
    """The command line's error types come from a leaf module: ``--help`` still loads no numpy / pandas / pyarrow."""
    code = ("import sys, runpy; sys.argv = ['monoculture', '--help']\n"
            "try:\n    runpy.run_module('monoculture', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_audit_subpackage_does_not_shadow_the_function():
    import monoculture.audit  # noqa: F401 - the subpackage becomes an attribute of the package

    assert callable(monoculture.audit_datasets) and monoculture.audit_datasets.__module__ == "monoculture.api"
    assert monoculture.SCHEMA_VERSION == SCHEMA_VERSION


# -- audit ----------------------------------------------------------------------------------------------
def test_sections_hold_hand_checkable_numbers(audited):
    assert [d.name for d in audited.datasets] == ["mptrj", "mixed_sample"]
    mptrj = audited.dataset("mptrj")
    lot = mptrj.level_of_theory
    assert isinstance(lot, LevelOfTheory) and lot.counts == {"PBE": 96, "PBE+U": 12}
    assert lot.dominant == "PBE" and lot.monoculture_index == pytest.approx(96 / 108)
    frame = audited.level_of_theory.to_frame()
    assert list(frame.columns) == ["dataset", "level_of_theory", "frames", "share"]
    rows = frame[frame.dataset == "mptrj"]
    assert rows.frames.tolist() == [96, 12] and rows.share.sum() == pytest.approx(1.0)
    records = audited.records["mixed_sample"]
    assert (records.read, records.skipped, records.failed) == (19, 1, 0)


def test_elements_frame_matches_the_document(audited):
    frame = audited.elements.to_frame()
    assert list(frame.columns)[:4] == ["dataset", "element", "Z", "structures"]
    for ds in audited.document["datasets"]:
        part = frame[frame.dataset == ds["name"]]
        assert dict(zip(part.element, part.structures)) == ds["elements"]["structures_per_element"]
        assert part.Z.is_monotonic_increasing
        assert (part.share_of_structures * ds["n_frames"]).round().astype(int).tolist() == part.structures.tolist()


def test_every_section_gives_a_frame(audited):
    for name in ("records", "elements", "level_of_theory", "regimes", "chemical_space", "duplicates", "priorities"):
        frame = getattr(audited, name).to_frame()
        assert list(frame.columns) == ["dataset", *SECTIONS[name].COLUMNS], name
        assert set(frame.dataset) <= {"mptrj", "mixed_sample"}
    grid = audited.regimes["mptrj"].to_frame()
    assert grid.frames.sum() <= 108 and len(grid) == 7 * 6  # temperature x pressure classes
    dup = audited.duplicates.to_frame()
    assert (dup.n_unique + dup.n_duplicates == dup.n_frames).all()
    space = audited.chemical_space.to_frame()
    assert space.n.tolist() == [50, 19]  # the reservoir holds at most sample_size frames
    prio = audited.priorities["mptrj"].to_frame()
    assert prio["rank"].tolist() == list(range(1, len(prio) + 1))


def test_same_document_as_the_command_line(tmp_path, samples):
    from monoculture.cli import main

    path = samples / "mixed_sample.extxyz"
    out = tmp_path / "cli.json"
    assert main(["audit", str(path), "--json", str(out), "--quiet", "--descriptor", "composition",
                 "--sample-size", "50", "--no-umap"]) == 0
    cli = json.loads(out.read_text())
    api = monoculture.audit_datasets(str(path), **FAST).document
    assert api["datasets"] == cli["datasets"] and api["parameters"] == cli["parameters"]
    assert api["schema_version"] == cli["schema_version"] == SCHEMA_VERSION


def test_json_round_trip_is_exact(audited, tmp_path):
    text = audited.to_json(tmp_path / "a.json")
    again = AuditResult.from_json(text)
    assert again == audited and again.to_json() == text
    assert AuditResult.from_json(tmp_path / "a.json").to_json() == text
    assert type(load_result(str(tmp_path / "a.json"))) is AuditResult
    with pytest.raises(UsageError, match="schema_version"):
        AuditResult.from_json(text.replace('"schema_version": "1"', '"schema_version": "9"'))
    with pytest.raises(UsageError, match="not a monoculture document"):
        AuditResult.from_json("{}")


@pytest.mark.slow
def test_report_through_the_writer(audited, tmp_path):
    paths = audited.report(tmp_path / "report")
    assert Path(paths["html"]).is_file()
    assert json.loads((tmp_path / "report" / "audit.json").read_text())["datasets"] == audited.document["datasets"]


def test_report_refuses_a_folder_of_other_files(audited, tmp_path):
    taken = tmp_path / "mine"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(UsageError):
        audited.report(taken)
    assert (taken / "notes.txt").read_text() == "mine"


# -- in-memory structures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def crystals():
    from ase.build import bulk

    return [bulk("NaCl", "rocksalt", a=5.64), bulk("Cu", "fcc", a=3.61), bulk("Si", "diamond", a=5.43),
            bulk("MgO", "rocksalt", a=4.21)]


def test_frames_from_atoms_reads_the_labels(crystals):
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = crystals[0].copy()
    forces = np.array([[0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]])
    atoms.calc = SinglePointCalculator(atoms, energy=-6.5, forces=forces, stress=np.array([0.01, 0, 0, 0, 0, 0]))
    table = monoculture.frames_from_atoms([atoms, crystals[1]], ids=["nacl", "cu"], level_of_theory="PBE")
    assert table.column("id").to_pylist() == ["nacl", "cu"]
    assert table.column("formula").to_pylist() == ["ClNa", "Cu"]
    assert table.column("energy_eV").to_pylist() == [-6.5, None]
    assert table.column("fmax_eV_A")[0].as_py() == pytest.approx(0.1)
    assert table.column("stress_GPa")[0].as_py()[0] == pytest.approx(0.01 * 160.21766208)  # eV/Å^3 -> GPa
    assert table.column("level_of_theory").to_pylist() == ["PBE", "PBE"]


def test_frames_from_structures_matches_atoms(crystals):
    from pymatgen.core import Lattice, Molecule, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    structures = [AseAtomsAdaptor.get_structure(a) for a in crystals]
    a = monoculture.frames_from_atoms(crystals)
    b = monoculture.frames_from_structures(structures)
    assert b.column("formula").to_pylist() == a.column("formula").to_pylist()
    for col in ("positions", "cell"):
        flat = [np.concatenate([np.ravel(x) for x in t.column(col).to_pylist()]) for t in (a, b)]
        np.testing.assert_allclose(flat[1], flat[0], atol=1e-10)
    water = Molecule(["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], charge=0, spin_multiplicity=1)
    mol = monoculture.frames_from_structures([water])
    assert mol.column("formula").to_pylist() == ["H2O"] and mol.column("spin").to_pylist() == [1]
    assert mol.column("pbc").to_pylist() == [[False, False, False]]
    disordered = Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    with pytest.raises(UsageError, match="disordered"):
        monoculture.frames_from_structures([disordered])
    with pytest.raises(UsageError, match="not an ase.Atoms"):
        monoculture.frames_from_atoms([water])
    with pytest.raises(UsageError, match="2 ids for 1 structures"):
        monoculture.frames_from_atoms(crystals[:1], ids=["a", "b"])


def test_audit_and_compare_structures_in_memory(crystals, samples):
    r = monoculture.audit_datasets(crystals, **FAST)
    (ds,) = r.datasets
    assert ds.name == "atoms" and ds.format == "memory" and ds.n_frames == 4 and ds.n_atoms == 2 + 1 + 2 + 2
    assert ds.elements.structures_per_element == {"O": 1, "Na": 1, "Mg": 1, "Si": 1, "Cl": 1, "Cu": 1}
    named = monoculture.audit_datasets({"mine": crystals[:2], "sample": samples / "mixed_sample.extxyz"}, **FAST)
    assert [d.name for d in named.datasets] == ["mine", "sample"] and named.datasets[0].n_frames == 2
    with pytest.raises(UsageError, match="share a name"):
        monoculture.audit_datasets([monoculture.open_dataset(crystals, name="x"),
                                    monoculture.open_dataset(crystals[:1], name="x")], **FAST)
    cmp = monoculture.compare_datasets(monoculture.open_dataset(crystals, name="mine"), samples / "mptrj_sample.json",
                                       **FAST)
    assert isinstance(cmp, ComparisonResult)
    row = cmp.comparison.to_frame().iloc[0]
    assert row.dataset == "mine" and row.b == "mptrj" and row.n_a == 4
    assert 0.0 <= row.novelty_of_a <= 1.0


def test_open_datasets_pickle(samples, crystals):
    for ds in (monoculture.open_dataset(samples / "mixed_sample.extxyz"), monoculture.open_dataset(crystals)):
        again = pickle.loads(pickle.dumps(ds))
        a, b = next(ds.batches()), next(again.batches())
        assert a.column("id").to_pylist() == b.column("id").to_pylist()
        assert a.column("source").to_pylist() == b.column("source").to_pylist()


# -- errors ---------------------------------------------------------------------------------------------
def test_bad_input_gives_typed_errors(tmp_path, samples):
    with pytest.raises(DatasetOpenError) as exc:
        monoculture.open_dataset(tmp_path / "missing.xyz")
    assert exc.value.exit_code == 2 and isinstance(exc.value, OSError)
    with pytest.raises(UsageError, match="no such file"):
        monoculture.audit_datasets([tmp_path / "missing.xyz"])
    with pytest.raises(UsageError, match="sample_size must be an integer >= 2"):
        monoculture.audit_datasets(samples / "mixed_sample.extxyz", sample_size=1)
    with pytest.raises(UsageError, match="unknown descriptor"):
        monoculture.audit_datasets(samples / "mixed_sample.extxyz", descriptor="nope")
    with pytest.raises(UnknownFormatError):
        monoculture.open_dataset(samples / "mixed_sample.extxyz", format="nope")
    from monoculture.datasets.cards import UnknownCardError
    from monoculture.descriptors.base import DescriptorSizeError

    with pytest.raises(UnknownCardError) as card:
        monoculture.open_dataset(samples / "mixed_sample.extxyz", dataset_card="nope")
    assert isinstance(card.value, (MonocultureError, KeyError)) and card.value.exit_code == 2
    assert issubclass(DescriptorSizeError, UsageError) and issubclass(DescriptorSizeError, ValueError)


def test_nothing_audited_is_exit_status_3(tmp_path):
    empty = tmp_path / "empty.extxyz"
    empty.write_text("")
    with pytest.raises(NothingAuditedError) as exc:
        monoculture.audit_datasets(empty, **FAST)
    assert exc.value.exit_code == 3 and exc.value.result.datasets[0].n_frames == 0
    assert monoculture.audit_datasets(empty, allow_empty=True, **FAST).datasets[0].n_frames == 0


def test_cli_exit_codes_come_from_the_error_types():
    from monoculture.cli import UserError, _exit_code

    assert _exit_code(UserError("x")) == 2 and isinstance(UserError("x"), MonocultureError)
    assert _exit_code(NothingAuditedError("x")) == 3
    assert _exit_code(FileNotFoundError("x")) == 2
    assert _exit_code(RuntimeError("a bug")) is None  # keeps its traceback


# -- one schema version, checked against the schema file ----------------------------------------------------
def test_schema_version_is_written_in_one_place():
    """No module but audit/document.py writes a literal ``schema_version`` into a document."""
    writers = []
    for folder in ("datasets", "descriptors", "audit", "reports", "src/monoculture"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Dict):
                    for key, value in zip(node.keys, node.values):
                        if (isinstance(key, ast.Constant) and key.value == "schema_version"
                                and isinstance(value, ast.Constant)):
                            writers.append(str(path.relative_to(REPO)))
                if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                        and any(getattr(t, "id", None) == "SCHEMA_VERSION" for t in node.targets)):
                    writers.append(str(path.relative_to(REPO)))
    assert writers == ["audit/document.py"]


def _schema():
    return json.loads((REPO / "reports" / "schema" / "audit.schema.json").read_text())


def _resolve(schema, node):
    while isinstance(node, dict) and "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _properties(schema, node) -> dict:
    """Declared properties of an object schema (through $ref, anyOf / oneOf alternatives)."""
    node = _resolve(schema, node)
    out = dict(node.get("properties", {}))
    for key in ("anyOf", "oneOf"):
        for alt in node.get(key, []):
            out.update(_properties(schema, alt))
    return out


def _child(schema, node, key):
    """The schema of ``key`` inside an object schema: a declared property, else ``additionalProperties``."""
    props = _properties(schema, node)
    if key in props:
        return props[key]
    node = _resolve(schema, node)
    for alt in [node, *node.get("anyOf", []), *node.get("oneOf", [])]:
        extra = _resolve(schema, alt).get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return extra
    return None


def _types(schema, node) -> set:
    node = _resolve(schema, node)
    declared = node.get("type")
    out = set(declared if isinstance(declared, list) else [declared] if declared else [])
    for key in ("anyOf", "oneOf"):
        for alt in node.get(key, []):
            out |= _types(schema, alt)
    return out


_JSON_TYPES = {"int": {"integer"}, "float": {"number", "integer"}, "str": {"string"}, "bool": {"boolean"},
               "dict": {"object"}, "list": {"array"}}
#: Model fields the schema does not declare (yet): the schema accepts extra keys everywhere.
UNDECLARED = {("coverage", "duplicates"), ("coverage", "elements", "n_frames"),
              ("coverage", "level_of_theory", "n_frames"), ("coverage", "regimes", "n_frames"),
              ("coverage", "chemical_space", "scaling")}


def test_result_model_agrees_with_the_schema_file():
    """Every typed field of a section is declared at its path in the schema with a compatible type.

    Reads the schema file itself, so keys another change adds to the schema never break this test; a key the
    schema declares with another type, or a model field at a path the schema does not know, does.
    """
    schema = _schema()
    dataset = schema["$defs"]["dataset"]
    checked = 0
    for name, cls in SECTIONS.items():
        node = dataset
        path: tuple = ()
        for key in cls.PATH:
            path += (key,)
            if path in UNDECLARED:
                node = None
                break
            node = _child(schema, node, key)
            assert node is not None, f"section {name}: {'.'.join(path)} is not in the schema"
        if node is None:
            continue
        props = _properties(schema, node)
        if name == "priorities":  # a list of rows, or {"rows": [...]}: check the row fields
            props = _properties(schema, schema["$defs"]["priority"])
            for column in cls.COLUMNS:
                assert column in props, f"priority column {column} is not in the schema"
            continue
        for field_name, annotation in cls.__annotations__.items():
            if field_name.isupper() or (*cls.PATH, field_name) in UNDECLARED:
                continue
            assert field_name in props, f"{'.'.join(cls.PATH)}.{field_name} is not in the schema"
            declared = _types(schema, props[field_name])
            python = annotation.split(" | ")[0].split("[")[0]
            if declared:
                assert declared & _JSON_TYPES[python], (name, field_name, declared, annotation)
            checked += 1
    assert checked >= 20
    alignment = _properties(schema, schema["$defs"]["alignment"])
    assert "metrics" in alignment and "models" in alignment
    assert set(AlignmentMetrics.COLUMNS) >= {"metric", "set", "model_a", "model_b", "value"}


def test_a_result_validates_against_the_schema(audited):
    from monoculture.reports import validate_document

    errors = validate_document(audited.document)
    assert not errors


def test_alignment_metrics_frame_by_hand():
    section = {"models": ["a", "b"], "metrics": {"cka": {"id": [[1.0, 0.25], [0.25, 1.0]], "ood": [[1.0, 0.5],
                                                                                                 [0.5, 1.0]],
                                                         "k": None, "higher_is_more_aligned": True}}}
    frame = AlignmentMetrics.from_alignment(section).to_frame()
    assert len(frame) == 8
    off = frame[(frame.model_a == "a") & (frame.model_b == "b")]
    assert dict(zip(off.set, off.value)) == {"id": 0.25, "ood": 0.5}
    assert AlignmentMetrics.from_alignment({"not_applicable": "one model"}).to_frame().empty


@pytest.mark.slow
def test_embed_and_align_through_the_api(tmp_path, samples):
    ids, ood = [str(samples / "mptrj_sample.json")], [str(samples / "mixed_sample.extxyz")]
    for model in ("composition", "structure", "regime"):
        res = monoculture.embed(ids + ood, model, tmp_path / "zoo" / f"{model}.parquet")
        assert res.n_rows == 108 + 19
    r = monoculture.align_embeddings(tmp_path / "zoo", ids, ood, descriptor_model="composition", k=5, n_boot=5,
                                     repeats=2, n_calibration=5, metrics=["svcca"])
    assert r.models == ["regime", "structure"]
    frame = r.metrics.to_frame()
    diag = frame[(frame.metric == "cknna") & (frame.model_a == frame.model_b)]
    assert np.allclose(diag.value, 1.0)
    svcca = frame[(frame.metric == "svcca") & (frame.model_a != frame.model_b)]  # an optional registered metric
    assert len(svcca) and np.all((svcca.value >= 0) & (svcca.value <= 1 + 1e-9))
    with pytest.raises(monoculture.UsageError):
        monoculture.align_embeddings(tmp_path / "zoo", ids, ood, k=5, n_boot=2, repeats=2, n_calibration=0,
                                     metrics=["no-such-metric"])
    assert type(load_result(r.to_json())) is type(r) and load_result(r.to_json()).to_json() == r.to_json()


def test_docs_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(REPO / "docs" / "api_example.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "element" in out and "mptrj" in out
    assert (tmp_path / "api_example_report" / "report.html").is_file()


@pytest.mark.slow
def test_readme_python_api_lines_run(monkeypatch, capsys):
    """The README's three lines, as written there, from the repository root."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) == 3
    monkeypatch.chdir(REPO)
    exec(compile(block, "README.md", "exec"), {})
    assert "structures" in capsys.readouterr().out
