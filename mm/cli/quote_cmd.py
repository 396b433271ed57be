"""``mmctl quote``: preview the four-quote sheet a Strategy would produce for given market inputs.

An operator's sanity check before applying a strategy: same admission and the same engine as the
controller, fed with the inputs given on the command line instead of live data.
"""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mm.domain.errors import MmError
from mm.domain.quotes import Quote, QuoteSet
from mm.domain.ticks import STRUCTURES, TickGrid
from mm.specs.admission import admit
from mm.specs.errors import AdmissionError
from mm.specs.strategy import StrategySpec
from mm.specs.yaml_loader import load_sources
from mm.strategy.engine import QuoteInputs, QuoteResult
from mm.strategy.registry import build_engine

_PLAIN_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?")
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


class QuoteInputError(MmError):
    """A command-line input to ``mmctl quote`` that is not usable."""


def parse_duration(text: str) -> float:
    """``"30m"``, ``"1h30m"``, ``"90s"`` or plain seconds (``"1800"``) → seconds."""
    value = text.strip().lower()
    if _PLAIN_NUMBER.fullmatch(value):
        seconds = Decimal(value)
        if seconds < 0:
            raise QuoteInputError(f"--time-to-settlement {text!r} must be a non-negative number of seconds")
        return float(seconds)
    match = _DURATION.match(value)
    if not value or match is None or not any(match.groups()):
        raise QuoteInputError(f"--time-to-settlement {text!r}: use seconds or a duration like 30m, 1h30m, 90s")
    hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + secs


def _decimal(option: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise QuoteInputError(f"{option} {text!r} is not a number") from None
    if not value.is_finite():
        raise QuoteInputError(f"{option} must be finite")
    return value


def _select_strategy(paths: list[str], name: str | None) -> tuple[str, StrategySpec]:
    result = admit(load_sources(paths))
    strategies = [r for r in result.resources if r.kind == "Strategy"]
    if name is not None:
        strategies = [r for r in strategies if r.name == name]
    if not strategies:
        if result.issues:
            raise AdmissionError(result.issues)
        wanted = f"Strategy/{name}" if name else "a Strategy"
        raise QuoteInputError(f"no valid {wanted} in {', '.join(paths)}")
    if len(strategies) > 1:
        names = ", ".join(r.name for r in strategies)
        raise QuoteInputError(f"several Strategies ({names}): choose one with --strategy NAME")
    chosen = strategies[0]
    assert isinstance(chosen.spec, StrategySpec)
    return chosen.name, chosen.spec


def _cell(quote: Quote | None) -> str:
    return "—" if quote is None else f"{quote.price} × {quote.size.to_decimal().normalize():f}"


def _quote_json(quote: Quote | None) -> dict[str, str] | None:
    return None if quote is None else {"price": quote.price.to_dollars(), "size": quote.size.to_fp()}


def render_json(name: str, inputs: QuoteInputs, grid_name: str, result: QuoteResult) -> dict[str, Any]:
    qs: QuoteSet = result.quotes
    return {
        "strategy": name,
        "inputs": {
            "mid": f"{inputs.mid:.4f}",
            "inventory": f"{inputs.inventory:g}",
            "time_to_settlement_seconds": f"{inputs.time_to_settlement:g}",
            "tick_grid": grid_name,
        },
        "model": {
            "volatility": f"{result.volatility:.6f}",
            "reservation_price": f"{result.reservation_price:.6f}",
            "half_spread": f"{result.half_spread:.6f}",
            "skew": f"{result.skew:.6f}",
            "bid_size": f"{result.bid_size:.2f}",
            "ask_size": f"{result.ask_size:.2f}",
        },
        "quotes": {
            "yes_bid": _quote_json(qs.yes_bid),
            "yes_ask": _quote_json(qs.yes_ask),
            "no_bid": _quote_json(qs.no_bid),
            "no_ask": _quote_json(qs.no_ask),
        },
        "note": result.note,
    }


def render_table(name: str, inputs: QuoteInputs, grid_name: str, result: QuoteResult, console: Console) -> None:
    qs = result.quotes
    console.print(
        f"Strategy/{name}: mid {inputs.mid:.4f}, inventory {inputs.inventory:+g}, "
        f"{inputs.time_to_settlement:g} s to settlement, tick grid {grid_name}",
        markup=False,
    )
    table = Table(box=None, pad_edge=False)
    table.add_column("")
    table.add_column("BID", justify="right")
    table.add_column("ASK", justify="right")
    table.add_row("YES", _cell(qs.yes_bid), _cell(qs.yes_ask))
    table.add_row("NO", _cell(qs.no_bid), _cell(qs.no_ask))
    console.print(table)
    console.print(
        f"σ {result.volatility:.6f} $/√s   r {result.reservation_price:.4f}   δ {result.half_spread:.4f}   "
        f"skew {result.skew:+.4f}   sizes bid {result.bid_size:.2f} / ask {result.ask_size:.2f}",
        markup=False,
    )
    if result.note:
        console.print(f"note: {result.note}", markup=False)


def quote(
    filename: Annotated[list[str], typer.Option("--filename", "-f", help="File(s) or directory with the Strategy.")],
    mid: Annotated[str, typer.Option(help="YES mid price in dollars, e.g. 0.50.")],
    inventory: Annotated[str, typer.Option(help="Net YES inventory in contracts (negative = short).")] = "0",
    time_to_settlement: Annotated[
        str, typer.Option("--time-to-settlement", "-t", help="Seconds, or 30m / 1h30m / 90s.")
    ] = "30m",
    volatility: Annotated[
        str | None, typer.Option(help="σ in dollars per √second; default: the strategy's fixed volatility.")
    ] = None,
    tick_grid: Annotated[str, typer.Option(help=f"Price level structure: {', '.join(STRUCTURES)}.")] = "linear_cent",
    strategy: Annotated[str | None, typer.Option(help="Which Strategy, if the files hold several.")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
) -> int:
    """Preview the four-quote sheet (FR-402) a Strategy produces for a mid, inventory and time to settlement."""
    mid_value = _decimal("--mid", mid)
    if not 0 < mid_value < 1:
        raise QuoteInputError("--mid must be inside (0, 1) dollars")
    sigma = None if volatility is None else _decimal("--volatility", volatility)
    if sigma is not None and sigma < 0:
        raise QuoteInputError("--volatility must not be negative")
    if output not in ("table", "json"):
        raise QuoteInputError("--output must be table or json")
    name, spec = _select_strategy(filename, strategy)
    engine = build_engine(spec)
    if sigma is None and not engine.volatility.is_ready():
        raise QuoteInputError(
            f"Strategy/{name} estimates volatility from live data, which a preview does not have: "
            "pass --volatility (σ in dollars per √second, e.g. 0.005)"
        )
    grid = TickGrid.for_structure(tick_grid)
    inputs = QuoteInputs(
        market_id="preview",
        mid=float(mid_value),
        inventory=float(_decimal("--inventory", inventory)),
        time_to_settlement=parse_duration(time_to_settlement),
        now_us=0,
        grid=grid,
        volatility=None if sigma is None else float(sigma),
    )
    result = engine.quote(inputs)
    if output == "json":
        sys.stdout.write(json.dumps(render_json(name, inputs, tick_grid, result), indent=2) + "\n")
    else:
        render_table(name, inputs, tick_grid, result, Console(highlight=False, soft_wrap=True))
    return 0
