"""NFR-402 end to end: a node quoting on the in-process simulator, its ``GET /metrics`` scraped through the control
API (with the API token) and parsed with prometheus_client's text parser — and every metric seen to *move when its
event happens*: orders placed, a crowd fill, the kill switch, a dropped book message, a dropped connection, a trade
behind the node's back, a locked database, a hot reload of the risk limits.

Every wait polls a condition on a fresh scrape with a timeout; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mm.api.server import ControlApi, load_or_create_token
from mm.sim.exchange import NewOrder
from mm.sim.types import BookSide as SimBookSide
from mm.sim.types import TimeInForce
from tests.controller.harness import (
    CROWD,
    EXCHANGE_YAML,
    RISK_YAML,
    TIMEOUT,
    Harness,
    admitted,
    market_yaml,
    running_node,
    strategy_yaml,
)

EXCHANGE = "sim"


def one_market(tickers: list[str]) -> list[str]:
    return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0])]


@dataclass(frozen=True)
class Samples:
    """One scrape: sample name → [(labels, value)]."""

    by_name: Mapping[str, list[tuple[dict[str, str], float]]]

    def get(self, name: str, **labels: str) -> float | None:
        """The value of the one sample of ``name`` whose labels include ``labels`` (None if there is none)."""
        found = [v for got, v in self.by_name.get(name, []) if all(got.get(k) == w for k, w in labels.items())]
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
        return found[0] if found else None

    def value(self, name: str, **labels: str) -> float:
        """Like :meth:`get`, a missing sample being 0 (a counter or gauge child not created yet)."""
        got = self.get(name, **labels)
        return 0.0 if got is None else got


def parse(text: str) -> Samples:
    by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            by_name.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return Samples(by_name)


@dataclass
class Node:
    h: Harness
    ticker: str
    scrape: Callable[[], Awaitable[Samples]]

    async def until(self, condition: Callable[[Samples], bool], what: str, timeout: float = TIMEOUT) -> Samples:
        """Scrape until ``condition`` holds on a scrape; that scrape. Fails after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            samples = await self.scrape()
            if condition(samples):
                return samples
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.02)

    async def quoting(self) -> Samples:
        return await self.until(
            lambda s: self.h.quoting("m1", self.ticker) and s.get("mm_quote_sides", market=self.ticker) == 2,
            "quotes on both sides, and the metrics saying so",
        )


@asynccontextmanager
async def scraped_node(tmp_path: Path) -> AsyncIterator[Node]:
    """A node on the simulator with one live Market, and its control API (token required for /metrics)."""
    async with running_node(tmp_path, one_market) as h:
        token = load_or_create_token(h.state_dir, None)
        api = ControlApi(h.runtime, token, host="127.0.0.1", port=0, metrics_public=False)
        await api.start()
        try:
            async with httpx.AsyncClient(
                base_url=api.url, headers={"Authorization": f"Bearer {token}"}, timeout=5.0
            ) as client:

                async def scrape() -> Samples:
                    response = await client.get("/metrics")
                    assert response.status_code == 200, response.text
                    return parse(response.text)

                yield Node(h, h.tickers()[0], scrape)
        finally:
            await api.stop()


@contextmanager
def write_locked(database: Path) -> Iterator[None]:
    """SQLite's write lock on ``database`` held from another connection (a real outage: every write of the node
    waits ``busy_timeout`` and fails with "database is locked") until the block ends."""
    blocker = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()


def resting_at_exchange(h: Harness, ticker: str) -> int:
    return len(h.our_orders(ticker))


# --------------------------------------------------------------------------- quoting


