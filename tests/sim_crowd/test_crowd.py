"""The synthetic crowd: fair value, maker ladders, noise and informed takers, determinism.

The last test runs the crowd against a toy price-time book (defined here, not the simulator's matching
engine) to check the emergent picture: a thin book a few cents wide, trades every few seconds.
"""

from __future__ import annotations

import itertools
import random
import statistics
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest

from mm.domain.sides import BookSide, TimeInForce
from mm.domain.ticks import TickGrid
from mm.sim.crowd import Cancel, Crowd, CrowdConfig, Intent, MarketView, Place, fair_value
from mm.sim.underlying import Underlying, UnderlyingConfig

S = 1_000_000
T0 = 1_786_651_200_000_000  # 2026-08-13T20:00:00Z
CLOSE = T0 + 3600 * S
K = Decimal("95249.99")
HOUR_S = 3600.0


def view(fair: float | None, bid: int | None = None, ask: int | None = None, **kw: object) -> MarketView:
    base = MarketView("KXBTCD-26AUG1317-T95249.99", K, CLOSE, 95_250.0, bid, ask, fair=fair)
    return replace(base, **kw)  # type: ignore[arg-type]


def places(intents: list[Intent], user_prefix: str = "") -> list[Place]:
    return [i for i in intents if isinstance(i, Place) and i.user_id.startswith(user_prefix)]


# -- fair value -------------------------------------------------------------------------------------


def test_fair_value_is_monotone_in_the_index_and_in_the_strike() -> None:
    prices = [94_000.0 + 100 * i for i in range(25)]
    values = [fair_value(K, s, HOUR_S, 0.5) for s in prices]
    assert all(a <= b for a, b in itertools.pairwise(values))
    assert values[0] < 0.1 and values[-1] > 0.9
    assert all(a < b for a, b in itertools.pairwise(values) if a > 0.01 and b < 0.99)  # strictly, off the clamps
    strikes = [Decimal(94_000 + 100 * i) - Decimal("0.01") for i in range(25)]
    by_strike = [fair_value(k, 95_250.0, HOUR_S, 0.5) for k in strikes]
    assert all(a >= b for a, b in itertools.pairwise(by_strike))
    assert fair_value(K, 95_250.0, HOUR_S, 0.5) == pytest.approx(0.5, abs=0.01)


def test_fair_value_tends_to_zero_or_one_at_the_close_and_is_clamped() -> None:
    above, below = 95_400.0, 95_100.0  # ±$150, about a third of an hourly standard deviation
    assert 0.55 < fair_value(K, above, HOUR_S, 0.5) < 0.7
    assert fair_value(K, above, 10.0, 0.5) == 0.99
    assert fair_value(K, below, 10.0, 0.5) == 0.01
    assert fair_value(K, above, 0.0, 0.5) == fair_value(K, above, 5.0, 0.5)  # τ floored at a few seconds
    assert fair_value(K, above, -3.0, 0.5) == 0.99
    assert fair_value(K, 200_000.0, HOUR_S, 0.5) == 0.99
    assert fair_value(K, above, HOUR_S, 0.0) == 0.99
    closer = [fair_value(K, above, t, 0.5) for t in (3600, 1800, 600, 120, 30)]
    assert closer == sorted(closer)
    with pytest.raises(ValueError):
        fair_value(K, 0.0, HOUR_S, 0.5)


# -- makers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", [TickGrid.linear_cent(), TickGrid.tapered_deci_cent(), TickGrid.deci_cent()])
def test_maker_quotes_are_on_the_grid_inside_bounds_and_around_fair(grid: TickGrid) -> None:
    crowd = Crowd(CrowdConfig(), seed=1)
    rng = random.Random(0)
    for i in range(500):
        fair = 0.01 + 0.98 * i / 499
        quotes = crowd.maker_quotes(grid, fair, rng)
        bids = [p for side, p in quotes if side is BookSide.BID]
        asks = [p for side, p in quotes if side is BookSide.ASK]
        assert all(grid.contains(p) and 100 <= p <= 9900 for _, p in quotes)
        assert len(bids) <= 3 and len(asks) <= 3
        if bids and asks:
            assert max(bids) < min(asks)
        assert all(p <= fair * 10_000 - 100 for p in bids)  # at least half the minimum 2¢ spread
        assert all(p >= fair * 10_000 + 100 for p in asks)
        assert all(p >= fair * 10_000 - 300 - 200 - 100 for p in bids)  # ≤ 3¢ half spread + 2 levels + rounding
        assert all(p <= fair * 10_000 + 300 + 200 + 100 for p in asks)
        if 0.1 < fair < 0.9:
            assert len(bids) == 3 and len(asks) == 3


