"""The built-in alerts of NFR-403 that are conditions on the node's state, not events.

``daily_loss_warning`` (loss > 50% of the daily limit), ``daily_loss_critical`` (> 80%), ``high_inventory``
(|position| > 80% of the Strategy's ``max_inventory``), ``reconnect_failed`` (5+ reconnect attempts failed in a
row), ``stale_market_data`` (a traded market's book not updated for > 5 s). The rest of the table are events the
node already reports (``mm.controller.event_alerts``).

:func:`conditions` is pure: a :class:`NodeReading` in, the conditions that hold out (key → alert name and
message). :class:`AlertChecks` reads the node every second and raises each condition once per episode — when it
starts to hold — re-armed when it clears; the alert manager's throttle applies on top.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from mm.alerting import AlertManager
from mm.controller.node import NodeContext
from mm.specs.node import TradingNodeSpec

__all__ = ["AlertChecks", "NodeReading", "conditions"]

_logger = logging.getLogger(__name__)

LOSS_WARNING: Final = Decimal("0.5")
LOSS_CRITICAL: Final = Decimal("0.8")
INVENTORY_SHARE: Final = Decimal("0.8")
RECONNECT_FAILURES: Final = 5
STALE_AFTER_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class NodeReading:
    """What the checks look at, in exact units."""

    daily_limit_dollars: Decimal
    daily_net_dollars: dict[str, Decimal] = field(default_factory=dict)
    """Per account (``exchange/execution``): today's net PnL."""
    inventories: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    """Per Market: (position, max_inventory), contracts."""
    reconnect_failures: dict[str, int] = field(default_factory=dict)
    """Per exchange: reconnect attempts failed in a row."""
    data_age_s: dict[str, float] = field(default_factory=dict)
    """Per Market: seconds since its book last changed (market time)."""


def conditions(reading: NodeReading) -> dict[str, tuple[str, str]]:
    """The built-in conditions that hold: key → (alert name, message)."""
    found: dict[str, tuple[str, str]] = {}
    limit = reading.daily_limit_dollars
    for account, net in sorted(reading.daily_net_dollars.items()):
        loss = -net
        if limit > 0 and loss > LOSS_CRITICAL * limit:
            found[f"loss/{account}"] = ("daily_loss_critical", f"{account}: daily loss {loss} USD > 80% of {limit}")
        elif limit > 0 and loss > LOSS_WARNING * limit:
            found[f"loss/{account}"] = ("daily_loss_warning", f"{account}: daily loss {loss} USD > 50% of {limit}")
    for market, (position, maximum) in sorted(reading.inventories.items()):
        if maximum > 0 and abs(position) > INVENTORY_SHARE * maximum:
            found[f"inventory/{market}"] = (
                "high_inventory",
                f"Market/{market}: position {position} contracts > 80% of max_inventory {maximum}",
            )
    for exchange, failures in sorted(reading.reconnect_failures.items()):
        if failures >= RECONNECT_FAILURES:
            found[f"reconnect/{exchange}"] = (
                "reconnect_failed",
                f"Exchange/{exchange}: {failures} reconnect attempts failed in a row",
            )
    for market, age in sorted(reading.data_age_s.items()):
        if age > STALE_AFTER_S:
            found[f"stale/{market}"] = ("stale_market_data", f"Market/{market}: no book update for {age:.0f} s")
    return found


class AlertChecks:
    """Reads the node, raises what newly holds (see the module docstring)."""

    def __init__(
        self, node: NodeContext, node_spec: Callable[[], TradingNodeSpec | None], alerts: AlertManager
    ) -> None:
        self.node = node
        self.node_spec = node_spec
        self.alerts = alerts
        self.active: dict[str, tuple[str, str]] = {}

    def reading(self) -> NodeReading:
        node = self.node
        now = node.clock.now_us()
        spec = self.node_spec() or TradingNodeSpec()
        reading = NodeReading(daily_limit_dollars=spec.risk.aggregate.max_daily_loss)
        for account in node.accounts():
            summary = account.ledger.summary(now)
            reading.daily_net_dollars[f"{account.exchange}/{account.execution}"] = Decimal(
                summary.daily_net_micros
            ).scaleb(-6)
        for market in node.resources.all("Market"):
            conn = node.exchanges.get(market.spec.exchange_ref)
            runtime = node.market_state.get(market.name)
            if conn is None or runtime is None:
                continue
            trading = conn.accounts.get(market.spec.execution)
            if trading is not None:
                position = Decimal(trading.ledger.net_units(market.spec.ticker)).scaleb(-2)
                reading.inventories[market.name] = (position, Decimal(runtime.strategy.max_inventory))
            book = conn.venue.book(market.spec.ticker)
            info = conn.markets.get(market.spec.ticker)
            if book is not None and info is not None and info.status == "active" and book.last_update_us:
                reading.data_age_s[market.name] = (now - book.last_update_us) / 1e6
        for name, conn in node.exchanges.items():
            ws = getattr(conn.venue, "ws", None)
            failures = getattr(ws, "failed_attempts", None)
            if isinstance(failures, int):
                reading.reconnect_failures[name] = failures
        return reading

    def check(self) -> list[str]:
        """One evaluation; returns the alert names raised now."""
        holding = conditions(self.reading())
        raised = []
        for key, (name, message) in holding.items():
            if self.active.get(key, ("", ""))[0] != name:  # new, or worse (warning → critical)
                self.alerts.raise_alert(name, None, message)
                raised.append(name)
        self.active = holding
        return raised

    async def run(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.check()
            except Exception:  # a reading that fails must not stop the checks (or the node)
                _logger.exception("built-in alert checks failed")
