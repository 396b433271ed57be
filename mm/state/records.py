"""What the store writes: one immutable record type per kind of row, each with an idempotency key.

A record knows its own SQL (``writes()``): the rows it inserts and the statements that insert them. Every
append-only statement is ``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING`` and every current-state
statement an upsert, so writing the same record twice — a flush retried after a commit whose success we
never saw, or the same fill seen on the WebSocket and again over REST — leaves exactly one row (decision 012).

Keys are derived from the record's content (the venue's fill id, an order's state, a timestamp), never from
a counter, so two processes or two retries that mean the same fact produce the same key.

Money is exact: dollar amounts are written as decimal TEXT, prices and quantities as INTEGER units
(decision 001). JSON columns use the canonical encoder, which refuses floats.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal

from mm.domain.events import PublicTrade, Settlement
from mm.domain.orders import Fill, Order
from mm.specs.canonical import canonical_json

__all__ = [
    "AlertRecord",
    "ConfigAuditRecord",
    "EventRecord",
    "FillRecord",
    "MarketSampleRecord",
    "OrderRecord",
    "PnlSnapshotRecord",
    "Record",
    "RevisionRecord",
    "SettlementRecord",
    "Write",
    "to_json",
]

Write = tuple[str, tuple[Any, ...]]
"""One statement and its parameters."""


def to_json(value: Any) -> str:
    """Canonical JSON text (sorted keys, Decimals as exact strings, floats refused)."""
    return canonical_json(value).decode()


def _digest(*parts: str) -> str:
    # Part of a content-derived key: two different facts with the same subject and microsecond stay distinct.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _money(value: Decimal) -> str:
    if not isinstance(value, Decimal):  # a float here would already have lost the exact amount
        raise TypeError(f"money must be a Decimal, not {type(value).__name__}")
    return str(value)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order's new state (FR-801): updates ``orders`` (one row per order) and appends to ``order_events``."""

    order: Order

    _UPSERT: ClassVar[str] = (
        "INSERT INTO orders (client_order_id, exchange_order_id, market_id, side, order_side, price_units,"
        " quantity_units, filled_units, status, time_in_force, post_only, reduce_only, reject_reason, created_us,"
        " updated_us) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (client_order_id) DO UPDATE SET exchange_order_id = COALESCE(excluded.exchange_order_id,"
        " orders.exchange_order_id), filled_units = excluded.filled_units, status = excluded.status,"
        " reject_reason = excluded.reject_reason, updated_us = excluded.updated_us"
        # A state older than the stored one (an out-of-order REST poll) must not move the order backwards.
        " WHERE excluded.updated_us >= orders.updated_us"
    )
    _EVENT: ClassVar[str] = (
        "INSERT INTO order_events (idempotency_key, client_order_id, exchange_order_id, market_id, status,"
        " filled_units, reject_reason, timestamp_us) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"
    )

    @property
    def key(self) -> str:
        o = self.order
        return f"order:{o.client_order_id}:{o.status.value}:{o.filled.units}:{o.updated_us}"

    def writes(self) -> tuple[Write, ...]:
        o, r = self.order, self.order.request
        state = (
            o.client_order_id,
            o.exchange_order_id,
            r.market_id,
            r.side.value,
            r.order_side.value,
            r.price.units,
            r.quantity.units,
            o.filled.units,
            o.status.value,
            r.time_in_force.value,
            int(r.post_only),
            int(r.reduce_only),
            o.reject_reason,
            o.created_us,
            o.updated_us,
        )
        event = (
            self.key,
            o.client_order_id,
            o.exchange_order_id,
            r.market_id,
            o.status.value,
            o.filled.units,
            o.reject_reason,
            o.updated_us,
        )
        return ((self._UPSERT, state), (self._EVENT, event))


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution of one of our orders (FR-801). Keyed by the venue's fill id."""

    fill: Fill

    _SQL: ClassVar[str] = (
        "INSERT INTO fills (idempotency_key, fill_id, order_id, client_order_id, market_id, side, order_side,"
        " price_units, quantity_units, fee, is_taker, timestamp_us) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT DO NOTHING"
    )

    @property
    def key(self) -> str:
        return f"fill:{self.fill.market_id}:{self.fill.fill_id}"

    def writes(self) -> tuple[Write, ...]:
        f = self.fill
        row = (
            self.key,
            f.fill_id,
            f.order_id,
            f.client_order_id,
            f.market_id,
            f.side.value,
            f.order_side.value,
            f.price.units,
            f.quantity.units,
            _money(f.fee),
            int(f.is_taker),
            f.timestamp_us,
        )
        return ((self._SQL, row),)


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """A market we held paid out."""

    settlement: Settlement

    _SQL: ClassVar[str] = (
        "INSERT INTO settlements (idempotency_key, market_id, result, yes_count_units, no_count_units,"
        " yes_total_cost, no_total_cost, revenue, value_per_yes, fee, settled_us) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT DO NOTHING"
    )

    @property
    def key(self) -> str:
        return f"settlement:{self.settlement.market_id}:{self.settlement.settled_us}"

    def writes(self) -> tuple[Write, ...]:
        s = self.settlement
        row = (
            self.key,
            s.market_id,
            s.result,
            s.yes_count.units,
            s.no_count.units,
            _money(s.yes_total_cost),
            _money(s.no_total_cost),
            _money(s.revenue),
            _money(s.value_per_yes),
            _money(s.fee),
            s.settled_us,
        )
        return ((self._SQL, row),)


