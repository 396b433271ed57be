"""The MarketSelector's pure logic: filters, ranking, lifecycle, plans, and a simulated hourly roll-over."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mm.adapters.base import MarketInfo
from mm.domain.events import MarketLifecycle
from mm.domain.price import Price, Quantity
from mm.domain.ticks import TickGrid
from mm.reconcilers.market_selection import (
    LEGAL_TRANSITIONS,
    IllegalTransitionError,
    Phase,
    SelectionPlan,
    SelectorState,
    TickerState,
    Transition,
    apply_lifecycle,
    filter_markets,
    market_resource_name,
    rank,
    rejection_reasons,
    select,
    transition,
)
from mm.specs.envelope import MarketResource
from mm.specs.market import MarketSelectorSpec
from mm.specs.types import NAME_RE

# --- builders ----------------------------------------------------------------------------------------------------

EDT = timezone(timedelta(hours=-4), "EDT")
"""Kalshi's hourly event tickers name the ET hour; August is EDT (UTC−4)."""
MINUTE_US = 60_000_000
GRID = TickGrid.linear_cent()
SELECTOR = "btc-hourly"


def et_us(hour: int, minute: int = 0, day: int = 13) -> int:
    """Microseconds since the epoch of ``hour:minute`` ET on Aug ``day`` 2026."""
    return int(datetime(2026, 8, day, hour, minute, tzinfo=EDT).timestamp()) * 1_000_000


def hourly_ticker(hour: int, strike: str = "73249.99", series: str = "KXBTCD", day: int = 13) -> str:
    """``KXBTCD-26AUG1317-T73249.99``: the market of the event closing at ``hour``:00 ET."""
    return f"{series}-26AUG{day:02d}{hour:02d}-T{strike}"


def market_info(
    ticker: str,
    *,
    close_us: int | None = None,
    open_us: int | None = None,
    status: str = "active",
    bid: str | None = "0.45",
    ask: str | None = "0.48",
    volume: str | None = "5000",
    open_interest: str | None = "800",
) -> MarketInfo:
    """A MarketInfo as an adapter reports it; event and series come from the ticker, close from its ET hour."""
    series, event_suffix, strike = ticker.split("-")
    if close_us is None:
        close_us = et_us(int(event_suffix[-2:]), day=int(event_suffix[-4:-2]))
    return MarketInfo(
        market_id=ticker,
        event_id=f"{series}-{event_suffix}",
        series_id=series,
        status=status,
        open_time_us=close_us - 60 * MINUTE_US if open_us is None else open_us,
        close_time_us=close_us,
        grid=GRID,
        strike=strike,
        best_bid=None if bid is None else Price.from_decimal(bid),
        best_ask=None if ask is None else Price.from_decimal(ask),
        volume_24h=None if volume is None else Quantity.from_decimal(volume),
        open_interest=None if open_interest is None else Quantity.from_decimal(open_interest),
    )


def selector_spec(**fields: Any) -> MarketSelectorSpec:
    filters = fields.pop("filters", {})
    base: dict[str, Any] = {
        "exchange_ref": "kalshi-demo",
        "series": ["KXBTCD"],
        "filters": filters,
        "template": {"strategy_ref": "as-default", "risk_policy_ref": "conservative"},
    }
    return MarketSelectorSpec.model_validate(base | fields)


def plan_for(
    spec: MarketSelectorSpec,
    infos: Sequence[MarketInfo],
    now_us: int,
    state: SelectorState | None = None,
    seed: int = 7,
) -> SelectionPlan:
    return select(spec, infos, state or SelectorState(), now_us, seed, selector_name=SELECTOR)


T17 = hourly_ticker(17)
NOW = et_us(16, 0)  # 60 minutes before the 17:00 ET close


def test_builder_matches_the_venue_schedule() -> None:
    info = market_info("KXBTCD-26AUG1317-T73249.99")
    assert info.event_id == "KXBTCD-26AUG1317"
    assert info.series_id == "KXBTCD"
    # 5 PM EDT is 21:00Z (kalshi-api.md §12)
    assert info.close_time_us == int(datetime(2026, 8, 13, 21, tzinfo=UTC).timestamp()) * 1_000_000


# --- filters -----------------------------------------------------------------------------------------------------


def test_a_market_passing_every_filter_is_eligible() -> None:
    spec = selector_spec(
        filters={
            "min_volume_24h": "1000",
            "min_open_interest": "500",
            "max_spread": "0.05",
            "max_time_to_settlement": "90",
            "min_price": "0.10",
            "max_price": "0.90",
        }
    )
    info = market_info(T17)
    assert rejection_reasons(info, spec, NOW) == ()
    assert filter_markets([info], spec, NOW) == ([info], [])


