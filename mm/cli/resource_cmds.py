"""kubectl-like verbs: apply, diff, get, describe, history, rollback, delete, status, wait, shutdown, reload.

Each talks to a running node's control API (see :mod:`mm.cli.client`); ``apply``, ``diff``, ``get``,
``history`` and ``rollback`` also work offline on a state dir with no node running (the same admission and
operations code). Exit codes: 0 ok, 1 error; ``diff``: 0 no difference, 1 differences, 2 error.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from mm.cli.client import ApiError, Target, resolve_target
from mm.cli.exit_codes import ExitCode
from mm.clock import WallClock, format_rfc3339_us
from mm.controller import operations
from mm.controller.offline import OfflineSession
from mm.domain.errors import MmError
from mm.observability.redaction import redact, redact_text
from mm.specs.envelope import KINDS, resolve_kind
from mm.specs.yaml_loader import spec_files

__all__ = ["apply", "delete", "describe", "diff", "get", "history", "reload", "rollback", "shutdown", "status", "wait"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

Server = Annotated[str | None, typer.Option("--server", help="Control API URL (or MMCTL_SERVER).")]
StateDir = Annotated[
    Path | None, typer.Option("--state-dir", help="The node's state dir (or MMCTL_STATE_DIR; default ./data).")
]
Output = Annotated[str, typer.Option("--output", "-o", help="Output format.")]


def _kind(text: str) -> str:
    info = resolve_kind(text)
    if info is None:
        raise typer.BadParameter(f"unknown kind {text!r}; kinds: {', '.join(KINDS)}")
    return info.kind


def _ref(text: str) -> tuple[str, str]:
    kind, sep, name = text.partition("/")
    if not sep or not name:
        raise typer.BadParameter(f"{text!r}: use KIND/NAME, e.g. market/btc-5pm")
    return _kind(kind), name


def _read(paths: list[str]) -> list[tuple[str, str]]:
    """``(source name, text)`` for every file of FILE|DIR|- (a directory: its spec files, sorted)."""
    sources: list[tuple[str, str]] = []
    for path in paths:
        if path == "-":
            sources.append(("<stdin>", sys.stdin.read()))
            continue
        if not Path(path).exists():
            raise typer.BadParameter(f"{path}: no such file or directory")
        for file in spec_files(path):
            sources.append((str(file), file.read_text()))
    return sources


def _online(server: str | None, state_dir: Path | None, why: str) -> Target:
    """The running node's API, or an error saying why this verb needs one."""
    target = resolve_target(server, state_dir)
    if not target.online:
        raise ApiError(f"{why}: no running node found for {target.state_dir}; start one or pass --server")
    return target


def _offline(target: Target) -> OfflineSession:
    return OfflineSession(target.state_dir)


# ------------------------------------------------------------------ apply / diff


def apply(
    filename: Annotated[list[str], typer.Option("--filename", "-f", help="FILE, DIR or '-'. Repeatable.")],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-R", help="Directories are always read recursively (kubectl compat).")
    ] = True,
    dry_run: Annotated[str | None, typer.Option("--dry-run", help="client or server: show, do not store.")] = None,
    force_conflicts: Annotated[bool, typer.Option("--force-conflicts", help="Take over objects git-ops owns.")] = False,
    output: Output = "name",
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """Create or update resources: one line per object, `kind/name created|configured|unchanged`."""
    if dry_run not in (None, "client", "server"):
        raise typer.BadParameter("--dry-run must be client or server")
    target = resolve_target(server, state_dir)
    sources = _read(filename)
    if target.online:
        body = target.request(
            "POST",
            "/resources/apply",
            json={
                "sources": [{"name": n, "text": t} for n, t in sources],
                "dry_run": dry_run is not None,
                "force_conflicts": force_conflicts,
                "manager": "cli",
            },
        )
        results = body["results"]
    else:
        results = asyncio.run(_apply_offline(target, sources, dry_run is not None, force_conflicts))
    _print_outcomes(results, output)
    return ExitCode.OK


async def _apply_offline(
    target: Target, sources: list[tuple[str, str]], dry_run: bool, force: bool
) -> list[dict[str, Any]]:
    async with _offline(target) as session:
        admitted = operations.admit_sources(session.resources, sources)
        outcomes = operations.apply(session.resources, admitted, manager="cli", dry_run=dry_run, force_conflicts=force)
        return [o.to_json() for o in outcomes]


def _print_outcomes(results: list[dict[str, Any]], output: str) -> None:
    if output in ("json", "yaml"):
        _dump({"results": results}, output)
        return
    for r in results:
        suffix = " (dry run)" if r.get("dry_run") else ""
        out.print(f"{r['kind'].lower()}/{r['name']} {r['action']}{suffix}", markup=False)


