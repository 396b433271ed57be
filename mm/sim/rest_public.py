"""Public REST reads (kalshi-api.md §4 "Public", §5 Market/Event/Series/Trade, §8 order books, §13 status).

No authentication (auth headers, if sent, are ignored), no rate limiting, no injected faults. Markets are the
union of the exchange's live markets and the static definitions in ``state.markets`` / ``state.events``; a
definition the exchange does not hold yet reads as ``initialized`` / ``active`` / ``closed`` by its times
with an empty book. Listing sorts markets by ticker, events by event ticker, trades newest first; cursors are
opaque keyset cursors (:func:`mm.sim.wire.paginate`).

Candlesticks (``/series/{s}/markets/{t}/candlesticks``, ``/markets/candlesticks``): one candle per period
(``period_interval`` 1, 60 or 1440 minutes) whose inclusive end ``end_period_ts`` lies in
``[start_ts, end_ts]`` and which overlaps the market's life so far (open time to min(close, now)); a trade at
time t belongs to the period ending at the first multiple of the period ≥ t. ``price`` comes from the
exchange's trades (``mean`` volume-weighted, ``previous`` the last trade price before the period, ``min``/``max``
equal to ``low``/``high``; all but ``previous`` null without trades), ``volume_fp`` sums them and
``open_interest_fp`` (Σ long positions at the period end) replays them (settlement is not replayed).
``yes_bid``/``yes_ask`` replay the exchange's exact top-of-book history (:attr:`Exchange.quotes`, recorded on
every book change): open is the quote in force at the period start, close at its end; a field is null when
that side was empty or unknown for the whole period. At most 5000 candles per market and 100 markets per call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from mm.domain.price import PRICE_SCALE
from mm.domain.ticks import STRUCTURES, TickGrid
from mm.sim.exchange import SimApiError, SimMarket
from mm.sim.schedule import HourlyEvent, MarketDef, MarketStatus, SeriesDef
from mm.sim.types import BookSide, Trade
from mm.sim.wire import (
    count_str,
    paginate,
    price_str,
    q_bool,
    q_int,
    q_limit,
    q_list,
    q_str,
    rfc3339,
)

if TYPE_CHECKING:
    from mm.sim.rest import RestContext

__all__ = ["add_public_routes", "orderbook_fp"]

_US_PER_S: Final = 1_000_000
_DAY_US: Final = 86_400 * _US_PER_S
_MAX_DEPTH: Final = 100
_MAX_ORDERBOOKS: Final = 100
_FILTERS: Final = ("unopened", "open", "paused", "closed", "settled")
_STATUS_ALIASES: Final = {**{f: f for f in _FILTERS}, **{s.value: s.filter_name for s in MarketStatus}}
"""``?status=`` values: the documented filter names, plus lifecycle names mapped to them (§14)."""
_PERIOD_MINUTES: Final = (1, 60, 1440)
_MAX_CANDLES: Final = 5000
_MAX_CANDLE_MARKETS: Final = 100
_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --- views: the union of live markets and static definitions -------------------------------------------------


@dataclass(slots=True)
class MarketView:
    ticker: str
    live: SimMarket | None
    spec: MarketDef | None

    @property
    def event_ticker(self) -> str:
        return self.live.event_ticker if self.live else self.spec.event_ticker if self.spec else ""

    @property
    def series_ticker(self) -> str:
        return self.live.series_ticker if self.live else self.spec.series_ticker if self.spec else ""

    @property
    def open_us(self) -> int:
        return self.live.open_us if self.live else self.spec.open_time_us if self.spec else 0

    @property
    def close_us(self) -> int:
        return self.live.close_us if self.live else self.spec.close_time_us if self.spec else 0


@dataclass(slots=True)
class EventView:
    ticker: str
    series_ticker: str
    hourly: HourlyEvent | None
    markets: list[str] = field(default_factory=list)


def market_views(ctx: RestContext) -> dict[str, MarketView]:
    """Every market the simulator knows, by ticker (sorted)."""
    state = ctx.state
    specs: dict[str, MarketDef] = dict(state.markets)
    for event in state.events.values():
        for spec in event.markets:
            specs.setdefault(spec.ticker, spec)
    tickers = sorted(set(specs) | set(state.exchange.markets))
    return {t: MarketView(t, state.exchange.markets.get(t), specs.get(t)) for t in tickers}


def market_view(ctx: RestContext, ticker: str) -> MarketView:
    state = ctx.state
    live = state.exchange.markets.get(ticker)
    spec = state.markets.get(ticker)
    if spec is None:
        spec = next((m for e in state.events.values() for m in e.markets if m.ticker == ticker), None)
    if live is None and spec is None:
        raise SimApiError(404, "not_found", f"market {ticker} not found")
    return MarketView(ticker, live, spec)


def market_status(ctx: RestContext, view: MarketView) -> str:
    """The REST lifecycle status (§13); a live market is first moved along by time (which may close it)."""
    if view.live is not None:
        return ctx.state.exchange.refresh_status(view.ticker)
    now = ctx.now_us()
    if now < view.open_us:
        return "initialized"
    return "active" if now < view.close_us else "closed"


def filter_name(status: str) -> str:
    return MarketStatus(status).filter_name


def event_views(ctx: RestContext, markets: dict[str, MarketView]) -> dict[str, EventView]:
    events: dict[str, EventView] = {t: EventView(t, e.series_ticker, e) for t, e in sorted(ctx.state.events.items())}
    for view in markets.values():
        event = events.get(view.event_ticker)
        if event is None:
            event = events[view.event_ticker] = EventView(view.event_ticker, view.series_ticker, None)
        event.markets.append(view.ticker)
    return dict(sorted(events.items()))


def event_status(ctx: RestContext, event: EventView, markets: dict[str, MarketView]) -> str:
    """unopened | open | closed | settled, from the event's markets (or its times when it has none)."""
    names = {filter_name(market_status(ctx, markets[t])) for t in event.markets}
    if not names and event.hourly is not None:
        now = ctx.now_us()
        return (
            "unopened" if now < event.hourly.open_time_us else "open" if now < event.hourly.close_time_us else "closed"
        )
    if names & {"open", "paused"}:
        return "open"
    if names == {"unopened"}:
        return "unopened"
    if names == {"settled"}:
        return "settled"
    return "closed" if names else "unopened"