async def test_quoting_moves_the_order_quote_stream_and_rate_limit_metrics(tmp_path: Path) -> None:
    async with scraped_node(tmp_path) as node:
        t = node.ticker
        # the Market reconciles on an empty book: nothing quoted, nothing sent
        before = await node.until(
            lambda s: s.get("mm_quote_sides", market=t) == 0 and s.get("mm_ready") == 1,
            "the node ready and the Market's first report",
        )
        assert before.value("mm_orders_total", market=t, side="buy", status="accepted") == 0
        assert before.value("mm_quote_uptime_seconds_total", market=t) == 0
        assert before.value("mm_two_sided_seconds_total", market=t) == 0
        assert before.get("mm_open_orders", market=t) == 0
        assert before.get("mm_kill_switch_active") == 0

        node.h.seed_book(t)
        quoting = await node.quoting()
        # orders placed -> the order counter, the round-trip histogram, the write bucket's tokens
        assert quoting.value("mm_orders_total", market=t, side="buy", status="accepted") == 1
        assert quoting.value("mm_orders_total", market=t, side="sell", status="accepted") == 1
        assert quoting.value("mm_order_latency_seconds_count", market=t) >= 1
        assert quoting.value("mm_order_latency_seconds_sum", market=t) > 0
        assert quoting.value("mm_quote_generation_seconds_count", market=t) > before.value(
            "mm_quote_generation_seconds_count", market=t
        )
        assert quoting.value("mm_book_update_seconds_count", market=t) > before.value(
            "mm_book_update_seconds_count", market=t
        )
        assert quoting.value("mm_websocket_messages_total", exchange=EXCHANGE) > before.value(
            "mm_websocket_messages_total", exchange=EXCHANGE
        )
        # a create costs 10 write tokens (kalshi-api.md §4): two creates at least
        spent = quoting.value("mm_rate_limit_tokens_total", exchange=EXCHANGE, bucket="write")
        assert spent - before.value("mm_rate_limit_tokens_total", exchange=EXCHANGE, bucket="write") >= 20
        assert quoting.value("mm_rate_limit_tokens_total", exchange=EXCHANGE, bucket="read") > 0
        assert quoting.value("mm_rate_limit_refill_rate", exchange=EXCHANGE, bucket="write") > 0
        usage = quoting.get("mm_rate_limit_usage_ratio", exchange=EXCHANGE, bucket="write")
        assert usage is not None and 0 <= usage <= 1
        assert quoting.get("mm_open_orders", market=t) == 2
        assert quoting.get("mm_websocket_connected", exchange=EXCHANGE) == 1
        assert quoting.value("mm_risk_decisions_total", rule="max_inventory", action="ALLOW") >= 1
        # 16:30 ET: the 17:00 market closes in 30 minutes of market time
        left = quoting.value("mm_time_to_settlement_seconds", market=t)
        assert 25 * 60 < left <= 30 * 60
        age = quoting.get("mm_market_data_age_seconds", market=t)
        assert age is not None and 0 <= age < 60
        # the RiskPolicy's limits (rule defaults: inventory 1000 contracts, daily loss $100, hourly $50)
        assert quoting.get("mm_inventory_limit", market=t) == 1000
        assert quoting.get("mm_loss_limit", market=t, window="daily") == 100
        assert quoting.get("mm_loss_limit", market=t, window="hourly") == 50

        # quote uptime and two-sided time grow while quoting, by the real time that passes
        loop = asyncio.get_running_loop()
        up, both, started = (
            quoting.value("mm_quote_uptime_seconds_total", market=t),
            quoting.value("mm_two_sided_seconds_total", market=t),
            loop.time(),
        )
        later = await node.until(
            lambda s: s.value("mm_two_sided_seconds_total", market=t) >= both + 0.5, "two-sided time to grow"
        )
        elapsed = loop.time() - started
        assert later.value("mm_quote_uptime_seconds_total", market=t) >= up + 0.5
        # credited by reconciles (every 0.2 s here): the real time that passed, give or take the cycle in progress
        # at each scrape (not, say, market time or one credit per reconcile)
        assert later.value("mm_two_sided_seconds_total", market=t) - both <= elapsed + 0.5
        reconciled = later.value("mm_market_reconciled_seconds_total", market=t)
        assert reconciled >= later.value("mm_quote_uptime_seconds_total", market=t)

        # the exchange's round trip, from the degradation monitor
        rtt = await node.until(lambda s: s.value("mm_exchange_rtt_seconds", exchange=EXCHANGE) > 0, "the REST RTT")
        assert rtt.value("mm_exchange_rtt_seconds", exchange=EXCHANGE) < 5

        # a hot reload of the RiskPolicy moves the limits the dashboards draw
        tighter = RISK_YAML + "    max_inventory: {limit: 600}\n    daily_loss_limit: {limit: 75}\n"
        assert node.h.runtime.apply(admitted(tighter)) == ["RiskPolicy/r1"]
        await node.until(
            lambda s: (
                s.get("mm_inventory_limit", market=t) == 600 and s.get("mm_loss_limit", market=t, window="daily") == 75
            ),
            "the new limits",
        )


