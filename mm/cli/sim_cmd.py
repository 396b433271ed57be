"""``mmctl sim``: run the Kalshi-compatible exchange simulator, and manage its API keys."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from mm.sim.server import Simulator, SimulatorConfig
from mm.sim.setup import create_additional_key

sim_app = typer.Typer(
    help="A local exchange that speaks Kalshi's REST and WebSocket protocol, with a synthetic crowd.",
    invoke_without_command=True,
)
keys_app = typer.Typer(help="API keys of the simulator (RSA-PSS, as Kalshi's).", no_args_is_help=True)
sim_app.add_typer(keys_app, name="keys")

StateDir = Annotated[Path, typer.Option("--state-dir", help="Where keys (and their PEM files) live.")]


@sim_app.callback()
def run(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Simulated seconds per real second (60: an hour a minute).")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the index and the crowd: same seed, same market.")] = 1,
    state_dir: StateDir = Path("./data/sim"),
    strikes: Annotated[int, typer.Option(min=1, help="Strike markets per hourly event.")] = 11,
    crowd: Annotated[bool, typer.Option(help="Run the synthetic crowd (makers, noise and informed takers).")] = True,
) -> None:
    """Run the simulator until Ctrl-C. Prints `rest:`, `ws:`, `key_id:` and `key_file:` lines first."""
    if ctx.invoked_subcommand is not None:
        return
    config = SimulatorConfig(
        host=host, port=port, speed=speed, seed=seed, state_dir=state_dir, strikes=strikes, crowd=crowd
    )

    async def serve() -> None:
        async with Simulator(config) as sim:
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


@keys_app.command("create")
def create_key(
    state_dir: StateDir = Path("./data/sim"),
    user: Annotated[str, typer.Option(help="The account the key belongs to (new users start with $10,000).")] = "",
) -> None:
    """Register a new API key: writes `<key_id>.pem` (mode 0600) in the state dir and prints the key id."""
    created = create_additional_key(state_dir, user or f"user-{len(list(state_dir.glob('*.pem'))) + 1}")
    sys.stdout.write(f"key_id: {created.key_id}\nkey_file: {created.key_file}\nuser: {created.user_id}\n")
