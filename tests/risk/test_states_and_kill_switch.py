"""Trading states and the latched kill switch."""

from __future__ import annotations

import pytest

from mm.domain.price import Quantity
from mm.risk.kill_switch import InMemoryLatch, KillSwitch, KillSwitchError
from mm.risk.quote_ops import direction
from mm.risk.states import TradingState, most_restrictive, reducing_only
from tests.risk.builders import NOW_US, near_half


def test_most_restrictive_state_wins() -> None:
    a, r, h = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
    assert most_restrictive(a, a, a) is a
    assert most_restrictive(a, r, a) is r
    assert most_restrictive(r, h, a) is h
    assert most_restrictive() is a
    assert TradingState.parse("reducing") is r and r.label == "reducing"


def test_reducing_keeps_only_position_reducing_quotes_capped_at_the_position() -> None:
    qs = near_half(50, 50)
    long = reducing_only(qs, inventory_units=30 * 100)  # long 30: only selling YES / buying NO reduces
    assert long is not None
    assert long.yes_bid is None and long.no_ask is None
    assert long.yes_ask is not None and long.no_bid is not None
    assert long.yes_ask.size == Quantity.contracts(30) and long.no_bid.size == Quantity.contracts(30)
    assert all(direction(q) == -1 for q in long.quotes())
    short = reducing_only(qs, inventory_units=-5 * 100)
    assert short is not None and short.yes_ask is None and short.yes_bid is not None
    assert short.yes_bid.size == Quantity.contracts(5)


def test_reducing_when_flat_quotes_nothing() -> None:
    assert reducing_only(near_half(), inventory_units=0) is None


def test_kill_switch_latches_until_a_confirmed_manual_reset() -> None:
    switch = KillSwitch(InMemoryLatch(), scope="market/m1")
    assert not switch.tripped
    assert switch.trigger("daily loss limit", "pnl_limit", NOW_US)
    assert switch.tripped and switch.state.reason == "daily loss limit"
    assert not switch.trigger("later reason", "rule", NOW_US + 1)  # already tripped: first reason kept
    assert switch.state.reason == "daily loss limit"
    with pytest.raises(KillSwitchError, match="explicit confirmation"):
        switch.reset(confirm=False, operator="alice", now_us=NOW_US + 2)
    with pytest.raises(KillSwitchError, match="operator"):
        switch.reset(confirm=True, operator="  ", now_us=NOW_US + 2)
    assert switch.tripped
    switch.reset(confirm=True, operator="alice", now_us=NOW_US + 3)
    assert not switch.tripped and switch.state.reset_by == "alice"


def test_latch_survives_a_restart_of_the_risk_engine() -> None:
    latch = InMemoryLatch()  # stands in for the durable store the state layer provides
    KillSwitch(latch, "node").trigger("manual stop", "manual", NOW_US)
    restarted = KillSwitch(latch, "node")  # a new process reading the same latch
    assert restarted.tripped and restarted.state.reason == "manual stop"
    assert not KillSwitch(latch, "market/other").tripped  # scopes are independent
