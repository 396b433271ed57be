"""Tests of mm.specs.yaml_loader: exact numbers, core-schema scalars, locations, limits, errors."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

from mm.specs import yaml_loader
from mm.specs.errors import SourceLocation, SpecSyntaxError
from mm.specs.yaml_loader import (
    MAX_DEPTH,
    SourceDocument,
    load_path,
    load_sources,
    load_sources_collect,
    load_stdin,
    load_text,
)
from tests.specs.samples import billion_laughs

MIB = 1024 * 1024


def one(text: str) -> SourceDocument:
    documents = load_text(text)
    assert len(documents) == 1
    return documents[0]


def error_of(text: str) -> SpecSyntaxError:
    with pytest.raises(SpecSyntaxError) as caught:
        load_text(text)
    return caught.value


# --- scalars: YAML 1.2 core schema, exact decimals ---------------------------------------------------


def test_decimals_are_exact_from_their_text() -> None:
    data = one("a: 0.1\nb: 0.2\nc: 0.10\nd: 1e-3\ne: -0.5\nf: .5\ng: 2.5E+2\n").data
    assert data["a"] == Decimal("0.1") and isinstance(data["a"], Decimal)
    assert data["a"] + data["b"] == Decimal("0.3")
    assert str(data["c"]) == "0.10"
    assert data["d"] == Decimal("0.001")
    assert data["e"] == Decimal("-0.5")
    assert data["f"] == Decimal("0.5")
    assert data["g"] == Decimal("250")
    assert not any(isinstance(value, float) for value in data.values())


def test_integers() -> None:
    data = one("a: 100\nb: -7\nc: 0x1F\nd: 0o17\ne: +3\n").data
    assert data == {"a": 100, "b": -7, "c": 31, "d": 15, "e": 3}
    assert all(type(value) is int for value in data.values())


def test_yes_no_on_off_stay_strings_and_only_core_booleans_are_bools() -> None:
    data = one("YES: yes\nNO: No\nx: on\ny: off\nz: y\nw: n\nt: true\nT: True\nf: FALSE\n").data
    assert data == {
        "YES": "yes",
        "NO": "No",
        "x": "on",
        "y": "off",
        "z": "y",
        "w": "n",
        "t": True,
        "T": True,
        "f": False,
    }


def test_nulls_timestamps_and_other_strings() -> None:
    data = one("a: ~\nb: null\nc: NULL\nd:\ne: 2024-01-01\nf: 1_000\ng: '1'\nh: \"true\"\ni: <<\n").data
    assert data == {
        "a": None,
        "b": None,
        "c": None,
        "d": None,
        "e": "2024-01-01",
        "f": "1_000",
        "g": "1",
        "h": "true",
        "i": "<<",
    }


def test_keys_are_strings_as_written() -> None:
    data = one("200: x\n0.50: y\ntrue: z\n").data
    assert list(data) == ["200", "0.50", "true"]


def test_standard_explicit_tags() -> None:
    data = one(
        "a: !!str 1\nb: !!int '12'\nc: !!float 1\nd: !!bool 'true'\ne: !!null ''\nf: !!map {x: 1}\ng: !!seq [1]\n"
    ).data
    assert data == {"a": "1", "b": 12, "c": Decimal("1"), "d": True, "e": None, "f": {"x": 1}, "g": [1]}
    assert isinstance(data["c"], Decimal)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!python/object:os.system x\n", "unsupported tag '!!python/object:os.system'"),
        ("a: !custom {b: 1}\n", "unsupported tag '!custom'"),
        ("a: !!int abc\n", "'abc' is not a valid int"),
        ("a: !!bool yes\n", "'yes' is not a valid bool"),
        ("a: !!map x\n", "tag '!!map' does not fit a scalar"),
    ],
)
def test_bad_tags_are_rejected(text: str, message: str) -> None:
    error = error_of(text)
    assert message in str(error)
    assert error.issue.location == SourceLocation("<string>", 1, 4)


@pytest.mark.parametrize("text", [".inf", "-.Inf", "+.INF", ".nan", ".NaN", "!!float .nan"])
def test_non_finite_numbers_are_rejected(text: str) -> None:
    error = error_of(f"spec:\n  price: {text}\n")
    assert "non-finite numbers are not allowed" in error.issue.message
    assert error.issue.location == SourceLocation("<string>", 2, 10)


def test_absurd_exponents_are_rejected() -> None:
    assert "number out of range" in str(error_of("a: 1e400\n"))


# --- mappings: duplicates, keys, merges ----------------------------------------------------------------


def test_duplicate_key_points_at_second_and_names_first() -> None:
    error = error_of("spec:\n  a: 1\n  b: 2\n  a: 3\n")
    assert error.issue.message == "duplicate key 'a' (first defined at line 2)"
    assert error.issue.location == SourceLocation("<string>", 4, 3)


def test_keys_differing_only_in_quoting_are_duplicates() -> None:
    assert "duplicate key '1'" in str(error_of("1: a\n'1': b\n"))


@pytest.mark.parametrize(
    ("text", "kind"), [("[a]: 1\n", "list"), ("{}: 1\n", "mapping"), ("? {a: 1}\n: 2\n", "mapping")]
)
def test_non_scalar_keys_are_rejected(text: str, kind: str) -> None:
    error = error_of(text)
    assert error.issue.message == f"mapping keys must be names or numbers, not a {kind}"
    assert error.issue.location.line == 1


def test_null_key_is_rejected() -> None:
    assert "mapping key is empty" in str(error_of("~: 1\n"))


def test_merge_keys_explicit_keys_win_and_earlier_merges_win() -> None:
    data = one(
        "base: &base {x: 1, y: 2}\nother: &other {y: 20, z: 30}\nm:\n  <<: [*base, *other]\n  x: 100\n'<<': literal\n"
    ).data
    assert data["m"] == {"x": 100, "y": 2, "z": 30}
    assert data["<<"] == "literal"
    assert data["base"] == {"x": 1, "y": 2}  # merging does not modify the anchored mapping


def test_merge_of_a_non_mapping_is_rejected() -> None:
    assert "merge key '<<' needs a mapping" in str(error_of("a: &a [1]\nb:\n  <<: *a\n"))


def test_aliases_are_copies_not_shared_objects() -> None:
    data = one("a: &a {k: [1]}\nb: *a\n").data
    assert data["a"] == data["b"] and data["a"] is not data["b"]


# --- aliases and limits --------------------------------------------------------------------------------


def test_alias_bomb_fails_fast_with_a_clear_message() -> None:
    # 9**9 nodes if expanded: the budget stops it (how long it takes is measured in benchmarks/).
    error = error_of(billion_laughs())
    assert "document expands to too many nodes (alias bomb?)" in error.issue.message


def test_moderate_alias_use_is_fine() -> None:
    data = one("a: &a [1, 2, 3]\nb: [*a, *a, *a]\n").data
    assert data["b"] == [[1, 2, 3]] * 3


@pytest.mark.parametrize("text", ["&a [*a]\n", "a: &a {b: *a}\n", "a: &a {<<: *a}\n"])
def test_recursive_aliases_are_rejected(text: str) -> None:
    assert "recursive alias" in error_of(text).issue.message


def test_undefined_alias_is_reported() -> None:
    error = error_of("a: *missing\n")
    assert "undefined alias" in error.issue.message
    assert error.issue.location == SourceLocation("<string>", 1, 4)


def test_depth_limit() -> None:
    deepest_allowed = "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH
    assert one(deepest_allowed).data is not None
    too_deep = "[" * (MAX_DEPTH + 1) + "1" + "]" * (MAX_DEPTH + 1)
    assert error_of(too_deep).issue.message == f"nesting is deeper than {MAX_DEPTH} levels"
    very_deep = "[" * 5000 + "]" * 5000  # beyond libyaml's own limit: still our message
    assert error_of(very_deep).issue.message == f"nesting is deeper than {MAX_DEPTH} levels"


def test_oversized_file_is_rejected_by_its_size_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.yaml"
    line = b"a: 1\n"
    big.write_bytes(line * (10 * MIB // len(line)) + b"#" * (10 * MIB % len(line)))
    assert big.stat().st_size == 10 * MIB

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(Path, "open", no_reading)
    with pytest.raises(SpecSyntaxError) as caught:
        load_path(big)
    assert caught.value.issue.message == "file is 10.0 MiB; spec files are limited to 1 MiB"
    assert caught.value.issue.location.source == str(big)


def test_oversized_stdin_and_text_are_rejected() -> None:
    with pytest.raises(SpecSyntaxError, match="limited to 1 MiB"):
        load_stdin(io.StringIO("#" * (MIB + 1)))
    with pytest.raises(SpecSyntaxError, match="limited to 1 MiB"):
        load_text("é" * (MIB // 2 + 1))  # fewer than 1 Mi characters but more than 1 MiB of UTF-8


def test_a_file_just_under_the_limit_loads(tmp_path: Path) -> None:
    document = (
        "apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {{name: s-{0}, labels: {{desk: crypto}}}}\n"
        "spec:\n  components:\n    spread:\n      type: fixed\n"
        "      params: {{base: 0.02, levels: [0.01, 0.02]}}\n"
        "  max_inventory: 100\n"
    )
    parts: list[str] = []
    size = 0
    while size < MIB - 1000:
        parts.append(document.format(len(parts)))
        size += len(parts[-1]) + 4
    path = tmp_path / "big.yaml"
    path.write_text("---\n".join(parts))
    assert MIB - 1000 <= path.stat().st_size <= MIB
    documents = load_path(path)
    assert len(documents) == len(parts)
    assert documents[-1].data["spec"]["components"]["spread"]["params"]["base"] == Decimal("0.02")


# --- syntax errors in plain words ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [("a:\n\tb: 1\n", 2, 1), ("a:\n  b: 1\n\tc: 2\n", 3, 1), ("- a\n-\tb\n", 2, 2), ("x: |\n\tfoo\n", 2, 1)],
)
def test_tab_indentation_has_a_clear_message(text: str, line: int, column: int) -> None:
    error = error_of(text)
    assert error.issue.message == (
        f"tab character used for indentation at line {line} column {column}; YAML requires spaces"
    )
    assert error.issue.location == SourceLocation("<string>", line, column)


def test_tabs_that_are_not_indentation_are_fine() -> None:
    assert one("a:\t1\nb: 2\t# comment\n").data == {"a": 1, "b": 2}


def test_parser_errors_are_located_and_in_plain_words() -> None:
    error = error_of("a: [1, 2\nb: 3\n")
    assert error.issue.location == SourceLocation("<string>", 2, 2)
    assert error.issue.message.startswith("not valid YAML: ")
    assert "started at line 1 column 4" in error.issue.message
    assert "Traceback" not in str(error) and "<unicode string>" not in str(error)


def test_braces_are_not_yaml() -> None:
    error = error_of("{{{")
    assert error.issue.message.startswith("not valid YAML")
    assert error.issue.location.line >= 1


def test_binary_garbage_is_rejected_with_its_position() -> None:
    error = error_of("a: 1\nb: \x00\x01\x02\n")
    assert "control character U+0000" in error.issue.message
    assert "binary" in error.issue.message
    assert error.issue.location == SourceLocation("<string>", 2, 4)


def test_invalid_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(SpecSyntaxError) as caught:
        load_path(path)
    assert caught.value.issue.message == "file is not valid UTF-8 text"
    assert caught.value.issue.location == SourceLocation(str(path), 2, 7)


def test_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    (document,) = load_path(path)
    assert document.data == {"a": 1}
    assert document.locate(["a"]) == SourceLocation(str(path), 1, 1)


# --- documents -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "# nothing here\n# at all\n", "---\n---\n# just comments\n"])
def test_a_file_without_documents_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(content)
    with pytest.raises(SpecSyntaxError) as caught:
        load_path(path)
    assert caught.value.issue.message == "file is empty: no YAML documents"
    assert str(caught.value.issue.location) == str(path)


def test_multi_document_skips_empty_documents() -> None:
    documents = load_text("---\n# comment only\n---\na: 1\n---\n---\nb: 2\n...\n", source="multi.yaml")
    assert [document.data for document in documents] == [{"a": 1}, {"b": 2}]
    assert [document.index for document in documents] == [1, 3]
    assert [document.start for document in documents] == [
        SourceLocation("multi.yaml", 4, 1),
        SourceLocation("multi.yaml", 7, 1),
    ]


def test_locations_of_keys_and_list_items() -> None:
    text = (
        "kind: Strategy\n"  # 1
        "spec:\n"  # 2
        "  components:\n"  # 3
        "    spread:\n"  # 4
        "      levels:\n"  # 5
        "        - 0.01\n"  # 6
        "        - {size: 5}\n"  # 7
        "  bounds: [0.01, 0.99]\n"  # 8
    )
    document = load_text(text, source="s.yaml")[0]
    loc = document.locations
    assert loc[()] == SourceLocation("s.yaml", 1, 1)
    assert loc[("spec",)] == SourceLocation("s.yaml", 2, 1)
    assert loc[("spec", "components", "spread")] == SourceLocation("s.yaml", 4, 5)
    assert loc[("spec", "components", "spread", "levels")] == SourceLocation("s.yaml", 5, 7)
    assert loc[("spec", "components", "spread", "levels", 0)] == SourceLocation("s.yaml", 6, 11)
    assert loc[("spec", "components", "spread", "levels", 1)] == SourceLocation("s.yaml", 7, 11)
    assert loc[("spec", "components", "spread", "levels", 1, "size")] == SourceLocation("s.yaml", 7, 12)
    assert loc[("spec", "bounds", 1)] == SourceLocation("s.yaml", 8, 18)
    assert str(document.locate(("spec", "bounds", 1))) == "s.yaml:8:18"


def test_locate_falls_back_to_the_enclosing_node() -> None:
    document = load_text("spec:\n  components:\n    spread: {}\n", source="s.yaml")[0]
    assert document.locate(["spec", "components", "spread", "type"]) == SourceLocation("s.yaml", 3, 5)
    assert document.locate(["spec", "missing", "deeper"]) == SourceLocation("s.yaml", 1, 1)
    assert document.locate(["nothing"]) == SourceLocation("s.yaml", 1, 1)


def test_locations_in_a_later_document_are_absolute() -> None:
    second = load_text("a: 1\n---\nb:\n  c: 2\n")[1]
    assert second.locate(["b", "c"]) == SourceLocation("<string>", 4, 3)


# --- paths, directories, stdin ----------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SpecSyntaxError) as caught:
        load_path(tmp_path / "nope.yaml")
    assert caught.value.issue.message == "no such file or directory"
    assert caught.value.issue.location.source == str(tmp_path / "nope.yaml")


def test_directory_without_spec_files(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("a: 1\n")
    (tmp_path / ".hidden.yaml").write_text("a: 1\n")
    with pytest.raises(SpecSyntaxError) as caught:
        load_path(tmp_path)
    assert caught.value.issue.message == f"no .yaml, .yml or .json files found in {tmp_path}"


def test_directory_is_loaded_recursively_in_sorted_order_skipping_hidden(tmp_path: Path) -> None:
    files = {
        "b.yaml": "name: b\n",
        "a.yml": "name: a\n---\nname: a2\n",
        "c/d.json": '{\n\t"name": "d",\n\t"price": 0.25\n}\n',  # tab-indented JSON is fine
        "c/a.YAML": "name: ca\n",
        "c/.secret.yaml": "name: hidden\n",
        ".git/x.yaml": "name: hidden-dir\n",
        "notes.txt": "name: not-a-spec\n",
    }
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    documents = load_path(tmp_path)
    assert [document.data["name"] for document in documents] == ["a", "a2", "b", "ca", "d"]
    assert documents[4].data["price"] == Decimal("0.25")
    assert [document.source for document in documents] == [
        str(tmp_path / "a.yml"),
        str(tmp_path / "a.yml"),
        str(tmp_path / "b.yaml"),
        str(tmp_path / "c" / "a.YAML"),
        str(tmp_path / "c" / "d.json"),
    ]
    assert documents[4].locate(["price"]) == SourceLocation(str(tmp_path / "c" / "d.json"), 3, 2)


def test_a_file_is_loaded_whatever_its_suffix(tmp_path: Path) -> None:
    path = tmp_path / "spec.txt"
    path.write_text("a: 1\n")
    assert [document.source for document in load_path(str(path))] == [str(path)]


def test_stdin_stream() -> None:
    documents = load_stdin(io.StringIO("a: 0.1\n---\nb: NO\n"))
    assert [document.data for document in documents] == [{"a": Decimal("0.1")}, {"b": "NO"}]
    assert {document.source for document in documents} == {"<stdin>"}
    assert documents[1].locate(["b"]) == SourceLocation("<stdin>", 3, 1)


def test_empty_stdin() -> None:
    with pytest.raises(SpecSyntaxError, match="input is empty: no YAML documents"):
        load_stdin(io.StringIO(""))


def test_load_sources_with_dash_reads_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("from: file\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("from: stdin\n"))
    documents = load_sources([str(path), "-"])
    assert [(document.source, document.data) for document in documents] == [
        (str(path), {"from": "file"}),
        ("<stdin>", {"from": "stdin"}),
    ]


def test_load_sources_raises_the_first_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("a: [\n")
    with pytest.raises(SpecSyntaxError) as caught:
        load_sources([str(tmp_path / "missing.yaml"), str(tmp_path / "bad.yaml")])
    assert caught.value.issue.message == "no such file or directory"


def test_load_sources_collect_keeps_going_past_bad_sources(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "1-good.yaml").write_text("a: 1\n")
    (tmp_path / "dir" / "2-dup.yaml").write_text("a: 1\na: 2\n")
    (tmp_path / "dir" / "3-good.yaml").write_text("b: 2\n")
    documents, issues = load_sources_collect([str(tmp_path / "dir"), str(tmp_path / "nope")])
    assert [document.data for document in documents] == [{"a": 1}, {"b": 2}]
    assert [str(issue) for issue in issues] == [
        f"{tmp_path / 'dir' / '2-dup.yaml'}:2:1: duplicate key 'a' (first defined at line 1)",
        f"{tmp_path / 'nope'}: no such file or directory",
    ]


# --- the pure-Python fallback (PyYAML without libyaml) ---------------------------------------------------


def test_pure_python_composer_gives_the_same_results(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_loader, "_Loader", yaml_loader._PyLoader)
    assert one("a: 0.1\nb: YES\nc: [1, true, ~]\n").data == {"a": Decimal("0.1"), "b": "YES", "c": [1, True, None]}
    assert "tab character used for indentation at line 2 column 1" in str(error_of("a:\n\tb: 1\n"))
    assert error_of("[" * 1500 + "]" * 1500).issue.message == f"nesting is deeper than {MAX_DEPTH} levels"
    assert "duplicate key 'a'" in str(error_of("a: 1\na: 2\n"))
