"""Errors about declared resources: where they are (file, line, column) and what is wrong.

Every problem found while loading or admitting specs is a :class:`SpecIssue`; admission collects all of
them and raises one :class:`AdmissionError` carrying the list, so a user sees every mistake at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mm.domain.errors import MmError


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A position in a spec source. ``line`` and ``column`` are 1-based; 0 means unknown."""

    source: str
    """A file path, ``<stdin>``, or another label such as ``<api>``."""
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.source
        return f"{self.source}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class SpecIssue:
    """One problem in one resource: ``file:line:col: Kind/name: field.path: message``."""

    location: SourceLocation
    message: str
    resource: str = ""
    """``Kind/name`` when known (empty while the document cannot be read as a resource)."""
    field_path: str = ""
    """Dotted path inside the document, e.g. ``spec.components.volatility.params.alpha``."""

    def __str__(self) -> str:
        parts = [str(self.location)]
        if self.resource:
            parts.append(self.resource)
        if self.field_path:
            parts.append(self.field_path)
        parts.append(self.message)
        return ": ".join(parts)


class SpecError(MmError):
    """Base class of errors about declared resources."""


class SpecSyntaxError(SpecError):
    """A source that cannot be read as YAML documents (or is too large, or too deeply aliased)."""

    def __init__(self, issue: SpecIssue) -> None:
        super().__init__(str(issue))
        self.issue = issue


class AdmissionError(SpecError):
    """One or more resources failed admission; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        self.issues = tuple(issues)
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} found"
        super().__init__(head + ":\n" + "\n".join(f"  {issue}" for issue in self.issues))
