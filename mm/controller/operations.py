"""The kubectl-like operations on declared resources: apply, diff, history, rollback, delete, get.

One implementation serves the control API (a running node) and the CLI's offline mode (a state dir with no
node running): both hold a :class:`ResourceStore`. Admission is the same as ``mmctl validate``'s, against the
resources already stored (a Market applied alone finds its Exchange, Strategy and RiskPolicy).

* **Managers and conflicts.** Every resource records who applies it (annotation ``mm/managed-by``: ``cli``,
  ``api``, ``git:<sha>`` / ``file:<dir>`` for the git-ops source, ``MarketSelector/<name>`` for owned Markets).
  Applying an object whose manager is a git-ops source (or a selector) from elsewhere is a
  :class:`ApplyConflictError` unless ``force_conflicts``; a forced apply records ``mm/overridden-by`` so the
  source reports it instead of fighting.
* **apply** reports ``created``, ``configured`` or ``unchanged`` per object (digests of the materialised
  spec: ``0.10`` and ``0.1`` are the same); ``dry_run`` computes that without storing anything.
* **diff** is a unified YAML diff of the live spec against what would be stored (defaults materialised,
  sensitive values masked), per changed object.
* **rollback** re-admits an earlier revision's spec (refused if it no longer validates) and stores it as a new
  revision (FR-1005); the caller cancels outstanding orders of the affected Markets first.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from mm.controller.errors import ControllerError
from mm.controller.resources import ResourceStore, StoredResource
from mm.observability.redaction import redact
from mm.specs.admission import AdmittedResource, admit_or_raise
from mm.specs.envelope import API_VERSION
from mm.specs.errors import SpecError
from mm.specs.yaml_loader import SourceDocument, load_text
from mm.state.records import RevisionRecord

__all__ = [
    "MANAGER",
    "OVERRIDDEN",
    "ApplyConflictError",
    "ApplyOutcome",
    "ResourceDiff",
    "RollbackError",
    "StoreLookup",
    "admit_sources",
    "admit_text",
    "apply",
    "check_rollback",
    "diff",
    "manifest",
    "param_changes",
    "revision_json",
    "rollback",
]

MANAGER = "mm/managed-by"
OVERRIDDEN = "mm/overridden-by"
Action = Literal["created", "configured", "unchanged"]


class ApplyConflictError(ControllerError):
    """Objects managed by another source (git-ops, a selector) would be changed: use force_conflicts."""

    def __init__(self, conflicts: Sequence[tuple[str, str]]) -> None:
        self.conflicts = list(conflicts)
        lines = [f"{key} is managed by {manager}" for key, manager in conflicts]
        super().__init__("apply conflicts: " + "; ".join(lines) + " (re-run with --force-conflicts to take them over)")


class RollbackError(ControllerError):
    """The rollback target does not exist or no longer validates."""


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    kind: str
    name: str
    action: Action
    generation: int
    dry_run: bool = False

    def line(self) -> str:
        return f"{self.kind.lower()}/{self.name} {self.action}" + (" (dry run)" if self.dry_run else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "generation": self.generation,
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True, slots=True)
class ResourceDiff:
    kind: str
    name: str
    live: str
    """The live spec as YAML ('' when the object does not exist)."""
    desired: str
    unified: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "diff": self.unified}


class StoreLookup:
    """Admission's view of what already exists (for references)."""

    def __init__(self, resources: ResourceStore) -> None:
        self._resources = resources

    def get_spec(self, kind: str, name: str) -> Mapping[str, Any] | None:
        found = self._resources.get(kind, name)
        return None if found is None else found.spec_data


def admit_text(resources: ResourceStore, text: str, source: str = "<apply>") -> tuple[AdmittedResource, ...]:
    """Admit YAML text (one or more documents) against the stored resources; raises AdmissionError/SpecError."""
    return admit_documents(resources, load_text(text, source))


def admit_sources(resources: ResourceStore, sources: Sequence[tuple[str, str]]) -> tuple[AdmittedResource, ...]:
    """Admit several named texts as one bundle (problems then name each file, line and field)."""
    documents = [doc for name, text in sources for doc in load_text(text, name)]
    return admit_documents(resources, documents)


def admit_documents(resources: ResourceStore, documents: Sequence[SourceDocument]) -> tuple[AdmittedResource, ...]:
    return admit_or_raise(documents, StoreLookup(resources))


def _manager(stored: StoredResource) -> str:
    if stored.owner:
        return stored.owner
    return stored.annotations.get(MANAGER, "")


def _protected(manager: str) -> bool:
    return manager.startswith(("git:", "file:", "MarketSelector/"))


