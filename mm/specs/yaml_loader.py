"""Read spec sources (files, directories, stdin) into plain data plus the line/column of every node.

Documents are composed by PyYAML (libyaml when available) and *constructed here*, never by
``yaml.safe_load``, because PyYAML resolves scalars by YAML 1.1 rules, which are wrong for us twice:
numbers become floats (``0.1`` would not be exact money) and ``YES``/``NO``/``on``/``off`` become
booleans (our specs use ``YES``/``NO`` as keys). We resolve plain scalars by the **YAML 1.2 core
schema** instead: ``true|True|TRUE|false|False|FALSE`` are booleans, ``~|null|Null|NULL`` and the empty
scalar are null, ``[-+]?[0-9]+``, ``0o…`` and ``0x…`` are ``int``, decimal/exponent numbers are
``decimal.Decimal`` built from their text (``0.10`` stays ``Decimal("0.10")``), ``.inf``/``.nan`` are
rejected, and everything else (timestamps, ``YES``, ``1_000``) stays a string. Explicit tags are limited
to ``!!str !!int !!float !!bool !!null !!map !!seq`` (and ``!!merge``).

Choices:

* ``SourceDocument.locations`` maps a node path to the location of the **key** for mapping entries
  (``field: bad`` errors read best pointing at the field name) and to the start of the value for the
  document root and list items. Mapping keys are always ``str``, as written (``200: x`` → ``"200"``).
* Merge keys (``<<: *base`` or ``<<: [*a, *b]``) are supported: explicit keys override merged ones and
  earlier merged mappings override later ones. Duplicate explicit keys are errors.
* Limits: 1 MiB per source, nesting depth 64, and 100 000 nodes constructed through alias expansion per
  document (alias bombs fail fast); recursive aliases are errors; numbers must be within 1e±100.
* Empty documents (a bare ``---``, only comments) are skipped, but a source with no document at all is
  an error. ``SourceDocument.index`` is the position in the stream, counting skipped documents.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TextIO

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mm.specs.errors import SourceLocation, SpecIssue, SpecSyntaxError

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_SOURCE_BYTES",
    "SourceDocument",
    "load_path",
    "load_sources",
    "load_sources_collect",
    "load_stdin",
    "load_text",
]

MAX_SOURCE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_NODES = 100_000
SPEC_SUFFIXES = (".yaml", ".yml", ".json")
_MAX_EXPONENT = 100

NodePath = tuple[str | int, ...]

_T = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
_MAP, _SEQ, _MERGE = _T + "map", _T + "seq", _T + "merge"
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL})

_NULL_RE = re.compile(r"~|null|Null|NULL|")
_BOOL_RE = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_NONFINITE_RE = re.compile(r"[-+]?(\.inf|\.Inf|\.INF)|\.nan|\.NaN|\.NAN")
# Characters YAML forbids in a stream (C0 controls except tab/LF/CR, DEL, C1 except NEL, surrogates...).
_UNPRINTABLE_RE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CORE_RE = re.compile(
    "|".join(
        f"(?P<{name}>{pattern.pattern})"
        for name, pattern in (
            ("null", _NULL_RE),
            ("bool", _BOOL_RE),
            ("int", _INT_RE),
            ("float", _FLOAT_RE),
            ("nonfinite", _NONFINITE_RE),
        )
    )
)
_CORE_TAGS = {"null": _NULL, "bool": _BOOL, "int": _INT, "float": _FLOAT, "nonfinite": _FLOAT}
_CORE_FIRST = frozenset("~nNtTfF0123456789+-.")  # a plain scalar starting otherwise is a string


def _resolve_tag(kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
    """YAML 1.2 core-schema tag of an untagged node (``implicit[0]``: the scalar is plain)."""
    if kind is not ScalarNode:
        return _MAP if kind is MappingNode else _SEQ
    if not implicit[0] or (value and value[0] not in _CORE_FIRST):
        return _MERGE if implicit[0] and value == "<<" else _STR
    match = _CORE_RE.fullmatch(value)
    return _CORE_TAGS[match.lastgroup or ""] if match else _STR


class _PyLoader(yaml.SafeLoader):
    """Pure-Python composer with core-schema resolution (used only when libyaml is missing)."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        return _resolve_tag(kind, value, implicit)


