"""A seeded synthetic session file: a busy binary market's book and trades for an hour, in the recorder's format.

For benchmarks and tests that need more market data than the committed sample holds (backtest throughput is
measured on "one hour of a busy market, >= 100k events"), without running the simulator for an hour. It is
not a market model — no fair value drives it beyond a random walk of the top of book — and backtest *results*
on it mean nothing; real sessions come from the node's recorder (``make demo`` records a simulated hour).

The book lives on a one-cent grid. Each event is one of: a size change at a level near the top (most
events; depth weighted toward the best level), a public trade that takes part of a best level (a ``trade``
record, then the ``book_delta`` it caused), or a new best level one tick inside the spread (more often when
the spread is wide, so it stays a few cents as in a real book). The top of book
moves when a best level empties or a better one appears, which happens on a few percent of the events — the
share of mid changes seen in recorded simulator sessions.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Any, Final

from mm.domain.price import PRICE_SCALE
from mm.recording.format import FORMAT_VERSION, encode_record
from mm.specs.exchange import ExchangeSpec
from mm.specs.node import TradingNodeSpec
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec

__all__ = ["SYNTHETIC_TICKER", "write_synthetic_session"]

SYNTHETIC_TICKER: Final = "KXSYNTH-26JAN0117-T50000"
_TICK: Final = 100
_START_US: Final = 1_767_286_800_000_000  # 2026-01-01T17:00:00Z
_MARKET: Final = "synthetic-market"


def _session_start(seconds: int, strategy: dict[str, Any] | None, risk: dict[str, Any] | None) -> dict[str, Any]:
    strategy_spec = StrategySpec.model_validate(strategy or {"preset": "conservative"}).model_dump(mode="json")
    risk_spec = RiskPolicySpec.model_validate(risk or {}).model_dump(mode="json")
    exchange = ExchangeSpec.model_validate({"venue": "simulator", "environment": "local"}).model_dump(mode="json")
    return {
        "format": FORMAT_VERSION,
        "session_id": "synthetic",
        "market_ids": [SYNTHETIC_TICKER],
        "config": {
            "markets": [
                {
                    "name": _MARKET,
                    "generation": 1,
                    "labels": {},
                    "market": {
                        "exchange_ref": "sim",
                        "ticker": SYNTHETIC_TICKER,
                        "execution": "paper",
                        "trading_state": "active",
                        "cutoff_minutes": None,
                        "quoting": {"materiality_ticks": 1, "max_updates_per_second": "10"},
                    },
                    "strategy": strategy_spec,
                    "risk_policy": risk_spec,
                }
            ],
            "exchanges": {"sim": exchange},
            "trading_node": TradingNodeSpec.model_validate({}).model_dump(mode="json"),
        },
        "seeds": {"synthetic": True},
        "market_info": {
            "status": "active",
            "open_time_us": _START_US,
            # Closes 4 minutes after the data ends: the whole hour is quoted (the cutoff is 3 minutes).
            "close_time_us": _START_US + (seconds + 240) * 1_000_000,
            "grid": [[0, PRICE_SCALE, _TICK]],
        },
    }


class _Book:
    """Bid sizes per side (0 = YES bids, 1 = NO bids) on the one-cent grid, 1/100 contract."""

    def __init__(self, rng: random.Random, centre: int) -> None:
        self.rng = rng
        self.levels: tuple[dict[int, int], dict[int, int]] = ({}, {})
        for k in range(10):
            self.levels[0][centre - _TICK * (k + 1)] = rng.randint(5, 50) * 100
            self.levels[1][PRICE_SCALE - centre - _TICK * (k + 1)] = rng.randint(5, 50) * 100

    def best(self, side: int) -> int:
        return max(self.levels[side])

    def spread_ticks(self) -> int:
        return (PRICE_SCALE - self.best(1) - self.best(0)) // _TICK

    def change(self, side: int, price: int, delta: int) -> tuple[int, int, int, int]:
        size = self.levels[side].get(price, 0) + delta
        if size > 0:
            self.levels[side][price] = size
        else:
            self.levels[side].pop(price, None)
        return side, price, max(size, 0), delta


def _delta(ts: int, seq: int, side: int, price: int, size: int, delta: int) -> bytes:
    action = "add" if size == delta else ("remove" if size == 0 else "update")
    data = {"side": "yes" if side == 0 else "no", "price_units": price, "size_units": size, "delta_units": delta}
    data["action"] = action
    return encode_record(seq, ts, "book_delta", SYNTHETIC_TICKER, data)


def write_synthetic_session(
    path: Path | str,
    *,
    events: int = 100_000,
    seconds: int = 3600,
    seed: int = 1,
    strategy: dict[str, Any] | None = None,
    risk_policy: dict[str, Any] | None = None,
) -> Path:
    """Write ``events`` market-data records spread over ``seconds`` to ``path`` (gzip); returns the path.

    The session_start carries one paper Market with ``strategy`` / ``risk_policy`` (spec mappings; default the
    ``conservative`` preset and the default policy), as the recorder writes effective specs.
    """
    rng = random.Random(seed)
    book = _Book(rng, 5000)
    path = Path(path)
    step_us = seconds * 1_000_000 // max(events, 1)
    seq = 1
    start = _session_start(seconds, strategy, risk_policy)
    lines = [encode_record(seq, _START_US, "session_start", SYNTHETIC_TICKER, start)]
    seq += 1
    snapshot = {
        "yes_bids": sorted(book.levels[0].items(), reverse=True),
        "no_bids": sorted(book.levels[1].items(), reverse=True),
        "grid": [[0, PRICE_SCALE, _TICK]],
    }
    lines.append(encode_record(seq, _START_US, "book_snapshot", SYNTHETIC_TICKER, snapshot))
    written, trade_id = 0, 0
    while written < events:
        seq += 1
        ts = _START_US + (written + 1) * step_us
        draw = rng.random()
        side = rng.randrange(2)
        best = book.best(side)
        if draw < 0.06:
            # A taker hits the best level of ``side``: the print first, then the book change it caused. A side
            # keeps at least three levels, so the best one is only emptied when there are more.
            level = book.levels[side][best]
            size = min(level if len(book.levels[side]) > 3 else level - 100, rng.randint(1, 20) * 100)
            if size <= 0:
                seq -= 1
                continue
            trade_id += 1
            yes_price = best if side == 0 else PRICE_SCALE - best
            trade = {
                "trade_id": f"t{trade_id}",
                "price_units": yes_price,
                "size_units": size,
                "taker_side": "sell" if side == 0 else "buy",  # selling YES hits YES bids
                "venue_ts_us": ts,
            }
            lines.append(encode_record(seq, ts, "trade", SYNTHETIC_TICKER, trade))
            seq += 1
            written += 1
            change = book.change(side, best, -size)
        elif (draw < 0.08 and book.spread_ticks() > 1) or (draw < 0.5 and book.spread_ticks() > 3):
            # A new best level inside the spread: makers keep a wide spread from lasting.
            change = book.change(side, best + _TICK, rng.randint(1, 20) * 100)
        else:
            depth = min(int(rng.expovariate(0.45)), 9, best // _TICK - 1)
            price = best - depth * _TICK
            current = book.levels[side].get(price, 0)
            delta = rng.randint(1, 15) * 100 * (1 if rng.random() < 0.5 or current == 0 else -1)
            if len(book.levels[side]) <= 3:
                delta = abs(delta)  # never let a side run dry
            change = book.change(side, price, max(delta, -current))
        if change[3] != 0:
            lines.append(_delta(ts, seq, *change))
            written += 1
        else:
            seq -= 1
    end = _START_US + seconds * 1_000_000
    lines.append(encode_record(seq + 1, end, "session_end", SYNTHETIC_TICKER, {"reason": "synthetic"}))
    with gzip.open(path, "wb", compresslevel=6) as handle:
        handle.writelines(lines)
    return path
