"""``mmctl run`` (the node), and the minimal ``mmctl kill`` / ``mmctl resume --confirm`` against its API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mm.cli.client import ApiError, resolve_target
from mm.controller.launch import RunOptions, run_node
from mm.observability.logging import configure_logging

__all__ = ["kill", "resume", "run"]

out = Console(highlight=False, soft_wrap=True)


def run(
    filename: Annotated[list[str], typer.Option("--filename", "-f", help="Resource files or directories.")],
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Lock, checkpoints, database, API token (default: the node's).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", min=0.1, help="Stop after this many real seconds (default: ^C).")
    ] = None,
    api_port: Annotated[int | None, typer.Option("--api-port", help="Control API port (0 = any free port).")] = None,
    shutdown: Annotated[
        str | None,
        typer.Option("--shutdown", help="immediate, drain, unwind or pause on SIGTERM/SIGINT (default: the node's)."),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="Summary as text or json.")] = "text",
    watch: Annotated[
        list[str] | None,
        typer.Option("--watch", help="Git-ops: watch this directory (repeatable) and apply what it declares."),
    ] = None,
) -> int:
    """Run the market maker: reconcile the declared resources until stopped, then print a summary.

    Exit codes: 0 stopped on request, 3 forced immediate (SIGQUIT, second Ctrl-C), 4 kill switch tripped,
    5 health check failed, 6 shutdown incomplete (orders left open or writes not flushed); see docs/operations.md.
    """
    if shutdown is not None and shutdown not in ("immediate", "drain", "pause", "unwind"):
        raise typer.BadParameter("--shutdown must be immediate, drain, pause or unwind")

    def started(runtime: Any, api: Any) -> None:
        token_path = runtime.options.state_dir / "api-token"
        sys.stderr.write(f"mmctl: running; control API {api.url} (token in {token_path})\n")
        sys.stderr.flush()

    configure_logging(os.environ.get("MMCTL_LOG_LEVEL", "INFO"))  # stderr: stdout carries the summary (-o json)
    summary = asyncio.run(
        run_node(
            RunOptions(
                paths=filename,
                state_dir=state_dir,
                duration_s=duration,
                api_port=api_port,
                shutdown_mode=shutdown,
                on_started=started,
                watch=watch,
            )
        )
    )
    if output == "json":
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
    else:
        _print_summary(summary)
    return int(summary.get("exit_code", 0))


def _print_summary(summary: dict[str, Any]) -> None:
    out.print("Summary", style="bold")
    selected = summary.get("markets_selected") or []
    out.print(f"  markets quoted: {len(selected)}", markup=False)
    for ticker in selected:
        out.print(f"    {ticker}", markup=False)
    out.print(f"  orders sent: {summary.get('orders_sent', 0)}   fills: {summary.get('fills', 0)}", markup=False)
    out.print(f"  kill switch tripped: {summary.get('kill_switch')}", markup=False)
    for account in summary.get("final") or summary.get("accounts") or []:
        out.print(
            f"  account {account['exchange']}/{account['execution']}: net PnL {account['net_pnl']} USD "
            f"(realized {account['realized_pnl']}, unrealized {account['unrealized_pnl']}, fees {account['fees']}), "
            f"cash {account['cash']}, open orders {account['open_orders']}",
            markup=False,
        )
        positions = account.get("positions") or {}
        if positions:
            for market, qty in sorted(positions.items()):
                out.print(f"    position {market}: {Decimal(qty)} YES", markup=False)
        else:
            out.print("    no open positions", markup=False)
    failures = summary.get("reconcile_failures") or {}
    if failures:
        out.print(f"  reconcile failures: {failures}", markup=False)
    shutdown = summary.get("shutdown")
    if shutdown:
        out.print(
            f"  shutdown: {shutdown['mode']} ({shutdown['trigger']}) in {shutdown['seconds']} s, "
            f"{shutdown['cancelled']} orders cancelled, {shutdown['open_orders_left']} left open"
            + (f", unwound {shutdown['unwound_contracts']} contracts" if shutdown["mode"] == "unwind" else "")
            + ("" if shutdown["flushed"] else ", DATABASE NOT FULLY FLUSHED"),
            markup=False,
        )
        for note in shutdown.get("notes") or []:
            out.print(f"    {note}", markup=False)
    out.print(f"  state dir: {summary.get('state_dir')}", markup=False)


def kill(
    reason: Annotated[str, typer.Option(help="Why (recorded with the trip).")] = "manual kill",
    market: Annotated[str | None, typer.Option(help="Only this Market (its own switch); default: the node.")] = None,
    server: Annotated[str | None, typer.Option("--server", help="Control API URL (or MMCTL_SERVER).")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="The node's state dir.")] = None,
) -> int:
    """Trip the kill switch: cancel every order of ours and halt (latched until `mmctl resume --confirm`)."""
    target = resolve_target(server, state_dir)
    if not target.online:
        raise ApiError(f"no running node found for {target.state_dir}: pass --server or --state-dir")
    result = target.request("POST", "/kill", json={"reason": reason, "market": market})
    out.print(f"kill switch tripped ({result['scope']}); {result.get('cancelled', 0)} orders cancelled", markup=False)
    return 0


def resume(
    confirm: Annotated[bool, typer.Option("--confirm", help="Required: a person resets the kill switch.")] = False,
    operator: Annotated[str, typer.Option(help="Who resets it (recorded).")] = "",
    market: Annotated[str | None, typer.Option(help="Only this Market's switch; default: the node's.")] = None,
    server: Annotated[str | None, typer.Option("--server", help="Control API URL (or MMCTL_SERVER).")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="The node's state dir.")] = None,
) -> int:
    """Reset the kill switch (requires --confirm)."""
    if not confirm:
        raise typer.BadParameter("resuming trading needs --confirm")
    who = operator or os.environ.get("USER", "operator")
    target = resolve_target(server, state_dir)
    if not target.online:
        raise ApiError(f"no running node found for {target.state_dir}: pass --server or --state-dir")
    target.request("POST", "/resume", json={"confirm": True, "operator": who, "market": market})
    out.print("kill switch reset: trading resumes on the next cycle", markup=False)
    return 0