@pytest.mark.parametrize(
    ("filters", "spec_fields", "info_fields", "now_us", "reason"),
    [
        ({}, {"exclude_tickers": [T17]}, {}, NOW, "excluded by exclude_tickers (manual remove)"),
        ({}, {}, {"ticker": "KXETHD-26AUG1317-T3999.99"}, NOW, "series KXETHD not in series [KXBTCD]"),
        ({}, {}, {"status": "initialized"}, NOW, "status initialized, not active"),
        ({}, {}, {"status": "paused"}, NOW, "status paused, not active"),
        ({}, {}, {}, et_us(17, 0), "past its close time"),
        ({}, {}, {}, et_us(16, 50), "closes in 10 min < min_time_to_settlement 30"),
        (
            {"min_time_to_settlement": "0"},
            {},
            {},
            et_us(16, 57),
            "closes in 3 min, within deactivate_before_close_minutes 5",
        ),
        ({"max_time_to_settlement": "45"}, {}, {}, NOW, "closes in 60 min > max_time_to_settlement 45"),
        ({"max_time_to_settlement": "59.5"}, {}, {}, NOW - 1, "closes in 60.1 min > max_time_to_settlement 59.5"),
        ({"min_volume_24h": "1000"}, {}, {"volume": "999.99"}, NOW, "volume_24h 999.99 < min 1000"),
        ({"min_volume_24h": "1000"}, {}, {"volume": None}, NOW, "volume_24h unknown < min 1000"),
        ({"min_open_interest": "500"}, {}, {"open_interest": "499"}, NOW, "open_interest 499 < min 500"),
        ({"max_spread": "0.05"}, {}, {"bid": "0.40", "ask": "0.52"}, NOW, "spread 0.12 > max 0.05"),
        ({"max_spread": "0.05"}, {}, {"bid": None}, NOW, "spread unknown (one-sided or empty book), max 0.05"),
        ({}, {}, {"bid": "0.50", "ask": "0.50"}, NOW, "book crossed or locked (bid 0.5000 >= ask 0.5000)"),
        ({"min_price": "0.20"}, {}, {"bid": "0.10", "ask": "0.13"}, NOW, "mid 0.115 < min_price 0.20"),
        ({"max_price": "0.80"}, {}, {"bid": "0.85", "ask": "0.87"}, NOW, "mid 0.86 > max_price 0.80"),
        ({"min_price": "0.20"}, {}, {"ask": None}, NOW, "mid unknown (one-sided or empty book)"),
        (
            {"categories": ["crypto-hourly"]},
            {},
            {},
            NOW,
            "category of series KXBTCD unknown; categories [crypto-hourly]",
        ),
    ],
)
def test_each_filter_rejects_with_its_reason(
    filters: dict[str, Any], spec_fields: dict[str, Any], info_fields: dict[str, Any], now_us: int, reason: str
) -> None:
    spec = selector_spec(filters=filters, **spec_fields)
    ticker = info_fields.pop("ticker", T17)
    info = market_info(ticker, **info_fields)
    assert rejection_reasons(info, spec, now_us) == (reason,)
    eligible, rejected = filter_markets([info], spec, now_us)
    assert eligible == []
    assert [(r.ticker, r.reason) for r in rejected] == [(ticker, reason)]


def test_categories_use_the_series_category_map() -> None:
    spec = selector_spec(filters={"categories": ["crypto-hourly", "crypto-daily"]})
    info = market_info(T17)
    assert rejection_reasons(info, spec, NOW, series_categories={"KXBTCD": "crypto-hourly"}) == ()
    assert rejection_reasons(info, spec, NOW, series_categories={"KXBTCD": "politics"}) == (
        "category politics not in categories [crypto-hourly, crypto-daily]",
    )


def test_time_limits_are_inclusive_at_their_boundaries() -> None:
    spec = selector_spec(filters={"min_time_to_settlement": "30", "max_time_to_settlement": "60"})
    info = market_info(T17)
    assert rejection_reasons(info, spec, et_us(16, 30)) == ()  # exactly 30 min left
    assert rejection_reasons(info, spec, et_us(16, 0)) == ()  # exactly 60 min left
    assert rejection_reasons(info, spec, et_us(16, 30) + 1) == ("closes in 29.9 min < min_time_to_settlement 30",)


