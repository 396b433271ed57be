"""``mmctl run`` (the node), and the minimal ``mmctl kill`` / ``mmctl resume --confirm`` against its API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from mm.controller.launch import RunOptions, run_node
from mm.domain.errors import MmError

__all__ = ["kill", "resume", "run"]

out = Console(highlight=False, soft_wrap=True)


class ControlApiError(MmError):
    """The node's control API could not be reached or refused the request."""


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
        str | None, typer.Option("--shutdown", help="immediate, drain or pause (default: the node's).")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="Summary as text or json.")] = "text",
) -> int:
    """Run the market maker: reconcile the declared resources until stopped, then print a summary."""
    if shutdown is not None and shutdown not in ("immediate", "drain", "pause", "unwind"):
        raise typer.BadParameter("--shutdown must be immediate, drain, pause or unwind")

    def started(runtime: Any, api: Any) -> None:
        token_path = runtime.options.state_dir / "api-token"
        sys.stderr.write(f"mmctl: running; control API {api.url} (token in {token_path})\n")
        sys.stderr.flush()

    summary = asyncio.run(
        run_node(
            RunOptions(
                paths=filename,
                state_dir=state_dir,
                duration_s=duration,
                api_port=api_port,
                shutdown_mode=shutdown,
                on_started=started,
            )
        )
    )
    if output == "json":
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
    else:
        _print_summary(summary)
    return 0


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
    out.print(f"  state dir: {summary.get('state_dir')}", markup=False)


def _token(state_dir: Path, token_env: str | None) -> str:
    if token_env:
        value = os.environ.get(token_env, "")
        if not value:
            raise ControlApiError(f"environment variable {token_env} is not set")
        return value
    path = state_dir / "api-token"
    if not path.exists():
        raise ControlApiError(f"no API token at {path}: is the node running with --state-dir {state_dir}?")
    return path.read_text().strip()


def _post(url: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = httpx.post(url.rstrip("/") + path, json=body, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise ControlApiError(f"cannot reach the control API at {url}: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise ControlApiError(f"{path} refused: HTTP {response.status_code} {response.text[:200]}")
    result: dict[str, Any] = response.json()
    return result


def kill(
    reason: Annotated[str, typer.Option(help="Why (recorded with the trip).")] = "manual kill",
    api: Annotated[str, typer.Option(help="Control API URL.")] = "http://127.0.0.1:8080",
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the node keeps its API token.")] = Path(
        "./data"
    ),
    token_env: Annotated[str | None, typer.Option(help="Env var holding the API token instead.")] = None,
) -> int:
    """Trip the kill switch: cancel every order of ours and halt (latched until `mmctl resume --confirm`)."""
    result = _post(api, _token(state_dir, token_env), "/kill", {"reason": reason})
    out.print(f"kill switch tripped; {result.get('cancelled', 0)} orders cancelled", markup=False)
    return 0


def resume(
    confirm: Annotated[bool, typer.Option("--confirm", help="Required: a person resets the kill switch.")] = False,
    operator: Annotated[str, typer.Option(help="Who resets it (recorded).")] = "",
    api: Annotated[str, typer.Option(help="Control API URL.")] = "http://127.0.0.1:8080",
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the node keeps its API token.")] = Path(
        "./data"
    ),
    token_env: Annotated[str | None, typer.Option(help="Env var holding the API token instead.")] = None,
) -> int:
    """Reset the kill switch (requires --confirm)."""
    if not confirm:
        raise typer.BadParameter("resuming trading needs --confirm")
    who = operator or os.environ.get("USER", "operator")
    _post(api, _token(state_dir, token_env), "/resume", {"confirm": True, "operator": who})
    out.print("kill switch reset: trading resumes on the next cycle", markup=False)
    return 0