# --- JSON objects -------------------------------------------------------------------------------------------


def _structure_of(grid: TickGrid) -> str:
    for name, ranges in STRUCTURES.items():
        if TickGrid.from_ranges(ranges) == grid:
            return name
    return "custom"


def _ranges_json(grid: TickGrid) -> list[dict[str, str]]:
    return [{"start": price_str(r.start), "end": price_str(r.end), "step": price_str(r.step)} for r in grid.ranges]


class _Stats:
    """Per-request aggregates: open interest from the accounts, 24-h volume from the trade index."""

    def __init__(self, ctx: RestContext) -> None:
        self._ctx = ctx
        self._open_interest: dict[str, int] | None = None

    def open_interest(self, ticker: str) -> int:
        if self._open_interest is None:
            oi: dict[str, int] = {}
            for account in self._ctx.state.exchange.accounts.values():
                for t, position in account.positions.items():
                    if position > 0:
                        oi[t] = oi.get(t, 0) + position
            self._open_interest = oi
        return self._open_interest.get(ticker, 0)

    def volume_24h(self, ticker: str) -> int:
        self._ctx.fills.sync()
        since = self._ctx.now_us() - _DAY_US
        total = 0
        for trade in reversed(self._ctx.fills.trades_by_ticker.get(ticker, [])):
            if trade.ts_us < since:
                break
            total += trade.count
        return total


