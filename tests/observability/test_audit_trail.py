"""The audit trail in the logs (NFR-302/401): order actions, answers and fills, with correlation ids."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mm.observability.logging import configure_logging, get_level, reset_logging
from mm.sim.types import BookSide as SimBookSide
from tests.controller.harness import EXCHANGE_YAML, RISK_YAML, market_yaml, running_node, strategy_yaml, wait_until


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    yield stream
    reset_logging()


def audit(stream: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("audit")]


def docs(tickers: list[str]) -> list[str]:
    return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0])]


async def test_orders_answers_and_fills_are_logged_with_their_correlation_ids(
    tmp_path: Path, log_lines: io.StringIO
) -> None:
    async with running_node(tmp_path, docs) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        h.take(ticker, SimBookSide.ASK, 4800, 100)
        await wait_until(lambda: any(e["event"] == "fill" for e in audit(log_lines)), what="the fill in the log")
    entries = audit(log_lines)
    creates = [e for e in entries if e["event"] == "order_action" and e["call"] == "create"]
    assert {e["price"] for e in creates} >= {"0.4800", "0.5200"} and all(
        str(e["order"]).startswith("mm:") for e in creates
    )
    # every action was sent inside a reconcile: its id and resource are on the line
    assert all(e.get("reconcile_id") and e.get("resource") == "Market/m1" for e in creates)
    answers = {e["order"] for e in entries if e["event"] == "order_answer" and e.get("status") == "open"}
    assert {e["order"] for e in creates} <= answers, "each create's answer is logged under the same order id"
    (fill,) = [e for e in entries if e["event"] == "fill"]
    assert fill["market"] == ticker and fill["quantity"] == "1.00" and fill["price"] == "0.4800"
    cancels = [e for e in entries if e["event"] == "order_action" and e["call"] == "cancel"]
    assert cancels, "the shutdown's cancels are in the trail too"


async def test_the_log_level_follows_the_trading_node(tmp_path: Path, log_lines: io.StringIO) -> None:
    node = "apiVersion: mm/v1alpha1\nkind: TradingNode\nmetadata: {name: n1}\nspec:\n  logging: {level: WARNING}\n"

    def with_node(tickers: list[str]) -> list[str]:
        return [*docs(tickers), node]

    async with running_node(tmp_path, with_node) as h:
        await wait_until(lambda: get_level() == "WARNING", what="the TradingNode's level applied")
        before = len(log_lines.getvalue())
        h.seed_book(h.tickers()[0])
        await wait_until(lambda: h.quoting("m1", h.tickers()[0]), what="quoting")
        assert '"order_action"' not in log_lines.getvalue()[before:], "INFO audit lines are below WARNING"
