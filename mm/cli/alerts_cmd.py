"""``mmctl alerts``: a running node's alert history (``list``) and a test alert through every channel (``test``).

Both talk to the node's control API (``GET /alerts``, ``POST /alerts/test``; see :mod:`mm.api.alert_routes`),
found like every online verb: ``--server`` / ``MMCTL_SERVER``, else the node running on ``--state-dir``.

Exit codes: 0 ok; 1 an error (no node, the API refused) — and for ``test``, any channel that did not accept
the alert (the output says which and why).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mm.cli.client import ApiError, Target, resolve_target
from mm.cli.exit_codes import ExitCode

__all__ = ["alerts_app", "format_alerts", "list_alerts", "test_alert"]

alerts_app = typer.Typer(
    help="Alerts of a running node (NFR-403): the history, and a test alert through every channel.",
    no_args_is_help=True,
)

out = Console(highlight=False, soft_wrap=True)

Server = Annotated[str | None, typer.Option("--server", help="Control API URL (or MMCTL_SERVER).")]
StateDir = Annotated[
    Path | None, typer.Option("--state-dir", help="The node's state dir (or MMCTL_STATE_DIR; default ./data).")
]
Output = Annotated[str, typer.Option("--output", "-o", help="table or json.")]

_SEVERITIES = ("info", "warning", "critical")
_MESSAGE_WIDTH = 80
_PIPED_WIDTH = 400


def _online(server: str | None, state_dir: Path | None) -> Target:
    target = resolve_target(server, state_dir)
    if not target.online:
        raise ApiError(f"no running node found for {target.state_dir}: pass --server or --state-dir")
    return target


def _check(output: str, severity: str | None) -> None:
    if output not in ("table", "json"):
        raise typer.BadParameter("--output must be table or json")
    if severity is not None and severity not in _SEVERITIES:
        raise typer.BadParameter(f"--severity must be one of {', '.join(_SEVERITIES)}")


def _time(item: dict[str, Any]) -> str:
    # RFC 3339 with microseconds from the API; seconds are enough in a table.
    text = str(item.get("timestamp", ""))
    return text[:19].replace("T", " ") + "Z" if len(text) >= 19 else text


def format_alerts(items: list[dict[str, Any]]) -> Table:
    """The ``list`` table: TIME (UTC), SEVERITY, NAME, MARKET, STATUS, MESSAGE (cells are never markup)."""
    table = Table(box=None, pad_edge=False)
    for column in ("TIME", "SEVERITY", "NAME", "MARKET", "STATUS"):
        table.add_column(column, no_wrap=True)
    table.add_column("MESSAGE", overflow="fold")  # the one column that wraps on a narrow terminal
    for item in items:
        message = str(item.get("message", ""))
        if len(message) > _MESSAGE_WIDTH:
            message = message[: _MESSAGE_WIDTH - 1] + "…"
        status = str(item.get("status", ""))
        if item.get("suppressed"):
            status += f" (+{item['suppressed']} suppressed)"
        cells = [_time(item), item.get("severity"), item.get("name"), item.get("market") or "", status, message]
        table.add_row(*(Text(str(c)) for c in cells))
    return table


@alerts_app.command("list")
def list_alerts(
    severity: Annotated[str | None, typer.Option(help="Only info, warning or critical.")] = None,
    name: Annotated[str | None, typer.Option(help="Only this alert (e.g. kill_switch_triggered).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 50,
    output: Output = "table",
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """The node's recent alerts, newest first: delivered, failed and throttled ones alike."""
    _check(output, severity)
    params: dict[str, Any] = {"limit": limit}
    if severity is not None:
        params["severity"] = severity
    if name is not None:
        params["name"] = name
    body = _online(server, state_dir).request("GET", "/alerts", params=params)
    items: list[dict[str, Any]] = body.get("items", [])
    if output == "json":
        sys.stdout.write(json.dumps(body, indent=2, sort_keys=True) + "\n")
    elif items:
        # On a terminal the MESSAGE column wraps to fit; piped, each alert stays on one line (grep-able).
        console = out if out.is_terminal else Console(highlight=False, width=_PIPED_WIDTH)
        console.print(format_alerts(items))
    else:
        out.print("no alerts", markup=False)
    return ExitCode.OK


@alerts_app.command("test")
def test_alert(
    message: Annotated[str, typer.Option(help="The test alert's text.")] = "Test alert from mmctl",
    severity: Annotated[str, typer.Option(help="info, warning or critical (sent to every channel regardless).")] = (
        "info"
    ),
    output: Output = "table",
    server: Server = None,
    state_dir: StateDir = None,
) -> int:
    """Send a test alert through every enabled channel and show what each one did (exit 1 if any failed)."""
    _check(output, severity)
    body = {"message": message, "severity": severity, "requested_by": "cli"}
    result = _online(server, state_dir).request("POST", "/alerts/test", json=body)
    if output == "json":
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        channels: list[dict[str, Any]] = result.get("channels", [])
        delivered = sum(1 for c in channels if c.get("status") == "delivered")
        alert_id = result.get("alert", {}).get("id", "?")
        out.print(f"test alert #{alert_id}: delivered by {delivered} of {len(channels)} channel(s)", markup=False)
        for channel in channels:
            attempts = channel.get("attempts", 0)
            line = f"  {channel.get('channel', '?'):<10} {channel.get('status', '?'):<9} ({attempts} attempt"
            line += ")" if attempts == 1 else "s)"
            if channel.get("error"):
                line += f": {channel['error']}"
            out.print(line, markup=False)
    return ExitCode.OK if result.get("ok") else ExitCode.ERROR