def test_every_failing_filter_is_reported_not_only_the_first() -> None:
    spec = selector_spec(filters={"min_volume_24h": "1000", "max_spread": "0.05"}, exclude_tickers=[T17])
    info = market_info(T17, status="closed", volume="10", bid="0.10", ask="0.90")
    reasons = rejection_reasons(info, spec, et_us(17, 5))
    assert reasons == (
        "excluded by exclude_tickers (manual remove)",
        "status closed, not active",
        "past its close time",
        "volume_24h 10 < min 1000",
        "spread 0.80 > max 0.05",
    )
    _, [rejection] = filter_markets([info], spec, et_us(17, 5))
    assert rejection.reason == "; ".join(reasons)


def test_filter_keeps_input_order() -> None:
    spec = selector_spec(filters={"min_volume_24h": "1000"})
    infos = [market_info(hourly_ticker(17, s), volume=v) for s, v in [("3", "5000"), ("1", "10"), ("2", "2000")]]
    eligible, rejected = filter_markets(infos, spec, NOW)
    assert [i.market_id for i in eligible] == [hourly_ticker(17, "3"), hourly_ticker(17, "2")]
    assert [r.ticker for r in rejected] == [hourly_ticker(17, "1")]


# --- ranking -----------------------------------------------------------------------------------------------------


def _ladder() -> list[MarketInfo]:
    return [
        market_info(hourly_ticker(17, "73249.99"), volume="4000", bid="0.46", ask="0.50"),  # spread 4, mid .48
        market_info(hourly_ticker(17, "73499.99"), volume="9000", bid="0.30", ask="0.33"),  # spread 3, mid .315
        market_info(hourly_ticker(17, "72999.99"), volume="9000", bid="0.60", ask="0.62"),  # spread 2, mid .61
        market_info(hourly_ticker(17, "73749.99"), volume=None, bid="0.49", ask="0.53"),  # spread 4, mid .51
        market_info(hourly_ticker(17, "74000.00"), volume="100", bid=None, ask="0.10"),  # one-sided
    ]


def _ids(infos: Sequence[MarketInfo]) -> list[str]:
    return [i.market_id.rsplit("-T", 1)[1] for i in infos]


def test_highest_volume_orders_by_volume_ties_by_ticker_unknown_last() -> None:
    assert _ids(rank(_ladder(), "highest_volume", 0)) == ["72999.99", "73499.99", "73249.99", "74000.00", "73749.99"]


def test_lowest_spread_orders_by_spread_ties_by_ticker_one_sided_last() -> None:
    assert _ids(rank(_ladder(), "lowest_spread", 0)) == ["72999.99", "73499.99", "73249.99", "73749.99", "74000.00"]


def test_closest_to_even_orders_by_distance_of_mid_from_half() -> None:
    # |mid − 0.50|: .51 → .01, .48 → .02, .61 → .11, .315 → .185; one-sided last
    assert _ids(rank(_ladder(), "closest_to_even", 0)) == ["73749.99", "73249.99", "72999.99", "73499.99", "74000.00"]


def test_closest_to_even_breaks_equal_distance_by_ticker() -> None:
    above = market_info(hourly_ticker(17, "B"), bid="0.52", ask="0.54")  # mid .53
    below = market_info(hourly_ticker(17, "A"), bid="0.46", ask="0.48")  # mid .47
    assert rank([above, below], "closest_to_even", 0) == [below, above]


def test_random_is_deterministic_for_a_seed_and_independent_of_input_order() -> None:
    ladder = [market_info(hourly_ticker(17, f"7{k}249.99")) for k in range(8)]
    first = rank(ladder, "random", 42)
    assert rank(list(reversed(ladder)), "random", 42) == first
    assert rank(ladder, "random", 42) == first
    assert sorted(first, key=lambda i: i.market_id) == ladder  # a permutation
    orders = {tuple(_ids(rank(ladder, "random", seed))) for seed in range(5)}
    assert len(orders) > 1  # the seed matters
    # a third market appearing does not swap two others
    pair = rank(ladder[:2], "random", 42)
    assert [i for i in first if i in ladder[:2]] == pair


def test_rank_refuses_an_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown selection_strategy"):
        rank(_ladder(), "best", 0)  # type: ignore[arg-type]


# --- lifecycle ---------------------------------------------------------------------------------------------------

ALL_PAIRS = list(itertools.product(Phase, Phase))
LEGAL = [(a, b) for a, b in ALL_PAIRS if b in LEGAL_TRANSITIONS[a]]
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if b not in LEGAL_TRANSITIONS[a]]


