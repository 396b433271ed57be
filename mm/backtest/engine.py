"""The backtester (FR-903): a recorded session's market data through the node's own strategy, risk and order
planning, with fills simulated by the paper fill models.

One market, one pass over a :class:`~mm.backtest.tape.SessionTape`, synchronous and pure (no IO, no wall
clock, randomness only from the seeded fill model): the same tape and :class:`~mm.backtest.config.BacktestConfig`
give the same :class:`BacktestResult`, bit for bit. The pieces are the ones the live node runs:

* the book: :class:`~mm.domain.book.OrderBook`, rebuilt from the recorded snapshots and deltas;
* quoting: the strategy engine (``build_engine``) and risk engine (``build_pipeline``) built from the specs,
  fed exactly as :meth:`MarketReconciler._plan` feeds them (mid, inventory, time to settlement, grid; the
  risk context's PnL from the ledger);
* orders: :func:`~mm.reconcilers.order_plan.plan_orders` — the node's planner, with its level merge,
  materiality and NFR-102 throttle — against :class:`~mm.adapters.paper.PaperExecution`, the paper adapter,
  which keeps the virtual orders and asks the fill model;
* positions and PnL: :class:`~mm.state.ledger.Ledger`, with the recorded Exchange's fee schedule.

When the node would re-plan, the backtest re-plans: on every change of the mid, on every fill of ours, and at
least every ``requote_interval_us`` of recorded time (the node's reconcile cycle). Inside the settlement cutoff,
on a one-sided book, or once a kill switch trips, it plans with no quotes (everything is cancelled), as the
node does. Work is skipped only where it cannot change the outcome: the planner is not called when the
approved quotes and our orders are the same as at the last plan (which then produced nothing), and the fill
model is shown the book or a print only when a resting order could react to it (see ``_Run.run``).

Orders act at the instant they are planned (no latency), and a crossing order takes liquidity at once as a
taker, as paper trading does (ADR 021).
"""

from __future__ import annotations

import math
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any, Final

from mm.adapters.base import MarketInfo
from mm.adapters.errors import ExchangeError
from mm.adapters.fill_models import CrossFillModel, QueueFillModel, TouchFillModel
from mm.adapters.paper import PAPER_CAPABILITIES, PaperExecution
from mm.backtest.config import BacktestConfig, make_fill_model
from mm.backtest.results import BacktestFill, BacktestResult
from mm.backtest.tape import DELTA, SNAPSHOT, TRADE, SessionTape
from mm.clock import SimulatedClock
from mm.domain.book import OrderBook
from mm.domain.orders import Fill
from mm.domain.price import PRICE_SCALE, QTY_SCALE
from mm.domain.quotes import QuoteSet
from mm.domain.sides import BookSide, OrderSide, Side
from mm.reconcilers.client_ids import Level
from mm.reconcilers.order_plan import Amend, Cancel, Decrease, OrderPlan, Place, PlanContext, plan_orders
from mm.reconcilers.risk_inputs import market_usage, risk_context
from mm.risk.aggregate import AggregateRisk, AggregateUsage
from mm.risk.engine import RiskEngine
from mm.risk.kill_switch import InMemoryLatch, KillSwitch
from mm.risk.registry import build_pipeline
from mm.risk.states import TradingState, most_restrictive
from mm.state.ledger import Ledger
from mm.state.ledger_values import MarketPnl
from mm.strategy.engine import QuoteInputs
from mm.strategy.registry import build_engine

__all__ = ["run_backtest"]

_US: Final = 1_000_000
_YES: Final = Side.YES
_NO: Final = Side.NO
_PREFIX: Final = "bt"
_NONE: Final = 0
_CROSSING: Final = 1
_LEVELS: Final = 2


def _sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a paper adapter coroutine that never suspends (no event handlers are registered in a backtest)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a paper operation suspended inside a backtest (an event handler was registered?)")


