"""JSON Schemas of the resource kinds, generated from the models (design.md §2).

``specs/v1alpha1/<kind>.schema.json`` has one schema per kind and ``any.schema.json`` accepts any kind
(for multi-document files). Editors use them through a ``# yaml-language-server: $schema=...`` line to
validate and complete YAML as it is typed. They are generated, never edited: ``mmctl schema
--output-dir specs/v1alpha1`` (or ``make schemas``) rewrites them, and a test fails when they are stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from pydantic.json_schema import models_json_schema

from mm.specs.envelope import API_VERSION, KINDS, KindInfo

DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"
ANY_SCHEMA_FILE: Final = "any.schema.json"


def kind_schema(info: KindInfo) -> dict[str, Any]:
    """The JSON Schema of one kind's resource document (validation mode: what a person may write)."""
    schema = info.model.model_json_schema(by_alias=True, mode="validation")
    schema["title"] = f"{info.kind} ({API_VERSION})"
    return {"$schema": DRAFT, **schema}


def any_kind_schema() -> dict[str, Any]:
    """One schema accepting a document of any kind (the ``kind`` field selects the branch)."""
    _, top = models_json_schema(
        [(info.model, "validation") for info in KINDS.values()], by_alias=True, title=f"mmctl resource ({API_VERSION})"
    )
    refs = [{"$ref": f"#/$defs/{info.model.__name__}"} for info in KINDS.values()]
    return {"$schema": DRAFT, "title": top["title"], "oneOf": refs, "$defs": top["$defs"]}


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name → schema for every generated file."""
    out = {info.schema_file: kind_schema(info) for info in KINDS.values()}
    out[ANY_SCHEMA_FILE] = any_kind_schema()
    return out


def render(schema: dict[str, Any]) -> str:
    """Stable text form: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """(Re)write every schema file into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path) -> list[str]:
    """Names of schema files in ``directory`` that are missing or differ from the models."""
    stale = []
    for name, schema in all_schemas().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(schema):
            stale.append(name)
    return stale
