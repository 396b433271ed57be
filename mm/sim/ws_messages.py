"""Kalshi WebSocket message bodies built from simulator objects (kalshi-api.md §6, §8). Pure: no IO.

Units in: prices ints of $0.0001, counts ints of 1/100 contract, account money ints of micro-dollars, times
ints of µs since the epoch. Out: the wire forms of §3 — prices 4-dp dollar strings, counts 2-dp strings,
``ts_ms`` ints of ms, legacy ``ts`` ints of seconds (RFC 3339 on ``orderbook_delta``).

Book sides (§8): the YES side is the YES bids; the NO side is the YES asks, shown as NO bids at
``10000 − price`` by default or at the YES price with ``use_yes_price``. Both lists are ascending by the
price shown when quoted at NO-leg prices (best bid last); with ``use_yes_price`` the NO list keeps the
same order, which is descending YES prices (best ask last), as the real captures show.

:class:`MessageFactory` turns exchange events into bodies and keeps what that needs across batches (per-order
fees, per-user volume, the last ``ticker`` state sent, announced markets); the hub in :mod:`mm.sim.ws` decides
who receives them, with which ``sid`` and ``seq``.

``market_id``: Kalshi gives each market a UUID. The simulator has none, so it derives a stable one from the
ticker (:func:`market_id`, UUID5 in :data:`MARKET_ID_NAMESPACE`); the REST layer should use the same function.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

from mm.clock import format_rfc3339_us
from mm.domain.price import PRICE_SCALE
from mm.sim.accounts import Account
from mm.sim.exchange import ExchangeEvent, SimMarket
from mm.sim.schedule import HourlyEvent, MarketDef
from mm.sim.state import SimulatorState
from mm.sim.types import BookChange, BookSide, OrderStatus, SimOrder, Trade

MARKET_ID_NAMESPACE: Final = uuid.UUID("5b0c8f4e-3a7d-4c1e-9a55-6d1f0e2b7c41")
"""Namespace of the simulator's market UUIDs (arbitrary, fixed)."""

_US_PER_MS: Final = 1_000
_US_PER_S: Final = 1_000_000
_MICROS_PER_PRICE_UNIT: Final = 100
"""Micro-dollars per $0.0001."""

Json = dict[str, Any]


def market_id(ticker: str) -> str:
    """The simulator's stable UUID for a market (Kalshi's ``market_id``)."""
    return str(uuid.uuid5(MARKET_ID_NAMESPACE, ticker))


def _fixed(units: int, digits: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}"


def price_str(units: int) -> str:
    """$0.0001 units → ``"0.5600"``."""
    return _fixed(units, 4)


def count_str(units: int) -> str:
    """1/100 contract (signed) → ``"10.00"`` / ``"-1.84"``."""
    return _fixed(units, 2)