class _Run:
    """The mutable state of one backtest; :func:`run_backtest` is the entry point."""

    def __init__(self, tape: SessionTape, config: BacktestConfig) -> None:
        self.tape = tape
        self.config = config
        self.ticker = tape.ticker
        self.result = BacktestResult(tape, config)
        self.clock = SimulatedClock(tape.start_us)
        self.book = OrderBook(tape.grid)
        self.grid = tape.grid
        self.model = make_fill_model(config.fill_model, config.seed)
        # What a book change can mean to the model (see _book_matters): the crossing rule looks at the top of
        # book, the queue estimate at our own levels, trade-through at neither.
        model = self.model
        self.book_rule = (
            _CROSSING
            if isinstance(model, CrossFillModel | TouchFillModel)
            else _LEVELS
            if isinstance(model, QueueFillModel)
            else _NONE
        )
        self.reads_tape = not isinstance(model, CrossFillModel)
        self.paper = PaperExecution(
            None,
            self.clock,
            starting_balance=Decimal(config.starting_cash_micros) / _US,
            capabilities=PAPER_CAPABILITIES,
            fill_model=self.model,
        )
        close = tape.close_time_us or 0
        self.paper.add_market(
            MarketInfo(self.ticker, "", "", "active", tape.start_us, close, tape.grid),
        )
        # The paper adapter keeps the book by reference: orders placed later match against (and queue in) the
        # live book the walk keeps current.
        self.paper.on_book(self.ticker, self.book)
        self.ledger = Ledger(fee_source="formula", fees=config.fees, cash_micros=config.starting_cash_micros)
        self.engine = build_engine(config.strategy)
        latch = InMemoryLatch()
        self.node_switch = KillSwitch(latch, "node")
        self.market_switch = KillSwitch(latch, f"market/{config.market_name}")
        aggregate = AggregateRisk(config.aggregate) if config.aggregate is not None else None
        self.risk = RiskEngine(build_pipeline(config.risk_policy), self.market_switch, self.node_switch, aggregate)
        self.policy_state = TradingState.parse(str(config.risk_policy.trading_state))
        self.max_inventory_units = int(config.strategy.max_inventory * QTY_SCALE)
        self.result.max_inventory_units = self.max_inventory_units
        self.cutoff_us = int(config.cutoff_minutes * 60 * _US)
        self.fills_seen = 0
        self.filled_ids: set[str] = set()
        self.orders_version = 0
        self.last_plan_key: tuple[Any, ...] | None = None
        self.last_update_us: int | None = None
        self.attempts: dict[Level, int] = {}
        self.position = 0
        self.position_since_us = tape.start_us
        self.bid_prices: set[int] = set()
        """YES-book prices of our resting bids (where a book change can move our queue)."""
        self.ask_prices: set[int] = set()
        self.reach = [-1, PRICE_SCALE + 1]
        """[our highest bid, our lowest ask] (YES-book; -1 / 10001 when none): what a print or the top of book
        must reach for any of our orders to fill."""

    # ------------------------------------------------------------------ the walk

    def run(self) -> BacktestResult:
        tape = self.tape
        book = self.book
        paper = self.paper
        ticker = self.ticker
        trades = tape.trades
        interval = self.config.requote_interval_us
        rule, reads_tape = self.book_rule, self.reads_tape
        bids, asks, reach = self.bid_prices, self.ask_prices, self.reach
        last_mid = -2
        next_quote_us = 0
        ts = tape.start_us
        for kind, ts, a, b, c, mid_x2, top in zip(
            tape.kinds, tape.ts_us, tape.arg_a, tape.arg_b, tape.arg_c, tape.mid_x2, tape.top, strict=True
        ):
            filled = False
            if kind == DELTA:
                book.apply_delta(_YES if a == 0 else _NO, b, c, ts)
                # Show the model the book only when the change can matter to a resting order of ours (the
                # models are pure: skipping a call that cannot fill or move a queue changes nothing).
                if (rule == _CROSSING and top and (bids or asks) and self._crossing()) or (
                    rule == _LEVELS and (b in bids if a == 0 else PRICE_SCALE - b in asks)
                ):
                    self.clock.set_us(ts)
                    filled = bool(paper.on_book(ticker, book))
            elif kind == TRADE:
                # A print can only reach our asks at or below it (taker buy), our bids at or above (taker sell).
                if reads_tape and (reach[1] <= b if c == 0 else reach[0] >= b):
                    self.clock.set_us(ts)
                    filled = bool(paper.on_trade(trades[a]))
            elif kind == SNAPSHOT:
                book = self._snapshot(a, ts)
                if rule != _NONE and (bids or asks):
                    self.clock.set_us(ts)
                    filled = bool(paper.on_book(ticker, book))
            if filled:
                self._book_fills()
            if mid_x2 != last_mid or ts >= next_quote_us or filled:
                last_mid = mid_x2
                next_quote_us = ts + interval
                self._replan(ts, mid_x2)
        self.result.events = tape.events
        self._finish(ts)
        return self.result

    def _crossing(self) -> bool:
        """Whether the opposite top of book reaches one of our orders (the crossing rule could fill it)."""
        book, reach = self.book, self.reach
        ask, bid = book.best_yes_ask, book.best_yes_bid
        return (ask is not None and ask <= reach[0]) or (bid is not None and bid >= reach[1])

    def _snapshot(self, index: int, ts: int) -> OrderBook:
        grid, yes, no = self.tape.snapshots[index]
        if grid != self.book.grid:
            self.book = OrderBook(grid)
            self.grid = grid
            self.paper.on_book(self.ticker, self.book)  # the new book object replaces the one paper holds
        self.book.apply_snapshot(yes, no, ts)
        return self.book

    # ------------------------------------------------------------------ one re-plan (MarketReconciler._plan)

    def _replan(self, now: int, mid_x2: int) -> None:
        self.clock.set_us(now)
        config, result, ledger, ticker = self.config, self.result, self.ledger, self.ticker
        close = self.tape.close_time_us
        seconds_left = (close - now) / _US if close else math.inf
        position = self.position
        state = most_restrictive(config.node_state, self.policy_state, config.market_state)
        desired: QuoteSet | None = None
        pnl: MarketPnl | None = None
        bid = ask = -1
        if close and close - now <= self.cutoff_us:
            pass  # RCR-200: inside the cutoff everything is cancelled
        elif mid_x2 >= 0:
            mid = mid_x2 / (2 * PRICE_SCALE)
            ledger.mark(ticker, mid_x2 >> 1 if mid_x2 & 1 == 0 else Decimal(mid_x2 * 5).scaleb(-5), now)
            self.engine.on_mid(mid, now)
            quoted = self.engine.quote(
                QuoteInputs(ticker, mid, position / QTY_SCALE, max(seconds_left, 0.0), now, self.grid)
            )
            result.strategy_runs += 1
            pnl = ledger.market(ticker, now)
            context = risk_context(
                ticker,
                now,
                self.book,
                self.grid,
                position,
                self.max_inventory_units,
                pnl,
                seconds_left,
                quoted.volatility,
            )
            resting = bool(self.bid_prices or self.ask_prices)
            usage = AggregateUsage({ticker: market_usage(pnl, active=position != 0 or resting)})
            outcome = self.risk.evaluate(
                quoted.quotes,
                context,
                node_state=config.node_state,
                policy_state=self.policy_state,
                market_state=config.market_state,
                usage=usage,
            )
            if outcome.kill_switch_tripped and result.kill_switch is None:
                result.kill_switch = f"{outcome.kill_switch_tripped} (at {now} µs)"
            state = outcome.state
            desired = outcome.quotes
            if desired is not None:
                result.quote_sets += 1
                yb, ya = desired.yes_bid, desired.yes_ask
                bid = yb.price.units if yb is not None else -1
                ask = ya.price.units if ya is not None else -1
                if yb is not None and ya is not None:
                    result.two_sided += 1
                    result.spread_sum_units += ask - bid
        if self.node_switch.tripped or self.market_switch.tripped:
            state, desired = TradingState.HALTED, None
        if pnl is None:
            pnl = ledger.market(ticker, now)
        result.samples.add(
            now, mid_x2, bid, ask, position, pnl.realized_micros + pnl.unrealized_micros - pnl.fees.total_micros
        )
        key = (
            None if desired is None else (desired.yes_bid, desired.yes_ask, desired.no_bid, desired.no_ask),
            state,
            self.orders_version,
        )
        if key == self.last_plan_key:
            return  # same approved quotes, same orders: the last plan (empty) stands
        plan = plan_orders(
            desired,
            self.paper.live_orders(ticker),
            PlanContext(
                market_id=ticker,
                grid=self.grid,
                capabilities=PAPER_CAPABILITIES,
                generation=1,
                now_us=now,
                trading_state=state,
                position_units=position,
                materiality_ticks=config.materiality_ticks,
                client_id_prefix=_PREFIX,
                last_update_us=self.last_update_us,
                max_updates_per_second=config.max_updates_per_second,
                attempts=self.attempts,
            ),
        )
        result.plans += 1
        self.last_plan_key = None if plan.deferred or plan.actions else key
        if plan.actions:
            self._act(plan, now)

    # ------------------------------------------------------------------ acting (market_actions.act)

    def _act(self, plan: OrderPlan, now: int) -> None:
        paper, result = self.paper, self.result
        for action in plan.actions:
            try:
                if isinstance(action, Cancel):
                    if action.order_id is not None:
                        _sync(paper.cancel_order(action.order_id))
                        result.cancels += 1
                elif isinstance(action, Decrease):
                    _sync(paper.decrease_order(action.order_id, reduce_to=action.reduce_to))
                    result.decreases += 1
                elif isinstance(action, Amend):
                    _sync(paper.amend_order(action.order_id, price=action.price, quantity=action.quantity))
                    result.amends += 1
                elif isinstance(action, Place):
                    self.attempts[action.level] = action.attempt + 1
                    _sync(paper.place_order(action.request))
                    result.orders_placed += 1
            except ExchangeError:
                # As the node: a refused action leaves the order as the venue has it; the next plan sees that.
                result.orders_rejected += isinstance(action, Place)
        if not plan.deferred:
            self.last_update_us = now
        self.orders_version += 1
        paper.take_events()
        if len(paper.fills) > self.fills_seen:
            self._book_fills()  # a crossing place or amend took liquidity as a taker
        else:
            self._resting_prices()

    # ------------------------------------------------------------------ fills and positions

    def _book_fills(self) -> None:
        paper, ledger, ticker, result = self.paper, self.ledger, self.ticker, self.result
        fills = paper.fills
        new = fills[self.fills_seen :]
        self.fills_seen = len(fills)
        self.orders_version += 1
        paper.take_events()
        for fill in new:
            before = ledger.market(ticker, fill.timestamp_us)
            ledger.apply_fill(fill)
            after = ledger.market(ticker, fill.timestamp_us)
            self._position_to(after.net_units, fill.timestamp_us)
            result.fills.append(
                _fill_value(fill, before.net_units, after, before.realized_micros, before.fees.total_micros)
            )
            self.filled_ids.add(fill.order_id)
        result.filled_orders = len(self.filled_ids)
        self._resting_prices()

    def _position_to(self, units: int, ts: int) -> None:
        result = self.result
        if abs(self.position) >= self.max_inventory_units > 0:
            result.at_limit_us += ts - self.position_since_us
        self.position, self.position_since_us = units, ts
        result.max_long_units = max(result.max_long_units, units)
        result.max_short_units = min(result.max_short_units, units)

    def _resting_prices(self) -> None:
        bids, asks = self.bid_prices, self.ask_prices
        bids.clear()
        asks.clear()
        for order in self.paper.live_orders(self.ticker):
            bs, price = order.request.yes_book()
            (bids if bs is BookSide.BID else asks).add(price.units)
        self.reach[0] = max(bids, default=-1)
        self.reach[1] = min(asks, default=PRICE_SCALE + 1)

    def _finish(self, end_us: int) -> None:
        result, ledger, ticker = self.result, self.ledger, self.ticker
        end_us = max(end_us, self.tape.end_us)
        self._position_to(self.position, end_us)
        settle = self.config.settlement_value_units
        if settle is not None and self.position != 0:
            result.settlement_payout_micros = ledger.apply_settlement(ticker, settle, end_us)
        pnl = ledger.market(ticker, end_us)
        result.position_units = pnl.net_units
        result.realized_micros = pnl.realized_micros
        result.unrealized_micros = pnl.unrealized_micros
        result.fees_micros = pnl.fees.total_micros


def _fill_value(
    fill: Fill, before_units: int, after: MarketPnl, realized_before: int, fees_before: int
) -> BacktestFill:
    # Buying YES at p, or selling NO at 1 − p, is a YES-book bid at p.
    buy_yes = (fill.side is _YES) is (fill.order_side is OrderSide.BUY)
    price = fill.price.units
    after_units = after.net_units
    return BacktestFill(
        ts_us=fill.timestamp_us,
        order_id=fill.order_id,
        buy_yes=buy_yes,
        yes_price_units=price if fill.side is _YES else PRICE_SCALE - price,
        size_units=fill.quantity.units,
        fee_micros=after.fees.total_micros - fees_before,
        is_taker=fill.is_taker,
        realized_micros=after.realized_micros - realized_before,
        # Any part of it closed the position: toward flat, or through it.
        closing=before_units != 0 and (abs(after_units) < abs(before_units) or (after_units > 0) != (before_units > 0)),
        position_units=after_units,
    )


def run_backtest(tape: SessionTape, config: BacktestConfig) -> BacktestResult:
    """Backtest ``config`` on ``tape`` (see the module docstring). Deterministic: same inputs, same result."""
    return _Run(tape, config).run()
