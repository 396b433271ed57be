"""The controller manager: workers that take keys from the :class:`WorkQueue` and run the kind's reconciler.

* Each kind registers one :class:`Reconciler`; a key ``Kind/name`` is reconciled by ``reconcilers[Kind]``.
* A reconcile returns a :class:`Result` (optionally ``requeue_after_s``: time-driven work such as a market's
  next quote cycle) or raises: :class:`TransientError` → retried after its delay or the key's backoff;
  :class:`TerminalError` → the resource is ``Stalled`` (reason and message) until its spec changes; any other
  exception is a reconciler bug: logged with its traceback, counted, and retried with backoff. One key's
  failure never stops another key (FR-1300: markets are isolated).
* The watch on the :class:`ResourceStore` enqueues a changed key and its dependants (``dependants(kind,
  name)``: e.g. the Markets that reference a Strategy).
* A periodic resync enqueues every key (drift is caught even without events).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import structlog

from mm.controller.errors import TerminalError, TransientError
from mm.controller.resources import ResourceStore, key_of, split_key
from mm.controller.workqueue import WorkQueue

__all__ = ["ControllerManager", "Reconciler", "Result"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Result:
    """A finished reconcile; ``requeue_after_s`` schedules the next one (None = only on events/resync)."""

    requeue_after_s: float | None = None


class Reconciler(Protocol):
    kind: str

    async def reconcile(self, name: str) -> Result: ...


class ControllerManager:
    """Runs reconcilers for keys from the queue with ``workers`` parallel workers."""

    def __init__(
        self,
        queue: WorkQueue,
        resources: ResourceStore,
        *,
        workers: int = 4,
        resync_s: float = 30.0,
        dependants: Callable[[str, str], Iterable[str]] | None = None,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.queue = queue
        self.resources = resources
        self._reconcilers: dict[str, Reconciler] = {}
        self._workers = workers
        self._resync_s = resync_s
        self._dependants = dependants
        self._on_error = on_error
        self._tasks: list[asyncio.Task[None]] = []
        self.reconciles = 0
        self.failures: dict[str, int] = {}
        """Reconciles that raised something other than Transient/Terminal, by key (bugs)."""
        self.last_error: dict[str, str] = {}
        resources.watch(self._changed)

    def register(self, reconciler: Reconciler) -> None:
        self._reconcilers[reconciler.kind] = reconciler

    def enqueue(self, kind: str, name: str) -> None:
        self.queue.add(key_of(kind, name))

    def enqueue_all(self, kinds: Iterable[str] | None = None) -> None:
        wanted = set(kinds) if kinds is not None else None
        for resource in self.resources.all():
            if wanted is None or resource.kind in wanted:
                self.queue.add(resource.key)

    def _changed(self, kind: str, name: str) -> None:
        self.queue.add(key_of(kind, name))
        if self._dependants is not None:
            for key in self._dependants(kind, name):
                self.queue.add(key)

    async def start(self) -> None:
        for i in range(self._workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"reconcile-worker-{i}"))
        if self._resync_s > 0:
            self._tasks.append(asyncio.create_task(self._resync(), name="reconcile-resync"))

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop taking keys, let reconciles in flight finish (a request cut off mid-way leaves an unknown
        outcome), then cancel whatever is still running after ``grace_s``."""
        await self.queue.shutdown()
        running = [t for t in self._tasks if not t.done() and t.get_name().startswith("reconcile-worker")]
        if running:
            await asyncio.wait(running, timeout=grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self._resync_s)
            self.enqueue_all()

    async def _work(self) -> None:
        while (key := await self.queue.get()) is not None:
            try:
                await self.reconcile_key(key)
            finally:
                self.queue.done(key)

    async def reconcile_key(self, key: str) -> None:
        """Run one reconcile of ``key`` and schedule what follows (exposed for tests)."""
        kind, name = split_key(key)
        reconciler = self._reconcilers.get(kind)
        if reconciler is None:
            return  # reconcilers see deleted resources too (they clean up), so only unknown kinds are skipped
        self.reconciles += 1
        try:
            # correlation ids on every log line of this reconcile (NFR-401), the audit trail's included
            with structlog.contextvars.bound_contextvars(reconcile_id=f"{key}#{self.reconciles}", resource=key):
                result = await reconciler.reconcile(name)
        except TransientError as exc:
            self.last_error[key] = str(exc)
            if exc.delay_s is not None:
                self.queue.add_after(key, exc.delay_s)
            else:
                self.queue.add_rate_limited(key)
            return
        except TerminalError as exc:
            self.last_error[key] = str(exc)
            self.resources.set_condition(kind, name, "Ready", "False", exc.reason, str(exc))
            self.resources.set_condition(kind, name, "Stalled", "True", exc.reason, str(exc))
            stored = self.resources.get(kind, name)
            if stored is not None:
                self.resources.observed(kind, name, stored.generation)
            self.queue.forget(key)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a reconciler bug: isolate it, report it, retry with backoff
            self.failures[key] = self.failures.get(key, 0) + 1
            self.last_error[key] = repr(exc)
            _logger.exception("reconcile of %s failed", key)
            if self._on_error is not None:
                self._on_error(key, exc)
            self.queue.add_rate_limited(key)
            return
        self.queue.forget(key)
        self.last_error.pop(key, None)
        if result.requeue_after_s is not None:
            self.queue.add_after(key, result.requeue_after_s)
