"""Starting positions (FR-1401) and their average entry prices (FR-1402), as pure functions.

Sources (``startup.position_handling.source``): the exchange (the positions the caller fetched), a checkpoint
(a :class:`~mm.state.ledger.LedgerSnapshot`), or manual config entries. Average-price methods
(``avg_price_method``), for the exchange and manual sources:

* ``query_exchange`` — what the venue knows: the position's own average price, else the cost the venue
  reports for it (Kalshi ``market_exposure_dollars``), else the cost replayed from the position's fill
  history when that history adds up to the position; failing all three, the current mid, with a warning;
* ``current_price`` — assume entry at the current mid (estimated: a warning);
* ``manual`` — the operator's price (``manual_avg_prices`` or the manual entry's ``avg_price_*``);
* ``mark_to_market`` — entry at the current mid, so unrealized PnL starts at 0 and PnL is tracked from now
  (flagged estimated: a warning).

A checkpoint carries exact cost bases, so it is never estimated. Mids are YES mids, an int of $0.0001 units
or Decimal dollars (half a unit allowed), as for :meth:`Ledger.mark`; a NO holding's price is 1 − mid.

The ledger nets YES against NO (Kalshi), so an entry holding both sides is refused. The
``max_starting_inventory`` guard (:func:`check_starting_inventory`) refuses any market whose |net position|
exceeds the limit. Nothing here does IO or logs: :attr:`PositionImport.log_lines` are for the caller to log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Literal

from mm.domain.errors import MmError
from mm.domain.orders import Fill
from mm.domain.portfolio import Position
from mm.domain.price import PRICE_SCALE, QTY_SCALE, ZERO_QUANTITY, Price, Quantity
from mm.specs.node import PositionHandling
from mm.state.ledger import Ledger
from mm.state.ledger_values import LedgerSnapshot, dollars_to_micros, mark_x2_of, marked_value_micros

__all__ = [
    "AvgPriceMethod",
    "ImportSource",
    "ManualAvgPrice",
    "ManualPositionEntry",
    "PositionImport",
    "PositionImportError",
    "StartingInventoryError",
    "StartingPosition",
    "check_starting_inventory",
    "import_from_checkpoint",
    "import_from_exchange",
    "import_manual",
    "manual_config",
    "seed_ledger",
]

AvgPriceMethod = Literal["query_exchange", "current_price", "manual", "mark_to_market"]
ImportSource = Literal["exchange", "checkpoint", "manual"]
Mid = int | Decimal
"""A YES mid: int $0.0001 units or Decimal dollars."""


class PositionImportError(MmError):
    """Starting positions cannot be imported as configured (a missing price, a position on both sides...)."""


class StartingInventoryError(PositionImportError):
    """A starting position exceeds ``max_starting_inventory``: the node must not start trading."""

    def __init__(self, market_id: str, inventory: Decimal, limit: Decimal) -> None:
        super().__init__(
            f"market {market_id}: starting inventory {inventory} contracts exceeds max_starting_inventory "
            f"{limit} contracts; refusing to start (close the position or raise startup.max_starting_inventory)"
        )
        self.market_id = market_id
        self.inventory = inventory
        self.limit = limit


@dataclass(frozen=True, slots=True)
class ManualAvgPrice:
    """An operator's average entry prices for one market (``manual_avg_prices``), per contract side."""

    yes: Price | None = None
    no: Price | None = None


@dataclass(frozen=True, slots=True)
class ManualPositionEntry:
    """One ``manual_positions`` entry: contracts held per side, optionally with average entry prices."""

    market_id: str
    yes: Quantity = ZERO_QUANTITY
    no: Quantity = ZERO_QUANTITY
    avg_yes_price: Price | None = None
    avg_no_price: Price | None = None


@dataclass(frozen=True, slots=True)
class StartingPosition:
    """One imported holding: net position (1/100 contract, > 0 YES), its cost basis (micro-dollars), how the
    basis was found, and the mark (twice the YES mid, $0.0001 units) to value it with, when known."""

    market_id: str
    net_units: int
    cost_basis_micros: int
    method: AvgPriceMethod | Literal["checkpoint"]
    estimated: bool
    """True when the average price is a guess (the current mid), not the real entry price."""
    mark_x2: int | None

    @property
    def avg_entry_price_units(self) -> Fraction:
        """Average entry price of the held side, $0.0001 units (basis micro-dollars / count units), exact."""
        return Fraction(self.cost_basis_micros, abs(self.net_units))

    def describe(self) -> str:
        side = "YES" if self.net_units > 0 else "NO"
        contracts = Decimal(abs(self.net_units)) / QTY_SCALE
        avg = self.avg_entry_price_units / PRICE_SCALE
        avg_text = (Decimal(avg.numerator) / Decimal(avg.denominator)).quantize(Decimal("0.000001"))
        basis = Decimal(self.cost_basis_micros).scaleb(-6)
        flag = " (estimated)" if self.estimated else ""
        return f"{self.market_id}: {contracts} {side} at avg ${avg_text}{flag}, cost ${basis}, method {self.method}"