def test_legal_transitions_are_the_fr_1303_lifecycle() -> None:
    assert set(LEGAL) == {
        (Phase.DISCOVERED, Phase.ANALYZING),
        (Phase.ANALYZING, Phase.ACTIVE),
        (Phase.ANALYZING, Phase.REJECTED),
        (Phase.REJECTED, Phase.ANALYZING),
        (Phase.ACTIVE, Phase.SETTLING),
        (Phase.SETTLING, Phase.SETTLED),
    }


@pytest.mark.parametrize(("before", "after"), LEGAL)
def test_a_legal_transition_records_phase_time_and_reason(before: Phase, after: Phase) -> None:
    moved = transition(TickerState(T17, before, 1), after, "why", 5)
    assert (moved.ticker, moved.phase, moved.since_us, moved.reason) == (T17, after, 5, "why")


@pytest.mark.parametrize(("before", "after"), ILLEGAL)
def test_an_illegal_transition_raises(before: Phase, after: Phase) -> None:
    with pytest.raises(IllegalTransitionError, match=f"{before} → {after}"):
        transition(TickerState(T17, before, 1), after, "why", 5)


def test_lifecycle_events_finish_owned_markets() -> None:
    state = SelectorState({T17: TickerState(T17, Phase.ACTIVE, 1)})
    event = MarketLifecycle(T17, "determined", et_us(17, 2), result="yes")
    after, moves = apply_lifecycle(state, event)
    assert after.phase(T17) is Phase.SETTLED
    assert [(m.from_phase, m.to_phase) for m in moves] == [
        (Phase.ACTIVE, Phase.SETTLING),
        (Phase.SETTLING, Phase.SETTLED),
    ]
    assert moves[-1] == Transition(T17, Phase.SETTLING, Phase.SETTLED, "lifecycle event determined", et_us(17, 2))
    # other kinds, other phases and unknown tickers change nothing
    for event_ in (
        MarketLifecycle(T17, "close_date_updated", 3, close_time_us=5),
        MarketLifecycle("OTHER", "settled", 3),
    ):
        assert apply_lifecycle(state, event_) == (state, ())
    rejected = SelectorState({T17: TickerState(T17, Phase.REJECTED, 1)})
    assert apply_lifecycle(rejected, event) == (rejected, ())


def test_state_round_trips_through_status() -> None:
    state = SelectorState(
        {
            T17: TickerState(T17, Phase.ACTIVE, 3, "include_tickers (manual add)", manual=True),
            "B": TickerState("B", Phase.REJECTED, 4, "spread 0.12 > max 0.05"),
        }
    )
    status = state.to_status()
    assert [m["ticker"] for m in status["markets"]] == ["B", T17]
    assert SelectorState.from_status(status) == state


# --- select: slots, overrides, lifecycle -------------------------------------------------------------------------


def _five() -> list[MarketInfo]:
    volumes = {"72249.99": "100", "72499.99": "900", "72749.99": "700", "72999.99": "300", "73249.99": "500"}
    return [market_info(hourly_ticker(17, s), volume=v) for s, v in volumes.items()]


def test_max_concurrent_activates_the_top_n_and_leaves_the_rest_analyzing() -> None:
    plan = plan_for(selector_spec(max_concurrent=3), _five(), NOW)
    assert plan.active == (hourly_ticker(17, "72499.99"), hourly_ticker(17, "72749.99"), hourly_ticker(17, "73249.99"))
    assert [s.ticker for s in plan.start] == list(plan.active)
    assert plan.state.active == tuple(sorted(plan.active))
    assert plan.state.tickers(Phase.ANALYZING) == (hourly_ticker(17, "72249.99"), hourly_ticker(17, "72999.99"))
    assert plan.stop == () and plan.finished == () and plan.rejected == ()
    first = plan.start[0]
    assert first.reason == "selected by highest_volume (slot 1 of 3)"
    assert [(t.from_phase, t.to_phase) for t in plan.transitions if t.ticker == first.ticker] == [
        (None, Phase.DISCOVERED),
        (Phase.DISCOVERED, Phase.ANALYZING),
        (Phase.ANALYZING, Phase.ACTIVE),
    ]