async def test_a_crowd_fill_moves_fills_position_and_pnl(tmp_path: Path) -> None:
    async with scraped_node(tmp_path) as node:
        t = node.ticker
        node.h.seed_book(t)
        before = await node.quoting()
        assert before.value("mm_fills_total", market=t, side="yes") == 0
        assert before.get("mm_position_yes", market=t) == 0
        node.h.take(t, SimBookSide.ASK, 4800, 200)  # a crowd seller hits our 0.48 bid for 2 contracts
        after = await node.until(
            lambda s: s.value("mm_fills_total", market=t, side="yes") == 1 and s.get("mm_position_yes", market=t) == 2,
            "the fill in the fills counter and the position gauge",
        )
        assert after.get("mm_inventory", market=t) == 2
        assert after.get("mm_position_no", market=t) == 0
        assert after.value("mm_filled_contracts_total", market=t, side="yes") == 2
        # bought at 0.48 with the book's mid at 0.50 (0.48 / 0.52, our own quotes being the best): 2 cents of edge
        assert after.get("mm_spread_captured", market=t) == pytest.approx(0.02)
        # marked at the mid: 2 x (0.50 - 0.48) unrealized; no maker fee on the simulator's series
        await node.until(
            lambda s: (
                s.get("mm_pnl_unrealized", market=t) == pytest.approx(0.04)
                and s.get("mm_pnl_daily", market=t) == pytest.approx(0.04)
            ),
            "unrealized and daily PnL after the fill",
        )


# --------------------------------------------------------------------------- kill switch


async def test_the_kill_switch_moves_its_gauge_readiness_and_stops_quote_time(tmp_path: Path) -> None:
    async with scraped_node(tmp_path) as node:
        t, h = node.ticker, node.h
        h.seed_book(t)
        quoting = await node.quoting()
        assert quoting.get("mm_kill_switch_active") == 0 and quoting.get("mm_ready") == 1

        await h.runtime.kill("metrics test")
        killed = await node.until(
            lambda s: s.get("mm_quote_sides", market=t) == 0 and s.get("mm_open_orders", market=t) == 0,
            "the Market to report no quotes after the kill",
        )
        assert killed.get("mm_kill_switch_active") == 1
        assert killed.get("mm_ready") == 0
        assert resting_at_exchange(h, t) == 0
        # no quotes, no quote time: several reconciles later the counters have not moved
        up = killed.value("mm_quote_uptime_seconds_total", market=t)
        both = killed.value("mm_two_sided_seconds_total", market=t)
        reconciled = killed.value("mm_market_reconciled_seconds_total", market=t)
        still = await node.until(
            lambda s: s.value("mm_market_reconciled_seconds_total", market=t) >= reconciled + 0.5,
            "the Market to go on reconciling while halted",
        )
        assert still.value("mm_quote_uptime_seconds_total", market=t) == up
        assert still.value("mm_two_sided_seconds_total", market=t) == both

        h.runtime.resume(confirm=True, operator="tester")
        resumed = await node.quoting()
        assert resumed.get("mm_kill_switch_active") == 0 and resumed.get("mm_ready") == 1
        await node.until(lambda s: s.value("mm_two_sided_seconds_total", market=t) > both, "two-sided time again")


async def test_deleting_the_market_drops_its_quoting_series_and_keeps_its_position(tmp_path: Path) -> None:
    async with scraped_node(tmp_path) as node:
        t, h = node.ticker, node.h
        h.seed_book(t)
        await node.quoting()
        h.take(t, SimBookSide.ASK, 4800, 200)
        await node.until(lambda s: s.get("mm_position_yes", market=t) == 2, "the position")
        assert h.runtime.resources.delete("Market", "m1")
        gone = await node.until(
            lambda s: s.get("mm_time_to_settlement_seconds", market=t) is None, "the Market's series to go"
        )
        for name in ("mm_quote_sides", "mm_open_orders", "mm_quote_uptime_seconds_total", "mm_inventory_limit"):
            assert gone.get(name, market=t) is None, name
        assert gone.get("mm_loss_limit", market=t, window="daily") is None
        assert gone.get("mm_position_yes", market=t) == 2  # still held (until settlement)
        assert resting_at_exchange(h, t) == 0  # deletion policy cancel_orders


