"""``mmctl sim``: run the Kalshi-compatible exchange simulator, and manage its API keys."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import fields
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from mm.domain.errors import MmError
from mm.sim.server import Simulator, SimulatorConfig
from mm.sim.setup import create_additional_key
from mm.sim.state import Faults
from mm.specs.yaml_loader import load_path

sim_app = typer.Typer(
    help="A local exchange that speaks Kalshi's REST and WebSocket protocol, with a synthetic crowd.",
    invoke_without_command=True,
)
keys_app = typer.Typer(help="API keys of the simulator (RSA-PSS, as Kalshi's).", no_args_is_help=True)
sim_app.add_typer(keys_app, name="keys")


@sim_app.callback()
def run(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default loopback).")] = None,
    port: Annotated[int | None, typer.Option(help="Port; 0 picks a free one (default).")] = None,
    speed: Annotated[
        float | None, typer.Option(min=0.001, help="Simulated seconds per real second (60: an hour a minute).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the index and the crowd: same seed, same market.")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Where keys live (default ./data/sim).")] = None,
    strikes: Annotated[int | None, typer.Option(min=1, help="Strike markets per hourly event (default 11).")] = None,
    crowd: Annotated[bool | None, typer.Option(help="Run the synthetic crowd (default on).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="A YAML file of these settings and faults.")] = None,
) -> None:
    """Run the simulator until Ctrl-C. Prints `rest:`, `ws:`, `key_id:` and `key_file:` lines first.

    Settings come from --config (if given), then from the flags, which win.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings, faults = load_sim_config(config) if config is not None else ({}, {})
    flags = {
        "host": host,
        "port": port,
        "speed": speed,
        "seed": seed,
        "state_dir": state_dir,
        "strikes": strikes,
        "crowd": crowd,
    }
    settings.update({name: value for name, value in flags.items() if value is not None})
    sim_config = SimulatorConfig(**settings)

    async def serve() -> None:
        async with Simulator(sim_config) as sim:
            for name, value in faults.items():
                setattr(sim.state.faults, name, value)
            for line in (
                f"rest: {sim.rest_url}",
                f"ws: {sim.ws_url}",
                f"key_id: {sim.api_key.key_id}",
                f"key_file: {sim.api_key.key_file}",
            ):
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
            await asyncio.Event().wait()  # until Ctrl-C cancels the run

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.stderr.write("simulator stopped\n")


_SETTINGS = {f.name: f.type for f in fields(SimulatorConfig)}
_FAULTS = {f.name for f in fields(Faults)} - {"counters"}


def load_sim_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a simulator config file: SimulatorConfig fields at the top, fault switches under ``faults``."""
    documents = load_path(path)
    data = documents[0].data if documents else {}
    if not isinstance(data, dict):
        raise SimConfigError(f"{path}: expected a mapping of settings")
    settings: dict[str, Any] = {}
    faults: dict[str, Any] = {}
    for key, value in data.items():
        if key == "faults":
            if not isinstance(value, dict) or set(value) - _FAULTS:
                unknown = sorted(set(value) - _FAULTS) if isinstance(value, dict) else ["(not a mapping)"]
                raise SimConfigError(
                    f"{path}: faults: unknown settings {', '.join(unknown)}; known: {', '.join(sorted(_FAULTS))}"
                )
            faults = {k: float(v) if isinstance(v, Decimal) else v for k, v in value.items()}
        elif key in _SETTINGS:
            settings[key] = Path(value) if key == "state_dir" else float(value) if isinstance(value, Decimal) else value
        else:
            raise SimConfigError(f"{path}: unknown setting {key!r}; known: {', '.join(sorted(_SETTINGS))}, faults")
    return settings, faults


class SimConfigError(MmError):
    """A simulator config file that cannot be used."""


@keys_app.command("create")
def create_key(
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where keys (and their PEM files) live.")] = Path(
        "./data/sim"
    ),
    user: Annotated[str, typer.Option(help="The account the key belongs to (new users start with $10,000).")] = "",
) -> None:
    """Register a new API key: writes `<key_id>.pem` (mode 0600) in the state dir and prints the key id."""
    created = create_additional_key(state_dir, user or f"user-{len(list(state_dir.glob('*.pem'))) + 1}")
    sys.stdout.write(f"key_id: {created.key_id}\nkey_file: {created.key_file}\nuser: {created.user_id}\n")