def market_json(ctx: RestContext, view: MarketView, stats: _Stats) -> dict[str, Any]:
    """The Market object of §5 (required fields, the deprecated ones still sent, strikes as numbers)."""
    status = market_status(ctx, view)
    live, spec = view.live, view.spec
    bids, asks = live.engine.levels() if live else ([], [])
    yes_bid, yes_bid_size = bids[0] if bids else (0, 0)
    yes_ask, yes_ask_size = asks[0] if asks else (PRICE_SCALE, 0)
    grid = live.grid if live else spec.grid if spec else TickGrid.linear_cent()
    settled = ctx.settled_us.get(view.ticker) if status == "finalized" else None
    settlement_value = live.settlement_value if live else None
    last_price = live.last_price if live and live.last_price is not None else 0
    latest_us = spec.latest_expiration_us if spec else view.close_us
    return {
        "ticker": view.ticker,
        "event_ticker": view.event_ticker,
        "market_type": spec.market_type if spec else "binary",
        "title": spec.title if spec else view.ticker,
        "subtitle": "",
        "yes_sub_title": spec.yes_sub_title if spec else "",
        "no_sub_title": spec.no_sub_title if spec else "",
        "created_time": rfc3339(view.open_us),
        "updated_time": rfc3339(ctx.now_us(), ctx.skew_ms),
        "open_time": rfc3339(view.open_us),
        "close_time": rfc3339(view.close_us),
        "expected_expiration_time": rfc3339(spec.expected_expiration_us) if spec else None,
        "latest_expiration_time": rfc3339(latest_us),
        "expiration_time": rfc3339(latest_us),
        "settlement_timer_seconds": spec.settlement_timer_seconds if spec else 0,
        "settlement_ts": rfc3339(settled, ctx.skew_ms) if settled is not None else None,
        "status": status,
        "result": live.result if live else "",
        "yes_bid_dollars": price_str(yes_bid),
        "yes_ask_dollars": price_str(yes_ask),
        "no_bid_dollars": price_str(PRICE_SCALE - yes_ask),
        "no_ask_dollars": price_str(PRICE_SCALE - yes_bid),
        "yes_bid_size_fp": count_str(yes_bid_size),
        "yes_ask_size_fp": count_str(yes_ask_size),
        "last_price_dollars": price_str(last_price),
        "previous_yes_bid_dollars": price_str(0),
        "previous_yes_ask_dollars": price_str(0),
        "previous_price_dollars": price_str(0),
        "volume_fp": count_str(live.volume if live else 0),
        "volume_24h_fp": count_str(stats.volume_24h(view.ticker)),
        "open_interest_fp": count_str(stats.open_interest(view.ticker)),
        "notional_value_dollars": price_str(PRICE_SCALE),
        "liquidity_dollars": price_str(0),
        "settlement_value_dollars": price_str(settlement_value) if settlement_value is not None else None,
        "expiration_value": "",
        "can_close_early": spec.can_close_early if spec else False,
        "early_close_condition": "",
        "strike_type": spec.strike_type if spec else "custom",
        "floor_strike": float(spec.floor_strike) if spec else None,
        "cap_strike": None,
        "custom_strike": None,
        "rules_primary": spec.rules_primary if spec else "",
        "rules_secondary": "",
        "price_level_structure": spec.price_level_structure if spec else _structure_of(grid),
        "price_ranges": spec.price_ranges if spec else _ranges_json(grid),
        "exchange_index": 0,
        "is_provisional": False,
    }


def _series_defs(ctx: RestContext, markets: dict[str, MarketView]) -> dict[str, SeriesDef]:
    series = dict(ctx.state.series)
    for ticker in {v.series_ticker for v in markets.values()} | {e.series_ticker for e in ctx.state.events.values()}:
        if ticker and ticker not in series:
            series[ticker] = SeriesDef(ticker, ticker)
    return dict(sorted(series.items()))


def _sources(spec: SeriesDef | None) -> list[dict[str, str]]:
    return [{"name": name, "url": url} for name, url in spec.settlement_sources] if spec else []


def series_json(ctx: RestContext, spec: SeriesDef, volume: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ticker": spec.ticker,
        "title": spec.title,
        "frequency": spec.frequency,
        "category": spec.category,
        "tags": list(spec.tags),
        "settlement_sources": _sources(spec),
        "contract_url": "",
        "contract_terms_url": "",
        "fee_type": spec.fee_type,
        "fee_multiplier": spec.fee_multiplier,
        "additional_prohibitions": [],
        "last_updated_ts": rfc3339(ctx.now_us(), ctx.skew_ms),
        "exchange_index": 0,
    }
    if volume is not None:
        body["volume_fp"] = count_str(volume)
    return body


