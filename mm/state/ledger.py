"""The position and PnL ledger (FR-701, FR-702): positions, average cost, fees, PnL, windows and drawdown.

Units (decision 001, 009, 010): positions in 1/100 contract, prices in $0.0001, money in **micro-dollars**
(``MICROS_PER_DOLLAR``): a $0.0001 price unit times a 1/100-contract count unit is exactly one micro-dollar,
so every cost, release and payout is an exact integer, as in the simulator's accounts. Fees computed with
Kalshi's formula are whole $0.0001 units (× 100 here); venue-reported fees must be whole micro-dollars.

Netting (Kalshi, kalshi-api.md §7): each market holds one signed net position, > 0 long YES, < 0 long NO.
Buying YES at p opens YES (cash −p) or closes NO (cash +(1 − p): the YES/NO pair is worth exactly $1);
selling YES at p (= buying NO at 1 − p) closes YES (cash +p) or opens NO (cash −(1 − p)). A fill on the
NO contract is booked as the equivalent YES-book trade.

Realized PnL uses **average cost** (decision 010): a position's cost basis is the cash locked in it;
closing k of |n| contracts releases the cash the close brings in and retires ``basis · k // |n|`` of the
basis (floor, the simulator's rule), realizing the difference. Unrealized PnL is the holding marked to the
last mid (YES value ``mid · n``, NO value ``(1 − mid) · |n|``, floored to the micro-dollar) minus its basis;
an unmarked holding is valued at cost. Gross = realized + unrealized; net = gross − fees (all kinds).

Fees (decision 011): per market either the venue's reported ``Fill.fee`` (``fee_source="venue"``: live
fills) or Kalshi's formula through :class:`~mm.domain.fees.FeeSchedule` (``"formula"``: paper and backtest
fills, which carry fee 0), with per-order accumulation under ``per_order_cent``. Settlement fees come from
the venue's settlement record; "other" fees (API fees) are booked with :meth:`Ledger.apply_other_fee`.

Everything happens immediately on the call (no batching): after ``apply_fill`` every figure is current.
Windows and drawdown: see :mod:`mm.state.pnl_windows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from mm.domain.events import Settlement
from mm.domain.fees import FeeSchedule
from mm.domain.orders import Fill
from mm.domain.portfolio import Position
from mm.domain.price import PRICE_SCALE
from mm.domain.sides import OrderSide, Side
from mm.state.ledger_values import (
    MICROS_PER_DOLLAR,
    FeeBreakdown,
    FeeSource,
    LedgerError,
    LedgerSnapshot,
    MarketPnl,
    MarketSnapshot,
    PnlSummary,
    PositionDiff,
    dollars_to_micros,
    mark_x2_of,
    marked_value_micros,
    micros_to_dollars,
    micros_to_units,
)
from mm.state.pnl_windows import DAY_US, HOUR_US, PnlWindow, WindowTracker

__all__ = [
    "MICROS_PER_DOLLAR",
    "FeeBreakdown",
    "FeeSource",
    "Ledger",
    "LedgerError",
    "LedgerSnapshot",
    "MarketPnl",
    "MarketSnapshot",
    "PnlSummary",
    "PositionDiff",
    "dollars_to_micros",
    "marked_value_micros",
    "micros_to_dollars",
    "micros_to_units",
]

_FEE_UNIT_MICROS: Final = 100  # one $0.0001 fee unit in micro-dollars
_YES: Final = Side.YES
_BUY: Final = OrderSide.BUY


class _Market:
    """Mutable per-market state (hot path: plain slots, no properties)."""

    __slots__ = (
        "basis",
        "day",
        "fees",
        "hour",
        "mark_x2",
        "market_id",
        "net",
        "other_fees",
        "peak",
        "pnl",
        "realized",
        "schedule",
        "settlement_fees",
        "source_venue",
        "traded",
        "trading_fees",
        "unrealized",
    )

    def __init__(self, market_id: str, schedule: FeeSchedule, source_venue: bool, hours: int, days: int) -> None:
        self.market_id = market_id
        self.schedule = schedule
        self.source_venue = source_venue
        self.net = 0
        self.basis = 0
        self.realized = 0
        self.unrealized = 0
        self.trading_fees = 0
        self.settlement_fees = 0
        self.other_fees = 0
        self.fees = 0
        """Sum of the three fee kinds."""
        self.pnl = 0
        """Net PnL, kept current: realized + unrealized − fees."""
        self.peak = 0
        self.mark_x2: int | None = None
        self.traded = 0
        self.hour = WindowTracker(HOUR_US, hours)
        self.day = WindowTracker(DAY_US, days)


class Ledger:
    """Positions and PnL for every market of a node, updated immediately on every fill, mark and settlement.

    ``fee_source`` and ``fees`` are the defaults for markets not given their own with :meth:`configure_market`.
    ``cash_micros`` is the starting cash. Not thread-safe: one event loop owns it.
    """

    def __init__(
        self,
        *,
        fee_source: FeeSource,
        fees: FeeSchedule | None = None,
        cash_micros: int = 0,
        hourly_history: int = 168,
        daily_history: int = 90,
        recent_fills: int = 10_000,
        open_order_fees: int = 100_000,
    ) -> None:
        if fee_source not in ("venue", "formula"):
            raise LedgerError(f"fee_source must be 'venue' or 'formula', not {fee_source!r}")
        self._default_source_venue = fee_source == "venue"
        self._default_schedule = fees if fees is not None else FeeSchedule()
        self._configured: dict[str, tuple[FeeSchedule, bool]] = {}
        self._markets: dict[str, _Market] = {}
        self._hours = hourly_history
        self._days = daily_history
        self.cash_micros = cash_micros
        """Cash, micro-dollars: starting cash + every fill's cash flow − fees + settlement payouts."""
        self._realized = 0
        self._unrealized = 0
        self._trading_fees = 0
        self._settlement_fees = 0
        self._other_fees = 0
        self._account_other_fees = 0
        self._pnl = 0
        self._peak = 0
        self.hour = WindowTracker(HOUR_US, hourly_history)
        """Aggregate hourly windows."""
        self.day = WindowTracker(DAY_US, daily_history)
        """Aggregate daily windows."""
        self._order_fees: dict[str, list[int]] = {}
        """order id → [exact fee numerator so far, $0.0001 charged so far] (``per_order_cent`` markets)."""
        self._order_markets: dict[str, str] = {}
        self._max_order_fees = open_order_fees
        self._fill_ids: dict[str, None] = {}
        self._max_fill_ids = recent_fills

    # ------------------------------------------------------------------ configuration

    def configure_market(
        self, market_id: str, *, fees: FeeSchedule | None = None, fee_source: FeeSource | None = None
    ) -> None:
        """Set a market's fee terms (the series' or event override's) and fee source; unset ones keep defaults.

        Takes effect for the market's next fill.
        """
        if fee_source is not None and fee_source not in ("venue", "formula"):
            raise LedgerError(f"fee_source must be 'venue' or 'formula', not {fee_source!r}")
        old_schedule, old_venue = self._configured.get(market_id, (self._default_schedule, self._default_source_venue))
        schedule = fees if fees is not None else old_schedule
        venue = old_venue if fee_source is None else fee_source == "venue"
        self._configured[market_id] = (schedule, venue)
        market = self._markets.get(market_id)
        if market is not None:
            market.schedule, market.source_venue = schedule, venue

    def _market(self, market_id: str) -> _Market:
        market = self._markets.get(market_id)
        if market is None:
            schedule, venue = self._configured.get(market_id, (self._default_schedule, self._default_source_venue))
            market = self._markets[market_id] = _Market(market_id, schedule, venue, self._hours, self._days)
        return market

    def _roll(self, m: _Market, ts_us: int) -> None:
        """Close windows the event at ``ts_us`` falls past (market and aggregate), before the event applies."""
        if ts_us >= m.hour.end_us:
            m.hour.roll(ts_us, m.pnl, m.fees)
            if ts_us >= m.day.end_us:
                m.day.roll(ts_us, m.pnl, m.fees)
        if ts_us >= self.hour.end_us:
            fees = self._trading_fees + self._settlement_fees + self._other_fees
            self.hour.roll(ts_us, self._pnl, fees)
            if ts_us >= self.day.end_us:
                self.day.roll(ts_us, self._pnl, fees)

    def _book(self, m: _Market, realized: int, fee_trading: int, fee_settlement: int, fee_other: int) -> None:
        """Book deltas of realized PnL and fees plus the market's new unrealized; update nets and peaks."""
        mark = m.mark_x2
        unrealized = 0 if mark is None or m.net == 0 else marked_value_micros(m.net, mark) - m.basis
        fees = fee_trading + fee_settlement + fee_other
        m.realized += realized
        m.fees += fees
        d_unrealized = unrealized - m.unrealized
        m.unrealized = unrealized
        d_pnl = realized + d_unrealized - fees
        pnl = m.pnl + d_pnl
        m.pnl = pnl
        m.peak = max(m.peak, pnl)
        self._realized += realized
        self._unrealized += d_unrealized
        if fees:
            m.trading_fees += fee_trading
            m.settlement_fees += fee_settlement
            m.other_fees += fee_other
            self._trading_fees += fee_trading
            self._settlement_fees += fee_settlement
            self._other_fees += fee_other
        total = self._pnl + d_pnl
        self._pnl = total
        self._peak = max(self._peak, total)

    # ------------------------------------------------------------------ events

    def apply_fill(self, fill: Fill) -> bool:
        """Book one fill: position, basis, realized PnL, fee, cash, windows, peaks. False if its ``fill_id``
        was already booked (the same fill over WebSocket and REST), in which case nothing changes."""
        fill_ids = self._fill_ids
        fill_id = fill.fill_id
        if fill_id in fill_ids:
            return False
        fill_ids[fill_id] = None
        if len(fill_ids) > self._max_fill_ids:
            del fill_ids[next(iter(fill_ids))]
        m = self._markets.get(fill.market_id) or self._market(fill.market_id)
        ts = fill.timestamp_us
        if ts >= m.hour.end_us or ts >= self.hour.end_us:
            self._roll(m, ts)
        price = fill.price.units
        count = fill.quantity.units
        yes = fill.side is _YES
        buying_yes = yes is (fill.order_side is _BUY)
        yes_price = price if yes else PRICE_SCALE - price
        fee = self._fill_fee(m, fill, count, price)
        position = m.net
        # Closing part: against the opposite holding; its pair is worth $1, so the close releases cash.
        opposite = -position if buying_yes else position
        closing = count if count < opposite else (opposite if opposite > 0 else 0)
        opening = count - closing
        cash = 0
        realized = 0
        basis = m.basis
        if closing:
            released = (PRICE_SCALE - yes_price if buying_yes else yes_price) * closing
            retired = basis * closing // (position if position > 0 else -position)
            cash = released
            realized = released - retired
            basis -= retired
            position += closing if buying_yes else -closing
        if opening:
            cost = (yes_price if buying_yes else PRICE_SCALE - yes_price) * opening
            cash -= cost
            basis += cost
            position += opening if buying_yes else -opening
        m.net = position
        m.basis = basis  # 0 when flat: closing all of |n| retires basis · |n| // |n|, the whole basis
        m.traded += yes_price * count
        self.cash_micros += cash - fee
        self._book(m, realized, fee, 0, 0)
        return True

    def _fill_fee(self, m: _Market, fill: Fill, count: int, price: int) -> int:
        """The fill's trading fee, micro-dollars: the venue's, or the formula's (per-order under cent rounding)."""
        if m.source_venue:
            fee = fill.fee
            return dollars_to_micros(fee) if fee else 0
        schedule = m.schedule
        numerator = schedule.exact_numerator(count, price, fill.is_taker)
        if schedule.step == 1:
            return schedule.ceil_units(numerator) * _FEE_UNIT_MICROS
        order_id = fill.order_id
        acc = self._order_fees.get(order_id)
        if acc is None:
            acc = self._order_fees[order_id] = [0, 0]
            self._order_markets[order_id] = m.market_id
            if len(self._order_fees) > self._max_order_fees:
                self.order_finished(next(iter(self._order_fees)))
        acc[0] += numerator
        total = schedule.ceil_units(acc[0])
        charge = total - acc[1]
        acc[1] = total
        return charge * _FEE_UNIT_MICROS

    def order_finished(self, order_id: str) -> None:
        """Forget a terminal order's fee accumulator (``per_order_cent``); unknown ids are ignored."""
        self._order_fees.pop(order_id, None)
        self._order_markets.pop(order_id, None)

    def mark(self, market_id: str, mid: int | Decimal, ts_us: int) -> None:
        """Mark a market to its YES mid (int $0.0001 units, or Decimal dollars with up to 5 decimals) at
        ``ts_us``; unrealized PnL, windows and peaks follow at once."""
        x2 = mark_x2_of(mid)
        m = self._markets.get(market_id) or self._market(market_id)
        if ts_us >= m.hour.end_us or ts_us >= self.hour.end_us:
            self._roll(m, ts_us)
        if x2 == m.mark_x2:
            return
        m.mark_x2 = x2
        self._book(m, 0, 0, 0, 0)

    def apply_settlement(self, market_id: str, value_per_yes_units: int, ts_us: int, *, fee_micros: int = 0) -> int:
        """Settle a market: each YES pays ``value_per_yes_units`` ($0.0001; 10000 for a YES result, 0 for NO),
        each NO the complement. The position is cleared, its PnL realized, the payout credited to cash and
        ``fee_micros`` booked as a settlement fee. Returns the payout, micro-dollars."""
        if not 0 <= value_per_yes_units <= PRICE_SCALE:
            raise LedgerError(f"settlement value {value_per_yes_units} is outside [0, {PRICE_SCALE}] ($0.0001 units)")
        if fee_micros < 0:
            raise LedgerError(f"settlement fee must be non-negative, got {fee_micros} micro-dollars")
        m = self._market(market_id)
        self._roll(m, ts_us)
        position = m.net
        revenue = value_per_yes_units * position if position > 0 else (PRICE_SCALE - value_per_yes_units) * -position
        realized = revenue - m.basis
        m.net = 0
        m.basis = 0
        m.mark_x2 = 2 * value_per_yes_units  # the market's final value
        self.cash_micros += revenue - fee_micros
        self._book(m, realized, 0, fee_micros, 0)
        return revenue

    def apply_settlement_event(self, settlement: Settlement) -> int:
        """Book a venue :class:`Settlement` (value per YES and fee in dollars). Returns the payout, micro-dollars.

        The payout is computed from our position; the venue's fee (a floored sub-cent scalar payout shows up
        there) is booked as a settlement fee.
        """
        value = settlement.value_per_yes.scaleb(4)
        units = int(value)
        if value != units:
            raise LedgerError(f"settlement value {settlement.value_per_yes} is finer than $0.0001")
        return self.apply_settlement(
            settlement.market_id, units, settlement.settled_us, fee_micros=dollars_to_micros(settlement.fee)
        )

    def apply_other_fee(self, amount_micros: int, ts_us: int, market_id: str | None = None) -> None:
        """Book a fee that is neither trading nor settlement (an API fee), to a market or to the account."""
        if market_id is not None:
            m = self._market(market_id)
            self._roll(m, ts_us)
            self.cash_micros -= amount_micros
            self._book(m, 0, 0, 0, amount_micros)
            return
        fees = self._trading_fees + self._settlement_fees + self._other_fees
        if ts_us >= self.hour.end_us:
            self.hour.roll(ts_us, self._pnl, fees)
            if ts_us >= self.day.end_us:
                self.day.roll(ts_us, self._pnl, fees)
        self.cash_micros -= amount_micros
        self._account_other_fees += amount_micros
        self._other_fees += amount_micros
        self._pnl -= amount_micros
        self._peak = max(self._peak, self._pnl)

    def import_position(self, market_id: str, net_units: int, cost_basis_micros: int, mark_x2: int | None) -> None:
        """Seed a market's holding at start-up (:mod:`mm.state.position_import`): net position (1/100 contract),
        its cost basis (micro-dollars) and, when known, a mark. Replaces the market's position; its drawdown
        peak and the aggregate peak restart from the net PnL after the import (start-up is the reference).
        The market must be flat in the ledger."""
        if (net_units == 0) != (cost_basis_micros == 0) or cost_basis_micros < 0:
            raise LedgerError(f"{market_id}: a cost basis of {cost_basis_micros} µ$ does not fit {net_units} units")
        m = self._market(market_id)
        if m.net:
            raise LedgerError(f"{market_id}: cannot import a position over the ledger's own ({m.net} units)")
        m.net = net_units
        m.basis = cost_basis_micros
        if mark_x2 is not None:
            m.mark_x2 = mark_x2
        self._book(m, 0, 0, 0, 0)
        m.peak = m.pnl
        self._peak = self._pnl

    def mark_fill_seen(self, fill_id: str) -> None:
        """Remember a fill as booked without booking it (it is already in an imported position)."""
        self._fill_ids[fill_id] = None
        if len(self._fill_ids) > self._max_fill_ids:
            del self._fill_ids[next(iter(self._fill_ids))]

    def forget_fill(self, fill_id: str) -> None:
        """Undo :meth:`mark_fill_seen` (the fill turned out not to be in the imported position: book it)."""
        self._fill_ids.pop(fill_id, None)

    def correct_position(self, market_id: str, net_units: int) -> int:
        """FR-1203: the venue says the position is ``net_units`` (1/100 contract) and the fills cannot say why (a
        race at load, fills lost beyond recovery): take the venue's. The part still held keeps its average cost;
        units added or flipped are valued at the mark (or $0.50 without one). Realized PnL and cash are left
        alone: this is a correction, not a trade. Returns the net position it replaced."""
        m = self._market(market_id)
        old, basis = m.net, m.basis
        if net_units == old:
            return old
        mark = m.mark_x2 // 2 if m.mark_x2 is not None else PRICE_SCALE // 2
        if old and (old > 0) == (net_units > 0):
            kept = min(abs(old), abs(net_units))
            basis = basis * kept // abs(old)
            added = abs(net_units) - kept
        else:
            basis, added = 0, abs(net_units)
        unit_cost = mark if net_units > 0 else PRICE_SCALE - mark  # a YES unit, or the NO that holds a short
        m.net = net_units
        m.basis = basis + unit_cost * added if net_units else 0
        self._book(m, 0, 0, 0, 0)
        return old

    # ------------------------------------------------------------------ queries

    def market_ids(self) -> list[str]:
        return sorted(self._markets)

    def net_units(self, market_id: str) -> int:
        """Net YES inventory, 1/100 contract (0 for an unknown market). Cheap: for the strategy's hot path."""
        m = self._markets.get(market_id)
        return 0 if m is None else m.net

    def market(self, market_id: str, now_us: int | None = None) -> MarketPnl:
        """One market's figures; ``now_us`` decides whether the open hourly/daily windows are still current."""
        m = self._markets.get(market_id) or _Market(market_id, self._default_schedule, True, 0, 0)
        return MarketPnl(
            market_id=market_id,
            net_units=m.net,
            cost_basis_micros=m.basis,
            mark_x2=m.mark_x2,
            realized_micros=m.realized,
            unrealized_micros=m.unrealized,
            fees=FeeBreakdown(m.trading_fees, m.settlement_fees, m.other_fees),
            hourly_net_micros=m.hour.pnl(m.pnl, now_us),
            daily_net_micros=m.day.pnl(m.pnl, now_us),
            peak_net_micros=m.peak,
            traded_micros=m.traded,
        )

    def position(self, market_id: str) -> Position:
        return self.market(market_id).position()

    def positions(self) -> list[Position]:
        """Non-flat positions, by market id, with average entry prices."""
        return [self.market(mid).position() for mid in sorted(self._markets) if self._markets[mid].net]

    def diff_positions(self, exchange: Sequence[Position]) -> tuple[PositionDiff, ...]:
        """Markets whose net position differs from the venue's (FR-703 reconciliation), by market id.

        ``exchange`` is the venue's full position list: a market missing from it is flat at the venue.
        """
        theirs: dict[str, int] = {}
        for p in exchange:
            theirs[p.market_id] = theirs.get(p.market_id, 0) + p.net_units
        ours = {mid: m.net for mid, m in self._markets.items() if m.net}
        return tuple(
            PositionDiff(mid, ours.get(mid, 0), theirs.get(mid, 0))
            for mid in sorted(ours.keys() | theirs.keys())
            if ours.get(mid, 0) != theirs.get(mid, 0)
        )

    def summary(self, now_us: int | None = None) -> PnlSummary:
        """Aggregate figures over every market and account-level fees."""
        return PnlSummary(
            cash_micros=self.cash_micros,
            realized_micros=self._realized,
            unrealized_micros=self._unrealized,
            fees=FeeBreakdown(self._trading_fees, self._settlement_fees, self._other_fees),
            notional_micros=sum(m.basis for m in self._markets.values()),
            hourly_net_micros=self.hour.pnl(self._pnl, now_us),
            daily_net_micros=self.day.pnl(self._pnl, now_us),
            peak_net_micros=self._peak,
        )

    def hourly_history(self, market_id: str | None = None) -> tuple[PnlWindow, ...]:
        """Closed UTC-hour windows, oldest first (aggregate when ``market_id`` is None)."""
        if market_id is None:
            return tuple(self.hour.history)
        m = self._markets.get(market_id)
        return () if m is None else tuple(m.hour.history)

    def daily_history(self, market_id: str | None = None) -> tuple[PnlWindow, ...]:
        if market_id is None:
            return tuple(self.day.history)
        m = self._markets.get(market_id)
        return () if m is None else tuple(m.day.history)

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> LedgerSnapshot:
        """A frozen copy of the state (for checkpoints and the store)."""
        markets = tuple(
            MarketSnapshot(
                market_id=m.market_id,
                net_units=m.net,
                cost_basis_micros=m.basis,
                realized_micros=m.realized,
                trading_fees_micros=m.trading_fees,
                settlement_fees_micros=m.settlement_fees,
                other_fees_micros=m.other_fees,
                mark_x2=m.mark_x2,
                peak_net_micros=m.peak,
                traded_micros=m.traded,
                fee_type=m.schedule.fee_type,
                fee_multiplier=m.schedule.multiplier,
                fee_rounding=m.schedule.rounding,
                fee_source="venue" if m.source_venue else "formula",
                hour=m.hour.state(),
                day=m.day.state(),
            )
            for m in sorted(self._markets.values(), key=lambda m: m.market_id)
        )
        order_fees = tuple((oid, self._order_markets[oid], acc[0], acc[1]) for oid, acc in self._order_fees.items())
        return LedgerSnapshot(
            cash_micros=self.cash_micros,
            account_other_fees_micros=self._account_other_fees,
            peak_net_micros=self._peak,
            hour=self.hour.state(),
            day=self.day.state(),
            markets=markets,
            order_fees=order_fees,
            recent_fill_ids=tuple(self._fill_ids),
        )

    @classmethod
    def from_snapshot(
        cls,
        snapshot: LedgerSnapshot,
        *,
        fee_source: FeeSource,
        fees: FeeSchedule | None = None,
        hourly_history: int = 168,
        daily_history: int = 90,
        recent_fills: int = 10_000,
        open_order_fees: int = 100_000,
    ) -> Ledger:
        """Rebuild a ledger from :meth:`snapshot` (defaults for new markets as in the constructor)."""
        ledger = cls(
            fee_source=fee_source,
            fees=fees,
            cash_micros=snapshot.cash_micros,
            hourly_history=hourly_history,
            daily_history=daily_history,
            recent_fills=recent_fills,
            open_order_fees=open_order_fees,
        )
        for s in snapshot.markets:
            schedule = FeeSchedule(s.fee_type, s.fee_multiplier, s.fee_rounding)
            ledger.configure_market(s.market_id, fees=schedule, fee_source=s.fee_source)
            m = ledger._market(s.market_id)
            m.net, m.basis, m.realized = s.net_units, s.cost_basis_micros, s.realized_micros
            m.trading_fees, m.settlement_fees, m.other_fees = (
                s.trading_fees_micros,
                s.settlement_fees_micros,
                s.other_fees_micros,
            )
            m.fees = s.trading_fees_micros + s.settlement_fees_micros + s.other_fees_micros
            m.mark_x2, m.traded = s.mark_x2, s.traded_micros
            m.unrealized = (
                0
                if s.mark_x2 is None or s.net_units == 0
                else (marked_value_micros(s.net_units, s.mark_x2) - s.cost_basis_micros)
            )
            m.pnl = m.realized + m.unrealized - m.fees
            m.peak = s.peak_net_micros
            m.hour.restore(s.hour)
            m.day.restore(s.day)
            ledger._realized += m.realized
            ledger._unrealized += m.unrealized
            ledger._trading_fees += m.trading_fees
            ledger._settlement_fees += m.settlement_fees
            ledger._other_fees += m.other_fees
            ledger._pnl += m.pnl
        ledger._account_other_fees = snapshot.account_other_fees_micros
        ledger._other_fees += snapshot.account_other_fees_micros
        ledger._pnl -= snapshot.account_other_fees_micros
        ledger._peak = snapshot.peak_net_micros
        ledger.hour.restore(snapshot.hour)
        ledger.day.restore(snapshot.day)
        for order_id, market_id, numerator, charged in snapshot.order_fees:
            ledger._order_fees[order_id] = [numerator, charged]
            ledger._order_markets[order_id] = market_id
        ledger._fill_ids = dict.fromkeys(snapshot.recent_fill_ids)
        return ledger