def test_start_builds_the_market_resource_from_the_template() -> None:
    spec = selector_spec(
        max_concurrent=1,
        template={
            "strategy_ref": "as-default",
            "risk_policy_ref": "conservative",
            "execution": "paper",
            "cutoff_minutes": "10",
            "overrides": {"strategy": {"min_spread": "0.02"}},
        },
    )
    [start] = plan_for(spec, [market_info(T17)], NOW).start
    assert start.name == "btc-hourly-kxbtcd-26aug1317-t73249.99"
    assert start.spec.ticker == T17 and start.spec.exchange_ref == "kalshi-demo"
    assert start.spec.strategy_ref == "as-default" and start.spec.risk_policy_ref == "conservative"
    assert str(start.spec.cutoff_minutes) == "10"
    assert start.spec.overrides.strategy == {"min_spread": "0.02"}
    resource = MarketResource.model_validate(start.manifest())
    assert resource.metadata.name == start.name
    assert resource.metadata.labels == {"mm/selector": SELECTOR}
    assert resource.spec == start.spec


def test_active_markets_are_sticky_against_filters_and_better_newcomers() -> None:
    spec = selector_spec(max_concurrent=1, filters={"min_volume_24h": "1000", "max_spread": "0.05"})
    first = plan_for(spec, [market_info(T17, volume="2000")], NOW)
    assert first.active == (T17,)
    # volume and spread degrade, and a much better market appears: no churn
    better = market_info(hourly_ticker(17, "73499.99"), volume="50000")
    second = plan_for(
        spec, [market_info(T17, volume="10", bid="0.30", ask="0.60"), better], NOW + MINUTE_US, first.state
    )
    assert second.active == (T17,)
    assert second.start == () and second.stop == ()
    assert second.state.phase(better.market_id) is Phase.ANALYZING
    assert T17 not in [r.ticker for r in second.rejected]  # owned markets are not reported as rejected


def test_rejected_markets_are_re_evaluated() -> None:
    spec = selector_spec(max_concurrent=1, filters={"min_volume_24h": "1000"})
    first = plan_for(spec, [market_info(T17, volume="10")], NOW)
    assert first.state.markets[T17].phase is Phase.REJECTED
    assert first.state.markets[T17].reason == "volume_24h 10 < min 1000"
    second = plan_for(spec, [market_info(T17, volume="1000")], NOW + MINUTE_US, first.state)
    assert second.active == (T17,)
    assert [(t.from_phase, t.to_phase) for t in second.transitions] == [
        (Phase.REJECTED, Phase.ANALYZING),
        (Phase.ANALYZING, Phase.ACTIVE),
    ]


def test_include_tickers_bypass_filters_and_take_slots_first() -> None:
    low = market_info(hourly_ticker(17, "80000.00"), volume="1", bid="0.01", ask="0.05")
    spec = selector_spec(max_concurrent=2, filters={"min_volume_24h": "200"}, include_tickers=[low.market_id])
    plan = plan_for(spec, [*_five(), low], NOW)
    assert plan.active == (low.market_id, hourly_ticker(17, "72499.99"))
    assert plan.state.markets[low.market_id].manual
    assert plan.start[0].reason == "include_tickers (manual add)"
    assert low.market_id not in [r.ticker for r in plan.rejected]


def test_an_include_added_later_displaces_the_lowest_ranked_active_market() -> None:
    spec = selector_spec(max_concurrent=2)
    first = plan_for(spec, _five(), NOW)
    assert first.active == (hourly_ticker(17, "72499.99"), hourly_ticker(17, "72749.99"))
    forced = hourly_ticker(17, "72249.99")
    second = plan_for(spec.model_copy(update={"include_tickers": [forced]}), _five(), NOW + MINUTE_US, first.state)
    assert second.active == (forced, hourly_ticker(17, "72499.99"))
    assert [(s.ticker, s.reason) for s in second.stop] == [
        (hourly_ticker(17, "72749.99"), "displaced: more than max_concurrent 2 ACTIVE markets")
    ]
    assert second.state.phase(hourly_ticker(17, "72749.99")) is Phase.SETTLING


def test_unmet_includes_carry_reasons() -> None:
    a, b, c = (hourly_ticker(17, s) for s in ("1", "2", "3"))
    closing = hourly_ticker(16, "9")
    spec = selector_spec(max_concurrent=2, include_tickers=[a, b, c, "KXBTCD-26AUG1318-T1", closing])
    infos = [market_info(a), market_info(b), market_info(c), market_info(closing)]
    plan = plan_for(spec, infos, et_us(15, 57))
    assert plan.active == (a, b)
    assert [(r.ticker, r.reason) for r in plan.unmet_includes] == [
        (c, "include_tickers beyond max_concurrent 2"),
        ("KXBTCD-26AUG1318-T1", "not listed by the venue"),
        (closing, "closes in 3 min, within deactivate_before_close_minutes 5"),
    ]