_Loader: type[_PyLoader] | type[yaml.CSafeLoader] = _PyLoader
if yaml.__with_libyaml__:  # pragma: no branch - libyaml ships in PyYAML's wheels

    class _CLoader(yaml.CSafeLoader):
        """libyaml composer with core-schema resolution (several times faster)."""

        def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
            return _resolve_tag(kind, value, implicit)

    _Loader = _CLoader


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One YAML document of one source, as plain data with the location of every node."""

    source: str
    """The file path as given, ``<stdin>`` or the label passed to :func:`load_text`."""
    index: int
    """0-based position of the document in its source (skipped empty documents count)."""
    data: Any
    """A tree of dict (str keys) / list / str / int / Decimal / bool / None."""
    locations: Mapping[NodePath, SourceLocation]
    """Path → location: the key's for mapping entries, the value's for the root (``()``) and list items."""
    start: SourceLocation
    """Where the document's content starts."""

    def locate(self, path: Sequence[str | int]) -> SourceLocation:
        """Location of ``path``, or of its longest known prefix (e.g. the mapping lacking a field)."""
        key = tuple(path)
        for end in range(len(key), -1, -1):
            location = self.locations.get(key[:end])
            if location is not None:
                return location
        return self.start


class _Builder:
    """Turns one composed document into plain data, recording locations and enforcing limits."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.locations: dict[NodePath, SourceLocation] = {}
        self._active: set[int] = set()  # collection nodes being built (a repeat means a recursive alias)
        self._seen: set[int] = set()  # collection nodes built once already (a repeat is an alias expansion)
        self._repeating = 0
        self._expanded = 0

    def loc(self, node: Node) -> SourceLocation:
        return SourceLocation(self.source, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: Node, message: str) -> NoReturn:
        raise SpecSyntaxError(SpecIssue(self.loc(node), message))

    def build(self, node: Node, path: NodePath) -> Any:
        if len(path) > MAX_DEPTH:
            self.fail(node, f"nesting is deeper than {MAX_DEPTH} levels")
        if self._repeating:
            self._expanded += 1
            if self._expanded > MAX_ALIAS_NODES:
                self.fail(
                    node,
                    f"document expands to too many nodes (alias bomb?): more than "
                    f"{MAX_ALIAS_NODES} nodes come from aliases",
                )
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        ident = id(node)
        if ident in self._active:
            self.fail(node, "recursive alias: a node contains an alias to itself")
        repeat = ident in self._seen
        self._seen.add(ident)
        self._active.add(ident)
        self._repeating += repeat
        try:
            if node.tag not in (_MAP, _SEQ):
                self.fail(node, f"unsupported tag {_show_tag(node.tag)}")
            if isinstance(node, SequenceNode) and node.tag == _SEQ:
                items = []
                for i, item in enumerate(node.value):
                    child = (*path, i)
                    self.locations[child] = self.loc(item)
                    items.append(self.build(item, child))
                return items
            if isinstance(node, MappingNode) and node.tag == _MAP:
                return self.mapping(node, path)
            self.fail(node, f"tag {_show_tag(node.tag)} does not fit a {_kind(node)}")
        finally:
            self._repeating -= repeat
            self._active.discard(ident)

    def mapping(self, node: MappingNode, path: NodePath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges = [value for key, value in node.value if key.tag == _MERGE]
        for source in reversed(merges):  # earlier merged mappings win over later ones
            sources = source.value if isinstance(source, SequenceNode) and source.tag == _SEQ else [source]
            for merged in reversed(sources):
                if not (isinstance(merged, MappingNode) and merged.tag == _MAP):
                    self.fail(merged, "merge key '<<' needs a mapping or a list of mappings")
                result.update(self.build(merged, path))
        defined: dict[str, SourceLocation] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.key(key_node)
            if key in defined:
                self.fail(key_node, f"duplicate key {key!r} (first defined at line {defined[key].line})")
            child = (*path, key)
            self.locations[child] = defined[key] = self.loc(key_node)
            result[key] = self.build(value_node, child)
        return result

    def key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            self.fail(node, f"mapping keys must be names or numbers, not a {_kind(node)}")
        if node.tag not in _SCALAR_TAGS:
            self.fail(node, f"unsupported tag {_show_tag(node.tag)}")
        if node.tag == _NULL:
            self.fail(node, "mapping key is empty (null)")
        return str(node.value)

    def scalar(self, node: ScalarNode) -> Any:
        tag, text = node.tag, str(node.value)
        if tag in (_STR, _MERGE):  # a plain "<<" is a merge only as a mapping key
            return text
        if tag == _NULL and _NULL_RE.fullmatch(text):
            return None
        if tag == _BOOL and _BOOL_RE.fullmatch(text):
            return text[0] in "tT"
        if tag in (_INT, _FLOAT) and _INT_RE.fullmatch(text):
            try:
                number = int(text[2:], 8 if text[1] == "o" else 16) if text[:2] in ("0o", "0x") else int(text)
            except ValueError:  # more digits than int() accepts
                self.fail(node, "number out of range")
            return Decimal(number) if tag == _FLOAT else number
        if tag == _FLOAT and _FLOAT_RE.fullmatch(text):
            decimal = Decimal(text)
            if abs(decimal.adjusted()) > _MAX_EXPONENT:
                self.fail(node, f"number out of range: {text} (limit 1e±{_MAX_EXPONENT})")
            return decimal
        if tag == _FLOAT and _NONFINITE_RE.fullmatch(text):
            self.fail(node, f"non-finite numbers are not allowed: {text}")
        if tag in _SCALAR_TAGS:
            self.fail(node, f"{text!r} is not a valid {tag.removeprefix(_T)}")
        if tag in (_MAP, _SEQ):
            self.fail(node, f"tag {_show_tag(tag)} does not fit a scalar")
        self.fail(node, f"unsupported tag {_show_tag(tag)}")


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "mapping"
    return "list" if isinstance(node, SequenceNode) else "scalar"


def _is_empty(root: Node) -> bool:
    """A document with no content (a bare ``---`` or only comments) composes to an empty null scalar."""
    return isinstance(root, ScalarNode) and root.tag == _NULL and not root.value


def _show_tag(tag: str) -> str:
    return "'!!" + tag.removeprefix(_T) + "'" if tag.startswith(_T) else repr(tag)


def _issue(source: str, message: str, line: int = 0, column: int = 0) -> SpecSyntaxError:
    return SpecSyntaxError(SpecIssue(SourceLocation(source, line, column), message))


def _translate(error: yaml.YAMLError, source: str, text: str) -> SpecSyntaxError:
    """A PyYAML error as a located, plain-words :class:`SpecSyntaxError`."""
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return _issue(source, f"not valid YAML: {str(error).splitlines()[0]}")
    mark = error.problem_mark
    lines = re.split(r"\r\n|\r|\n", text)
    line_text = lines[mark.line] if mark.line < len(lines) else ""
    indent = re.match(r"[ \t]*", line_text)
    tab_at = mark.column if line_text[mark.column : mark.column + 1] == "\t" else -1
    if indent and "\t" in indent.group():
        tab_at = indent.group().index("\t")
    if tab_at >= 0:
        return _issue(
            source,
            f"tab character used for indentation at line {mark.line + 1} column {tab_at + 1}; YAML requires spaces",
            mark.line + 1,
            tab_at + 1,
        )
    problem = str(error.problem or "syntax error")
    if "maximum nesting depth" in problem:
        return _issue(source, f"nesting is deeper than {MAX_DEPTH} levels", mark.line + 1, mark.column + 1)
    message = f"not valid YAML: {problem}"
    context = error.context_mark
    if error.context and context is not None and (context.line, context.column) != (mark.line, mark.column):
        message += f" ({error.context} started at line {context.line + 1} column {context.column + 1})"
    elif error.context:
        message += f" ({error.context})"
    return _issue(source, message, mark.line + 1, mark.column + 1)


def _documents(text: str, source: str) -> Iterator[SourceDocument]:
    text = text.removeprefix("\ufeff")
    bad = _UNPRINTABLE_RE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise _issue(
            source,
            f"control character U+{ord(bad.group()):04X} is not allowed in YAML (is this a binary file?)",
            line,
            column,
        )
    loader = _Loader(text)
    try:
        index = 0
        while loader.check_node():
            root = loader.get_node()
            if root is not None and not _is_empty(root):
                builder = _Builder(source)
                start = builder.loc(root)
                builder.locations[()] = start
                data = builder.build(root, ())
                yield SourceDocument(source, index, data, builder.locations, start)
            index += 1
    except yaml.YAMLError as error:
        raise _translate(error, source, text) from None
    except RecursionError:  # only the pure-Python composer recurses without a depth limit
        raise _issue(source, f"nesting is deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def load_text(text: str, source: str = "<string>") -> list[SourceDocument]:
    """Every non-empty document of ``text``; ``source`` names it in locations and errors."""
    if len(text) > MAX_SOURCE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise _issue(source, "input is larger than 1 MiB; spec sources are limited to 1 MiB")
    gc_was_enabled = gc.isenabled()
    gc.disable()  # composing many small objects with the collector on is several times slower
    try:
        documents = list(_documents(text, source))
    finally:
        if gc_was_enabled:
            gc.enable()
    if not documents:
        raise _issue(source, f"{_noun(source)} is empty: no YAML documents")
    return documents


def _load_bytes(raw: bytes, source: str) -> list[SourceDocument]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = len(raw[raw.rfind(b"\n", 0, error.start) + 1 : error.start].decode("utf-8", "replace")) + 1
        raise _issue(source, f"{_noun(source)} is not valid UTF-8 text", line, column) from None
    return load_text(text, source)


def _noun(source: str) -> str:
    return "input" if source.startswith("<") else "file"


def _size(size: int) -> str:
    return f"{size / MAX_SOURCE_BYTES:.1f} MiB" if size >= 1.05 * MAX_SOURCE_BYTES else f"{size} bytes"


def _load_file(path: Path, source: str) -> list[SourceDocument]:
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise _issue(source, f"file is {_size(size)}; spec files are limited to 1 MiB")
        with path.open("rb") as stream:
            raw = stream.read(MAX_SOURCE_BYTES + 1)
    except OSError as error:
        raise _issue(source, f"cannot read: {(error.strerror or str(error)).lower()}") from None
    if len(raw) > MAX_SOURCE_BYTES:
        raise _issue(source, "file is larger than 1 MiB; spec files are limited to 1 MiB")
    return _load_bytes(raw, source)


def _spec_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found.extend(
            Path(directory, name) for name in files if not name.startswith(".") and name.lower().endswith(SPEC_SUFFIXES)
        )
    return sorted(found, key=lambda file: file.relative_to(root).parts)


def _collect_path(path: str | Path, documents: list[SourceDocument], issues: list[SpecIssue]) -> None:
    source = str(path)
    root = Path(path)
    if not root.exists():
        issues.append(SpecIssue(SourceLocation(source), "no such file or directory"))
        return
    files = _spec_files(root) if root.is_dir() else [root]
    if not files:
        issues.append(SpecIssue(SourceLocation(source), f"no .yaml, .yml or .json files found in {source}"))
    for file in files:
        try:
            documents.extend(_load_file(file, source if file is root else str(file)))
        except SpecSyntaxError as error:
            issues.append(error.issue)


def spec_files(path: str | Path) -> list[Path]:
    """The files a path stands for: itself, or every spec file below a directory (as :func:`load_path` reads)."""
    root = Path(path)
    return _spec_files(root) if root.is_dir() else [root]


def load_path(path: str | Path) -> list[SourceDocument]:
    """A file, or every ``*.yaml``/``*.yml``/``*.json`` file below a directory (sorted, hidden skipped)."""
    documents: list[SourceDocument] = []
    issues: list[SpecIssue] = []
    _collect_path(path, documents, issues)
    if issues:
        raise SpecSyntaxError(issues[0])
    return documents


def load_stdin(stream: TextIO | None = None) -> list[SourceDocument]:
    """The documents of ``stream`` (default: the process's standard input), named ``<stdin>``."""
    stream = sys.stdin if stream is None else stream
    binary = getattr(stream, "buffer", None)
    if binary is not None:
        raw = binary.read(MAX_SOURCE_BYTES + 1)
    else:
        raw = stream.read(MAX_SOURCE_BYTES + 1).encode("utf-8", "surrogatepass")
    if len(raw) > MAX_SOURCE_BYTES:
        raise _issue("<stdin>", "input is larger than 1 MiB; spec sources are limited to 1 MiB")
    return _load_bytes(raw, "<stdin>")


def load_sources_collect(paths: Sequence[str]) -> tuple[list[SourceDocument], list[SpecIssue]]:
    """Like :func:`load_sources`, but keeps going past bad sources and returns every problem found."""
    documents: list[SourceDocument] = []
    issues: list[SpecIssue] = []
    for path in paths:
        if path == "-":
            try:
                documents.extend(load_stdin())
            except SpecSyntaxError as error:
                issues.append(error.issue)
        else:
            _collect_path(path, documents, issues)
    return documents, issues


def load_sources(paths: Sequence[str]) -> list[SourceDocument]:
    """The documents of every path in order (``-`` is stdin); raises on the first problem found."""
    documents, issues = load_sources_collect(paths)
    if issues:
        raise SpecSyntaxError(issues[0])
    return documents
