"""FR-1007 change notifications by webhook: every configuration change event is POSTed to the TradingNode's
``api.change_webhooks``, retried with exponential backoff (0.5 s, 1 s, 2 s, …) up to ``max_attempts``.

The payload has FR-1007's ``ConfigChangeEvent`` shape — ``timestamp``, ``change_type`` (``reload``,
``param_update``, ``component_swap``, ``rollback``, ``apply``, ``delete``), ``component`` (``Kind/name``),
``changes`` (``[{param, old, new}]`` between the last two revisions), ``triggered_by``, ``success``, ``error`` — plus
the full ``before``/``after`` specs, redacted. Delivery never blocks the node: events wait in a bounded queue
served by one background task; a URL from ``url_env`` is read when the webhook starts and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from mm.clock import format_rfc3339_us
from mm.controller.operations import param_changes
from mm.controller.runtime import NodeRuntime
from mm.observability.redaction import redact, redact_text
from mm.specs.node import ChangeWebhook

__all__ = ["CHANGE_REASONS", "ChangeWebhooks"]

_logger = logging.getLogger(__name__)

CHANGE_REASONS = {
    "Created": "apply",
    "Configured": "param_update",
    "Reloaded": "reload",
    "RolledBack": "rollback",
    "ReloadRolledBack": "rollback",
    "Deleted": "delete",
}
"""Node event reasons that are configuration changes, and their FR-1007 ``change_type``."""

Sleep = Callable[[float], Awaitable[None]]


class ChangeWebhooks:
    """Delivers change events to every configured URL (see the module docstring)."""

    def __init__(
        self,
        runtime: NodeRuntime,
        targets: list[ChangeWebhook],
        *,
        environ: Mapping[str, str] | None = None,
        sleep: Sleep = asyncio.sleep,
        base_delay_s: float = 0.5,
        queue_size: int = 1000,
    ) -> None:
        env = os.environ if environ is None else environ
        self.runtime = runtime
        self._targets = [(t.url or env.get(t.url_env or "", ""), t.max_attempts) for t in targets]
        self._targets = [(url, attempts) for url, attempts in self._targets if url]
        self._sleep = sleep
        self._base = base_delay_s
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    def start(self) -> None:
        if not self._targets:
            return
        self._client = httpx.AsyncClient(timeout=5.0)
        self.runtime.node.event_listeners.append(self._on_event)
        self._task = asyncio.create_task(self._run(), name="change-webhooks")

    async def stop(self) -> None:
        if self._on_event in self.runtime.node.event_listeners:
            self.runtime.node.event_listeners.remove(self._on_event)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    def payload(self, entry: tuple[int, str, str, str]) -> dict[str, Any] | None:
        """The FR-1007 event for a node event, or None when it is not a configuration change."""
        at, subject, reason, message = entry
        change_type = CHANGE_REASONS.get(reason)
        if change_type is None or "/" not in subject:
            return None
        kind, _, name = subject.partition("/")
        history = self.runtime.resources.history(kind, name)
        before = dict(history[-2].spec) if len(history) >= 2 else {}
        after = dict(history[-1].spec) if history and reason != "Deleted" else {}
        if change_type == "param_update" and before.get("components") != after.get("components"):
            slots = [
                slot
                for slot in set(before.get("components", {})) | set(after.get("components", {}))
                if (before.get("components", {}).get(slot) or {}).get("type")
                != (after.get("components", {}).get(slot) or {}).get("type")
            ]
            if slots:
                change_type = "component_swap"
        trigger = message.split("by ", 1)[1].split(":")[0] if "by " in message else "api"
        return {
            "timestamp": format_rfc3339_us(at),
            "change_type": change_type,
            "component": subject,
            "changes": redact(param_changes(before, after)),
            "triggered_by": trigger if trigger in ("file_watch", "api", "signal", "cli") else "api",
            "success": reason != "ReloadRolledBack",
            "error": redact_text(message) if reason == "ReloadRolledBack" else None,
            "before": redact(before),
            "after": redact(after),
        }

    def _on_event(self, entry: tuple[int, str, str, str]) -> None:
        body = self.payload(entry)
        if body is None:
            return
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            self.dropped += 1
            _logger.error("change webhook queue full: event for %s dropped", body["component"])

    async def _run(self) -> None:
        while True:
            body = await self._queue.get()
            for url, attempts in self._targets:
                await self._deliver(url, attempts, body)

    async def _deliver(self, url: str, attempts: int, body: dict[str, Any]) -> None:
        assert self._client is not None
        for attempt in range(attempts):
            try:
                response = await self._client.post(url, json=body)
                if response.status_code < 300:
                    self.delivered += 1
                    return
                why = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                why = type(exc).__name__
            if attempt + 1 < attempts:
                await self._sleep(self._base * (2**attempt))
        self.failed += 1
        _logger.warning("change webhook gave up after %d attempts (%s) for %s", attempts, why, body["component"])
