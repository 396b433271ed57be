"""Shutdown (FR-1101/1102): which mode a trigger gets, the order handling of each mode, the exit code.

Pure parts: :class:`ShutdownSignals` turns signals into requests (SIGTERM/SIGINT → the configured default;
a second SIGINT or SIGQUIT → ``immediate``); :func:`resolve` applies the rules no configuration overrides
(kill switch and SIGQUIT are ``immediate``; ``unwind`` needs ``shutdown.unwind.enabled``); :func:`exit_code`
maps the outcome to the process exit code. IO parts (:func:`drain`, :func:`unwind`) act through the node's
adapters and trackers; the runtime calls them from :meth:`NodeRuntime.stop` in this order: stop quoting →
cancel everything → wait (drain) or flatten (unwind) → flush the database and the recording → disconnect →
log the final state.

Exit codes (documented in docs/operations.md): 0 stopped on request and the shutdown completed; 1 error;
3 forced immediate (SIGQUIT or a second SIGINT); 4 the kill switch is tripped; 5 a health-check failure paused
the node; 6 the shutdown did not complete (orders of ours still open at the venue, or writes not flushed).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from mm.adapters.errors import ExchangeError
from mm.controller.node import Account, NodeContext
from mm.domain.orders import OrderRequest
from mm.domain.price import PRICE_SCALE, Price, Quantity
from mm.domain.sides import OrderSide, Side, TimeInForce
from mm.observability import audit
from mm.reconcilers.client_ids import Level, make_client_order_id
from mm.specs.node import Shutdown

__all__ = [
    "MODES",
    "ExitCode",
    "ShutdownOutcome",
    "ShutdownRequest",
    "ShutdownSignals",
    "drain",
    "exit_code",
    "most_urgent",
    "resolve",
    "unwind",
]

_logger = logging.getLogger(__name__)

MODES = ("immediate", "drain", "unwind", "pause")


class ExitCode(enum.IntEnum):
    """The process exit code of ``mmctl run`` by shutdown reason."""

    OK = 0
    ERROR = 1
    FORCED = 3
    KILL_SWITCH = 4
    HEALTH = 5
    INCOMPLETE = 6


@dataclass(frozen=True, slots=True)
class ShutdownRequest:
    mode: str
    trigger: str
    """What asked: ``SIGTERM``, ``SIGINT``, ``SIGINT (second)``, ``SIGQUIT``, ``api``, ``duration``,
    ``kill_switch``, ``health``."""


@dataclass
class ShutdownOutcome:
    """What a shutdown did (logged as the final state, returned in the run summary)."""

    mode: str
    trigger: str
    cancelled: int = 0
    open_orders_left: int = 0
    pending_left: int = 0
    unwound_contracts: Decimal = Decimal(0)
    flushed: bool = True
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def resolve(requested: ShutdownRequest, options: Shutdown, *, kill_switch_tripped: bool) -> ShutdownRequest:
    """The mode that actually runs: the kill switch and SIGQUIT force ``immediate`` (FR-1102: cannot be
    overridden); ``unwind`` without ``shutdown.unwind.enabled`` falls back to ``drain`` (it crosses the spread)."""
    mode = requested.mode if requested.mode in MODES else options.default_mode
    if kill_switch_tripped or requested.trigger in ("SIGQUIT", "kill_switch", "SIGINT (second)"):
        mode = "immediate"
    elif mode == "unwind" and not options.unwind.enabled:
        _logger.warning("unwind requested but shutdown.unwind.enabled is false: draining instead")
        mode = "drain"
    return ShutdownRequest(mode, requested.trigger)


def exit_code(outcome: ShutdownOutcome, *, kill_switch_tripped: bool) -> ExitCode:
    """The exit code for a finished shutdown (see the module docstring); incompleteness wins over the reason."""
    if outcome.open_orders_left or outcome.pending_left or not outcome.flushed:
        return ExitCode.INCOMPLETE
    if kill_switch_tripped or outcome.trigger == "kill_switch":
        return ExitCode.KILL_SWITCH
    if outcome.trigger in ("SIGQUIT", "SIGINT (second)"):
        return ExitCode.FORCED
    if outcome.trigger == "health":
        return ExitCode.HEALTH
    return ExitCode.OK


class ShutdownSignals:
    """Signal → request (FR-1102). Handlers only record and wake the loop (``on_request``); the loop works.

    The first SIGTERM/SIGINT asks for ``default_mode``; a second SIGINT while shutting down asks for
    ``immediate`` (someone pressed Ctrl-C twice: do not wait for fills); SIGQUIT always asks for ``immediate``.
    """

    def __init__(self, default_mode: str, on_request: Callable[[ShutdownRequest], None]) -> None:
        self.default_mode = default_mode
        self.on_request = on_request
        self.requests: list[ShutdownRequest] = []

    def handle(self, signum: int) -> None:
        sig = signal.Signals(signum)
        interrupts = sum(1 for r in self.requests if r.trigger.startswith("SIGINT"))
        if sig is signal.SIGQUIT:
            request = ShutdownRequest("immediate", "SIGQUIT")
        elif sig is signal.SIGINT and interrupts:
            request = ShutdownRequest("immediate", "SIGINT (second)")
        else:
            request = ShutdownRequest(self.default_mode, sig.name)
        self.requests.append(request)
        self.on_request(request)


def most_urgent(requests: Sequence[ShutdownRequest]) -> ShutdownRequest | None:
    """The request a shutdown runs: the last ``immediate`` one if any (it cannot be overridden), else the last."""
    forced = [r for r in requests if r.mode == "immediate"]
    return forced[-1] if forced else (requests[-1] if requests else None)


# ---------------------------------------------------------------------------------------------- order handling


def _open_and_pending(node: NodeContext) -> tuple[int, int]:
    accounts = list(node.accounts())
    return (
        sum(len(a.tracker.open_orders()) for a in accounts),
        sum(a.tracker.pending_count for a in accounts),
    )


async def _wait(condition: Callable[[], bool], timeout_s: float, interrupt: asyncio.Event | None = None) -> bool:
    """Poll ``condition`` every 50 ms (real time) until it holds, ``timeout_s`` passes or ``interrupt`` is set
    (a second Ctrl-C: the operator will not wait any longer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() >= deadline or (interrupt is not None and interrupt.is_set()):
            return False
        await asyncio.sleep(0.05)
    return True


async def verify_with_venue(node: NodeContext) -> int:
    """Re-read every live account's open orders from the venue (the truth), cancel any of ours still resting,
    and return how many of ours the venue still lists after that."""
    left = 0
    for account in node.accounts():
        if account.execution != "live":
            continue
        try:
            venue_open = await account.adapter.get_open_orders()
        except ExchangeError as exc:
            _logger.error("cannot list open orders at shutdown: %s", exc)
            left += len(account.tracker.open_orders())
            continue
        account.tracker.resync(venue_open)
        ours = account.tracker.open_orders()
        if not ours:
            continue
        try:
            left += len(ours) - await node.cancel_ours(account, ours, "shutdown")
        except ExchangeError as exc:
            _logger.error("cancel at shutdown failed: %s", exc)
            left += len(ours)
    return left


async def drain(node: NodeContext, timeout_s: float, interrupt: asyncio.Event | None = None) -> bool:
    """After the cancels: wait (up to ``timeout_s`` real seconds) until no order of ours is open or pending, so
    fills in flight arrive and are booked before the connections close. True when it got there in time."""
    return await _wait(lambda: _open_and_pending(node) == (0, 0), timeout_s, interrupt)


def _closing_request(
    node: NodeContext, account: Account, market_id: str, net_units: int, slippage: Decimal
) -> OrderRequest | None:
    """An immediate-or-cancel order that reduces ``net_units`` toward 0, priced at most ``slippage`` dollars
    beyond the mid (never through it further): sell YES when long, buy YES when short."""
    conn = next((c for c in node.exchanges.values() if account in c.accounts.values()), None)
    book = conn.venue.book(market_id) if conn is not None else None
    mid = book.mid() if book is not None else None
    if mid is None:
        return None
    selling = net_units > 0
    limit = (mid - slippage if selling else mid + slippage) * PRICE_SCALE
    # whole cents, rounded toward the mid: never more than ``slippage`` away from it
    cents = int(-((-limit) // 100)) if selling else int(limit // 100)
    units = min(max(cents * 100, 100), PRICE_SCALE - 100)  # inside [$0.01, $0.99]
    level = Level.YES_ASK if selling else Level.YES_BID
    # generation 0 is never a Market's (they start at 1); the attempt is the time in ms: unique per second
    attempt = (node.clock.now_us() // 1000) % 10**11
    client_id = make_client_order_id(node.prefix, market_id, 0, level, attempt)
    return OrderRequest(
        market_id=market_id,
        side=Side.YES,
        order_side=OrderSide.SELL if selling else OrderSide.BUY,
        price=Price(units),
        quantity=Quantity(abs(net_units)),
        client_order_id=client_id,
        time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL,
        post_only=False,
        reduce_only=True,
    )


async def unwind(
    node: NodeContext, slippage: Decimal, timeout_s: float, interrupt: asyncio.Event | None = None
) -> Decimal:
    """Flatten every live position with closing IOC orders within ``slippage`` of the mid, retrying each second
    until flat or ``timeout_s`` (real seconds) passes. Returns the contracts closed (FR-1101 ``unwind``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    closed = 0
    while loop.time() < deadline and not (interrupt is not None and interrupt.is_set()):
        todo = [
            (account, market_id, account.ledger.net_units(market_id))
            for account in node.accounts()
            if account.execution == "live"
            for market_id in account.ledger.market_ids()
            if account.ledger.net_units(market_id) != 0
        ]
        if not todo:
            break
        for account, market_id, net in todo:
            request = _closing_request(node, account, market_id, net, slippage)
            if request is None:
                continue
            account.tracker.sent(request, node.clock.now_us())
            audit.log_call("create", requests=[request], reason="unwind")
            try:
                order = await account.adapter.place_order(request)
            except ExchangeError as exc:
                audit.log_answer("create", exc, order_id=request.client_order_id, reason="unwind")
                account.tracker.failed(request.client_order_id)
                _logger.warning("unwind order for %s refused: %s", market_id, exc)
                continue
            audit.log_answer("create", order, reason="unwind")
            account.tracker.acked(order)
            node.event(
                "TradingNode",
                "UnwindOrder",
                f"{market_id}: {request.order_side.value} {abs(net) / 100} YES "
                f"at {Price(request.price.units)} or better (IOC)",
            )
        before = sum(abs(n) for _, _, n in todo)
        await asyncio.sleep(1.0)  # pacing, not a wait: the IOC fills arrive on the stream; reduce_only guards a resend
        after = sum(
            abs(a.ledger.net_units(m)) for a in node.accounts() if a.execution == "live" for m in a.ledger.market_ids()
        )
        closed += max(before - after, 0)
    return Decimal(closed).scaleb(-2)