@dataclass(frozen=True, slots=True)
class PnlSnapshotRecord:
    """A periodic PnL snapshot (FR-802). ``market_id`` "" is the whole node; ``positions`` e.g. {"YES": 150}."""

    timestamp_us: int
    market_id: str
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal = Decimal(0)
    positions: Mapping[str, Decimal | int] = field(default_factory=dict)

    _SQL: ClassVar[str] = (
        "INSERT INTO pnl_snapshots (idempotency_key, timestamp_us, market_id, realized_pnl, unrealized_pnl, fees,"
        " positions_json) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"
    )

    @property
    def key(self) -> str:
        return f"pnl:{self.market_id}:{self.timestamp_us}"

    def writes(self) -> tuple[Write, ...]:
        row = (
            self.key,
            self.timestamp_us,
            self.market_id,
            _money(self.realized_pnl),
            _money(self.unrealized_pnl),
            _money(self.fees),
            to_json(dict(self.positions)),
        )
        return ((self._SQL, row),)


@dataclass(frozen=True, slots=True)
class MarketSampleRecord:
    """An optional market-data sample (FR-803): a book snapshot or a public trade, as JSON."""

    market_id: str
    kind: Literal["book", "trade"]
    timestamp_us: int
    data: Mapping[str, Any]
    discriminator: str = ""
    """Makes the key unique when two samples share market, kind and time (a trade id)."""

    _SQL: ClassVar[str] = (
        "INSERT INTO market_samples (idempotency_key, market_id, kind, timestamp_us, data_json) VALUES (?,?,?,?,?)"
        " ON CONFLICT DO NOTHING"
    )

    @classmethod
    def from_trade(cls, trade: PublicTrade) -> MarketSampleRecord:
        data = {
            "trade_id": trade.trade_id,
            "price_units": trade.price.units,
            "quantity_units": trade.quantity.units,
            "taker_side": trade.taker_side.value,
        }
        return cls(trade.market_id, "trade", trade.timestamp_us, data, discriminator=trade.trade_id)

    @classmethod
    def book(
        cls, market_id: str, timestamp_us: int, yes_bids: list[tuple[int, int]], no_bids: list[tuple[int, int]]
    ) -> MarketSampleRecord:
        """A book snapshot as (price units, size units) levels of each side, best first (``OrderBook.depth``)."""
        data = {"yes": [list(level) for level in yes_bids], "no": [list(level) for level in no_bids]}
        return cls(market_id, "book", timestamp_us, data)

    @property
    def key(self) -> str:
        return f"sample:{self.market_id}:{self.kind}:{self.timestamp_us}:{self.discriminator}"

    def writes(self) -> tuple[Write, ...]:
        return ((self._SQL, (self.key, self.market_id, self.kind, self.timestamp_us, to_json(dict(self.data)))),)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A Kubernetes-style event about a subject (``Market/btc-5pm``): type Normal/Warning, reason, message."""

    timestamp_us: int
    subject: str
    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"
    data: Mapping[str, Any] = field(default_factory=dict)

    _SQL: ClassVar[str] = (
        "INSERT INTO events (idempotency_key, timestamp_us, type, subject, reason, message, data_json)"
        " VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"
    )

    @property
    def key(self) -> str:
        return (
            f"event:{self.subject}:{self.reason}:{self.timestamp_us}:{_digest(self.message, to_json(dict(self.data)))}"
        )

    def writes(self) -> tuple[Write, ...]:
        row = (
            self.key,
            self.timestamp_us,
            self.type,
            self.subject,
            self.reason,
            self.message,
            to_json(dict(self.data)),
        )
        return ((self._SQL, row),)


@dataclass(frozen=True, slots=True)
class ConfigAuditRecord:
    """A configuration change (FR-1007) with the full before and after state and the parameter changes."""

    timestamp_us: int
    change_type: Literal["reload", "param_update", "component_swap", "rollback", "apply", "delete"]
    component: str
    triggered_by: Literal["file_watch", "api", "signal", "cli"]
    before: Any
    after: Any
    changes: tuple[Mapping[str, Any], ...] = ()
    """Each ``{"param", "old_value", "new_value"}`` (FR-1007 ``ParamChange``)."""
    success: bool = True
    error: str | None = None
    actor: str = ""

    _SQL: ClassVar[str] = (
        "INSERT INTO config_audit (idempotency_key, timestamp_us, change_type, component, triggered_by, actor,"
        " before_json, after_json, changes_json, success, error) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT DO NOTHING"
    )

    @property
    def key(self) -> str:
        body = _digest(to_json(self.before), to_json(self.after), str(self.success))
        return f"config:{self.component}:{self.change_type}:{self.timestamp_us}:{body}"

    def writes(self) -> tuple[Write, ...]:
        row = (
            self.key,
            self.timestamp_us,
            self.change_type,
            self.component,
            self.triggered_by,
            self.actor,
            to_json(self.before),
            to_json(self.after),
            to_json([dict(c) for c in self.changes]),
            int(self.success),
            self.error,
        )
        return ((self._SQL, row),)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert that was raised (kept for the audit trail whatever channel delivered it)."""

    timestamp_us: int
    severity: Literal["info", "warning", "critical"]
    name: str
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)

    _SQL: ClassVar[str] = (
        "INSERT INTO alerts (idempotency_key, timestamp_us, severity, name, message, data_json) VALUES (?,?,?,?,?,?)"
        " ON CONFLICT DO NOTHING"
    )

    @property
    def key(self) -> str:
        return f"alert:{self.name}:{self.timestamp_us}:{_digest(self.message, to_json(dict(self.data)))}"

    def writes(self) -> tuple[Write, ...]:
        row = (self.key, self.timestamp_us, self.severity, self.name, self.message, to_json(dict(self.data)))
        return ((self._SQL, row),)


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    """A stored revision of a resource's spec (FR-1005); also makes it the resource's current spec.

    The store keeps the last ``history_limit`` revisions per resource and prunes older ones.
    """

    kind: str
    name: str
    revision: int
    generation: int
    digest: str
    spec: Mapping[str, Any]
    source: str
    change_cause: str
    created_us: int

    _INSERT: ClassVar[str] = (
        "INSERT INTO revisions (idempotency_key, kind, name, revision, generation, digest, spec_json, source,"
        " change_cause, created_us) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"
    )
    _CURRENT: ClassVar[str] = (
        "INSERT INTO resources (kind, name, generation, revision, digest, spec_json, updated_us)"
        " VALUES (?,?,?,?,?,?,?) ON CONFLICT (kind, name) DO UPDATE SET generation = excluded.generation,"
        " revision = excluded.revision, digest = excluded.digest, spec_json = excluded.spec_json,"
        " updated_us = excluded.updated_us WHERE excluded.revision >= resources.revision"
    )

    @property
    def key(self) -> str:
        return f"revision:{self.kind}/{self.name}:{self.revision}"

    def writes(self) -> tuple[Write, ...]:
        spec = to_json(dict(self.spec))
        revision = (
            self.key,
            self.kind,
            self.name,
            self.revision,
            self.generation,
            self.digest,
            spec,
            self.source,
            self.change_cause,
            self.created_us,
        )
        current = (self.kind, self.name, self.generation, self.revision, self.digest, spec, self.created_us)
        return ((self._INSERT, revision), (self._CURRENT, current))


@dataclass(frozen=True, slots=True)
class ResourceDeletedRecord:
    """A resource was deleted: it is no longer current (its revisions stay, for history). Conditional on the
    revision, so a re-creation written in the same batch (with a higher revision) survives whatever the order."""

    kind: str
    name: str
    revision: int
    deleted_us: int

    _DELETE: ClassVar[str] = "DELETE FROM resources WHERE kind = ? AND name = ? AND revision <= ?"

    @property
    def key(self) -> str:
        return f"deleted:{self.kind}/{self.name}:{self.revision}"

    def writes(self) -> tuple[Write, ...]:
        return ((self._DELETE, (self.kind, self.name, self.revision)),)


Record = (
    OrderRecord
    | FillRecord
    | SettlementRecord
    | PnlSnapshotRecord
    | MarketSampleRecord
    | EventRecord
    | ConfigAuditRecord
    | AlertRecord
    | RevisionRecord
    | ResourceDeletedRecord
)
"""Everything the write-behind queue accepts."""