@dataclass(frozen=True, slots=True)
class PositionImport:
    """The outcome of an import: the non-flat positions (by market id) and warnings for estimated prices."""

    source: ImportSource
    positions: tuple[StartingPosition, ...]
    warnings: tuple[str, ...]

    @property
    def has_positions(self) -> bool:
        """For ``require_confirmation_if_positions``."""
        return bool(self.positions)

    @property
    def estimated(self) -> bool:
        return any(p.estimated for p in self.positions)

    @property
    def log_lines(self) -> tuple[str, ...]:
        """One line per position with full details, then the warnings (FR-1401: log the import)."""
        head = f"position import from {self.source}: {len(self.positions)} position(s)"
        return (head, *(p.describe() for p in self.positions), *(f"warning: {w}" for w in self.warnings))


def _net_of(market_id: str, yes: Quantity, no: Quantity) -> int:
    if yes.units and no.units:
        raise PositionImportError(
            f"market {market_id}: holds {yes} YES and {no} NO; this venue nets YES against NO, so a position "
            "is on one side only (give the net position)"
        )
    return yes.units - no.units


def _basis_at_price(net_units: int, price_dollars: Decimal) -> int:
    """Cost basis of |net| contracts at an average price of the held side (dollars), rounded to the
    micro-dollar (an average off the $0.0001 grid can give a sub-micro cost)."""
    micros = price_dollars * abs(net_units) * (1_000_000 // QTY_SCALE)
    return int(micros.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _mid_x2(market_id: str, mids: Mapping[str, Mid]) -> int | None:
    mid = mids.get(market_id)
    return None if mid is None else mark_x2_of(mid)


def _at_mid(
    market_id: str, net: int, mids: Mapping[str, Mid], method: AvgPriceMethod, why: str
) -> tuple[int, int, str]:
    """(basis, mark_x2, warning) for an entry assumed at the current mid (valued at it: unrealized 0)."""
    x2 = _mid_x2(market_id, mids)
    if x2 is None:
        raise PositionImportError(
            f"market {market_id}: avg_price_method {method} needs the current mid, and none was given ({why})"
        )
    warning = f"{market_id}: average entry price estimated at the current mid ({why}); PnL before now is unknown"
    return marked_value_micros(net, x2), x2, warning


def _replayed_basis(market_id: str, net: int, fills: Sequence[Fill]) -> int | None:
    """The cost basis the fill history gives, if replaying it reproduces the net position."""
    scratch = Ledger(fee_source="venue")
    for fill in fills:
        if fill.market_id == market_id:
            scratch.apply_fill(fill)
    held = scratch.market(market_id)
    return held.cost_basis_micros if held.net_units == net else None


def import_from_exchange(
    positions: Sequence[Position],
    *,
    avg_price_method: AvgPriceMethod,
    mids: Mapping[str, Mid] | None = None,
    manual_avg_prices: Mapping[str, ManualAvgPrice] | None = None,
    exchange_cost_basis: Mapping[str, Decimal] | None = None,
    exchange_fills: Mapping[str, Sequence[Fill]] | None = None,
) -> PositionImport:
    """Starting positions from the venue's positions (fetched by the caller), priced by ``avg_price_method``.

    ``exchange_cost_basis``: dollars the venue says each holding cost (Kalshi ``market_exposure_dollars``);
    ``exchange_fills``: each market's fill history (``/portfolio/fills``), for ``query_exchange``.
    """
    entries = [(p.market_id, _net_of(p.market_id, p.yes, p.no), p.avg_yes_price, p.avg_no_price) for p in positions]
    return _import(
        "exchange",
        entries,
        avg_price_method,
        mids or {},
        manual_avg_prices or {},
        exchange_cost_basis or {},
        exchange_fills or {},
    )


def import_manual(
    entries: Sequence[ManualPositionEntry],
    *,
    avg_price_method: AvgPriceMethod,
    mids: Mapping[str, Mid] | None = None,
    manual_avg_prices: Mapping[str, ManualAvgPrice] | None = None,
) -> PositionImport:
    """Starting positions from ``manual_positions``; an entry's own ``avg_price_*`` counts as a manual price."""
    rows: list[tuple[str, int, Decimal | None, Decimal | None]] = []
    prices = dict(manual_avg_prices or {})
    for e in entries:
        rows.append((e.market_id, _net_of(e.market_id, e.yes, e.no), None, None))
        own = prices.get(e.market_id, ManualAvgPrice())
        prices[e.market_id] = ManualAvgPrice(own.yes or e.avg_yes_price, own.no or e.avg_no_price)
    return _import("manual", rows, avg_price_method, mids or {}, prices, {}, {})


def _import(
    source: ImportSource,
    entries: Sequence[tuple[str, int, Decimal | None, Decimal | None]],
    method: AvgPriceMethod,
    mids: Mapping[str, Mid],
    manual: Mapping[str, ManualAvgPrice],
    costs: Mapping[str, Decimal],
    fills: Mapping[str, Sequence[Fill]],
) -> PositionImport:
    if method not in ("query_exchange", "current_price", "manual", "mark_to_market"):
        raise PositionImportError(f"unknown avg_price_method {method!r}")
    seen: set[str] = set()
    out: list[StartingPosition] = []
    warnings: list[str] = []
    for market_id, net, avg_yes, avg_no in entries:
        if market_id in seen:
            raise PositionImportError(f"market {market_id}: listed twice")
        seen.add(market_id)
        if net == 0:
            continue
        mark = _mid_x2(market_id, mids)
        basis: int | None = None
        estimated = False
        if method == "query_exchange":
            avg = avg_yes if net > 0 else avg_no
            if avg is not None:
                basis = _basis_at_price(net, avg)
            elif market_id in costs:
                basis = dollars_to_micros(costs[market_id])
            elif market_id in fills:
                basis = _replayed_basis(market_id, net, fills[market_id])
                if basis is None:
                    warnings.append(f"{market_id}: the fill history does not add up to the position; not used")
            if basis is None:
                basis, mark, warning = _at_mid(market_id, net, mids, method, "the exchange gave no entry price")
                warnings.append(warning)
                estimated = True
        elif method == "manual":
            given = manual.get(market_id, ManualAvgPrice())
            price = given.yes if net > 0 else given.no
            if price is None:
                side = "YES" if net > 0 else "NO"
                raise PositionImportError(
                    f"market {market_id}: avg_price_method manual needs a {side} price in manual_avg_prices"
                )
            basis = price.units * abs(net)
        else:
            why = "avg_price_method current_price" if method == "current_price" else "mark_to_market: PnL from now"
            basis, mark, warning = _at_mid(market_id, net, mids, method, why)
            warnings.append(warning)
            estimated = True
        out.append(StartingPosition(market_id, net, basis, method, estimated, mark))
    out.sort(key=lambda p: p.market_id)
    return PositionImport(source, tuple(out), tuple(warnings))


def import_from_checkpoint(snapshot: LedgerSnapshot) -> PositionImport:
    """Starting positions from a checkpoint's ledger snapshot: exact cost bases and the last marks.

    (To continue the whole ledger — PnL, fees, windows — use :meth:`Ledger.from_snapshot` instead.)
    """
    positions = tuple(
        StartingPosition(m.market_id, m.net_units, m.cost_basis_micros, "checkpoint", False, m.mark_x2)
        for m in sorted(snapshot.markets, key=lambda m: m.market_id)
        if m.net_units
    )
    return PositionImport("checkpoint", positions, ())


def check_starting_inventory(result: PositionImport, max_starting_inventory: Decimal | Quantity) -> None:
    """Raise :class:`StartingInventoryError` for the first market (by id) whose |net position| exceeds the
    limit (contracts, or a :class:`Quantity`)."""
    limit = (
        max_starting_inventory
        if isinstance(max_starting_inventory, Quantity)
        else Quantity.from_decimal(max_starting_inventory)
    )
    for p in result.positions:
        if abs(p.net_units) > limit.units:
            raise StartingInventoryError(p.market_id, Decimal(abs(p.net_units)) / QTY_SCALE, limit.to_decimal())


def seed_ledger(ledger: Ledger, result: PositionImport) -> None:
    """Load imported positions into a (flat) ledger, with their marks so unrealized PnL is current."""
    for p in result.positions:
        ledger.import_position(p.market_id, p.net_units, p.cost_basis_micros, p.mark_x2)


def manual_config(handling: PositionHandling) -> tuple[list[ManualPositionEntry], dict[str, ManualAvgPrice]]:
    """``startup.position_handling``'s ``manual_positions`` and ``manual_avg_prices`` as import inputs."""
    entries = [
        ManualPositionEntry(
            market_id=ticker,
            yes=Quantity.from_decimal(p.YES),
            no=Quantity.from_decimal(p.NO),
            avg_yes_price=None if p.avg_price_yes is None else Price.from_decimal(p.avg_price_yes),
            avg_no_price=None if p.avg_price_no is None else Price.from_decimal(p.avg_price_no),
        )
        for ticker, p in sorted(handling.manual_positions.items())
    ]
    prices = {
        ticker: ManualAvgPrice(
            yes=None if a.YES is None else Price.from_decimal(a.YES),
            no=None if a.NO is None else Price.from_decimal(a.NO),
        )
        for ticker, a in handling.manual_avg_prices.items()
    }
    return entries, prices