def test_makers_quote_at_once_then_requote_every_refresh_cancelling_their_previous_orders() -> None:
    crowd = Crowd(CrowdConfig(makers=1, noise_taker_rate_per_minute=0), seed=4)
    first = crowd.step(T0, [view(0.5)])
    assert all(isinstance(i, Place) for i in first) and len(first) == 6
    assert {i.user_id for i in first} == {"crowd-maker-1"}
    assert all(i.post_only and i.time_in_force is TimeInForce.GOOD_TILL_CANCELED for i in places(first))
    assert crowd.step(T0 + 5 * S - 1, [view(0.5)]) == []
    second = crowd.step(T0 + 5 * S, [view(0.6)])
    cancels = [i for i in second if isinstance(i, Cancel)]
    assert [c.client_order_id for c in cancels] == [p.client_order_id for p in places(first)]
    assert second[: len(cancels)] == cancels  # cancels go before the new quotes
    assert statistics.fmean(p.price_units for p in places(second)) == pytest.approx(6000, abs=150)


def test_two_makers_refreshes_are_staggered() -> None:
    crowd = Crowd(CrowdConfig(makers=2, noise_taker_rate_per_minute=0, maker_refresh_seconds=4), seed=4)
    users_by_second = []
    for t in range(0, 13):
        users_by_second.append(sorted({i.user_id for i in crowd.step(T0 + t * S, [view(0.5)])}))
    assert users_by_second[0] == ["crowd-maker-1", "crowd-maker-2"]
    assert users_by_second[2] == ["crowd-maker-1"] and users_by_second[4] == ["crowd-maker-2"]
    assert users_by_second[6] == ["crowd-maker-1"] and users_by_second[8] == ["crowd-maker-2"]
    assert users_by_second[1] == users_by_second[3] == []


# -- noise takers -----------------------------------------------------------------------------------


def test_noise_takers_arrive_at_the_configured_rate_and_cross_the_spread() -> None:
    crowd = Crowd(CrowdConfig(makers=0, noise_taker_rate_per_minute=12), seed=8)
    orders = []
    for t in range(3 * 3600):
        orders += places(crowd.step(T0 - 2 * 3600 * S + t * S, [view(0.5, bid=4800, ask=5200)]), "crowd-noise")
    assert len(orders) == pytest.approx(12 * 180, rel=0.08)  # expected 2160, sd ≈ 46
    buys = [o for o in orders if o.side is BookSide.BID]
    assert 0.45 < len(buys) / len(orders) < 0.55
    assert {o.price_units for o in buys} == {5300, 5400}
    assert {o.price_units for o in orders if o.side is BookSide.ASK} == {4700, 4600}
    assert all(o.time_in_force is TimeInForce.IMMEDIATE_OR_CANCEL and not o.post_only for o in orders)
    assert min(o.count_units for o in orders) >= 100 and max(o.count_units for o in orders) <= 2500
    assert len({o.client_order_id for o in orders}) == len(orders)