def diff(
    filename: Annotated[list[str], typer.Option("--filename", "-f", help="FILE, DIR or '-'. Repeatable.")],
    plan: Annotated[
        bool, typer.Option("--plan", help="Also show the order actions the change would cause now.")
    ] = False,
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """Unified diff of the live resources against FILE; exit 0 no difference, 1 differences, 2 error."""
    try:
        target = resolve_target(server, state_dir)
        sources = _read(filename)
        if target.online:
            named = [{"name": n, "text": t} for n, t in sources]
            body = target.request("POST", "/resources/diff", json={"sources": named, "plan": plan})
        else:
            body = asyncio.run(_diff_offline(target, sources))
            if plan:
                body["plan"] = {"(offline)": ["no node is running: no order plan to preview"]}
    except (MmError, typer.BadParameter, OSError) as exc:
        err.print(f"error: {redact_text(str(exc))}", markup=False)
        return 2
    for item in body["diffs"]:
        sys.stdout.write(item["diff"])
    if plan and body.get("plan"):
        out.print("\nOrder plan (what would happen now):", style="bold")
        for market, lines in sorted(body["plan"].items()):
            out.print(f"  Market/{market}:", markup=False)
            for line in lines:
                out.print(f"    {line}", markup=False)
    return ExitCode.DIFFERENCES if body["diffs"] else ExitCode.OK


async def _diff_offline(target: Target, sources: list[tuple[str, str]]) -> dict[str, Any]:
    async with _offline(target) as session:
        admitted = operations.admit_sources(session.resources, sources)
        return {"diffs": [d.to_json() for d in operations.diff(session.resources, admitted)]}


# ------------------------------------------------------------------ reading


def get(
    kind: Annotated[str, typer.Argument(help="A kind, plural or short name.")],
    name: Annotated[str | None, typer.Argument(help="One object (omit for all).")] = None,
    selector: Annotated[str | None, typer.Option("--selector", "-l", help="Labels: k=v[,k=v].")] = None,
    output: Output = "table",
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """List resources (table, wide, yaml, json, name) or show one."""
    real = _kind(kind)
    target = resolve_target(server, state_dir)
    if name is not None:
        document = (
            target.request("GET", f"/resources/{real}/{name}")
            if target.online
            else asyncio.run(_get_offline(target, real, name))
        )
        document.pop("events", None)
        _dump(document, output if output in ("json", "yaml") else "yaml")
        return ExitCode.OK
    if target.online:
        items = target.request("GET", "/resources", params={"kind": real, "selector": selector})["items"]
    else:
        items = asyncio.run(_list_offline(target, real, selector))
    if output in ("json", "yaml"):
        _dump({"items": items}, output)
    elif output == "name":
        for item in items:
            out.print(f"{item['kind'].lower()}/{item['name']}", markup=False)
    else:
        table = Table(box=None, pad_edge=False)
        columns = ["NAME", "GENERATION", "PHASE", "READY"] + (
            ["OBSERVED", "MANAGER", "LABELS"] if output == "wide" else []
        )
        for column in columns:
            table.add_column(column)
        for item in items:
            row = [item["name"], str(item["generation"]), str(item.get("phase") or ""), str(item.get("ready", ""))]
            if output == "wide":
                labels = ",".join(f"{k}={v}" for k, v in (item.get("labels") or {}).items())
                row += [str(item.get("observed_generation", "")), str(item.get("manager", "")), labels]
            table.add_row(*row)
        out.print(table)
    return ExitCode.OK


async def _get_offline(target: Target, kind: str, name: str) -> dict[str, Any]:
    async with _offline(target) as session:
        stored = session.resources.get(kind, name)
        if stored is None:
            raise ApiError(f"{kind}/{name} not found")
        document = operations.manifest(stored)
        document["spec"] = redact(document["spec"])
        document["metadata"]["generation"] = stored.generation
        return document


async def _list_offline(target: Target, kind: str, selector: str | None) -> list[dict[str, Any]]:
    wanted = dict(p.split("=", 1) for p in selector.split(",")) if selector else {}
    async with _offline(target) as session:
        return [
            {
                "kind": r.kind,
                "name": r.name,
                "generation": r.generation,
                "phase": "",
                "ready": "Unknown",
                "labels": r.labels,
            }
            for r in session.resources.all(kind)
            if all(r.labels.get(k) == v for k, v in wanted.items())
        ]


def _dump(document: Any, output: str) -> None:
    if output == "json":
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def describe(
    ref: Annotated[str, typer.Argument(help="KIND/NAME")],
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """Spec summary, conditions and recent events of one object (needs a running node)."""
    kind, name = _ref(ref)
    target = _online(server, state_dir, "describe shows conditions and events, which live in the node")
    document = target.request("GET", f"/resources/{kind}/{name}")
    status = document.get("status", {})
    out.print(f"Name:        {name}\nKind:        {kind}", markup=False)
    out.print(f"Generation:  {document['metadata'].get('generation')} (observed {status.get('observed_generation')})")
    out.print(f"Phase:       {status.get('phase', '')}  {status.get('message', '')}", markup=False)
    table = Table(title="Conditions", box=None, pad_edge=False)
    for column in ("TYPE", "STATUS", "REASON", "MESSAGE"):
        table.add_column(column)
    for c in status.get("conditions", []):
        table.add_row(c["type"], c["status"], c["reason"], c["message"])
    out.print(table)
    out.print("Spec:", style="bold")
    sys.stdout.write(yaml.safe_dump(document.get("spec", {}), sort_keys=False))
    out.print("Events:", style="bold")
    for event in document.get("events", []):
        out.print(f"  {event['reason']}: {event['message']}", markup=False)
    return ExitCode.OK


def history(
    ref: Annotated[str, typer.Argument(help="KIND/NAME")],
    output: Output = "table",
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """Revisions of one object: REVISION, DIGEST, SOURCE, CHANGE-CAUSE, APPLIED AT."""
    kind, name = _ref(ref)
    target = resolve_target(server, state_dir)
    if target.online:
        items = target.request("GET", f"/resources/{kind}/{name}/revisions")["items"]
    else:
        items = asyncio.run(_history_offline(target, kind, name))
    if output == "json":
        sys.stdout.write(json.dumps({"items": items}, indent=2) + "\n")
        return ExitCode.OK
    table = Table(box=None, pad_edge=False)
    for column in ("REVISION", "DIGEST", "SOURCE", "CHANGE-CAUSE", "APPLIED AT"):
        table.add_column(column)
    for r in items:
        table.add_row(
            str(r["revision"]), r["digest"][7:19], r["source"], r["change_cause"], format_rfc3339_us(r["applied_at_us"])
        )
    out.print(table)
    return ExitCode.OK


async def _history_offline(target: Target, kind: str, name: str) -> list[dict[str, Any]]:
    async with _offline(target) as session:
        if session.resources.get(kind, name) is None:
            raise ApiError(f"{kind}/{name} not found")
        return [operations.revision_json(r) for r in session.resources.history(kind, name)]


# ------------------------------------------------------------------ changing


def rollback(
    ref: Annotated[str, typer.Argument(help="KIND/NAME")],
    to_revision: Annotated[int | None, typer.Option("--to-revision", min=1, help="Default: the previous one.")] = None,
    suspend_source: Annotated[
        bool, typer.Option("--suspend-source", help="Git-ops manages it: stop applying the source first.")
    ] = False,
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """Store an earlier revision again as a new one, after cancelling the affected Markets' orders (FR-1005)."""
    kind, name = _ref(ref)
    target = resolve_target(server, state_dir)
    if target.online:
        body = target.request(
            "POST",
            f"/resources/{kind}/{name}/rollback",
            json={"to_revision": to_revision, "suspend_source": suspend_source},
        )
        out.print(
            f"{kind.lower()}/{name} rolled back to revision {body['rolled_back_to']} "
            f"(generation {body['generation']}, {body['orders_cancelled']} orders cancelled first)",
            markup=False,
        )
    else:
        revision = asyncio.run(_rollback_offline(target, kind, name, to_revision))
        out.print(f"{kind.lower()}/{name} rolled back to revision {revision} (offline)", markup=False)
    return ExitCode.OK


async def _rollback_offline(target: Target, kind: str, name: str, to_revision: int | None) -> int:
    async with _offline(target) as session:
        _outcome, chosen = operations.rollback(session.resources, kind, name, to_revision=to_revision, manager="cli")
        return chosen.revision


def delete(
    ref: Annotated[str, typer.Argument(help="KIND/NAME")],
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """Delete an object (a Market first carries out its deletion policy)."""
    kind, name = _ref(ref)
    target = _online(server, state_dir, "delete runs a Market's deletion policy at the exchange")
    body = target.request("DELETE", f"/resources/{kind}/{name}")
    out.print(f"{body['deleted'].lower()} deleted", markup=False)
    return ExitCode.OK


def status(output: Output = "text", server: Server = None, state_dir: StateDir = None) -> int:
    """The node and every market: phase, position, PnL, open orders, last reconcile."""
    target = _online(server, state_dir, "status reports a running node")
    body = target.request("GET", "/status")
    if output == "json":
        sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")
        return ExitCode.OK
    node = body["node"]
    resources = body["resources"]
    node_resource = next((r for r in resources if r["kind"] == "TradingNode"), None)
    state = node_resource.get("trading_state", "active") if node_resource else "active"
    out.print(
        f"Node: trading state {state}, kill switch {'TRIPPED' if node['kill_switch'] else 'armed'}, "
        f"{node['orders_sent']} orders sent, {node['fills']} fills",
        markup=False,
    )
    for exchange in (r for r in resources if r["kind"] == "Exchange"):
        out.print(
            f"  Exchange/{exchange['name']}: {exchange.get('phase') or 'Pending'}, "
            f"connected {exchange.get('connected', False)}, foreign orders {exchange.get('foreign_orders', 0)}",
            markup=False,
        )
    for source in body.get("sources") or []:
        line = f"  source {source.get('source')}: {source.get('phase')}"
        if source.get("last_commit"):
            line += f" at {source['last_commit']}"
        if source.get("phase") != "Ready" and source.get("last_error"):
            line += f" — {source['last_error']}"
        out.print(line, markup=False)
    for account in node["accounts"]:
        out.print(
            f"  {account['exchange']}/{account['execution']}: net PnL {account['net_pnl']} USD, "
            f"open orders {account['open_orders']}",
            markup=False,
        )
    table = Table(box=None, pad_edge=False)
    columns = ("MARKET", "TICKER", "PHASE", "POSITION", "REALIZED", "UNREALIZED", "OPEN", "LAST RECONCILE", "READY")
    for column in columns:
        table.add_column(column)
    for r in resources:
        if r["kind"] != "Market":
            continue
        last = r.get("last_reconcile_us")
        table.add_row(
            r["name"],
            str(r.get("ticker", "")),
            str(r.get("phase") or ""),
            str(r.get("position", "")),
            str(r.get("realized_pnl", "")),
            str(r.get("unrealized_pnl", "")),
            str(r.get("open_orders", "")),
            format_rfc3339_us(last)[11:19] if isinstance(last, int) else "",
            str(r.get("ready", "")),
        )
    out.print(table)
    return ExitCode.OK


def wait(
    ref: Annotated[str, typer.Argument(help="KIND/NAME")],
    for_: Annotated[str, typer.Option("--for", help="condition=TYPE (e.g. condition=Ready).")] = "condition=Ready",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds.")] = 30.0,
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """Wait until a condition is True for the object's current generation (observed_generation honoured)."""
    kind, name = _ref(ref)
    prefix, sep, condition = for_.partition("=")
    if prefix != "condition" or not sep or not condition:
        raise typer.BadParameter("--for must be condition=TYPE")
    target = resolve_target(server, state_dir)
    clock = WallClock()
    deadline_ns = clock.monotonic_ns() + int(timeout * 1e9)
    while True:
        try:
            document = target.request("GET", f"/resources/{kind}/{name}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            document = None
        if document is not None:
            status_doc = document.get("status", {})
            generation = document["metadata"].get("generation")
            met = any(
                c["type"] == condition and c["status"] == "True" and c.get("observed_generation") == generation
                for c in status_doc.get("conditions", [])
            )
            if met and status_doc.get("observed_generation") == generation:
                out.print(f"{kind.lower()}/{name} condition met", markup=False)
                return ExitCode.OK
        if clock.monotonic_ns() > deadline_ns:
            err.print(f"error: timed out waiting for {for_} on {kind.lower()}/{name}", markup=False)
            return ExitCode.ERROR
        time.sleep(0.1)


def shutdown(
    mode: Annotated[str, typer.Option("--mode", help="immediate, drain, pause or unwind.")] = "drain",
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """Ask the node to stop: every mode cancels our orders; drain then waits for fills, unwind flattens, pause saves
    state for a restart, immediate goes at once (docs/operations.md)."""
    target = resolve_target(server, state_dir)
    target.request("POST", "/control/shutdown", json={"mode": mode})
    out.print(f"shutdown requested ({mode})", markup=False)
    return ExitCode.OK


def reload(server: Server = None, state_dir: StateDir = None) -> int:
    """Rescan the node's source files now (as SIGHUP does)."""
    target = resolve_target(server, state_dir)
    body = target.request("POST", "/control/reload")
    changed = body.get("changed") or []
    out.print("reloaded: " + (", ".join(changed) if changed else "no changes"), markup=False)
    return ExitCode.OK
