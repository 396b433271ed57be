"""NFR-403's alert endpoints: the history and a test alert. Mounted behind the control API's bearer token.

* ``GET /alerts`` — the most recent alerts first: ``{"items": [...], "stats": {...}}``. Query parameters:
  ``severity`` (``info``/``warning``/``critical``: only that severity), ``name`` (only that alert),
  ``limit`` (1–1000, default 100). Each item is :meth:`~mm.alerting.alerts.AlertEntry.to_json`: the alert's
  fields (``timestamp`` RFC 3339 and ``timestamp_us`` µs since the epoch), its ``status`` (``delivered``,
  ``partial``, ``failed``, ``pending``, ``throttled``, ``unrouted``) and per-channel outcomes. ``stats``:
  counts, pending deliveries, throttle totals per name, the channels (never their secrets).
* ``POST /alerts/test`` — body (optional) ``{"message", "severity", "requested_by"}``: sends ``test_alert``
  through every enabled channel, whatever their severity filters and the throttle, waits for the outcomes
  (up to the 30 s delivery deadline) and answers ``{"ok", "alert", "channels": [...]}``; ``ok`` is true
  when every channel accepted it. HTTP 200 either way — the body says which channel failed and why.

Both answer 503 when the node runs without an alert manager.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from mm.alerting import AlertManager

__all__ = ["AlertTestBody", "ManagerProvider", "alert_router"]

ManagerProvider = Callable[[], AlertManager | None]
"""Returns the node's alert manager, or None while there is none (the routes then answer 503)."""

SeverityParam = Literal["info", "warning", "critical"]


class AlertTestBody(BaseModel):
    message: str = Field("Test alert from mmctl", min_length=1, max_length=2000)
    severity: SeverityParam = "info"
    requested_by: str = Field("api", max_length=100, description="Who asked (recorded with the alert).")


def alert_router(manager_provider: ManagerProvider) -> APIRouter:
    """The ``/alerts`` routes; mount with ``app.include_router(alert_router(...), dependencies=[auth])``."""
    router = APIRouter(prefix="/alerts", tags=["alerts"])

    def manager() -> AlertManager:
        found = manager_provider()
        if found is None:
            raise HTTPException(503, "alerting is not running on this node")
        return found

    @router.get("")
    async def list_alerts(
        severity: SeverityParam | None = None,
        name: str | None = Query(None, max_length=200),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        alerts = manager()
        entries = alerts.history(severity=severity, name=name, limit=limit)
        return {"items": [e.to_json() for e in entries], "stats": alerts.stats()}

    @router.post("/test")
    async def test_alert(body: AlertTestBody | None = None) -> dict[str, Any]:
        request = body if body is not None else AlertTestBody()
        alerts = manager()
        try:
            entry = await alerts.test_alert(request.message, request.severity, requested_by=request.requested_by)
        except RuntimeError as exc:
            raise HTTPException(503, str(exc)) from None
        return {
            "ok": entry.status == "delivered",
            "alert": entry.to_json(),
            "channels": [o.to_json() for o in entry.outcomes.values()],
        }

    return router