def test_noise_arrivals_do_not_depend_on_how_often_step_is_called() -> None:
    fine, coarse = Crowd(CrowdConfig(makers=0), seed=3), Crowd(CrowdConfig(makers=0), seed=3)
    n_fine = sum(len(fine.step(T0 + t * S // 10, [view(0.5, 4800, 5200)])) for t in range(6000))
    n_coarse = sum(len(coarse.step(T0 + t * 30 * S, [view(0.5, 4800, 5200)])) for t in range(21))
    assert n_fine == n_coarse > 0


def test_noise_takers_skip_an_empty_side() -> None:
    crowd = Crowd(CrowdConfig(makers=0, noise_taker_rate_per_minute=60), seed=8)
    orders = []
    for t in range(600):
        orders += places(crowd.step(T0 + t * S, [view(0.5, bid=4800, ask=None)]))
    assert orders and all(o.side is BookSide.ASK for o in orders)


# -- informed takers --------------------------------------------------------------------------------


def informed_only(reaction: float = 0.0) -> Crowd:
    return Crowd(CrowdConfig(makers=0, noise_taker_rate_per_minute=0, informed_reaction_seconds=reaction), seed=2)


def test_informed_takers_act_only_beyond_the_threshold() -> None:
    crowd = informed_only()
    # fair 0.50, threshold 3¢: a bid of 0.53 / an ask of 0.47 is not enough.
    assert crowd.step(T0, [view(0.5, bid=5300, ask=5500)]) == []
    assert crowd.step(T0 + S, [view(0.5, bid=4500, ask=4700)]) == []
    sell = crowd.step(T0 + 2 * S, [view(0.5, bid=5400, ask=5600)])
    assert [(p.user_id, p.side, p.price_units, p.time_in_force) for p in places(sell)] == [
        ("crowd-informed", BookSide.ASK, 5300, TimeInForce.IMMEDIATE_OR_CANCEL)
    ]
    buy = crowd.step(T0 + 3 * S, [view(0.5, bid=4000, ask=4600)])
    assert [(p.side, p.price_units) for p in places(buy)] == [(BookSide.BID, 4700)]
    assert 500 <= places(buy)[0].count_units <= 4000


def test_informed_takers_react_after_their_latency() -> None:
    crowd = informed_only(reaction=1.0)
    stale = view(0.5, bid=5600, ask=5800)
    assert crowd.step(T0, [stale]) == []
    assert crowd.step(T0 + S // 2, [stale]) == []
    assert len(crowd.step(T0 + S, [stale])) == 1
    assert crowd.step(T0 + S + 1, [stale]) == []  # the clock restarts after acting
    assert crowd.step(T0 + 2 * S, [view(0.5, 5000, 5200)]) == []  # fixed in time: nothing
    assert crowd.step(T0 + 3 * S, [stale]) == []


def test_fair_value_from_the_index_drives_the_informed_side() -> None:
    crowd = informed_only()
    high_index = view(None, bid=5000, ask=5200, index_price=96_500.0)  # fair ≈ 0.99: lift the ask
    assert [p.side for p in places(crowd.step(T0, [high_index]))] == [BookSide.BID]
    assert crowd.fair_of(high_index, T0) == 0.99
    assert crowd.fair_of(view(None), CLOSE - 1) == pytest.approx(0.5, abs=0.01)


# -- determinism and lifecycle ----------------------------------------------------------------------


def run(seed: int) -> list[Intent]:
    crowd = Crowd(CrowdConfig(), seed)
    out: list[Intent] = []
    for t in range(300):
        out += crowd.step(T0 + t * S, [view(0.4 + t / 1000, 4000, 4600), view(0.7, 6800, 7300, ticker="X")])
    return out


def test_same_seed_and_inputs_give_the_same_intents() -> None:
    a, b, c = run(1), run(1), run(2)
    assert a == b
    assert a != c
    ids = [p.client_order_id for p in places(a)]
    assert len(ids) == len(set(ids))


def test_closed_and_missing_markets_get_no_intents_and_are_forgotten() -> None:
    crowd = Crowd(CrowdConfig(), seed=5)
    assert crowd.step(CLOSE, [view(0.5, 4000, 6000)]) == []
    assert crowd.step(T0, [view(0.5, 4000, 6000)])
    assert crowd.step(T0 + S, []) == []
    again = crowd.step(T0 + 2 * S, [view(0.5, 4000, 6000)])
    assert not any(isinstance(i, Cancel) for i in again)  # forgotten: quotes start afresh


# -- emergent behaviour against a toy book ------------------------------------------------------------


@dataclass
class Resting:
    user: str
    side: BookSide
    price: int
    count: int


class ToyBook:
    """Price-time matching, just enough to play the crowd against itself."""

    def __init__(self) -> None:
        self.orders: dict[str, Resting] = {}
        self.trades: list[tuple[int, int]] = []

    def best(self, side: BookSide) -> int | None:
        prices = [o.price for o in self.orders.values() if o.side is side]
        return (max if side is BookSide.BID else min)(prices) if prices else None

    def apply(self, now_us: int, intent: Intent) -> None:
        if isinstance(intent, Cancel):
            self.orders.pop(intent.client_order_id, None)
            return
        opposite = BookSide.ASK if intent.side is BookSide.BID else BookSide.BID

        def crosses(p: int) -> bool:
            return p <= intent.price_units if intent.side is BookSide.BID else p >= intent.price_units

        makers = [(k, o) for k, o in self.orders.items() if o.side is opposite and crosses(o.price)]
        if intent.post_only:
            if not makers:
                self.orders[intent.client_order_id] = Resting(
                    intent.user_id, intent.side, intent.price_units, intent.count_units
                )
            return
        left = intent.count_units
        makers.sort(key=lambda ko: ko[1].price if intent.side is BookSide.BID else -ko[1].price)
        for key, maker in makers:
            if left == 0:
                break
            size = min(left, maker.count)
            left -= size
            maker.count -= size
            self.trades.append((now_us, maker.price))
            if maker.count == 0:
                del self.orders[key]


def test_against_a_toy_book_the_market_is_thin_active_and_converges_at_the_close() -> None:
    underlying = Underlying(UnderlyingConfig(start_price=Decimal(95_250)), seed=12, start_us=T0)
    crowd = Crowd(CrowdConfig(), seed=12)
    book = ToyBook()
    spreads = []
    for t in range(3600):
        now = T0 + t * S
        underlying.advance_to(now)
        snapshot = MarketView("M", K, CLOSE, underlying.price, book.best(BookSide.BID), book.best(BookSide.ASK))
        for intent in crowd.step(now, [snapshot]):
            book.apply(now, intent)
        bid, ask = book.best(BookSide.BID), book.best(BookSide.ASK)
        if bid is not None and ask is not None:
            spreads.append(ask - bid)
    assert statistics.median(spreads) <= 600  # a few cents
    assert min(spreads) > 0  # never crossed
    assert 360 <= len(book.trades) <= 3600  # a trade every few seconds on average
    fair_end = crowd.fair_of(MarketView("M", K, CLOSE, underlying.price), CLOSE - S)
    assert fair_end in (0.01, 0.99) or abs(underlying.price - 95_250) < 50
    last_trades = [p for ts, p in book.trades if ts >= CLOSE - 30 * S]
    assert all(abs(p - fair_end * 10_000) <= 800 for p in last_trades)