def event_json(
    ctx: RestContext, event: EventView, markets: dict[str, MarketView], nested: list[dict[str, Any]] | None
) -> dict[str, Any]:
    hourly = event.hourly
    spec = ctx.state.series.get(event.series_ticker)
    close_us = hourly.close_time_us if hourly else max((markets[t].close_us for t in event.markets), default=0)
    body: dict[str, Any] = {
        "event_ticker": event.ticker,
        "series_ticker": event.series_ticker,
        "title": hourly.title if hourly else event.ticker,
        "sub_title": hourly.sub_title if hourly else "",
        "collateral_return_type": "",
        "mutually_exclusive": hourly.mutually_exclusive if hourly else False,
        "available_on_brokers": False,
        "settlement_sources": _sources(spec),
        "last_updated_ts": rfc3339(ctx.now_us(), ctx.skew_ms),
        "strike_date": rfc3339(close_us),
        "strike_period": hourly.strike_period if hourly else "",
        "exchange_index": 0,
    }
    if nested is not None:
        body["markets"] = nested
    return body


def trade_json(ctx: RestContext, trade: Trade) -> dict[str, Any]:
    outcome = "yes" if trade.taker_side is BookSide.BID else "no"
    return {
        "trade_id": trade.trade_id,
        "ticker": trade.ticker,
        "count_fp": count_str(trade.count),
        "yes_price_dollars": price_str(trade.price),
        "no_price_dollars": price_str(PRICE_SCALE - trade.price),
        "taker_outcome_side": outcome,
        "taker_book_side": trade.taker_side.value,
        "taker_side": outcome,
        "is_block_trade": False,
        "created_time": rfc3339(trade.ts_us, ctx.skew_ms),
    }


def orderbook_fp(live: SimMarket | None, depth: int = 0) -> dict[str, list[list[str]]]:
    """§8: YES bids and NO bids (YES asks at 1 − p), ``[price, count]`` strings, ascending, best last."""
    bids, asks = live.engine.levels() if live else ([], [])
    if depth:
        bids, asks = bids[:depth], asks[:depth]
    return {
        "yes_dollars": [[price_str(p), count_str(s)] for p, s in reversed(bids)],
        "no_dollars": [[price_str(PRICE_SCALE - p), count_str(s)] for p, s in reversed(asks)],
    }


# --- candlesticks ------------------------------------------------------------------------------------------


def _candle_range(q: Any) -> tuple[int, int, int]:
    """(start_ts, end_ts, period seconds) from the query; 400 when missing or invalid."""
    start, end, minutes = q_int(q, "start_ts"), q_int(q, "end_ts"), q_int(q, "period_interval")
    if start is None or end is None or minutes is None:
        raise SimApiError(400, "missing_parameters", "start_ts, end_ts and period_interval are required")
    if minutes not in _PERIOD_MINUTES:
        raise SimApiError(400, "invalid_parameters", "period_interval must be 1, 60 or 1440 (minutes)")
    if start < 0 or end < start:
        raise SimApiError(400, "invalid_parameters", "start_ts must be >= 0 and <= end_ts")
    period = minutes * 60
    if end // period - -(-start // period) + 1 > _MAX_CANDLES:
        raise SimApiError(400, "invalid_parameters", f"the range spans more than {_MAX_CANDLES} periods")
    return start, end, period


def _ohlc(values: list[int | None]) -> dict[str, str | None]:
    known = [v for v in values if v is not None]
    if not known:
        return dict.fromkeys(("open_dollars", "low_dollars", "high_dollars", "close_dollars"))
    return {
        "open_dollars": price_str(known[0]),
        "low_dollars": price_str(min(known)),
        "high_dollars": price_str(max(known)),
        "close_dollars": price_str(known[-1]),
    }


