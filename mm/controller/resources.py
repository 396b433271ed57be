"""The controller's view of declared resources: spec (written by people) and status (written by reconcilers).

:class:`ResourceStore` keeps every resource in memory — reconcilers read it on the hot path — and hands each
new revision to an optional persistence hook (the SQLite store, through the write-behind queue). Rules from
design.md §2:

* ``generation`` increases only when the spec's digest changes; re-applying the same spec is a no-op;
* every change is a revision (``source``, ``change_cause``); the last ``history_limit`` are kept for
  rollback, which applies an old spec as a *new* revision;
* ``spec`` and ``status`` have separate write paths: :meth:`apply` never touches status and
  :meth:`set_status` never touches spec, so apply and the controller cannot overwrite each other;
* watchers hear ``(kind, name)`` of every spec change and deletion; status writes are silent (they must not
  re-trigger the reconcile that wrote them);
* ``owner``: a resource created by another (a MarketSelector's Markets) names it, and is listed by
  :meth:`owned_by`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mm.clock import Clock
from mm.controller.errors import ControllerError
from mm.specs.admission import AdmittedResource
from mm.specs.canonical import digest as spec_digest
from mm.state.records import ResourceDeletedRecord, RevisionRecord

__all__ = ["Condition", "ResourceStore", "StoredResource", "key_of", "split_key"]

ConditionStatus = Literal["True", "False", "Unknown"]


def key_of(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def split_key(key: str) -> tuple[str, str]:
    kind, _, name = key.partition("/")
    return kind, name


@dataclass(frozen=True, slots=True)
class Condition:
    """A Kubernetes-style condition: ``last_transition_us`` changes only when ``status`` does."""

    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""
    last_transition_us: int = 0
    observed_generation: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "last_transition_time_us": self.last_transition_us,
            "observed_generation": self.observed_generation,
        }


@dataclass(slots=True)
class StoredResource:
    kind: str
    name: str
    spec: Any
    """The admitted pydantic spec model."""
    spec_data: dict[str, Any]
    digest: str
    generation: int
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    owner: str | None = None
    created_us: int = 0
    status: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Condition] = field(default_factory=dict)
    observed_generation: int = 0

    @property
    def key(self) -> str:
        return key_of(self.kind, self.name)

    def condition(self, type_: str) -> Condition | None:
        return self.conditions.get(type_)

    def is_true(self, type_: str) -> bool:
        c = self.conditions.get(type_)
        return c is not None and c.status == "True"


SYSTEM_ANNOTATIONS = ("mm/managed-by", "mm/overridden-by")
"""Written by the system, not by the resource's author: a re-apply of the author's metadata keeps them."""


def _with_system(given: Mapping[str, str], current: Mapping[str, str]) -> dict[str, str]:
    merged = dict(given)
    for key in SYSTEM_ANNOTATIONS:
        if key in current and key not in merged:
            merged[key] = current[key]
    return merged


class NotFoundError(ControllerError):
    """No such resource."""


class ResourceStore:
    """Desired state plus status, in memory, with revisions handed to ``persist`` (see module docstring)."""

    def __init__(
        self,
        clock: Clock,
        *,
        history_limit: int = 20,
        persist: Callable[[RevisionRecord | ResourceDeletedRecord], None] | None = None,
    ) -> None:
        self._clock = clock
        self._history_limit = history_limit
        self._persist = persist
        self._resources: dict[str, StoredResource] = {}
        self._history: dict[str, list[RevisionRecord]] = {}
        self._watchers: list[Callable[[str, str], None]] = []

    # ------------------------------------------------------------------ reading

    def get(self, kind: str, name: str) -> StoredResource | None:
        return self._resources.get(key_of(kind, name))

    def require(self, kind: str, name: str) -> StoredResource:
        found = self.get(kind, name)
        if found is None:
            raise NotFoundError(f"{kind}/{name} does not exist")
        return found

    def all(self, kind: str | None = None) -> list[StoredResource]:
        return [r for r in self._resources.values() if kind is None or r.kind == kind]

    def owned_by(self, owner_key: str) -> list[StoredResource]:
        return [r for r in self._resources.values() if r.owner == owner_key]

    def history(self, kind: str, name: str) -> list[RevisionRecord]:
        return list(self._history.get(key_of(kind, name), []))

    def watch(self, callback: Callable[[str, str], None]) -> None:
        """``callback(kind, name)`` after every spec change or deletion."""
        self._watchers.append(callback)

    # ------------------------------------------------------------------ spec writes

    def apply(
        self,
        resource: AdmittedResource,
        *,
        source: str = "cli",
        change_cause: str = "",
        owner: str | None = None,
    ) -> bool:
        """Store an admitted resource; returns whether its spec changed (a new generation)."""
        meta = resource.metadata
        cause = change_cause or str(meta.annotations.get("mm/change-cause", ""))
        return self.apply_spec(
            resource.kind,
            resource.name,
            resource.spec,
            resource.spec_data,
            digest=resource.digest,
            labels=dict(meta.labels),
            annotations=dict(meta.annotations),
            source=source,
            change_cause=cause,
            owner=owner,
        )

    def apply_spec(
        self,
        kind: str,
        name: str,
        spec: Any,
        spec_data: Mapping[str, Any],
        *,
        digest: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        source: str = "controller",
        change_cause: str = "",
        owner: str | None = None,
    ) -> bool:
        key = key_of(kind, name)
        data = dict(spec_data)
        new_digest = digest if digest is not None else spec_digest(data)
        now = self._clock.now_us()
        current = self._resources.get(key)
        if current is not None and current.digest == new_digest:
            if labels is not None:
                current.labels = dict(labels)
            if annotations is not None:
                current.annotations = _with_system(annotations, current.annotations)
            return False
        if current is None:
            stored = StoredResource(
                kind=kind,
                name=name,
                spec=spec,
                spec_data=data,
                digest=new_digest,
                generation=1,
                labels=dict(labels or {}),
                annotations=dict(annotations or {}),
                owner=owner,
                created_us=now,
            )
            self._resources[key] = stored
        else:
            current.spec = spec
            current.spec_data = data
            current.digest = new_digest
            current.generation += 1
            if labels is not None:
                current.labels = dict(labels)
            if annotations is not None:
                current.annotations = _with_system(annotations, current.annotations)
            stored = current
        stored.annotations["mm/managed-by"] = source  # whoever applied the last change manages it now
        history = self._history.setdefault(key, [])
        record = RevisionRecord(
            kind=kind,
            name=name,
            revision=(history[-1].revision + 1) if history else 1,
            generation=stored.generation,
            digest=new_digest,
            spec=data,
            source=source,
            change_cause=change_cause,
            created_us=now,
        )
        history.append(record)
        del history[: -self._history_limit]
        if self._persist is not None:
            self._persist(record)
        self._notify(kind, name)
        return True

    def delete(self, kind: str, name: str) -> bool:
        key = key_of(kind, name)
        removed = self._resources.pop(key, None)
        if removed is None:
            return False
        history = self._history.get(key, [])
        if self._persist is not None and history:
            self._persist(ResourceDeletedRecord(kind, name, history[-1].revision, self._clock.now_us()))
        self._notify(kind, name)
        return True

    def restore(self, resource: AdmittedResource, generation: int, history: list[RevisionRecord]) -> None:
        """Seed a resource persisted by an earlier run (at start-up): no new revision, no watcher call; its
        revision numbers continue from ``history``."""
        key = key_of(resource.kind, resource.name)
        meta = resource.metadata
        self._resources[key] = StoredResource(
            kind=resource.kind,
            name=resource.name,
            spec=resource.spec,
            spec_data=resource.spec_data,
            digest=resource.digest,
            generation=generation,
            labels=dict(meta.labels),
            annotations=dict(meta.annotations),
            created_us=history[0].created_us if history else self._clock.now_us(),
        )
        if history:
            managers = history[-1].source
            self._resources[key].annotations.setdefault("mm/managed-by", managers)
        self._history[key] = list(history)[-self._history_limit :]

    def _notify(self, kind: str, name: str) -> None:
        for watcher in list(self._watchers):
            watcher(kind, name)

    # ------------------------------------------------------------------ status writes

    def set_status(self, kind: str, name: str, **fields: Any) -> None:
        """Merge ``fields`` into the resource's status (no watcher is called)."""
        resource = self._resources.get(key_of(kind, name))
        if resource is not None:
            resource.status.update(fields)

    def set_condition(
        self,
        kind: str,
        name: str,
        type_: str,
        status: ConditionStatus,
        reason: str = "",
        message: str = "",
    ) -> None:
        """Set one condition; its transition time moves only when its status changes."""
        resource = self._resources.get(key_of(kind, name))
        if resource is None:
            return
        now = self._clock.now_us()
        old = resource.conditions.get(type_)
        since = old.last_transition_us if old is not None and old.status == status else now
        resource.conditions[type_] = Condition(type_, status, reason, message, since, resource.generation)

    def observed(self, kind: str, name: str, generation: int) -> None:
        """The plan of ``generation`` ran (or stalled): only then is it observed (design.md §4)."""
        resource = self._resources.get(key_of(kind, name))
        if resource is not None and generation > resource.observed_generation:
            resource.observed_generation = generation

    def status_json(self, kind: str, name: str) -> dict[str, Any]:
        resource = self.require(kind, name)
        return {
            **resource.status,
            "observed_generation": resource.observed_generation,
            "conditions": [c.to_json() for c in resource.conditions.values()],
        }

    def snapshot(self) -> list[StoredResource]:
        """Copies of every resource (for ``status`` listings that must not see later mutations)."""
        return [
            replace(r, status=dict(r.status), conditions=dict(r.conditions), spec_data=dict(r.spec_data))
            for r in self._resources.values()
        ]

    def keys(self) -> Iterable[str]:
        return tuple(self._resources)
