"""The generated JSON Schemas: fresh, valid, and in agreement with admission on the examples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from mm.specs.envelope import KINDS
from mm.specs.schema import ANY_SCHEMA_FILE, all_schemas, stale_schemas, write_schemas
from mm.specs.yaml_loader import load_path

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "specs" / "v1alpha1"
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))
SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.MULTILINE)


def test_committed_schemas_match_the_models() -> None:
    stale = stale_schemas(SCHEMA_DIR)
    assert stale == [], f"regenerate with `make schemas`: {stale}"


def test_stale_detection_notices_an_edit(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []
    path = tmp_path / "market.schema.json"
    path.write_text(path.read_text().replace('"Market"', '"Markt"'))
    (tmp_path / ANY_SCHEMA_FILE).unlink()
    assert stale_schemas(tmp_path) == ["market.schema.json", ANY_SCHEMA_FILE]


@pytest.mark.parametrize("name", sorted(all_schemas()))
def test_every_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(all_schemas()[name])


def test_there_is_one_schema_per_kind_plus_any() -> None:
    assert sorted(all_schemas()) == sorted([*(i.schema_file for i in KINDS.values()), ANY_SCHEMA_FILE])


def _jsonable(value: object) -> object:
    # Editors see YAML numbers as JSON numbers; our loader keeps them as Decimal.
    return json.loads(json.dumps(value, default=str))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_carry_a_schema_line_and_validate_against_it(path: Path) -> None:
    text = path.read_text()
    match = SCHEMA_LINE.search(text)
    assert match, f"{path} lacks the '# yaml-language-server: $schema=' line"
    schema_path = (path.parent / match.group(1)).resolve()
    assert schema_path.is_file(), schema_path
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text()))
    for document in load_path(path):
        errors = [e.message for e in validator.iter_errors(_jsonable(document.data))]
        assert errors == [], f"{path}#{document.index}: {errors}"


@pytest.mark.parametrize(
    "document",
    [
        {"apiVersion": "mm/v1alpha1", "kind": "Strategy", "metadata": {"name": "s"}, "spec": {"colour": 1}},
        {
            "apiVersion": "mm/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "s"},
            "spec": {"components": {"skew": {"type": "quadratic"}}},
        },
        {"apiVersion": "mm/v2", "kind": "Strategy", "metadata": {"name": "s"}, "spec": {}},
        {"apiVersion": "mm/v1alpha1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {}},
        {"apiVersion": "mm/v1alpha1", "kind": "Market", "metadata": {"name": "m"}, "spec": {"ticker": "T"}},
    ],
)
def test_the_any_kind_schema_rejects_what_admission_rejects(document: dict[str, object]) -> None:
    validator = jsonschema.Draft202012Validator(all_schemas()[ANY_SCHEMA_FILE])
    assert not validator.is_valid(document)
