import copy

import jsonschema
import pytest

from monoculture.reports import load_schema, schema_errors, validate_document


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_basic_and_full_documents_validate(basic_doc, full_doc):
    validate_document(basic_doc)
    validate_document(full_doc)
    assert schema_errors(full_doc) == []


def test_not_applicable_sections_are_accepted(basic_doc):
    doc = copy.deepcopy(basic_doc)
    doc["datasets"][0]["coverage"] = {"chemical_space": {"not_applicable": "no descriptors"},
                                      "regimes": {"not_applicable": "disabled"}}
    doc["alignment"] = {"not_applicable": "no models installed"}
    validate_document(doc)


@pytest.mark.parametrize("path, value", [
    (("datasets", 0, "n_frames"), -1),
    (("datasets", 0, "records", "read"), "many"),
    (("datasets", 0, "elements", "structures_per_element", "Fe"), 1.5),
    (("alignment",), {"gap_vs_collapse": {"points": [], "spearman_rho": 2.0}}),
    (("alignment",), {"verdicts": {"local": {"estimate": 0.1}}}),
])
def test_schema_rejects_wrong_values(basic_doc, path, value):
    doc = copy.deepcopy(basic_doc)
    target = doc
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate_document(doc)


def test_schema_rejects_missing_required_key(basic_doc):
    doc = copy.deepcopy(basic_doc)
    del doc["datasets"][0]["name"]
    assert any("'name' is a required property" in e for e in schema_errors(doc))


def test_priority_rows_carry_items_and_why(full_doc):
    rows = full_doc["datasets"][0]["coverage"]["priorities"]
    assert rows and all(isinstance(r["why"], str) and r["items"] for r in rows)
    doc = copy.deepcopy(full_doc)
    doc["datasets"][0]["coverage"]["priorities"][0]["why"] = 3
    with pytest.raises(jsonschema.ValidationError):
        validate_document(doc)
    doc["datasets"][0]["coverage"]["priorities"][0]["why"] = "ok"
    doc["datasets"][0]["coverage"]["priorities"][0]["items"] = "Fe"
    with pytest.raises(jsonschema.ValidationError):
        validate_document(doc)
