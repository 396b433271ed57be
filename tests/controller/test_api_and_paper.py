"""The control API (token, health, readiness, metrics, status, kill, resume) and a paper Market on the same
venue data: virtual orders only, filled by trades printed through them, never sent to the exchange."""

from __future__ import annotations

from pathlib import Path

import httpx

from mm.api.server import ControlApi, load_or_create_token
from mm.sim.types import BookSide as SimBookSide
from tests.controller.harness import EXCHANGE_YAML, RISK_YAML, market_yaml, running_node, strategy_yaml, wait_until


def paper_market(tickers: list[str]) -> list[str]:
    market = market_yaml("p1", tickers[0]).replace("execution: live", "execution: paper")
    return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market]


async def test_a_paper_market_quotes_and_fills_without_sending_an_order(tmp_path: Path) -> None:
    async with running_node(tmp_path, paper_market) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: "paper" in getattr(h.runtime.node.exchanges.get("sim"), "accounts", {}), what="paper")
        paper = h.runtime.node.account("sim", "paper")
        await wait_until(lambda: len(paper.tracker.open_orders(ticker)) == 2, what="two paper quotes")
        assert h.market_status("p1").get("phase") == "Quoting"
        # a crowd seller prints at 0.45, strictly through our 0.48 paper bid: trade_through fills it at 0.48
        h.take(ticker, SimBookSide.ASK, 4500, 200)
        await wait_until(lambda: paper.ledger.net_units(ticker) == 200, what="the paper fill")
        assert h.our_orders() == []  # nothing of ours ever reached the exchange
        assert all(not o.client_order_id.startswith("mm:") for o in h.exchange.orders.values())
        live = h.runtime.node.exchanges["sim"].accounts.get("live")
        assert live is None or live.ledger.net_units(ticker) == 0  # paper PnL never mixes with real


async def test_the_control_api_needs_its_token_and_drives_the_kill_switch(tmp_path: Path) -> None:
    def live_market(tickers: list[str]) -> list[str]:
        return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0])]

    async with running_node(tmp_path, live_market) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        token = load_or_create_token(h.state_dir, None)
        assert (h.state_dir / "api-token").stat().st_mode & 0o777 == 0o600
        api = ControlApi(h.runtime, token, host="127.0.0.1", port=0, metrics_public=False)
        await api.start()
        try:
            auth = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=api.url) as client:
                assert (await client.get("/health")).status_code == 200
                assert (await client.get("/ready")).json() == {"ready": True}  # public, like /health
                assert (await client.get("/status")).status_code == 401
                assert (await client.get("/status", headers={"Authorization": "Bearer wrong"})).status_code == 401
                assert (await client.get("/metrics")).status_code == 401
                metrics = await client.get("/metrics", headers=auth)
                assert "mm_orders_total" in metrics.text
                status = (await client.get("/status", headers=auth)).json()
                assert {r["kind"] for r in status["resources"]} >= {"Exchange", "Market", "Strategy", "RiskPolicy"}

                killed = (await client.post("/kill", json={"reason": "api test"}, headers=auth)).json()
                assert killed == {"tripped": True, "scope": "node", "cancelled": 2}
                assert h.our_orders() == []
                not_ready = await client.get("/ready", headers=auth)
                assert not_ready.status_code == 503 and "api test" in not_ready.json()["reasons"][0]
                anonymous = await client.get("/ready")
                assert anonymous.status_code == 503 and "reasons" not in anonymous.json()  # whether, never why
                refused = await client.post("/resume", json={"operator": "tester"}, headers=auth)
                assert refused.status_code == 409 and h.runtime.node.node_switch.tripped
                resumed = await client.post("/resume", json={"confirm": True, "operator": "tester"}, headers=auth)
                assert resumed.json() == {"scope": "node", "tripped": False}
            await wait_until(lambda: len(h.our_orders(ticker)) == 2, what="quoting again")
        finally:
            await api.stop()