# --------------------------------------------------------------------------- stream faults


async def test_stream_faults_move_the_resync_reconnect_and_malformed_counters(tmp_path: Path) -> None:
    async with scraped_node(tmp_path) as node:
        t, h = node.ticker, node.h
        h.seed_book(t)
        before = await node.quoting()
        assert before.value("mm_book_resyncs_total", exchange=EXCHANGE, reason="seq_gap") == 0
        faults = h.sim.state.faults
        exchange = h.exchange

        # a book message lost on the way: the next one shows a seq gap and the book is re-snapshotted
        faults.ws_drop_message_rate = 1.0
        exchange.create_order(CROWD[0], NewOrder(t, SimBookSide.BID, 4400, 100))
        h.sim.state.publish()
        await node.until(lambda _s: faults.counters.dropped_messages >= 1, "the simulator to drop a message")
        faults.ws_drop_message_rate = 0.0
        exchange.create_order(CROWD[0], NewOrder(t, SimBookSide.BID, 4300, 100))
        h.sim.state.publish()
        gapped = await node.until(
            lambda s: s.value("mm_book_resyncs_total", exchange=EXCHANGE, reason="seq_gap") >= 1, "a seq-gap resync"
        )
        assert gapped.value("mm_book_resyncs_total", exchange=EXCHANGE, reason="undecodable") == 0

        # a frame garbled on the way: counted as malformed, every book re-snapshotted
        faults.ws_malformed_message_rate = 1.0
        exchange.create_order(CROWD[0], NewOrder(t, SimBookSide.BID, 4200, 100))
        h.sim.state.publish()
        await node.until(lambda _s: faults.counters.malformed_messages >= 1, "the simulator to garble a message")
        faults.ws_malformed_message_rate = 0.0
        garbled = await node.until(
            lambda s: (
                s.value("mm_book_resyncs_total", exchange=EXCHANGE, reason="undecodable") >= 1
                and s.value("mm_malformed_messages_total", exchange=EXCHANGE, channel="unknown") >= 1
            ),
            "an undecodable frame counted and resynced",
        )
        assert garbled.value("mm_websocket_reconnects_total", exchange=EXCHANGE) == 0

        # the connection cut: reconnected, counted, the books resubscribed
        assert h.sim.hub.drop_all_connections() >= 1
        back = await node.until(
            lambda s: (
                s.value("mm_websocket_reconnects_total", exchange=EXCHANGE) == 1
                and s.get("mm_websocket_connected", exchange=EXCHANGE) == 1
                and s.value("mm_book_resyncs_total", exchange=EXCHANGE, reason="reconnect") == 1
            ),
            "the reconnect counted",
        )
        assert back.get("mm_websocket_reconnect_failures", exchange=EXCHANGE) == 0
        await node.quoting()


async def test_failing_reconnects_move_the_reconnect_failures_gauge(tmp_path: Path) -> None:
    async with scraped_node(tmp_path) as node:
        h = node.h  # no book seeded: nothing of ours rests, the stream may be down a while
        first = await node.until(lambda s: s.get("mm_websocket_connected", exchange=EXCHANGE) == 1, "the stream")
        assert first.get("mm_websocket_reconnect_failures", exchange=EXCHANGE) == 0
        keys, key_id = h.sim.state.keys, h.sim.api_key.key_id
        registered = keys.get(key_id)
        assert registered is not None and keys.revoke(key_id)  # every reconnect is now refused (401)
        try:
            assert h.sim.hub.drop_all_connections() >= 1
            failing = await node.until(
                lambda s: s.value("mm_websocket_reconnect_failures", exchange=EXCHANGE) >= 2,
                "two reconnect attempts refused in a row",
            )
            assert failing.get("mm_websocket_connected", exchange=EXCHANGE) == 0
        finally:
            keys.register(registered.public_key, registered.user_id, key_id=key_id)
        back = await node.until(
            lambda s: (
                s.get("mm_websocket_connected", exchange=EXCHANGE) == 1
                and s.value("mm_websocket_reconnects_total", exchange=EXCHANGE) == 1
            ),
            "the stream back once the key is valid again",
            timeout=20,
        )
        assert back.get("mm_websocket_reconnect_failures", exchange=EXCHANGE) == 0