def candlesticks(ctx: RestContext, view: MarketView, start_s: int, end_s: int, period_s: int) -> list[dict[str, Any]]:
    """The market's candles (see the module docstring for the semantics)."""
    p_us = period_s * _US_PER_S
    life_end = min(view.close_us, ctx.now_us())
    k_lo = max(-(-start_s // period_s), -(-view.open_us // p_us))
    k_hi = min(end_s // period_s, -(-life_end // p_us))
    if life_end < view.open_us or k_hi < k_lo:
        return []
    ctx.fills.sync()
    trades = ctx.fills.trades_by_ticker.get(view.ticker, [])
    quotes = ctx.state.exchange.quotes.get(view.ticker, [])
    positions: dict[str, int] = {}
    open_interest = 0
    last_price: int | None = None
    bid: int | None = None
    ask: int | None = None
    ti = qi = 0

    def apply(trade: Trade) -> None:
        nonlocal open_interest, last_price
        bought = trade.count if trade.taker_side is BookSide.BID else -trade.count
        for user, delta in ((trade.taker_user_id, bought), (trade.maker_user_id, -bought)):
            old = positions.get(user, 0)
            positions[user] = old + delta
            open_interest += max(old + delta, 0) - max(old, 0)
        last_price = trade.price

    candles = []
    for k in range(k_lo, k_hi + 1):
        begin, end = (k - 1) * p_us, k * p_us
        while ti < len(trades) and trades[ti].ts_us <= begin:
            apply(trades[ti])
            ti += 1
        previous = last_price
        prices: list[int | None] = []
        volume = notional = 0
        while ti < len(trades) and trades[ti].ts_us <= end:
            trade = trades[ti]
            prices.append(trade.price)
            volume += trade.count
            notional += trade.price * trade.count
            apply(trade)
            ti += 1
        while qi < len(quotes) and quotes[qi][0] <= begin:
            _, bid, ask = quotes[qi]
            qi += 1
        bids, asks = [bid], [ask]
        while qi < len(quotes) and quotes[qi][0] <= end:
            _, bid, ask = quotes[qi]
            bids.append(bid)
            asks.append(ask)
            qi += 1
        price = _ohlc(prices)
        candles.append(
            {
                "end_period_ts": end // _US_PER_S,
                "yes_bid": _ohlc(bids),
                "yes_ask": _ohlc(asks),
                "price": {
                    **price,
                    "mean_dollars": price_str((2 * notional + volume) // (2 * volume)) if volume else None,
                    "previous_dollars": price_str(previous) if previous is not None else None,
                    "min_dollars": price["low_dollars"],
                    "max_dollars": price["high_dollars"],
                },
                "volume_fp": count_str(volume),
                "open_interest_fp": count_str(open_interest),
            }
        )
    return candles


# --- query helpers ------------------------------------------------------------------------------------------


def _status_filter(values: Iterable[str], allowed: Iterable[str] = _FILTERS) -> set[str] | None:
    """The set of filter names asked for (``None`` = no filter); 400 on an unknown name."""
    wanted: set[str] = set()
    allowed_set = set(allowed)
    for value in values:
        name = _STATUS_ALIASES.get(value.lower())
        if name is None or name not in allowed_set:
            raise SimApiError(400, "invalid_parameters", f"unknown status {value!r}")
        wanted.add(name)
    return wanted or None


def _in_range(value_s: int, low: int | None, high: int | None) -> bool:
    return (low is None or value_s >= low) and (high is None or value_s <= high)


# --- routes -------------------------------------------------------------------------------------------------


def add_public_routes(router: APIRouter, ctx: RestContext) -> None:
    @router.get("/exchange/status")
    async def exchange_status() -> Response:
        def handle() -> dict[str, Any]:
            trading = not ctx.state.faults.trading_paused
            return {
                "exchange_active": True,
                "trading_active": trading,
                "exchange_estimated_resume_time": None,
                "intra_exchange_transfers_active": True,
                "exchange_index_statuses": [{"exchange_index": 0, "exchange_active": True, "trading_active": trading}],
            }

        return ctx.public(handle)

    @router.get("/exchange/schedule")
    async def exchange_schedule() -> Response:
        def handle() -> dict[str, Any]:
            always = [{"open_time": "00:00", "close_time": "24:00"}]
            hours = {"start_time": "2020-01-01T00:00:00Z", "end_time": "2100-01-01T00:00:00Z"}
            return {"schedule": {"standard_hours": [hours | {d: always for d in _WEEKDAYS}], "maintenance_windows": []}}

        return ctx.public(handle)

    @router.get("/exchange/user_data_timestamp")
    async def user_data_timestamp() -> Response:
        return ctx.public(lambda: {"as_of_time": rfc3339(ctx.now_us(), ctx.skew_ms)})

    @router.get("/markets")
    async def list_markets(request: Request) -> Response:
        def handle() -> dict[str, Any]:
            q = request.query_params
            limit = q_limit(q, 100, 1000)
            event_ticker, series_ticker = q_str(q, "event_ticker"), q_str(q, "series_ticker")
            tickers = set(q_list(q, "tickers"))
            statuses = _status_filter(q_list(q, "status"))
            min_close, max_close = q_int(q, "min_close_ts"), q_int(q, "max_close_ts")
            min_created, max_created = q_int(q, "min_created_ts"), q_int(q, "max_created_ts")
            min_settled, max_settled = q_int(q, "min_settled_ts"), q_int(q, "max_settled_ts")
            mve = q_str(q, "mve_filter")
            if mve not in (None, "only", "exclude"):
                raise SimApiError(400, "invalid_parameters", "mve_filter must be only or exclude")
            views = market_views(ctx)
            chosen: list[MarketView] = []
            for view in views.values():
                if mve == "only":
                    break  # the simulator has no multivariate (MVE) markets
                if (event_ticker and view.event_ticker != event_ticker) or (
                    series_ticker and view.series_ticker != series_ticker
                ):
                    continue
                if (tickers and view.ticker not in tickers) or not _in_range(
                    view.close_us // _US_PER_S, min_close, max_close
                ):
                    continue
                if not _in_range(view.open_us // _US_PER_S, min_created, max_created):
                    continue
                if min_settled is not None or max_settled is not None:
                    settled = ctx.settled_us.get(view.ticker)
                    if settled is None or not _in_range(settled // _US_PER_S, min_settled, max_settled):
                        continue
                if statuses and filter_name(market_status(ctx, view)) not in statuses:
                    continue
                chosen.append(view)
            page, cursor = paginate(chosen, lambda v: (v.ticker,), limit, q_str(q, "cursor"))
            stats = _Stats(ctx)
            return {"markets": [market_json(ctx, v, stats) for v in page], "cursor": cursor}

        return ctx.public(handle)

    @router.get("/markets/trades")
    async def list_trades(request: Request) -> Response:
        def handle() -> dict[str, Any]:
            q = request.query_params
            limit = q_limit(q, 100, 1000)
            ticker = q_str(q, "ticker")
            min_ts, max_ts = q_int(q, "min_ts"), q_int(q, "max_ts")
            block_only = q_bool(q, "is_block_trade")
            ctx.fills.sync()
            source = ctx.fills.trades_by_ticker.get(ticker, []) if ticker else ctx.fills.trades
            chosen = [
                (i, t)
                for i, t in enumerate(source)
                if not block_only and _in_range(t.ts_us // _US_PER_S, min_ts, max_ts)
            ]
            chosen.reverse()  # newest first
            page, cursor = paginate(chosen, lambda it: (-it[0],), limit, q_str(q, "cursor"))
            return {"trades": [trade_json(ctx, t) for _, t in page], "cursor": cursor}

        return ctx.public(handle)

    @router.get("/markets/candlesticks")
    async def batch_candlesticks(request: Request) -> Response:
        def handle() -> dict[str, Any]:
            q = request.query_params
            tickers = list(dict.fromkeys(q_list(q, "market_tickers")))
            if not tickers:
                raise SimApiError(400, "missing_parameters", "market_tickers is required")
            if len(tickers) > _MAX_CANDLE_MARKETS:
                raise SimApiError(400, "invalid_parameters", f"at most {_MAX_CANDLE_MARKETS} market_tickers")
            start, end, period = _candle_range(q)
            views = [market_view(ctx, t) for t in tickers]
            return {
                "markets": [
                    {"market_ticker": v.ticker, "candlesticks": candlesticks(ctx, v, start, end, period)} for v in views
                ]
            }

        return ctx.public(handle)

    @router.get("/series/{series_ticker}/markets/{ticker}/candlesticks")
    async def market_candlesticks(series_ticker: str, ticker: str, request: Request) -> Response:
        def handle() -> dict[str, Any]:
            start, end, period = _candle_range(request.query_params)
            view = market_view(ctx, ticker)
            if view.series_ticker != series_ticker:
                raise SimApiError(404, "not_found", f"market {ticker} not found in series {series_ticker}")
            return {"ticker": ticker, "candlesticks": candlesticks(ctx, view, start, end, period)}

        return ctx.public(handle)

    @router.get("/markets/orderbooks")
    async def orderbooks(request: Request) -> Response:
        def handle() -> dict[str, Any]:
            tickers = list(dict.fromkeys(q_list(request.query_params, "tickers")))
            if not tickers:
                raise SimApiError(400, "missing_parameters", "tickers is required")
            if len(tickers) > _MAX_ORDERBOOKS:
                raise SimApiError(400, "invalid_parameters", f"at most {_MAX_ORDERBOOKS} tickers")
            views = [market_view(ctx, t) for t in tickers]
            return {"orderbooks": [{"ticker": v.ticker, "orderbook_fp": orderbook_fp(v.live)} for v in views]}

        return ctx.public(handle)

    @router.get("/markets/{ticker}/orderbook")
    async def orderbook(ticker: str, request: Request) -> Response:
        def handle() -> dict[str, Any]:
            depth = q_int(request.query_params, "depth") or 0
            if not 0 <= depth <= _MAX_DEPTH:
                raise SimApiError(400, "invalid_parameters", f"depth must be between 0 and {_MAX_DEPTH}")
            return {"orderbook_fp": orderbook_fp(market_view(ctx, ticker).live, depth)}

        return ctx.public(handle)

    @router.get("/markets/{ticker}")
    async def get_market(ticker: str) -> Response:
        return ctx.public(lambda: {"market": market_json(ctx, market_view(ctx, ticker), _Stats(ctx))})

    @router.get("/events")
    async def list_events(request: Request) -> Response:
        def handle() -> dict[str, Any]:
            q = request.query_params
            limit = q_limit(q, 200, 200)
            series_ticker = q_str(q, "series_ticker")
            tickers = set(q_list(q, "tickers")) | set(q_list(q, "event_ticker"))
            statuses = _status_filter(q_list(q, "status"), ("unopened", "open", "closed", "settled"))
            nested = q_bool(q, "with_nested_markets")
            min_close = q_int(q, "min_close_ts")
            markets = market_views(ctx)
            chosen = []
            for event in event_views(ctx, markets).values():
                if (series_ticker and event.series_ticker != series_ticker) or (
                    tickers and event.ticker not in tickers
                ):
                    continue
                if min_close is not None and all(markets[t].close_us // _US_PER_S < min_close for t in event.markets):
                    continue
                if statuses and event_status(ctx, event, markets) not in statuses:
                    continue
                chosen.append(event)
            page, cursor = paginate(chosen, lambda e: (e.ticker,), limit, q_str(q, "cursor"))
            stats = _Stats(ctx)
            return {
                "events": [
                    event_json(
                        ctx, e, markets, [market_json(ctx, markets[t], stats) for t in e.markets] if nested else None
                    )
                    for e in page
                ],
                "cursor": cursor,
            }

        return ctx.public(handle)

    @router.get("/events/{event_ticker}")
    async def get_event(event_ticker: str, request: Request) -> Response:
        def handle() -> dict[str, Any]:
            markets = market_views(ctx)
            event = event_views(ctx, markets).get(event_ticker)
            if event is None:
                raise SimApiError(404, "not_found", f"event {event_ticker} not found")
            stats = _Stats(ctx)
            listed = [market_json(ctx, markets[t], stats) for t in event.markets]
            nested = listed if q_bool(request.query_params, "with_nested_markets") else None
            return {"event": event_json(ctx, event, markets, nested), "markets": listed}

        return ctx.public(handle)

    @router.get("/series")
    async def list_series(request: Request) -> Response:
        def handle() -> dict[str, Any]:
            q = request.query_params
            category, tags = q_str(q, "category"), set(q_list(q, "tags"))
            include_volume = q_bool(q, "include_volume")
            markets = market_views(ctx)
            out = []
            for spec in _series_defs(ctx, markets).values():
                if (category and spec.category != category) or (tags and not tags & set(spec.tags)):
                    continue
                volume = _series_volume(markets, spec.ticker) if include_volume else None
                out.append(series_json(ctx, spec, volume))
            return {"series": out}

        return ctx.public(handle)

    @router.get("/series/{series_ticker}")
    async def get_series(series_ticker: str, request: Request) -> Response:
        def handle() -> dict[str, Any]:
            markets = market_views(ctx)
            spec = _series_defs(ctx, markets).get(series_ticker)
            if spec is None:
                raise SimApiError(404, "not_found", f"series {series_ticker} not found")
            include_volume = q_bool(request.query_params, "include_volume")
            volume = _series_volume(markets, series_ticker) if include_volume else None
            return {"series": series_json(ctx, spec, volume)}

        return ctx.public(handle)


def _series_volume(markets: dict[str, MarketView], series_ticker: str) -> int:
    return sum(v.live.volume for v in markets.values() if v.live and v.series_ticker == series_ticker)