def test_exclude_tickers_stop_an_active_market_and_never_start_one() -> None:
    spec = selector_spec(max_concurrent=2)
    first = plan_for(spec, _five(), NOW)
    gone = first.active[0]
    spec2 = spec.model_copy(update={"exclude_tickers": [gone]})
    second = plan_for(spec2, _five(), NOW + MINUTE_US, first.state)
    assert gone not in second.active
    assert [(s.ticker, s.reason) for s in second.stop] == [(gone, "excluded by exclude_tickers (manual remove)")]
    assert second.stop[0].spec.trading_state == "reducing"
    assert second.active == (first.active[1], hourly_ticker(17, "73249.99"))  # the freed slot is refilled
    # removing the exclusion does not bring a SETTLING market back
    third = plan_for(spec, _five(), NOW + 2 * MINUTE_US, second.state)
    assert gone not in third.active and third.state.phase(gone) is Phase.SETTLING


def test_lowering_max_concurrent_winds_down_the_lowest_ranked() -> None:
    first = plan_for(selector_spec(max_concurrent=3), _five(), NOW)
    second = plan_for(selector_spec(max_concurrent=1), _five(), NOW + MINUTE_US, first.state)
    assert second.active == (hourly_ticker(17, "72499.99"),)
    assert sorted(s.ticker for s in second.stop) == [hourly_ticker(17, "72749.99"), hourly_ticker(17, "73249.99")]


def test_auto_discover_off_trades_only_includes() -> None:
    spec = selector_spec(auto_discover=False, include_tickers=[hourly_ticker(17, "72249.99")])
    plan = plan_for(spec, _five(), NOW)
    assert plan.active == (hourly_ticker(17, "72249.99"),)
    assert len(plan.state.tickers(Phase.ANALYZING)) == 4


def test_winding_down_keeps_a_halted_template_halted() -> None:
    spec = selector_spec(
        max_concurrent=1, template={"strategy_ref": "s", "risk_policy_ref": "r", "trading_state": "halted"}
    )
    first = plan_for(spec, [market_info(T17)], NOW)
    second = plan_for(spec, [market_info(T17)], et_us(16, 56), first.state)
    assert second.stop[0].spec.trading_state == "halted"


def test_an_active_market_winds_down_before_close_then_settles() -> None:
    spec = selector_spec(max_concurrent=1)
    name = market_resource_name(SELECTOR, T17)
    p1 = plan_for(spec, [market_info(T17)], NOW)
    assert p1.desired[name].trading_state == "active"
    p2 = plan_for(spec, [market_info(T17)], et_us(16, 56), p1.state)
    assert p2.active == ()
    assert [(s.ticker, s.name, s.reason) for s in p2.stop] == [
        (T17, name, "closes in 4 min, within deactivate_before_close_minutes 5")
    ]
    assert p2.desired[name].trading_state == "reducing"
    p3 = plan_for(spec, [market_info(T17, status="closed")], et_us(17, 1), p2.state)
    assert p3.state.phase(T17) is Phase.SETTLING and p3.transitions == ()
    p4 = plan_for(spec, [market_info(T17, status="determined")], et_us(17, 3), p3.state)
    assert p4.finished == (T17,)
    assert p4.state.markets[T17] == TickerState(T17, Phase.SETTLED, et_us(17, 3), "status determined")
    assert p4.desired == {}
    # the venue archives the market: the selector forgets it
    assert plan_for(spec, [], et_us(18, 0), p4.state).state.markets == {}


def test_a_market_that_vanishes_or_determines_between_reconciles_passes_through_settling() -> None:
    spec = selector_spec(max_concurrent=1)
    p1 = plan_for(spec, [market_info(T17)], NOW)
    for infos, reason in (
        ([], "no longer listed by the venue"),
        ([market_info(T17, status="settled")], "status settled"),
    ):
        p2 = plan_for(spec, infos, NOW + MINUTE_US, p1.state)
        assert [(t.from_phase, t.to_phase, t.reason) for t in p2.transitions if t.ticker == T17] == [
            (Phase.ACTIVE, Phase.SETTLING, reason),
            (Phase.SETTLING, Phase.SETTLED, reason),
        ]
        assert [s.ticker for s in p2.stop] == [T17] and p2.finished == (T17,)


def test_never_owned_closed_markets_are_not_tracked() -> None:
    spec = selector_spec()
    plan = plan_for(spec, [market_info(hourly_ticker(16), status="closed")], NOW)
    assert plan.state.markets == {}
    assert [r.reason for r in plan.rejected] == ["status closed, not active; past its close time"]


