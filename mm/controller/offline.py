"""Offline operations on a state dir when no node runs: ``mmctl apply / diff / get / history / rollback``.

An :class:`OfflineSession` opens the state dir's database, restores the stored resources (re-admitted, as the
node does at start-up), and persists every new revision through the write-behind queue, flushed on close. A node
started later picks the changes up (it restores stored resources before applying its files). The lock file
tells whether a node is running: then the session refuses, and the CLI should talk to the node instead.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml

from mm.clock import Clock, WallClock
from mm.controller.errors import ControllerError
from mm.controller.resources import ResourceStore
from mm.specs.admission import admit
from mm.specs.envelope import API_VERSION
from mm.specs.yaml_loader import load_text
from mm.state.checkpoint import LockFile, LockHeldError
from mm.state.records import Record
from mm.state.store import Store
from mm.state.write_behind import WriteBehindQueue

__all__ = ["NodeRunningError", "OfflineSession", "restore_resources"]


class NodeRunningError(ControllerError):
    """A node holds the state dir's lock: talk to it (``--server``) instead of editing its database."""


async def restore_resources(store: Store, resources: ResourceStore) -> list[str]:
    """Seed ``resources`` with what ``store`` holds (current spec, generation, revisions); returns problems
    (stored specs that no longer validate, left out)."""
    rows = await store.rows("resources")
    if not rows:
        return []
    histories = {(r["kind"], r["name"]): await store.revisions(r["kind"], r["name"]) for r in rows}
    documents = []
    for row in rows:
        manifest = {
            "apiVersion": API_VERSION,
            "kind": row["kind"],
            "metadata": {"name": row["name"]},
            "spec": orjson.loads(row["spec_json"]),
        }
        documents.extend(load_text(yaml.safe_dump(manifest, sort_keys=False), f"store:{row['kind']}/{row['name']}"))
    result = admit(documents)
    generations = {(r["kind"], r["name"]): int(r["generation"]) for r in rows}
    for resource in result.resources:
        key = (resource.kind, resource.name)
        resources.restore(resource, generations[key], histories.get(key, []))
    return [str(issue) for issue in result.issues]


class OfflineSession:
    """``async with OfflineSession(state_dir) as session: session.resources ...``"""

    def __init__(self, state_dir: Path, *, clock: Clock | None = None) -> None:
        self.state_dir = state_dir
        self.clock = clock if clock is not None else WallClock()
        self.store: Store | None = None
        self.queue: WriteBehindQueue | None = None
        self.resources = ResourceStore(self.clock, persist=self._persist)
        self.problems: list[str] = []
        self.lock = LockFile(state_dir / "mmctl.lock", self.clock)

    def _persist(self, record: Record) -> None:
        if self.queue is not None:
            self.queue.enqueue(record)

    async def __aenter__(self) -> OfflineSession:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.lock.acquire()  # held while we edit: a node cannot start meanwhile, nor we edit under a node
        except LockHeldError as exc:
            raise NodeRunningError(f"{exc}: a node runs on {self.state_dir}; use --server to talk to it") from exc
        self.store = await Store.open(self.state_dir / "mmctl.db")
        self.problems = await restore_resources(self.store, self.resources)
        self.queue = WriteBehindQueue(self.store, clock=self.clock)
        self.queue.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.queue is not None:
            await self.queue.close(timeout=30.0)
        if self.store is not None:
            await self.store.close()
        self.lock.release()
