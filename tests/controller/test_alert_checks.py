"""The built-in alerts that are conditions on the node's state (NFR-403): pure rules, and a node raising them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from mm.controller.alert_checks import NodeReading, conditions
from mm.sim.types import BookSide as SimBookSide
from tests.controller.harness import EXCHANGE_YAML, RISK_YAML, market_yaml, running_node, strategy_yaml, wait_until


def test_loss_against_the_daily_limit_warns_at_half_and_is_critical_past_eighty_percent() -> None:
    reading = NodeReading(
        Decimal(100), daily_net_dollars={"a/live": Decimal("-50.01"), "b/live": Decimal("-80.01"), "c": Decimal(-50)}
    )
    found = conditions(reading)
    assert found["loss/a/live"][0] == "daily_loss_warning"
    assert found["loss/b/live"][0] == "daily_loss_critical"
    assert "loss/c" not in found  # exactly 50%: not over it


def test_inventory_reconnects_and_stale_data() -> None:
    reading = NodeReading(
        Decimal(100),
        inventories={"m1": (Decimal("-40.01"), Decimal(50)), "m2": (Decimal(40), Decimal(50))},
        reconnect_failures={"sim": 5, "other": 4},
        data_age_s={"m1": 5.5, "m2": 4.9},
    )
    assert set(conditions(reading)) == {"inventory/m1", "reconnect/sim", "stale/m1"}


async def test_a_node_raises_high_inventory_once_and_stale_data_when_the_book_goes_quiet(tmp_path: Path) -> None:
    def docs(tickers: list[str]) -> list[str]:
        strategy = strategy_yaml(size=5).replace("max_inventory: 50", "max_inventory: 6")
        return [EXCHANGE_YAML, strategy, RISK_YAML, market_yaml("m1", tickers[0])]

    async with running_node(tmp_path, docs) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        checks = h.runtime.alert_checks
        assert checks is not None and checks.check() == []  # nothing holds while quoting normally
        h.take(ticker, SimBookSide.ASK, 4800, 500)  # 5 contracts into our bid: 5 > 80% of 6
        account = h.runtime.node.account("sim", "live")
        await wait_until(lambda: account.ledger.net_units(ticker) == 500, what="the fill")
        alerts = h.runtime.alerts
        assert alerts is not None

        def raised(name: str) -> int:
            return [e.alert.name for e in alerts.history()].count(name)

        checks.check()  # the node's own task checks every second too: either raises it
        await wait_until(lambda: raised("high_inventory") == 1, what="high_inventory raised")
        checks.check()
        assert raised("high_inventory") == 1, "once per episode"
        h.base.advance(6)  # six seconds of market time without a book update
        checks.check()
        await wait_until(lambda: raised("stale_market_data") >= 1, what="stale_market_data raised")
        assert raised("high_inventory") == 1
