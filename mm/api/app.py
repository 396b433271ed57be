"""The control API's application: every route, behind one bearer-token check.

Unauthenticated: ``GET /health``, ``GET /ready`` (both say only whether, never what), and ``GET /metrics`` when
the TradingNode sets ``metrics_public``. Everything else needs ``Authorization: Bearer <token>`` (constant-time
comparison), including the OpenAPI document at ``/openapi.json``.

Resources (kubectl semantics): ``POST /resources/apply`` (YAML text; ``dry_run``, ``force_conflicts``; 422 with
every admission problem, 409 on a manager conflict, 429 past ``max_changes_per_minute``), ``POST
/resources/diff`` (``plan`` adds the order actions), ``GET /resources`` (``kind``, ``selector`` ``k=v,k2=v2``),
``GET|DELETE /resources/{kind}/{name}``, ``GET /resources/{kind}/{name}/revisions``, ``POST
/resources/{kind}/{name}/rollback``. Control: ``/status``, ``/events`` (and the ``/events/stream`` WebSocket),
``/kill``, ``/resume``, ``/control/shutdown``, ``/control/reload``. Configuration (FR-1004): see
:mod:`mm.api.config_routes`.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from mm.api.alert_routes import alert_router
from mm.api.config_routes import config_router
from mm.api.hooks import ApiHooks
from mm.controller.gitops import source_statuses
from mm.controller.operations import (
    ApplyConflictError,
    RollbackError,
    admit_sources,
    diff,
    manifest,
    revision_json,
)
from mm.controller.resources import ResourceStore, StoredResource
from mm.controller.runtime import ChangeRateLimitedError, NodeRuntime
from mm.domain.errors import MmError
from mm.observability.metrics import render
from mm.observability.redaction import redact, redact_text
from mm.risk.kill_switch import KillSwitchError
from mm.specs.admission import AdmittedResource
from mm.specs.envelope import KINDS, resolve_kind
from mm.specs.errors import SpecError

__all__ = ["ApiHooks", "create_app", "resource_summary"]

KNOWN_KINDS = tuple(KINDS)


class Source(BaseModel):
    name: str = Field(description="Where the text came from (a file path): problems are reported against it.")
    text: str


class ApplyBody(BaseModel):
    documents: str = Field("", description="One or more YAML documents, as `mmctl apply -f` would read them.")
    sources: list[Source] = Field(default_factory=list, description="Or: named texts (one per file).")
    dry_run: bool = False
    force_conflicts: bool = False
    manager: str = Field("api", pattern=r"^[A-Za-z0-9:/._\-]{1,100}$")
    change_cause: str = ""


class DiffBody(BaseModel):
    documents: str = ""
    sources: list[Source] = Field(default_factory=list)
    plan: bool = False


class RollbackBody(BaseModel):
    to_revision: int | None = Field(None, ge=1)
    suspend_source: bool = Field(False, description="Suspend the git-ops source that manages the object first.")


class KillBody(BaseModel):
    reason: str = "manual kill via the control API"
    market: str | None = None


class ResumeBody(BaseModel):
    confirm: bool = False
    operator: str = "api"
    market: str | None = None


class ShutdownBody(BaseModel):
    mode: str = Field("drain", pattern=r"^(immediate|drain|pause|unwind)$")


def resource_summary(resources: ResourceStore, stored: StoredResource) -> dict[str, Any]:
    status = resources.status_json(stored.kind, stored.name)
    ready = next((c for c in status["conditions"] if c["type"] == "Ready"), None)
    return {
        "kind": stored.kind,
        "name": stored.name,
        "generation": stored.generation,
        "observed_generation": stored.observed_generation,
        "labels": stored.labels,
        "phase": stored.status.get("phase"),
        "ready": ready["status"] if ready else "Unknown",
        "manager": stored.annotations.get("mm/managed-by", stored.owner or ""),
    }


def _selector(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    pairs = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise HTTPException(400, f"label selector {text!r}: use key=value[,key=value]")
        pairs[key.strip()] = value.strip()
    return pairs


def _kind(text: str) -> str:
    info = resolve_kind(text)
    if info is None:
        raise HTTPException(404, f"unknown kind {text!r}; kinds: {', '.join(KNOWN_KINDS)}")
    return info.kind


def create_app(
    runtime: NodeRuntime, token: str, *, metrics_public: bool = False, hooks: ApiHooks | None = None
) -> FastAPI:
    app = FastAPI(title="mmctl control API", version="v1alpha1", docs_url=None, redoc_url=None, openapi_url=None)
    app_hooks = hooks if hooks is not None else ApiHooks()

    def authorised(request_token: str) -> bool:
        return hmac.compare_digest(request_token.encode(), token.encode())

    def bearer(request: Request) -> str:
        header = request.headers.get("authorization", "")
        return header[7:] if header.lower().startswith("bearer ") else ""

    async def require_token(request: Request) -> None:
        if not authorised(bearer(request)):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    public = APIRouter()
    private = APIRouter(dependencies=[Depends(require_token)])

    @public.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @public.get("/ready")
    async def ready(request: Request) -> Any:
        if runtime.is_ready():
            return {"ready": True}
        body: dict[str, Any] = {"ready": False}
        if authorised(bearer(request)):  # the reasons only for whoever holds the token
            body["reasons"] = runtime.not_ready_reasons()
        return JSONResponse(body, status_code=503)

    @public.get("/metrics")
    async def metrics(request: Request) -> Any:
        if not metrics_public and not authorised(bearer(request)):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401)
        return Response(render(runtime.metrics), media_type="text/plain; version=0.0.4")

    @private.get("/openapi.json")
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    @private.get("/status")
    async def status() -> dict[str, Any]:
        resources = [
            {**resource_summary(runtime.resources, r), **runtime.resources.status_json(r.kind, r.name)}
            for r in runtime.resources.all()
        ]
        return {"node": runtime.summary(), "resources": resources, "sources": source_statuses(runtime)}

    # ------------------------------------------------------------------ resources

    @private.post("/resources/apply")
    async def apply(body: ApplyBody) -> Any:
        try:
            admitted = _admit(runtime, body.documents, body.sources)
            outcomes = runtime.apply_documents(
                admitted,
                manager=body.manager,
                dry_run=body.dry_run,
                force_conflicts=body.force_conflicts,
                change_cause=body.change_cause,
            )
        except SpecError as exc:
            return JSONResponse({"error": "invalid", "problems": _problems(exc)}, status_code=422)
        except ApplyConflictError as exc:
            return JSONResponse({"error": str(exc), "conflicts": exc.conflicts}, status_code=409)
        except ChangeRateLimitedError as exc:
            return JSONResponse({"error": str(exc)}, status_code=429)
        return {"results": [o.to_json() for o in outcomes]}

    @private.post("/resources/diff")
    async def diff_route(body: DiffBody) -> Any:
        try:
            admitted = _admit(runtime, body.documents, body.sources)
        except SpecError as exc:
            return JSONResponse({"error": "invalid", "problems": _problems(exc)}, status_code=422)
        diffs = diff(runtime.resources, admitted)
        result: dict[str, Any] = {"diffs": [d.to_json() for d in diffs]}
        if body.plan:
            result["plan"] = runtime.preview_plans(admitted) if diffs else {}
        return result

    @private.get("/resources")
    async def list_resources(kind: str | None = None, selector: str | None = Query(None)) -> Any:
        wanted_kind = _kind(kind) if kind else None
        labels = _selector(selector)
        items = [
            resource_summary(runtime.resources, r)
            for r in runtime.resources.all(wanted_kind)
            if all(r.labels.get(k) == v for k, v in labels.items())
        ]
        return {"items": sorted(items, key=lambda i: (i["kind"], i["name"]))}

    @private.get("/resources/{kind}/{name}")
    async def get_resource(kind: str, name: str) -> Any:
        stored = runtime.resources.get(_kind(kind), name)
        if stored is None:
            raise HTTPException(404, f"{kind}/{name} not found")
        document = manifest(stored)
        document["spec"] = redact(document["spec"])
        document["metadata"]["generation"] = stored.generation
        document["status"] = runtime.resources.status_json(stored.kind, stored.name)
        events = [e for e in runtime.node.events if e[1] == f"{stored.kind}/{stored.name}"]
        document["events"] = [_event_json(e) for e in events[-20:]]
        return document

    @private.delete("/resources/{kind}/{name}")
    async def delete_resource(kind: str, name: str) -> Any:
        real = _kind(kind)
        if runtime.resources.get(real, name) is None:
            raise HTTPException(404, f"{kind}/{name} not found")
        if real in ("Exchange", "Strategy", "RiskPolicy"):
            users = runtime.affected_markets(real, name)
            if users:
                return JSONResponse(
                    {"error": f"{real}/{name} is still referenced by Market(s) {', '.join(users)}"}, status_code=409
                )
        runtime.resources.delete(real, name)
        runtime.node.event(f"{real}/{name}", "Deleted", "by api")
        return {"deleted": f"{real}/{name}"}

    @private.get("/resources/{kind}/{name}/revisions")
    async def revisions(kind: str, name: str) -> Any:
        real = _kind(kind)
        if runtime.resources.get(real, name) is None:
            raise HTTPException(404, f"{kind}/{name} not found")
        return {"items": [revision_json(r) for r in runtime.resources.history(real, name)]}

    @private.post("/resources/{kind}/{name}/rollback")
    async def rollback(kind: str, name: str, body: RollbackBody) -> Any:
        real = _kind(kind)
        try:
            suspend = app_hooks.suspend_source if body.suspend_source else None
            outcome, target, cancelled = await runtime.rollback(
                real, name, to_revision=body.to_revision, suspend_source=suspend
            )
        except RollbackError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except ChangeRateLimitedError as exc:
            return JSONResponse({"error": str(exc)}, status_code=429)
        return {**outcome.to_json(), "rolled_back_to": target.revision, "orders_cancelled": cancelled}

    # ------------------------------------------------------------------ events and control

    @private.get("/events")
    async def events(since_us: int = 0, subject: str | None = None) -> Any:
        items = [e for e in runtime.node.events if e[0] >= since_us and (subject is None or e[1] == subject)]
        return {"items": [_event_json(e) for e in items]}

    @app.websocket("/events/stream")
    async def event_stream(socket: WebSocket) -> None:
        supplied = socket.query_params.get("token") or bearer_from(socket.headers.get("authorization", ""))
        if not authorised(supplied):
            await socket.close(code=1008)
            return
        await socket.accept()
        queue: asyncio.Queue[tuple[int, str, str, str]] = asyncio.Queue(maxsize=1000)

        def push(entry: tuple[int, str, str, str]) -> None:
            if not queue.full():
                queue.put_nowait(entry)

        runtime.node.event_listeners.append(push)
        try:
            while True:
                entry = await queue.get()
                await socket.send_json(_event_json(entry))
        except WebSocketDisconnect:
            pass
        finally:
            runtime.node.event_listeners.remove(push)

    @private.post("/kill")
    async def kill(body: KillBody) -> Any:
        if body.market is not None:
            stored = runtime.resources.get("Market", body.market)
            if stored is None:
                raise HTTPException(404, f"Market/{body.market} not found")
            cancelled = await runtime.kill_market(body.market, body.reason)
            return {"tripped": True, "scope": f"market/{body.market}", "cancelled": cancelled}
        cancelled = await runtime.kill(body.reason, source="manual")
        return {"tripped": True, "scope": "node", "cancelled": cancelled}

    @private.post("/resume")
    async def resume(body: ResumeBody) -> Any:
        try:
            if body.market is not None:
                if runtime.resources.get("Market", body.market) is None:
                    raise HTTPException(404, f"Market/{body.market} not found")
                runtime.resume_market(body.market, confirm=body.confirm, operator=body.operator)
                state = runtime.node.latch.load(f"market/{body.market}")
                return {"scope": f"market/{body.market}", "tripped": bool(state and state.tripped)}
            runtime.resume(confirm=body.confirm, operator=body.operator)
        except KillSwitchError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return {"scope": "node", "tripped": runtime.node.node_switch.tripped}

    @private.post("/control/shutdown")
    async def shutdown(body: ShutdownBody) -> Any:
        if app_hooks.shutdown is None:
            raise HTTPException(409, "this node cannot be shut down through the API")
        app_hooks.shutdown(body.mode)
        return {"shutting_down": True, "mode": body.mode}

    @private.post("/control/reload")
    async def reload() -> Any:
        if app_hooks.reload is None:
            raise HTTPException(409, "this node has no source files to reload")
        try:
            return {"changed": await app_hooks.reload()}
        except MmError as exc:
            return JSONResponse({"error": redact_text(str(exc))}, status_code=422)

    app.include_router(public)
    app.include_router(private)
    app.include_router(config_router(runtime, app_hooks), dependencies=[Depends(require_token)])
    app.include_router(alert_router(lambda: runtime.alerts), dependencies=[Depends(require_token)])
    return app


def _admit(runtime: NodeRuntime, documents: str, sources: list[Source]) -> tuple[AdmittedResource, ...]:
    named = [(s.name, s.text) for s in sources]
    if documents:
        named.append(("<api>", documents))
    if not named:
        raise SpecError("nothing to apply: send documents or sources")
    return admit_sources(runtime.resources, named)


def bearer_from(header: str) -> str:
    return header[7:] if header.lower().startswith("bearer ") else ""


def _event_json(entry: tuple[int, str, str, str]) -> dict[str, Any]:
    at, subject, reason, message = entry
    return {"at_us": at, "subject": subject, "reason": reason, "message": redact_text(message)}


def _problems(exc: SpecError) -> list[str]:
    issues = getattr(exc, "issues", None)
    if issues:
        return [redact_text(str(i)) for i in issues]
    return [redact_text(str(exc))]