# --------------------------------------------------------------------------- reconciliation drift


async def test_a_trade_behind_the_nodes_back_moves_the_reconciliation_drift(tmp_path: Path) -> None:
    async with scraped_node(tmp_path) as node:
        t, h = node.ticker, node.h
        exchange = h.exchange
        for user in CROWD:
            exchange.open_account(user, 10_000_000 * 1_000_000)
        exchange.create_order(CROWD[1], NewOrder(t, SimBookSide.ASK, 5500, 5000))  # one-sided: the node waits
        h.sim.state.publish()
        clean = await node.until(
            lambda s: s.get("mm_reconciliation_mismatched_positions", exchange=EXCHANGE) == 0,
            "a first positions check that finds nothing",
        )
        # the series exists from the first check, at 0 (so that Prometheus's increase() sees the first difference)
        assert clean.get("mm_reconciliation_drift_total", exchange=EXCHANGE, kind="position") == 0
        assert resting_at_exchange(h, t) == 0

        # someone buys a contract on our account by hand (another session, a client id not ours)
        manual = NewOrder(t, SimBookSide.BID, 5500, 100, "manual-1", time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL)
        exchange.create_order(h.sim.api_key.user_id, manual)
        h.sim.state.publish()
        drift = await node.until(
            lambda s: (
                s.value("mm_reconciliation_drift_total", exchange=EXCHANGE, kind="position") >= 1
                and s.get("mm_reconciliation_mismatched_positions", exchange=EXCHANGE) == 1
            ),
            "the periodic positions check to find the mismatch",
        )
        assert drift.value("mm_reconciliation_drift_total", exchange=EXCHANGE, kind="order_adopted") == 0


# --------------------------------------------------------------------------- write-behind queue


async def test_a_locked_database_moves_the_queue_depth_and_write_errors(tmp_path: Path) -> None:
    async with scraped_node(tmp_path) as node:
        t, h = node.ticker, node.h
        h.seed_book(t)
        await node.quoting()
        await node.until(lambda s: s.get("mm_db_queue_depth") == 0, "the queue to be written out")
        database = await node.until(lambda s: s.value("mm_disk_usage_bytes", what="database") > 0, "the db size")
        assert database.value("mm_disk_usage_bytes", what="database") == pytest.approx(
            sum(p.stat().st_size for p in h.state_dir.glob("mmctl.db*")), rel=0.5
        )
        errors = database.value("mm_db_write_errors_total", kind="transient")
        with write_locked(h.state_dir / "mmctl.db"):
            h.take(t, SimBookSide.ASK, 4800, 100)  # a fill: fill, order and event records to write
            await node.until(lambda s: s.value("mm_db_queue_depth") > 0, "records waiting in the queue")
            # the writer waits out SQLite's busy timeout (5 s), fails and keeps the records
            locked = await node.until(
                lambda s: s.value("mm_db_write_errors_total", kind="transient") > errors,
                "a failed write while the database is locked",
                timeout=15,
            )
            assert locked.value("mm_db_queue_depth") > 0
        await node.until(lambda s: s.get("mm_db_queue_depth") == 0, "the queue to drain after the lock", timeout=15)


# --------------------------------------------------------------------------- system


async def test_system_metrics_come_from_the_running_process(tmp_path: Path) -> None:
    async with scraped_node(tmp_path) as node:
        first = await node.scrape()
        assert first.value("process_cpu_seconds_total") > 0
        assert first.value("process_resident_memory_bytes") > 10_000_000
        assert first.value("mm_disk_free_bytes") > 0
        received = first.value("mm_network_bytes_total", interface="lo", direction="receive")
        # the scrape itself (and the node's traffic with the simulator) goes through the loopback interface
        await node.until(
            lambda s: s.value("mm_network_bytes_total", interface="lo", direction="receive") > received,
            "loopback traffic to be counted",
        )
