"""Hand-built session files for backtest tests: the recorder's encoding, every value chosen by the test."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from mm.recording.format import FORMAT_VERSION, encode_record
from mm.specs.exchange import ExchangeSpec
from mm.specs.node import TradingNodeSpec
from mm.specs.risk import RiskPolicySpec
from mm.specs.strategy import StrategySpec

TICKER = "KXTEST-26JAN0117-T1"
START_US = 1_767_286_800_000_000
MARKET = "test-market"


def simple_strategy(*, base_spread: str = "0.04", size: str = "10", max_inventory: str = "100") -> dict[str, Any]:
    """Quotes mid ± base_spread/2, ``size`` contracts a side: every number a test needs is predictable."""
    spec = {
        "components": {
            "volatility": {"type": "fixed", "params": {"volatility": "0.001"}},
            "reservation_price": {"type": "simple_mid", "params": {}},
            "skew": {"type": "none", "params": {}},
            "spread": {"type": "fixed", "params": {"base_spread": base_spread}},
            "sizer": {"type": "fixed", "params": {"base_size": size}},
        },
        "max_inventory": max_inventory,
        "min_spread": "0.02",
    }
    dumped: dict[str, Any] = StrategySpec.model_validate(spec).model_dump(mode="json")
    return dumped


def default_policy() -> dict[str, Any]:
    dumped: dict[str, Any] = RiskPolicySpec.model_validate({}).model_dump(mode="json")
    return dumped


class SessionWriter:
    """Records in order, numbered, with times in seconds after :data:`START_US`."""

    def __init__(
        self,
        *,
        execution: str = "paper",
        strategy: dict[str, Any] | None = None,
        close_after_s: int = 3600,
    ) -> None:
        self.lines: list[bytes] = []
        self.seq = 0
        start = {
            "format": FORMAT_VERSION,
            "session_id": "test",
            "market_ids": [TICKER],
            "config": {
                "markets": [
                    {
                        "name": MARKET,
                        "generation": 1,
                        "labels": {},
                        "market": {
                            "exchange_ref": "sim",
                            "ticker": TICKER,
                            "execution": execution,
                            "trading_state": "active",
                            "cutoff_minutes": None,
                            "quoting": {"materiality_ticks": 1, "max_updates_per_second": "10"},
                        },
                        "strategy": strategy if strategy is not None else simple_strategy(),
                        "risk_policy": default_policy(),
                    }
                ],
                "exchanges": {
                    "sim": ExchangeSpec.model_validate({"venue": "simulator", "environment": "local"}).model_dump(
                        mode="json"
                    )
                },
                "trading_node": TradingNodeSpec.model_validate({}).model_dump(mode="json"),
            },
            "seeds": {},
            "market_info": {
                "status": "active",
                "close_time_us": START_US + close_after_s * 1_000_000,
                "grid": [[0, 10000, 100]],
            },
        }
        self.add(0, "session_start", start)

    def add(self, at_s: float, type_: str, data: dict[str, Any]) -> SessionWriter:
        self.seq += 1
        self.lines.append(encode_record(self.seq, START_US + round(at_s * 1_000_000), type_, TICKER, data))
        return self

    def snapshot(self, at_s: float, yes: list[tuple[int, int]], no: list[tuple[int, int]]) -> SessionWriter:
        return self.add(at_s, "book_snapshot", {"yes_bids": yes, "no_bids": no, "grid": [[0, 10000, 100]]})

    def delta(self, at_s: float, side: str, price: int, delta: int, size: int) -> SessionWriter:
        action = "remove" if size == 0 else ("add" if size == delta else "update")
        data = {"side": side, "price_units": price, "size_units": size, "delta_units": delta, "action": action}
        return self.add(at_s, "book_delta", data)

    def trade(self, at_s: float, price: int, size: int, taker: str, trade_id: str = "t") -> SessionWriter:
        data = {"trade_id": f"{trade_id}{self.seq}", "price_units": price, "size_units": size, "taker_side": taker}
        return self.add(at_s, "trade", data)

    def write(self, path: Path) -> Path:
        with gzip.open(path, "wb") as handle:
            handle.writelines(self.lines)
        return path


def quiet_book(writer: SessionWriter, at_s: float = 0.0) -> SessionWriter:
    """A book with mid 0.50: YES bids 0.45 (20) and 0.44 (30); NO bids 0.45 (20) and 0.44 (30) → YES asks 0.55/0.56."""
    return writer.snapshot(at_s, [(4500, 2000), (4400, 3000)], [(4500, 2000), (4400, 3000)])