def apply(
    resources: ResourceStore,
    admitted: Sequence[AdmittedResource],
    *,
    manager: str = "cli",
    dry_run: bool = False,
    force_conflicts: bool = False,
    change_cause: str = "",
) -> list[ApplyOutcome]:
    """Store ``admitted`` (see the module docstring); all-or-nothing on conflicts."""
    conflicts = []
    for resource in admitted:
        stored = resources.get(resource.kind, resource.name)
        if stored is None or stored.digest == resource.digest:
            continue
        current = _manager(stored)
        if current and current != manager and _protected(current) and not force_conflicts:
            conflicts.append((f"{resource.kind}/{resource.name}", current))
    if conflicts:
        raise ApplyConflictError(conflicts)
    outcomes = []
    for resource in admitted:
        stored = resources.get(resource.kind, resource.name)
        if stored is None:
            action: Action = "created"
        elif stored.digest == resource.digest:
            action = "unchanged"
        else:
            action = "configured"
        if dry_run:
            generation = 1 if stored is None else stored.generation + (action == "configured")
            outcomes.append(ApplyOutcome(resource.kind, resource.name, action, generation, dry_run=True))
            continue
        previous_manager = _manager(stored) if stored is not None else ""
        resources.apply(resource, source=manager, change_cause=change_cause)  # a change records its manager
        now = resources.require(resource.kind, resource.name)
        if action != "unchanged" and previous_manager not in ("", manager) and _protected(previous_manager):
            now.annotations[OVERRIDDEN] = manager
        outcomes.append(ApplyOutcome(resource.kind, resource.name, action, now.generation))
    return outcomes


def param_changes(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """``[{"param": "a.b", "old": ..., "new": ...}]`` for every leaf that differs (FR-1004/1007's shape)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out = []
        for key in sorted(set(before) | set(after)):
            out += param_changes(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if before == after else [{"param": path, "old": before, "new": after}]


def _yaml(spec: Mapping[str, Any] | None) -> str:
    if spec is None:
        return ""
    return yaml.safe_dump(redact(dict(spec)), sort_keys=True, default_flow_style=False, allow_unicode=True)


def diff(resources: ResourceStore, admitted: Sequence[AdmittedResource]) -> list[ResourceDiff]:
    """Per object that would change: the unified diff of its live spec against the admitted one."""
    out = []
    for resource in admitted:
        stored = resources.get(resource.kind, resource.name)
        if stored is not None and stored.digest == resource.digest:
            continue
        live = _yaml(stored.spec_data if stored is not None else None)
        desired = _yaml(resource.spec_data)
        label = f"{resource.kind}/{resource.name}"
        unified = "".join(
            difflib.unified_diff(
                live.splitlines(keepends=True),
                desired.splitlines(keepends=True),
                fromfile=f"live/{label}",
                tofile=f"desired/{label}",
            )
        )
        out.append(ResourceDiff(resource.kind, resource.name, live, desired, unified))
    return out


def revision_json(record: RevisionRecord) -> dict[str, Any]:
    """One revision as ``history`` shows it (times in µs since the epoch)."""
    return {
        "revision": record.revision,
        "generation": record.generation,
        "digest": record.digest,
        "source": record.source,
        "change_cause": record.change_cause,
        "applied_at_us": record.created_us,
    }


def manifest(stored: StoredResource, spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A resource as a document: envelope, metadata, spec (the stored one or ``spec``)."""
    return {
        "apiVersion": API_VERSION,
        "kind": stored.kind,
        "metadata": {"name": stored.name, "labels": dict(stored.labels), "annotations": dict(stored.annotations)},
        "spec": dict(spec if spec is not None else stored.spec_data),
    }


def check_rollback(
    resources: ResourceStore,
    kind: str,
    name: str,
    to_revision: int | None = None,
    *,
    source_suspended: bool = False,
) -> RevisionRecord:
    """The revision a rollback would restore, or :class:`RollbackError` — before anything is done (orders are
    cancelled only for a rollback that will happen)."""
    stored = resources.get(kind, name)
    if stored is None:
        raise RollbackError(f"{kind}/{name} does not exist")
    current = _manager(stored)
    if current.startswith(("git:", "file:")) and not source_suspended:
        raise RollbackError(
            f"{kind}/{name} is managed by {current}: its watcher would re-apply the files over a rollback; "
            "revert the change in the source, or pass --suspend-source"
        )
    history = resources.history(kind, name)
    if not history:
        raise RollbackError(f"{kind}/{name} has no revisions")
    if to_revision is None:
        earlier = [r for r in history if r.digest != stored.digest]
        if not earlier:
            raise RollbackError(f"{kind}/{name} has no earlier revision to roll back to")
        return earlier[-1]
    matches = [r for r in history if r.revision == to_revision]
    if not matches:
        kept = ", ".join(str(r.revision) for r in history)
        raise RollbackError(f"{kind}/{name} has no revision {to_revision} (kept: {kept})")
    return matches[0]


def rollback(
    resources: ResourceStore,
    kind: str,
    name: str,
    *,
    to_revision: int | None = None,
    manager: str = "cli",
    source_suspended: bool = False,
) -> tuple[ApplyOutcome, RevisionRecord]:
    """Store revision ``to_revision`` (default: the one before the current) again, as a new revision.

    An object a git-ops source manages is refused unless that source was suspended first (``source_suspended``):
    the watcher would otherwise re-apply the files over the rollback."""
    target = check_rollback(resources, kind, name, to_revision, source_suspended=source_suspended)
    stored = resources.require(kind, name)
    document = yaml.safe_dump(manifest(stored, target.spec), sort_keys=False)
    try:
        admitted = admit_text(resources, document, f"{kind}/{name}@{target.revision}")
    except SpecError as exc:  # admission refused it: the old spec no longer validates today
        raise RollbackError(f"revision {target.revision} of {kind}/{name} no longer validates: {exc}") from exc
    outcome = apply(
        resources,
        admitted,
        manager=manager,
        force_conflicts=True,
        change_cause=f"rollback to revision {target.revision}",
    )
    return outcome[0], target