def money_str(micros: int) -> str:
    """Micro-dollars → a dollar string: 4 dp when exact, else 6 dp (§3: up to 6 on portfolio fields)."""
    if micros % _MICROS_PER_PRICE_UNIT == 0:
        return _fixed(micros // _MICROS_PER_PRICE_UNIT, 4)
    return _fixed(micros, 6)


def ts_ms(ts_us: int) -> int:
    return ts_us // _US_PER_MS


def ts_s(ts_us: int) -> int:
    return ts_us // _US_PER_S


def outcome(side: BookSide) -> str:
    """The outcome a book side buys: a bid buys YES, an ask (sell YES) buys NO."""
    return "yes" if side is BookSide.BID else "no"


# --- orderbook -----------------------------------------------------------------------------------------------


def _no_price(yes_price: int, use_yes_price: bool) -> int:
    return yes_price if use_yes_price else PRICE_SCALE - yes_price


def snapshot_body(
    ticker: str, levels: tuple[list[tuple[int, int]], list[tuple[int, int]]], use_yes_price: bool
) -> Json:
    """``orderbook_snapshot`` msg from ``MatchingEngine.levels()`` (best first): best level last; an empty side's
    key is omitted (§8)."""
    bids, asks = levels
    body: Json = {"market_ticker": ticker, "market_id": market_id(ticker)}
    if bids:
        body["yes_dollars_fp"] = [[price_str(p), count_str(n)] for p, n in reversed(bids)]
    if asks:
        body["no_dollars_fp"] = [[price_str(_no_price(p, use_yes_price)), count_str(n)] for p, n in reversed(asks)]
    return body


def delta_body(ticker: str, change: BookChange, ts_us: int, use_yes_price: bool) -> Json:
    if change.side is BookSide.BID:
        side, price = "yes", change.price
    else:
        side, price = "no", _no_price(change.price, use_yes_price)
    return {
        "market_ticker": ticker,
        "market_id": market_id(ticker),
        "price_dollars": price_str(price),
        "delta_fp": count_str(change.delta),
        "side": side,
        "ts": format_rfc3339_us(ts_us),
        "ts_ms": ts_ms(ts_us),
    }


# --- public market data --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TickerState:
    """What a ``ticker`` message reports about one market (compared to decide whether to send one)."""

    last_price: int | None
    best_bid: int | None
    best_ask: int | None
    bid_size: int
    ask_size: int
    last_trade_size: int
    volume: int
    open_interest: int


def ticker_body(ticker: str, state: TickerState, ts_us: int) -> Json:
    """``ticker`` msg. Empty sides read bid ``0.0000`` / ask ``1.0000`` (as REST markets do, §5); no trade yet
    reads price ``0.0000``. ``dollar_volume`` / ``dollar_open_interest`` are whole dollars of $1-notional
    contracts (volume and open interest, floored): the simulator's reading of two undocumented ints."""
    return {
        "market_ticker": ticker,
        "market_id": market_id(ticker),
        "price_dollars": price_str(state.last_price or 0),
        "yes_bid_dollars": price_str(state.best_bid if state.best_bid is not None else 0),
        "yes_ask_dollars": price_str(state.best_ask if state.best_ask is not None else PRICE_SCALE),
        "yes_bid_size_fp": count_str(state.bid_size),
        "yes_ask_size_fp": count_str(state.ask_size),
        "last_trade_size_fp": count_str(state.last_trade_size),
        "volume_fp": count_str(state.volume),
        "open_interest_fp": count_str(state.open_interest),
        "dollar_volume": state.volume // 100,
        "dollar_open_interest": state.open_interest // 100,
        "ts": ts_s(ts_us),
        "time": format_rfc3339_us(ts_us),
        "ts_ms": ts_ms(ts_us),
    }


def trade_body(trade: Trade, ts_us: int) -> Json:
    taker = outcome(trade.taker_side)
    return {
        "trade_id": trade.trade_id,
        "market_ticker": trade.ticker,
        "yes_price_dollars": price_str(trade.price),
        "no_price_dollars": price_str(PRICE_SCALE - trade.price),
        "count_fp": count_str(trade.count),
        "taker_side": taker,
        "taker_outcome_side": taker,
        "taker_book_side": trade.taker_side.value,
        "is_block_trade": False,
        "ts": ts_s(ts_us),
        "ts_ms": ts_ms(ts_us),
    }


# --- private channels ----------------------------------------------------------------------------------------


def fill_body(
    trade: Trade,
    *,
    side: BookSide,
    is_taker: bool,
    fee_micros: int,
    client_order_id: str,
    post_position: int,
    ts_us: int,
) -> Json:
    """``fill`` msg for one side of a trade. ``side`` is this user's book side; the deprecated ``side`` /
    ``purchased_side`` are the outcome acquired and ``action`` is always ``buy`` (§5: use ``book_side``)."""
    acquired = outcome(side)
    return {
        "trade_id": trade.trade_id,
        "order_id": trade.taker_order_id if is_taker else trade.maker_order_id,
        "market_ticker": trade.ticker,
        "is_taker": is_taker,
        "side": acquired,
        "purchased_side": acquired,
        "action": "buy",
        "outcome_side": acquired,
        "book_side": side.value,
        "yes_price_dollars": price_str(trade.price),
        "count_fp": count_str(trade.count),
        "fee_cost": money_str(fee_micros),
        "post_position_fp": count_str(post_position),
        "client_order_id": client_order_id,
        "exchange_index": 0,
        "ts": ts_s(ts_us),
        "ts_ms": ts_ms(ts_us),
    }


def user_order_body(order: SimOrder, *, taker_fees_micros: int, maker_fees_micros: int, skew_us: int) -> Json:
    """``user_order`` msg (uses ``ticker``, not ``market_ticker``)."""
    acquired = outcome(order.side)
    created, updated = order.created_us + skew_us, order.updated_us + skew_us
    body: Json = {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "ticker": order.ticker,
        "status": order.status.value,
        "side": acquired,
        "is_yes": acquired == "yes",
        "outcome_side": acquired,
        "book_side": order.side.value,
        "yes_price_dollars": price_str(order.price),
        "initial_count_fp": count_str(order.initial_count),
        "fill_count_fp": count_str(order.fill_count),
        "remaining_count_fp": count_str(order.remaining_count),
        "taker_fill_cost_dollars": price_str(order.taker_fill_cost),
        "maker_fill_cost_dollars": price_str(order.maker_fill_cost),
        "taker_fees_dollars": money_str(taker_fees_micros),
        "maker_fees_dollars": money_str(maker_fees_micros),
        "client_order_id": order.client_order_id,
        "self_trade_prevention_type": order.stp.value,
        "subaccount_number": 0,
        "order_group_id": order.order_group_id,
        "created_time": format_rfc3339_us(created),
        "created_ts_ms": ts_ms(created),
        "last_updated_ts_ms": ts_ms(updated),
    }
    if order.expiration_s is not None:
        body["expiration_ts_ms"] = order.expiration_s * 1000
    return body


def order_group_body(event_type: str, order_group_id: str, contracts_limit: int | None, ts_us: int) -> Json:
    """``order_group_updates`` msg: ``contracts_limit_fp`` is left out when there is none (``deleted``)."""
    body: Json = {"event_type": event_type, "order_group_id": order_group_id}
    if contracts_limit is not None:
        body["contracts_limit_fp"] = count_str(contracts_limit)
    body["ts_ms"] = ts_ms(ts_us)
    return body


def market_position_body(user_id: str, ticker: str, account: Account | None, volume: int) -> Json:
    """``market_position`` msg. ``position_fee_cost_dollars`` reports the fees paid in the market (the
    simulator does not split fees between open and closed contracts)."""
    position = cost = pnl = fees = 0
    if account is not None:
        position = account.positions.get(ticker, 0)
        cost = account.cost_basis.get(ticker, 0)
        pnl = account.realized_pnl.get(ticker, 0)
        fees = account.fees_paid.get(ticker, 0)
    return {
        "user_id": user_id,
        "market_ticker": ticker,
        "position_fp": count_str(position),
        "position_cost_dollars": money_str(cost),
        "realized_pnl_dollars": money_str(pnl),
        "fees_paid_dollars": money_str(fees),
        "position_fee_cost_dollars": money_str(fees),
        "volume_fp": count_str(volume),
    }


# --- lifecycle -----------------------------------------------------------------------------------------------


def lifecycle_body(ticker: str, event_type: str, **fields: Any) -> Json:
    return {"market_ticker": ticker, "event_type": event_type, **fields}


def created_body(market: SimMarket, definition: MarketDef | None, skew_us: int) -> Json:
    """``market_lifecycle_v2`` ``created``: times from the exchange; structure and metadata from the static
    market definition when there is one."""
    fields: Json = {
        "open_ts": ts_s(market.open_us + skew_us),
        "close_ts": ts_s(market.close_us + skew_us),
        "exchange_index": 0,
    }
    if definition is None:
        fields["additional_metadata"] = {"event_ticker": market.event_ticker}
        return lifecycle_body(market.ticker, "created", **fields)
    fields["price_level_structure"] = definition.price_level_structure
    fields["price_ranges"] = definition.price_ranges
    fields["additional_metadata"] = {
        "name": definition.title,
        "title": definition.title,
        "yes_sub_title": definition.yes_sub_title,
        "no_sub_title": definition.no_sub_title,
        "rules_primary": definition.rules_primary,
        "rules_secondary": "",
        "can_close_early": definition.can_close_early,
        "event_ticker": definition.event_ticker,
        "expected_expiration_ts": ts_s(definition.expected_expiration_us + skew_us),
        "strike_type": definition.strike_type,
        "floor_strike": float(definition.floor_strike),  # a JSON number (§5); display only, never money
    }
    return lifecycle_body(market.ticker, "created", **fields)


def event_lifecycle_body(market: SimMarket, event: HourlyEvent | None, skew_us: int) -> Json:
    """``event_lifecycle`` for the event of ``market`` (titles and strike date when the event is known)."""
    body: Json = {
        "event_ticker": market.event_ticker,
        "series_ticker": market.series_ticker,
        "title": "",
        "subtitle": "",
        "collateral_return_type": "",
        "exchange_index": 0,
    }
    if event is not None:
        body["title"] = event.title
        body["subtitle"] = event.sub_title
        body["strike_date"] = ts_s(event.strike_date_us + skew_us)
        body["strike_period"] = event.strike_period
    return body


# --- events → message bodies ---------------------------------------------------------------------------------


class MessageFactory:
    """Message bodies for exchange events and snapshots, with the tallies they need across batches: fees per
    resting order, volume per user and market, last trade size per market, the last ``ticker`` state sent, and
    which markets and events were announced on ``market_lifecycle_v2``. Timestamps include the clock-skew fault.
    """

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self._order_fees: dict[str, list[int]] = {}
        """Fees so far of orders still resting, micro-dollars: [taker, maker]."""
        self._user_volume: dict[tuple[str, str], int] = {}
        self._last_trade_size: dict[str, int] = {}
        self._tickers_sent: dict[str, TickerState] = {}
        self._announced: set[str] = set()
        self._events_announced: set[str] = set()

    def skew_us(self) -> int:
        return self.state.faults.clock_skew_ms * _US_PER_MS

    def now_us(self) -> int:
        return self.state.clock.now_us() + self.skew_us()

    def observe(self, events: list[ExchangeEvent]) -> dict[int, int]:
        """Update the tallies with a batch; return each fill's post-fill position by event index (exact per fill:
        walked back from the accounts' state after the batch)."""
        running: dict[tuple[str, str], int] = {}
        post: dict[int, int] = {}
        accounts = self.state.exchange.accounts
        for i in range(len(events) - 1, -1, -1):
            event = events[i]
            if event.kind != "fill" or event.trade is None or event.user_id is None:
                continue
            key = (event.user_id, event.ticker)
            if key not in running:
                account = accounts.get(event.user_id)
                running[key] = account.positions.get(event.ticker, 0) if account is not None else 0
            post[i] = running[key]
            count = event.trade.count
            running[key] -= count if event.fill_side is BookSide.BID else -count
        for event in events:
            if event.kind == "trade" and event.trade is not None:
                self._last_trade_size[event.ticker] = event.trade.count
            elif event.kind == "fill" and event.trade is not None and event.user_id is not None:
                trade = event.trade
                fees = self._order_fees.setdefault(
                    trade.taker_order_id if event.is_taker else trade.maker_order_id, [0, 0]
                )
                fees[0 if event.is_taker else 1] += event.fee_micros
                key = (event.user_id, event.ticker)
                self._user_volume[key] = self._user_volume.get(key, 0) + trade.count
        return post

    def snapshot(self, ticker: str, use_yes_price: bool) -> Json:
        return snapshot_body(ticker, self.state.exchange.markets[ticker].engine.levels(), use_yes_price)

    def delta(self, event: ExchangeEvent, use_yes_price: bool) -> Json:
        assert event.book_change is not None
        return delta_body(event.ticker, event.book_change, event.ts_us + self.skew_us(), use_yes_price)

    def trade(self, event: ExchangeEvent) -> Json:
        assert event.trade is not None
        return trade_body(event.trade, event.ts_us + self.skew_us())

    def fill(self, event: ExchangeEvent, post_position: int) -> Json:
        trade = event.trade
        assert trade is not None and event.fill_side is not None
        order = self.state.exchange.orders.get(trade.taker_order_id if event.is_taker else trade.maker_order_id)
        return fill_body(
            trade,
            side=event.fill_side,
            is_taker=event.is_taker,
            fee_micros=event.fee_micros,
            client_order_id=order.client_order_id if order is not None else "",
            post_position=post_position,
            ts_us=event.ts_us + self.skew_us(),
        )

    def user_order(self, event: ExchangeEvent) -> Json:
        order = event.order
        assert order is not None
        taker, maker = self._order_fees.get(order.order_id, (0, 0))
        return user_order_body(order, taker_fees_micros=taker, maker_fees_micros=maker, skew_us=self.skew_us())

    def order_group(self, event: ExchangeEvent) -> Json:
        assert event.order_group_id is not None
        return order_group_body(event.detail, event.order_group_id, event.contracts_limit, event.ts_us + self.skew_us())

    def order_reported(self, event: ExchangeEvent) -> None:
        """Forget the fees of an order that stopped resting (it will not fill again)."""
        if event.order is not None and event.order.status is not OrderStatus.RESTING:
            self._order_fees.pop(event.order.order_id, None)

    def position(self, event: ExchangeEvent) -> Json:
        user_id = event.user_id or ""
        volume = self._user_volume.get((user_id, event.ticker), 0)
        return market_position_body(user_id, event.ticker, self.state.exchange.accounts.get(user_id), volume)

    def ticker_state(self, ticker: str) -> TickerState:
        market = self.state.exchange.markets[ticker]
        bids, asks = market.engine.levels()
        return TickerState(
            last_price=market.last_price,
            best_bid=bids[0][0] if bids else None,
            best_ask=asks[0][0] if asks else None,
            bid_size=bids[0][1] if bids else 0,
            ask_size=asks[0][1] if asks else 0,
            last_trade_size=self._last_trade_size.get(ticker, 0),
            volume=market.volume,
            open_interest=sum(max(a.positions.get(ticker, 0), 0) for a in self.state.exchange.accounts.values()),
        )

    def ticker(self, ticker: str) -> Json:
        return ticker_body(ticker, self.ticker_state(ticker), self.now_us())

    def ticker_if_changed(self, ticker: str) -> Json | None:
        """A ``ticker`` body if what it reports changed since the last one sent for the market, else ``None``."""
        state = self.ticker_state(ticker)
        if self._tickers_sent.get(ticker) == state:
            return None
        self._tickers_sent[ticker] = state
        return ticker_body(ticker, state, self.now_us())

    def lifecycle(self, event: ExchangeEvent) -> list[tuple[str, Json]]:
        """``(type, body)`` messages for a lifecycle event: the first ``activated`` of a market is ``created``
        (after ``event_lifecycle`` for a new event); ``closed`` is silent (§13)."""
        ticker, detail, ts_us = event.ticker, event.detail, event.ts_us + self.skew_us()
        market = self.state.exchange.markets.get(ticker)
        if market is None or detail == "closed":
            return []
        skew = self.skew_us()
        if detail == "activated" and ticker not in self._announced:
            self._announced.add(ticker)
            messages = []
            if market.event_ticker not in self._events_announced:
                self._events_announced.add(market.event_ticker)
                event_def = self.state.events.get(market.event_ticker)
                messages.append(("event_lifecycle", event_lifecycle_body(market, event_def, skew)))
            messages.append(("market_lifecycle_v2", created_body(market, self.state.markets.get(ticker), skew)))
            return messages
        self._announced.add(ticker)
        fields: Json = {}
        if detail == "determined":
            fields = {
                "result": market.result,
                "determination_ts": ts_s(ts_us),
                "settlement_value": price_str(market.settlement_value or 0),
            }
        elif detail == "settled":
            fields = {"settled_ts": ts_s(ts_us)}
        elif detail in ("activated", "deactivated"):
            fields = {"is_deactivated": detail == "deactivated"}
        return [("market_lifecycle_v2", lifecycle_body(ticker, detail, **fields))]


# --- command responses ---------------------------------------------------------------------------------------

ERROR_TEXT: Final[dict[int, str]] = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    9: "Authentication required",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
    16: "Market not found",
    17: "Internal error",
    25: "Subscription buffer overflow",
}


def error_response(cmd_id: Any, code: int, *, market_ticker: str | None = None, detail: str = "") -> Json:
    msg: Json = {"code": code, "msg": ERROR_TEXT.get(code, "Error") + (f": {detail}" if detail else "")}
    if market_ticker is not None:
        msg["market_ticker"] = market_ticker
    response: Json = {"type": "error", "msg": msg}
    if cmd_id is not None:
        response = {"id": cmd_id, **response}
    return response
