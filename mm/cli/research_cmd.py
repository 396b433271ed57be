"""``mmctl research``: runnable reproductions behind the strategy's design choices."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mm.research.avellaneda_stoikov import format_table, run_experiment

research_app = typer.Typer(
    help="Research reproductions (seeded, deterministic): the experiments the strategy design rests on.",
    no_args_is_help=True,
)


@research_app.command("avellaneda-stoikov")
def avellaneda_stoikov(
    paths: Annotated[int, typer.Option(min=2, help="Simulated paths per γ (the paper used 1,000).")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same table.")] = 1,
    gamma: Annotated[
        list[float] | None, typer.Option(help="Risk aversion γ; repeatable. Default: the paper's 0.1, 0.01, 1.")
    ] = None,
) -> int:
    """Reproduce Avellaneda & Stoikov (2008) §3.3: inventory vs symmetric strategy (docs/research/)."""
    gammas = tuple(gamma) if gamma else (0.1, 0.01, 1.0)
    if any(g <= 0 for g in gammas):
        typer.echo("error: --gamma must be positive", err=True)
        return 2
    sys.stdout.write(format_table(run_experiment(gammas=gammas, paths=paths, seed=seed)) + "\n")
    return 0