def test_a_ticker_listed_twice_with_different_facts_is_refused() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        plan_for(selector_spec(), [market_info(T17), market_info(T17, volume="1")], NOW)
    # a page boundary repeating the same market is harmless
    plan = plan_for(selector_spec(), [market_info(T17), market_info(T17)], NOW)
    assert plan.active == (T17,) and len(plan.start) == 1


# --- names -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticker", "expected"),
    [
        ("KXBTCD-26AUG1317-T73249.99", "btc-hourly-kxbtcd-26aug1317-t73249.99"),
        ("KXBTC15M-26SEP261900-00", "btc-hourly-kxbtc15m-26sep261900-00"),
    ],
)
def test_resource_names_are_the_lower_cased_ticker(ticker: str, expected: str) -> None:
    assert market_resource_name(SELECTOR, ticker) == expected


def test_resource_names_are_sanitised_bounded_and_distinct() -> None:
    odd = market_resource_name(SELECTOR, "A_B:C.")
    plain = market_resource_name(SELECTOR, "A-B-C")
    assert odd.startswith("btc-hourly-a-b-c-") and odd != plain
    long = market_resource_name("a" * 50, "KXBTCD-26AUG1317-T73249.99")
    other = market_resource_name("a" * 50, "KXBTCD-26AUG1317-T73499.99")
    for name in (odd, plain, long, other):
        assert NAME_RE.fullmatch(name) and len(name) <= 63
    assert long != other


# --- purity ------------------------------------------------------------------------------------------------------


def test_the_plan_is_a_pure_function_of_its_inputs() -> None:
    spec = selector_spec(max_concurrent=2, selection_strategy="random", filters={"min_volume_24h": "200"})
    infos = _five()
    state = plan_for(spec, infos[:2], NOW - MINUTE_US, seed=3).state
    snapshot = (copy.deepcopy(infos), copy.deepcopy(state))
    plans = [plan_for(spec, infos, NOW, state, seed=3) for _ in range(3)]
    assert plans[0] == plans[1] == plans[2]
    assert (infos, state) == snapshot  # inputs untouched
    # and the seed is the only source of randomness
    assert plan_for(spec, list(reversed(infos)), NOW, state, seed=3).active == plans[0].active


# --- a simulated three hours of hourly markets ---------------------------------------------------------------------

STRIKES = {"72999.99": "3000", "73249.99": "9000", "73499.99": "7000", "73749.99": "500"}
"""Strike → 24 h volume: highest_volume picks T73249.99 and T73499.99 of each hour."""


def venue_listing(now_us: int, hours: Sequence[int], *, open_before_min: int) -> list[MarketInfo]:
    """The KXBTCD ladder as the venue lists it at ``now_us``: listed 60 min before opening, initialized until
    ``open_before_min`` before close, active until close, closed for 5 min, determined for 5, then settled;
    archived (unlisted) 90 min after close."""
    listing: list[MarketInfo] = []
    for hour in hours:
        close = et_us(hour)
        opens = close - open_before_min * MINUTE_US
        if now_us < opens - 60 * MINUTE_US or now_us >= close + 90 * MINUTE_US:
            continue
        if now_us < opens:
            status = "initialized"
        elif now_us < close:
            status = "active"
        elif now_us < close + 5 * MINUTE_US:
            status = "closed"
        elif now_us < close + 10 * MINUTE_US:
            status = "determined"
        else:
            status = "settled"
        listing += [
            market_info(hourly_ticker(hour, s), close_us=close, open_us=opens, status=status, volume=v)
            for s, v in STRIKES.items()
        ]
    return listing


def run(
    spec: MarketSelectorSpec, start_us: int, end_us: int, listing: Callable[[int], list[MarketInfo]]
) -> list[tuple[int, SelectionPlan]]:
    state = SelectorState()
    history: list[tuple[int, SelectionPlan]] = []
    now = start_us
    while now <= end_us:
        plan = select(spec, listing(now), state, now, 11, selector_name=SELECTOR)
        history.append((now, plan))
        state = plan.state
        now += 5 * MINUTE_US
    return history


ROLL_SPEC = selector_spec(
    max_concurrent=2,
    deactivate_before_close_minutes="10",
    filters={"min_volume_24h": "1000", "min_time_to_settlement": "30", "max_time_to_settlement": "75"},
)
TOP = ("73249.99", "73499.99")


