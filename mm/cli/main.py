"""``mmctl``: the command-line entry point.

Commands return an :class:`ExitCode`; errors propagate to :func:`main`, which prints them (redacted, no
traceback unless ``MMCTL_DEBUG=1``) and maps them to exit codes in one place.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mm import __version__
from mm.cli import resource_cmds
from mm.cli.alerts_cmd import alerts_app
from mm.cli.backtest_cmd import backtest, sweep
from mm.cli.doctor_cmd import doctor
from mm.cli.exit_codes import ExitCode, exit_code_for
from mm.cli.quote_cmd import quote
from mm.cli.replay_cmd import replay
from mm.cli.research_cmd import research_app
from mm.cli.run_cmd import kill, resume, run
from mm.cli.sim_cmd import sim_app
from mm.domain.errors import MmError
from mm.observability.logging import configure_logging
from mm.observability.redaction import redact_text
from mm.specs.admission import admit
from mm.specs.envelope import API_VERSION, KINDS, resolve_kind
from mm.specs.errors import SpecIssue
from mm.specs.schema import all_schemas, any_kind_schema, kind_schema, render, write_schemas
from mm.specs.yaml_loader import load_sources_collect

app = typer.Typer(
    name="mmctl",
    help="Declarative market maker for binary prediction markets: declare markets, strategies and risk "
    "rules as YAML resources; a controller reconciles quotes and orders toward them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command()(quote)
app.command()(run)
app.command()(kill)
app.command()(resume)
app.command()(doctor)
app.command()(replay)
app.command()(backtest)
app.command()(sweep)
for _verb in (
    resource_cmds.apply,
    resource_cmds.diff,
    resource_cmds.get,
    resource_cmds.describe,
    resource_cmds.history,
    resource_cmds.rollback,
    resource_cmds.delete,
    resource_cmds.status,
    resource_cmds.wait,
    resource_cmds.shutdown,
    resource_cmds.reload,
):
    app.command()(_verb)
app.add_typer(research_app, name="research")
app.add_typer(sim_app, name="sim")
app.add_typer(alerts_app, name="alerts")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _print_issues(issues: tuple[SpecIssue, ...] | list[SpecIssue], label: str, style: str) -> None:
    for issue in issues:
        err.print(f"[{style}]{label}:[/{style}] ", end="")
        err.print(redact_text(str(issue)), markup=False)


@app.command()
def validate(
    filename: Annotated[
        list[str],
        typer.Option(
            "--filename",
            "-f",
            help="A YAML/JSON file, a directory (read recursively) or '-' for stdin. Repeatable.",
        ),
    ],
) -> ExitCode:
    """Check resources without applying them: every problem is listed as file:line:col: Kind/name: field: message.

    Runs the same admission as apply (schema, model validation, references, business rules, hard limits).
    Exit code 0 when everything is valid, 1 otherwise.
    """
    documents, load_issues = load_sources_collect(filename)
    result = admit(documents)
    for resource in result.resources:
        out.print(f"{resource.key} valid", markup=False)
    _print_issues(result.warnings, "warning", "yellow")
    issues = [*load_issues, *result.issues]
    _print_issues(issues, "error", "red")
    if issues:
        count = len(issues)
        err.print(f"{count} problem{'s' if count != 1 else ''} found", markup=False)
        return ExitCode.ERROR
    return ExitCode.OK


@app.command()
def schema(
    kind: Annotated[
        str | None,
        typer.Argument(help=f"A kind ({', '.join(KINDS)}), its plural or short name. Omit for any kind."),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", "-o", help="Write every schema file into this directory instead."),
    ] = None,
) -> ExitCode:
    """Print the JSON Schema of a resource kind (for editors: yaml-language-server, VS Code)."""
    if output_dir is not None:
        for path in write_schemas(output_dir):
            out.print(f"wrote {path}", markup=False)
        return ExitCode.OK
    if kind is None:
        document = any_kind_schema()
    else:
        info = resolve_kind(kind)
        if info is None:
            err.print(f"error: unknown kind {kind!r}; known kinds: {', '.join(KINDS)}", markup=False)
            return ExitCode.USAGE
        document = kind_schema(info)
    sys.stdout.write(render(document))
    return ExitCode.OK


@app.command()
def version(
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> ExitCode:
    """Print the mmctl version and the resource API version it serves."""
    if output == "json":
        sys.stdout.write(
            json.dumps({"version": __version__, "apiVersion": API_VERSION, "schemas": sorted(all_schemas())}) + "\n"
        )
    else:
        out.print(f"mmctl {__version__} (resources {API_VERSION})", markup=False)
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the process exit code (the console script's entry point)."""
    if argv is None:
        # as a program: logs go to stderr (stdout is the command's output, e.g. -o json); WARNING unless asked,
        # `mmctl run` raises it to its TradingNode's logging.level
        configure_logging(os.environ.get("MMCTL_LOG_LEVEL", "WARNING"))
    try:
        result = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted", markup=False)
        return ExitCode.INTERRUPTED
    except typer.TyperException as exc:
        # Usage errors (unknown option, missing argument): typer prints them with the usage line.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc}", markup=False)
        return int(getattr(exc, "exit_code", ExitCode.USAGE))
    except MmError as exc:
        err.print(f"error: {redact_text(str(exc))}", markup=False)
        return exit_code_for(exc)
    except Exception as exc:
        if os.environ.get("MMCTL_DEBUG") == "1":
            raise
        err.print(f"internal error: {type(exc).__name__}: {redact_text(str(exc))}", markup=False)
        err.print("this is a bug in mmctl; rerun with MMCTL_DEBUG=1 for a traceback", markup=False)
        return exit_code_for(exc)
    return int(result) if isinstance(result, int) else ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
