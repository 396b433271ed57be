"""FR-1004's configuration endpoints, on top of resources: every change is a new revision of a Strategy or
RiskPolicy (admitted like any apply, subject to ``max_changes_per_minute``), answered with the requirement's
shape ``{"status": "applied", "changes": [{"param", "old", "new"}], "applied_at"}``.

``name`` selects the Strategy / RiskPolicy when the node has several (otherwise the only one is used).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mm.api.hooks import ApiHooks
from mm.clock import format_rfc3339_us
from mm.controller.operations import RollbackError, admit_text, manifest, param_changes
from mm.controller.resources import StoredResource
from mm.controller.runtime import ChangeRateLimitedError, NodeRuntime
from mm.domain.errors import MmError
from mm.observability.redaction import redact, redact_text
from mm.specs.errors import SpecError

__all__ = ["config_router"]


class ParamsBody(BaseModel):
    component: str = Field(pattern=r"^(volatility|reservation_price|skew|spread|sizer)$")
    params: dict[str, Any]
    name: str | None = None


class RuleBody(BaseModel):
    settings: dict[str, Any] = Field(description="Fields of the rule to change, e.g. {'limit': 50}.")
    name: str | None = None


class SwapBody(BaseModel):
    component: str = Field(pattern=r"^(volatility|reservation_price|skew|spread|sizer)$")
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    state_transfer: bool = False
    name: str | None = None


def config_router(runtime: NodeRuntime, hooks: ApiHooks) -> APIRouter:
    router = APIRouter(prefix="/config")

    def pick(kind: str, name: str | None) -> StoredResource:
        items = runtime.resources.all(kind)
        if name is not None:
            items = [r for r in items if r.name == name]
        if not items:
            raise HTTPException(404, f"no {kind}" + (f" named {name!r}" if name else ""))
        if len(items) > 1:
            names = ", ".join(r.name for r in items)
            raise HTTPException(400, f"several {kind}s ({names}): pass name")
        return items[0]

    def change(stored: StoredResource, new_spec: dict[str, Any], cause: str) -> Any:
        document = yaml.safe_dump(manifest(stored, new_spec), sort_keys=False)
        try:
            admitted = admit_text(runtime.resources, document, f"<config {stored.kind}/{stored.name}>")
            before = copy.deepcopy(stored.spec_data)
            runtime.apply_documents(admitted, manager="api", force_conflicts=True, change_cause=cause)
        except SpecError as exc:
            problems = getattr(exc, "issues", None) or [exc]
            return JSONResponse({"error": "invalid", "problems": [redact_text(str(p)) for p in problems]}, 422)
        except ChangeRateLimitedError as exc:
            return JSONResponse({"error": str(exc)}, status_code=429)
        after = runtime.resources.require(stored.kind, stored.name).spec_data
        return {
            "status": "applied",
            "resource": f"{stored.kind}/{stored.name}",
            "generation": runtime.resources.require(stored.kind, stored.name).generation,
            "changes": redact(param_changes(before, after)),
            "applied_at": format_rfc3339_us(runtime.clock.now_us()),
        }

    @router.get("")
    async def get_config() -> Any:
        return {
            "strategies": {r.name: redact(r.spec_data) for r in runtime.resources.all("Strategy")},
            "risk_policies": {r.name: redact(r.spec_data) for r in runtime.resources.all("RiskPolicy")},
            "node": {r.name: redact(r.spec_data) for r in runtime.resources.all("TradingNode")},
        }

    @router.get("/strategy")
    async def get_strategy(name: str | None = None) -> Any:
        stored = pick("Strategy", name)
        return {"name": stored.name, "generation": stored.generation, "spec": redact(stored.spec_data)}

    @router.get("/risk")
    async def get_risk(name: str | None = None) -> Any:
        stored = pick("RiskPolicy", name)
        return {"name": stored.name, "generation": stored.generation, "spec": redact(stored.spec_data)}

    @router.put("/strategy/params")
    async def put_params(body: ParamsBody) -> Any:
        stored = pick("Strategy", body.name)
        spec = copy.deepcopy(stored.spec_data)
        slot = spec.setdefault("components", {}).setdefault(body.component, {})
        slot["params"] = {**slot.get("params", {}), **body.params}
        return change(stored, spec, f"params of {body.component} via the API")

    @router.put("/risk/rules/{rule}")
    async def put_rule(rule: str, body: RuleBody) -> Any:
        stored = pick("RiskPolicy", body.name)
        spec = copy.deepcopy(stored.spec_data)
        rules = spec.setdefault("rules", {})
        if rule not in rules:
            raise HTTPException(404, f"unknown rule {rule!r}; rules: {', '.join(sorted(rules))}")
        rules[rule] = {**rules[rule], **body.settings}
        return change(stored, spec, f"rule {rule} via the API")

    @router.post("/component/swap")
    async def swap(body: SwapBody) -> Any:
        stored = pick("Strategy", body.name)
        spec = copy.deepcopy(stored.spec_data)
        slot: dict[str, Any] = {"type": body.type, "params": body.params}
        if body.component == "volatility":
            slot["state_transfer"] = body.state_transfer
        spec.setdefault("components", {})[body.component] = slot
        return change(stored, spec, f"swap {body.component} to {body.type} via the API")

    @router.post("/reload")
    async def reload() -> Any:
        if hooks.reload is None:
            raise HTTPException(409, "this node has no source files to reload")
        try:
            return {"status": "reloaded", "changed": await hooks.reload()}
        except MmError as exc:
            return JSONResponse({"error": redact_text(str(exc))}, status_code=422)

    @router.get("/history")
    async def history(kind: str = "Strategy", name: str | None = None) -> Any:
        stored = pick(kind, name)
        return {
            "resource": f"{stored.kind}/{stored.name}",
            "items": [
                {
                    "version": r.revision,
                    "digest": r.digest,
                    "source": r.source,
                    "change_cause": r.change_cause,
                    "applied_at": format_rfc3339_us(r.created_us),
                }
                for r in runtime.resources.history(stored.kind, stored.name)
            ],
        }

    @router.post("/rollback/{version}")
    async def rollback(version: int, kind: str = "Strategy", name: str | None = None) -> Any:
        stored = pick(kind, name)
        before = copy.deepcopy(stored.spec_data)
        try:
            _outcome, target, cancelled = await runtime.rollback(stored.kind, stored.name, to_revision=version)
        except RollbackError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except ChangeRateLimitedError as exc:
            return JSONResponse({"error": str(exc)}, status_code=429)
        after = runtime.resources.require(stored.kind, stored.name).spec_data
        return {
            "status": "applied",
            "rolled_back_to": target.revision,
            "orders_cancelled": cancelled,
            "changes": redact(param_changes(before, after)),
            "applied_at": format_rfc3339_us(runtime.clock.now_us()),
        }

    return router
