"""A quoting node raises the built-in alerts through its channels (NFR-403): kill switch and crash recovery
outside tolerance reach a real webhook receiver on loopback, and every alert is stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mm.state.store import Store
from tests.alerting.receivers import HttpReceiver
from tests.controller.harness import EXCHANGE_YAML, RISK_YAML, market_yaml, running_node, strategy_yaml, wait_until


def documents(webhook: str) -> Callable[[list[str]], list[str]]:
    node = (
        "apiVersion: mm/v1alpha1\nkind: TradingNode\nmetadata: {name: n1}\nspec:\n"
        "  alerting:\n    channels:\n      webhook:\n        enabled: true\n"
        f"        url: {webhook}/hook\n        severities: [warning, critical]\n"
    )

    def build(tickers: list[str]) -> list[str]:
        return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0]), node]

    return build


async def test_a_kill_switch_reaches_the_webhook_and_the_database(tmp_path: Path) -> None:
    async with HttpReceiver() as receiver, running_node(tmp_path, documents(receiver.base)) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        await h.runtime.kill("test: alert path")
        await wait_until(
            lambda: any(r.body.get("name") == "kill_switch_triggered" for r in receiver.received),
            what="the kill switch alert at the receiver",
        )
        (alert,) = [r.body for r in receiver.received if r.body.get("name") == "kill_switch_triggered"]
        assert alert["severity"] == "critical" and "test: alert path" in alert["message"]
        assert h.runtime.alerts is not None
        assert any(e.alert.name == "kill_switch_triggered" for e in h.runtime.alerts.history())
    store = await Store.open(h.state_dir / "mmctl.db")
    try:
        async with store._db().execute("SELECT name, severity FROM alerts") as cursor:
            rows = await cursor.fetchall()
    finally:
        await store.close()
    assert ("kill_switch_triggered", "critical") in [tuple(r) for r in rows]