def test_three_hours_roll_over_with_no_gap_and_settle() -> None:
    hours = (16, 17, 18, 19)
    history = run(ROLL_SPEC, et_us(15, 0), et_us(18, 15), lambda now: venue_listing(now, hours, open_before_min=120))
    assert len(history) == 40  # 15:00 .. 18:15 every 5 minutes

    def current_hour(now: int) -> int:
        # the nearest hour that is not within deactivate_before_close_minutes (10) of its close
        return next(h for h in hours if et_us(h) - now >= 10 * MINUTE_US)

    started: list[str] = []
    for now, plan in history:
        # never a gap: two markets ACTIVE at every step, both of the current hour, the two most traded strikes
        hour = current_hour(now)
        assert plan.active == tuple(hourly_ticker(hour, s) for s in TOP)
        assert plan.state.active == tuple(sorted(plan.active))
        assert set(plan.desired) == {market_resource_name(SELECTOR, t) for t in plan.state.active + plan.state.settling}
        started += [s.ticker for s in plan.start]
    assert started == [hourly_ticker(h, s) for h in (16, 17, 18, 19) for s in TOP]  # each started exactly once

    # roll-over happens at the first step inside the 10-minute window (close − 5 min on this 5-minute grid), in
    # one plan: the closing hour stops and the next one starts
    moves = [t for _, plan in history for t in plan.transitions]
    for hour in (16, 17, 18):
        for strike in TOP:
            mine = [(t.from_phase, t.to_phase, t.at_us) for t in moves if t.ticker == hourly_ticker(hour, strike)]
            assert (Phase.ACTIVE, Phase.SETTLING, et_us(hour) - 5 * MINUTE_US) in mine
            assert (Phase.SETTLING, Phase.SETTLED, et_us(hour) + 5 * MINUTE_US) in mine  # determined
            activated = next(at for a, b, at in mine if b is Phase.ACTIVE)
            if hour > 16:
                assert activated == et_us(hour - 1) - 5 * MINUTE_US
        # the strikes never chosen were never owned
        for strike in ("72999.99", "73749.99"):
            assert not [t for t in moves if t.ticker == hourly_ticker(hour, strike) and t.to_phase is Phase.ACTIVE]

    final = history[-1][1].state
    assert final.active == tuple(hourly_ticker(19, s) for s in TOP)
    assert final.settling == ()
    # 16:00 markets are archived (forgotten); 17:00 and 18:00 ones are SETTLED and still listed
    assert final.tickers(Phase.SETTLED) == tuple(sorted(hourly_ticker(h, s) for h in (17, 18) for s in TOP))
    assert not [t for t in final.markets if "26AUG1316" in t]
    # every owned market went through the whole lifecycle, in order
    for strike in TOP:
        path = [(t.from_phase, t.to_phase) for t in moves if t.ticker == hourly_ticker(17, strike)]
        assert path[0] == (None, Phase.DISCOVERED) and path[-3:] == [
            (Phase.ANALYZING, Phase.ACTIVE),
            (Phase.ACTIVE, Phase.SETTLING),
            (Phase.SETTLING, Phase.SETTLED),
        ]


def test_roll_over_cannot_bridge_a_venue_that_opens_the_next_hour_only_at_the_top() -> None:
    # If the next hour's markets open only when the current hour closes, nothing is startable during the
    # deactivate window: the gap is the venue's schedule, and the selector starts the next hour at once.
    history = run(ROLL_SPEC, et_us(16, 0), et_us(17, 5), lambda now: venue_listing(now, (17, 18), open_before_min=60))
    active = {now: plan.active for now, plan in history}
    assert active[et_us(16, 50)] == tuple(hourly_ticker(17, s) for s in TOP)
    assert active[et_us(16, 55)] == ()  # 17:00 is winding down; 18:00 is still initialized
    assert active[et_us(17, 0)] == tuple(hourly_ticker(18, s) for s in TOP)


def test_max_concurrent_counts_active_only_so_settling_markets_do_not_block_the_roll() -> None:
    spec = selector_spec(max_concurrent=1, filters={"max_time_to_settlement": "70"})
    p1 = plan_for(spec, [market_info(hourly_ticker(17))], et_us(16, 0))
    infos = [market_info(hourly_ticker(17)), market_info(hourly_ticker(18))]
    p2 = plan_for(spec, infos, et_us(16, 56), p1.state)
    assert p2.state.settling == (hourly_ticker(17),)
    assert p2.active == (hourly_ticker(18),)
    assert [s.ticker for s in p2.start] == [hourly_ticker(18)]
    assert [s.ticker for s in p2.stop] == [hourly_ticker(17)]
    assert len(p2.desired) == 2  # both Markets exist: one quoting, one winding down
