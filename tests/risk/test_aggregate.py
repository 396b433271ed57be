"""Aggregate limits across markets (FR-1302)."""

from __future__ import annotations

from decimal import Decimal

from mm.risk.aggregate import AggregateRisk, AggregateUsage, MarketUsage
from mm.specs.node import AggregateLimits

LIMITS = AggregateLimits.model_validate(
    {
        "max_total_notional": 1000,
        "max_total_contracts": 5000,
        "max_daily_loss": 200,
        "max_hourly_loss": 100,
        "max_concurrent_markets": 2,
    }
)


def usage(*markets: MarketUsage) -> AggregateUsage:
    return AggregateUsage({m.market_id: m for m in markets})


def test_totals_sum_the_markets() -> None:
    u = usage(
        MarketUsage("a", 100_0000, 300_00, -10_0000, -50_0000), MarketUsage("b", 250_0000, 700_00, 5_0000, 1_0000)
    )
    assert (u.notional_units, u.contracts_units) == (350_0000, 1000_00)
    assert (u.hourly_pnl_units, u.daily_pnl_units) == (-5_0000, -49_0000)


def test_loss_breaches_are_at_or_beyond_the_limit() -> None:
    risk = AggregateRisk(LIMITS)
    assert risk.breach(usage(MarketUsage("a", daily_pnl_units=-199_9999))) is None
    reason = risk.breach(usage(MarketUsage("a", daily_pnl_units=-150_0000), MarketUsage("b", daily_pnl_units=-50_0000)))
    assert reason is not None and "aggregate daily loss $200" in reason
    hourly = risk.breach(usage(MarketUsage("a", hourly_pnl_units=-100_0000)))
    assert hourly is not None and "hourly" in hourly
    assert risk.breach(usage(MarketUsage("a", daily_pnl_units=500_0000))) is None  # profit is no breach


def test_room_left_never_negative() -> None:
    risk = AggregateRisk(LIMITS)
    assert risk.room(usage(MarketUsage("a", 400_0000, 1000_00))) == (600_0000, 4000_00)
    assert risk.room(usage(MarketUsage("a", 1200_0000, 6000_00))) == (0, 0)


def test_concurrent_market_slots() -> None:
    risk = AggregateRisk(LIMITS)
    two = usage(MarketUsage("a"), MarketUsage("b"))
    assert risk.can_activate(two, "a")  # already active
    assert not risk.can_activate(two, "c")
    assert risk.can_activate(usage(MarketUsage("a"), MarketUsage("b", active=False)), "c")


def test_report_per_market_against_aggregate() -> None:
    report = AggregateRisk(LIMITS).report(
        usage(MarketUsage("b", 250_0000, 1000_00), MarketUsage("a", 250_0000, 500_00))
    )
    assert [r.name for r in report.rows] == ["a", "b"]
    assert report.total.notional == Decimal(500) and report.total.notional_share == Decimal("0.5")
    assert report.rows[1].contracts == Decimal(1000) and report.rows[1].contracts_share == Decimal("0.2")
    assert report.active_markets == 2 and report.max_concurrent_markets == 2 and report.breach is None
