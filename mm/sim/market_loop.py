"""The simulated market's heartbeat: one :meth:`MarketLoop.step` per tick of simulation time.

Each step, at simulation time ``now``:

1. the index (BTC-like) advances to ``now``;
2. hourly events whose life covers ``now`` are listed, and their strike markets are created on the
   exchange (ladders are centred on the index at each event's open);
3. market statuses move with time; a closed market is *determined* from the 60-second average of the
   index before its close, then *finalized* (paid out) after the settlement timer;
4. resting good-till-time orders whose ``expiration_time`` has passed are cancelled;
5. the synthetic crowd looks at every active market and its intents become orders and cancels;
6. the exchange's events are published to the WebSocket layer.

Pure of IO and of the wall clock — the caller decides how often to step — so tests drive it with a
``SimulatedClock`` and get the same market every time for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from mm.sim.crowd import Cancel, Crowd, CrowdConfig, MarketView, Place
from mm.sim.exchange import NewOrder, SimApiError
from mm.sim.schedule import MarketDef, Schedule, settle
from mm.sim.state import SimulatorState
from mm.sim.types import OrderStatus, SelfTradePrevention
from mm.sim.underlying import Underlying

CROWD_BALANCE_MICROS = 10_000_000 * 1_000_000
"""The crowd's accounts hold $10M each: it provides liquidity, it should never run out of cash."""


@dataclass
class MarketLoop:
    state: SimulatorState
    schedule: Schedule
    underlying: Underlying
    crowd: Crowd | None = None
    errors: dict[str, int] = field(default_factory=dict)
    """Crowd intents the exchange refused, by error code (expected: stale cancels, post-only crosses)."""

    def step(self) -> None:
        now = self.state.clock.now_us()
        self.underlying.advance_to(now)
        self._list_markets(now)
        for definition in list(self.state.markets.values()):
            self._advance_lifecycle(definition, now)
        self.state.exchange.expire_orders(now)
        if self.crowd is not None:
            self._run_crowd(now)
        self.state.publish()

    # --- markets and their lifecycle --------------------------------------------------------------

    def _list_markets(self, now: int) -> None:
        series = self.schedule.series_def
        self.state.series.setdefault(series.ticker, series)
        for event in self.schedule.events_between(now, now, self.underlying.price_at):
            if event.event_ticker in self.state.events:
                continue
            self.state.events[event.event_ticker] = event
            for market in event.markets:
                self.state.markets[market.ticker] = market
                self.state.exchange.add_market(
                    market.ticker,
                    market.event_ticker,
                    market.series_ticker,
                    market.grid,
                    market.open_time_us,
                    market.close_time_us,
                    fee_type=series.fee_type,
                    fee_multiplier=Decimal(series.fee_multiplier),
                )

    def _advance_lifecycle(self, definition: MarketDef, now: int) -> None:
        exchange = self.state.exchange
        market = exchange.markets[definition.ticker]
        status = exchange.refresh_status(definition.ticker)
        if status == "closed" and now >= self.schedule.determination_time_us(definition):
            close = definition.close_time_us
            result, _ = settle(definition, self.underlying.average(close - 60_000_000, close))
            exchange.determine(definition.ticker, result)
        if market.status == "determined" and now >= self.schedule.finalization_time_us(definition):
            exchange.finalize(definition.ticker)

    # --- the crowd --------------------------------------------------------------------------------

    def _run_crowd(self, now: int) -> None:
        assert self.crowd is not None
        exchange = self.state.exchange
        views = []
        for ticker, definition in self.state.markets.items():
            market = exchange.markets[ticker]
            if market.status != "active":
                continue
            views.append(
                MarketView(
                    ticker=ticker,
                    floor_strike=definition.floor_strike,
                    close_us=definition.close_time_us,
                    index_price=self.underlying.price,
                    best_bid=market.engine.best_bid(),
                    best_ask=market.engine.best_ask(),
                    grid=definition.grid,
                    annual_volatility=self.underlying.config.effective_annual_volatility,
                )
            )
        for intent in self.crowd.step(now, views):
            exchange.open_account(intent.user_id, CROWD_BALANCE_MICROS)
            try:
                if isinstance(intent, Place):
                    exchange.create_order(
                        intent.user_id,
                        NewOrder(
                            intent.ticker,
                            intent.side,
                            intent.price_units,
                            intent.count_units,
                            client_order_id=intent.client_order_id,
                            time_in_force=intent.time_in_force,
                            post_only=intent.post_only,
                            stp=SelfTradePrevention.MAKER,
                        ),
                    )
                elif isinstance(intent, Cancel):
                    order = exchange.order_by_client_id(intent.user_id, intent.client_order_id)
                    if order is not None and order.status is OrderStatus.RESTING:
                        exchange.cancel_order(intent.user_id, order.order_id)
            except SimApiError as exc:
                self.errors[exc.code] = self.errors.get(exc.code, 0) + 1


def default_crowd(seed: int) -> Crowd:
    return Crowd(CrowdConfig(), seed)
