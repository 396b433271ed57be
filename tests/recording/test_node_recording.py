"""A node against the in-process simulator with recording on: the session file holds what the node saw and did.

The harness of tests/controller (simulator on loopback HTTP/WebSocket, the node's clock = the simulator's
market clock). The files are read back while the node runs by flushing the recorder (a gzip sync point) and
reading up to it — polling with a timeout, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from mm.recording.format import SessionReader, SessionRecord, read_session
from mm.recording.recorder import MIB, SessionRecorder
from mm.sim.types import BookSide as SimBookSide
from tests.controller.harness import (
    EXCHANGE_YAML,
    RISK_YAML,
    START,
    TIMEOUT,
    market_yaml,
    running_node,
    strategy_yaml,
    wait_until,
)


def node_yaml(directory: Path, extra: str = "") -> str:
    return f"""\
apiVersion: mm/v1alpha1
kind: TradingNode
metadata: {{name: n1}}
spec:
  recording:
    enabled: true
    output_dir: {directory}
    snapshot_interval_seconds: 0.2
{extra}"""


def documents(directory: Path, extra: str = "") -> Callable[[list[str]], list[str]]:
    def build(tickers: list[str]) -> list[str]:
        return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0]), node_yaml(directory, extra)]

    return build


def readable(path: Path) -> list[SessionRecord]:
    """An open file's records up to its last flush (the stream has no end marker yet: that one line is skipped)."""
    with SessionReader(path, skip_bad=True) as reader:
        records = list(reader)
    assert all("truncated" in why for _, why in reader.bad_lines), reader.bad_lines
    return records


async def recorded(
    recorder: SessionRecorder, condition: Callable[[list[SessionRecord]], bool], what: str
) -> list[SessionRecord]:
    async def poll() -> list[SessionRecord]:
        while True:
            await recorder.flush()
            records = [r for p in recorder.paths for r in readable(p)]
            if condition(records):
                return records
            await asyncio.sleep(0.05)

    try:
        return await asyncio.wait_for(poll(), TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"timed out after {TIMEOUT} s waiting for {what} in the session file") from None


def types(records: list[SessionRecord]) -> set[str]:
    return {r.type for r in records}


async def test_a_session_of_quoting_and_a_fill(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    async with running_node(tmp_path, documents(sessions)) as h:
        recorder = h.runtime.recorder
        assert recorder is not None and h.runtime.node.recorder is recorder
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        h.take(ticker, SimBookSide.ASK, 4800, 500)  # a crowd seller hits our 0.48 bid
        account = h.runtime.node.account("sim", "live")
        await wait_until(lambda: account.ledger.net_units(ticker) == 500, what="the fill in the ledger")

        def snapshot_after_fill(records: list[SessionRecord]) -> bool:
            return "fill" in types(records) and any(
                r.type == "state_snapshot" and r.data["accounts"] and r.data["accounts"][0]["position_units"] == 500
                for r in records
            )

        await recorded(recorder, snapshot_after_fill, "a state_snapshot holding the fill")
        clock_now = h.runtime.clock.now_us()
        path = recorder.paths[0]
    # stopped: the file is complete and strictly valid
    records = read_session(path)
    assert path.parent == sessions and path.name.startswith(f"session_{ticker}_20260813_")
    assert path.name.endswith(".jsonl.gz")
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    stamps = [r.ts_us for r in records]
    assert stamps == sorted(stamps)
    assert stamps[0] >= START and stamps[-1] <= clock_now + 60_000_000  # the market clock, not the wall
    assert {r.market for r in records} == {ticker}
    present = types(records)
    for expected in (
        "session_start",
        "book_snapshot",
        "book_delta",
        "quote_generated",
        "volatility_update",
        "order_sent",
        "order_ack",
        "fill",
        "state_snapshot",
        "session_end",
    ):
        assert expected in present, f"no {expected} in {sorted(present)}"
    assert records[0].type == "session_start" and records[-1].type == "session_end"

    start = records[0].data
    market_cfg = start["config"]["markets"][0]
    assert market_cfg["name"] == "m1" and market_cfg["market"]["ticker"] == ticker
    assert market_cfg["strategy"]["components"]["spread"]["params"]["base_spread"] == "0.04"  # exact, a string
    assert "rules" in market_cfg["risk_policy"]
    assert start["seeds"]["simulator"] == {"sim": 1}
    assert start["market_info"]["close_time_us"] > START

    quote = next(r for r in records if r.type == "quote_generated")
    assert quote.data["inputs"]["mid"] == "0.5000"  # seed book 0.45 / 0.55, exact
    assert quote.data["inputs"]["inventory_units"] == 0
    assert 0 < quote.data["inputs"]["time_to_settlement_s"] <= 1800
    assert quote.data["strategy"]["quotes"]["yes_bid"] == [4800, 500]
    assert quote.data["risk"]["quotes"]["yes_ask"] == [5200, 500]
    assert quote.data["risk"]["state"] == "active"

    sent = next(r for r in records if r.type == "order_sent")
    ack = next(
        r for r in records if r.type == "order_ack" and r.data["client_order_id"] == sent.data["client_order_id"]
    )
    assert ack.seq > sent.seq and ack.data["exchange_order_id"]
    fill = next(r for r in records if r.type == "fill")
    assert (fill.data["price_units"], fill.data["size_units"], fill.data["order_side"]) == (4800, 500, "buy")
    assert (fill.data["fee"] and "." in fill.data["fee"]) or fill.data["fee"] == "0"

    snapshot = next(r for r in records if r.type == "book_snapshot")
    assert [4500, 5000] in snapshot.data["yes_bids"]
    end = records[-1].data
    assert end["reason"] == "node stopped (drain)"
    assert end["state"]["accounts"][0]["position_units"] == 500


async def test_the_storage_limit_stops_recording_and_trading_goes_on(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    # an earlier session already fills the 1 MiB allowance but for a few KB
    (sessions / "session_OLD_20260813_2000.jsonl.gz").write_bytes(b"\0" * (MIB - 2_000))
    async with running_node(tmp_path, documents(sessions, "    max_storage_mb: 1\n")) as h:
        recorder = h.runtime.recorder
        assert recorder is not None
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        await wait_until(lambda: recorder.recording_stopped, what="recording to stop at the limit")
        events = [e for e in h.runtime.node.events if e[2] == "RecordingStopped"]
        assert len(events) == 1 and "storage_limit" in events[0][3]
        # trading is untouched: a fill still lands and the quotes move on
        h.take(ticker, SimBookSide.ASK, 4800, 500)
        account = h.runtime.node.account("sim", "live")
        await wait_until(lambda: account.ledger.net_units(ticker) == 500, what="a fill after recording stopped")
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting after recording stopped")
        paths = list(recorder.paths)
    records = read_session(paths[0])  # closed cleanly when it stopped
    assert records[-1].type == "session_end" and records[-1].data["reason"] == "storage_limit"


async def test_recording_off_means_no_recorder(tmp_path: Path) -> None:
    def build(tickers: list[str]) -> list[str]:
        node = (
            "apiVersion: mm/v1alpha1\nkind: TradingNode\nmetadata: {name: n1}\nspec:\n  recording: {enabled: false}\n"
        )
        return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0]), node]

    async with running_node(tmp_path, build) as h:
        assert h.runtime.recorder is None and h.runtime.node.recorder is None
