"""Crash recovery (FR-1202): after a run that left its lock behind, reconcile with the exchange before trading.

Start-up with a stale lock (its pid dead) puts the node in recovery mode: the ``recovery`` hold is set before any
reconciler runs, so Markets only cancel. Once every Exchange has loaded our open orders and positions (the
Exchange reconciler's first sync: orders resting at the venue are adopted, positions imported from the venue),
:class:`CrashRecovery` asks each live account's venue for its positions and its fills since the crashed run
started, and:

* writes every venue fill into the database (``FillRecord`` is keyed by the venue's fill id, so fills the
  crashed run already stored are not duplicated, and fills that happened while no node ran are added);
* compares the checkpoint (the last state the crashed run saved) with the venue, market by market
  (:func:`assess`, pure): the position difference in contracts, and the PnL that changed hands unseen — the
  realized PnL minus fees of the fills since the checkpoint, replayed on the checkpoint's positions and cost
  bases; every discrepancy is logged as an event with its details;
* auto-resumes (clears the hold) when the largest position difference and the PnL difference are within
  ``recovery.auto_resume_threshold`` and ``require_manual_approval`` is off; otherwise latches the hold and
  raises a ``RecoveryNeedsApproval`` warning: trading waits for ``mmctl resume --confirm``.

The last assessment is kept for ``/status`` and written to ``<state dir>/recovery.json``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from mm.adapters.errors import ExchangeError
from mm.controller.node import NodeContext
from mm.domain.fees import FeeSchedule
from mm.domain.orders import Fill
from mm.specs.node import Recovery
from mm.state.checkpoint import Checkpoint
from mm.state.ledger import Ledger
from mm.state.records import FillRecord

__all__ = ["CrashRecovery", "Discrepancy", "RecoveryAssessment", "assess"]

_logger = logging.getLogger(__name__)

HOLD = "recovery"


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One difference between the checkpoint and the venue (contracts and dollars are exact)."""

    exchange: str
    market_id: str
    kind: str
    """``position`` (net YES differs) or ``orders`` (checkpointed orders no longer open)."""
    detail: str
    contracts: Decimal = Decimal(0)
    dollars: Decimal = Decimal(0)


@dataclass
class RecoveryAssessment:
    exchange: str
    discrepancies: list[Discrepancy] = field(default_factory=list)
    fills_since_checkpoint: int = 0
    max_position_diff: Decimal = Decimal(0)
    """Contracts: the largest |venue − checkpoint| net YES difference over the markets."""
    pnl_diff: Decimal = Decimal(0)
    """Dollars: |realized PnL − fees| of the fills since the checkpoint, replayed on its positions."""


def assess(
    exchange: str,
    checkpoint: Checkpoint | None,
    venue_positions: Mapping[str, int],
    fills_since: Sequence[Fill],
    venue_open_client_ids: Iterable[str],
) -> RecoveryAssessment:
    """Compare the checkpoint's view of ``exchange``'s live account with the venue's (pure).

    ``venue_positions``: net YES by market, 1/100 contract; ``fills_since``: the venue's fills of our account
    at or after the checkpoint; ``venue_open_client_ids``: our orders the venue lists as open."""
    prefix = f"{exchange}/live/"
    replay = Ledger(fee_source="venue", fees=FeeSchedule())
    before: dict[str, int] = {}
    checkpointed_orders: dict[str, tuple[str, ...]] = {}
    for market in checkpoint.markets if checkpoint is not None else ():
        if not market.market_id.startswith(prefix):
            continue
        ticker = market.market_id[len(prefix) :]
        net = int(market.positions.get("net", 0))
        before[ticker] = net
        checkpointed_orders[ticker] = market.open_orders
        if net:
            replay.import_position(ticker, net, int(market.positions.get("cost_basis_micros", 0)), None)
    for fill in sorted(fills_since, key=lambda f: (f.timestamp_us, f.fill_id)):
        replay.apply_fill(fill)
    result = RecoveryAssessment(exchange, fills_since_checkpoint=len(fills_since))
    pnl_micros = 0
    for ticker in replay.market_ids():
        pnl = replay.market(ticker)
        pnl_micros += pnl.realized_micros - pnl.fees.total_micros
    result.pnl_diff = abs(Decimal(pnl_micros).scaleb(-6))
    for ticker in sorted(before.keys() | venue_positions.keys()):
        ours, theirs = before.get(ticker, 0), venue_positions.get(ticker, 0)
        if ours == theirs:
            continue
        diff = Decimal(abs(theirs - ours)).scaleb(-2)
        explained = replay.net_units(ticker) == theirs
        result.discrepancies.append(
            Discrepancy(
                exchange,
                ticker,
                "position",
                f"checkpoint {Decimal(ours).scaleb(-2)} YES, venue {Decimal(theirs).scaleb(-2)} YES "
                + ("(explained by the fills since the checkpoint)" if explained else "(NOT explained by fills)"),
                contracts=diff,
            )
        )
        result.max_position_diff = max(result.max_position_diff, diff)
    still_open = set(venue_open_client_ids)
    for ticker, client_ids in sorted(checkpointed_orders.items()):
        gone = [c for c in client_ids if c not in still_open]
        if gone:
            result.discrepancies.append(
                Discrepancy(exchange, ticker, "orders", f"{len(gone)} checkpointed orders no longer open: {gone}")
            )
    return result


def within_tolerance(assessments: Sequence[RecoveryAssessment], options: Recovery) -> bool:
    threshold = options.auto_resume_threshold
    return not options.require_manual_approval and all(
        a.max_position_diff <= threshold.position_contracts and a.pnl_diff <= threshold.pnl_dollars for a in assessments
    )


class CrashRecovery:
    """The recovery run of one start-up (see the module docstring). ``begin`` before the reconcilers start;
    ``run`` as a background task afterwards."""

    def __init__(
        self,
        node: NodeContext,
        options: Recovery,
        checkpoint: Checkpoint | None,
        since_us: int,
        state_dir: Path,
    ) -> None:
        self.node = node
        self.options = options
        self.checkpoint = checkpoint
        self.since_us = since_us
        """Fills at or after this time (µs, the node's clock) are read back: the crashed run's whole life."""
        self.state_dir = state_dir
        self.assessments: list[RecoveryAssessment] = []
        self.outcome: str = "pending"
        self.seconds: float | None = None
        self._started_ns = node.wall.monotonic_ns()

    def begin(self) -> None:
        self.node.holds.set(HOLD, "crash recovery: reconciling with the exchange", self.node.clock.now_us())
        self.node.event("TradingNode", "RecoveryStarted", "the previous run crashed: no trading until reconciled")

    async def run(self, load_timeout_s: float = 30.0) -> str:
        """Wait for every Exchange to load, assess, then resume or wait for a person; returns the outcome."""
        node = self.node
        loop = asyncio.get_running_loop()
        deadline = loop.time() + load_timeout_s
        while not node.exchanges or not all(c.loaded for c in node.exchanges.values()):
            if loop.time() >= deadline:
                self._needs_person(f"the exchanges did not load within {load_timeout_s:g} s")
                return self.outcome
            await asyncio.sleep(0.05)
        try:
            for name, conn in sorted(node.exchanges.items()):
                account = conn.accounts.get("live")
                if account is None:
                    continue
                positions = {p.market_id: p.net_units for p in await conn.venue.get_positions()}
                fills = await conn.venue.get_fills(since_us=self.since_us)
                for fill in fills:
                    if account.tracker.is_ours(fill.client_order_id) or not fill.client_order_id:
                        node.record(FillRecord(fill))  # keyed by fill id: stored once, however often written
                checkpoint_us = self.checkpoint.timestamp_us if self.checkpoint is not None else self.since_us
                since_checkpoint = [f for f in fills if f.timestamp_us >= checkpoint_us]
                open_ids = [o.client_order_id for o in account.tracker.open_orders()]
                self.assessments.append(assess(name, self.checkpoint, positions, since_checkpoint, open_ids))
        except ExchangeError as exc:
            self._needs_person(f"could not read the exchange: {exc}")
            return self.outcome
        for assessment in self.assessments:
            for d in assessment.discrepancies:
                node.event(
                    f"Exchange/{d.exchange}", "RecoveryDiscrepancy", f"{d.market_id} {d.kind}: {d.detail}", warning=True
                )
        summary = "; ".join(
            f"{a.exchange}: {a.fills_since_checkpoint} fills since the checkpoint, position diff "
            f"{a.max_position_diff} contracts, PnL diff {a.pnl_diff} USD"
            for a in self.assessments
        )
        if within_tolerance(self.assessments, self.options):
            self.outcome = "resumed"
            self.seconds = (self.node.wall.monotonic_ns() - self._started_ns) / 1e9
            node.holds.clear(HOLD)
            node.event("TradingNode", "RecoveryComplete", f"auto-resumed after {self.seconds:.2f} s: {summary}")
        else:
            why = "manual approval required" if self.options.require_manual_approval else "outside tolerance"
            self._needs_person(f"{why}: {summary}")
        self._write_report()
        return self.outcome

    def _needs_person(self, why: str) -> None:
        self.outcome = "awaiting_confirmation"
        self.seconds = (self.node.wall.monotonic_ns() - self._started_ns) / 1e9
        self.node.holds.set(
            HOLD, f"crash recovery: {why}; run `mmctl resume --confirm`", self.node.clock.now_us(), latched=True
        )
        self.node.event("TradingNode", "RecoveryNeedsApproval", why, warning=True)
        self._write_report()

    def report(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "seconds": self.seconds,
            "since_us": self.since_us,
            "checkpoint_us": self.checkpoint.timestamp_us if self.checkpoint is not None else None,
            "assessments": [
                {**asdict(a), "discrepancies": [asdict(d) for d in a.discrepancies]} for a in self.assessments
            ],
        }

    def _write_report(self) -> None:
        try:
            (self.state_dir / "recovery.json").write_bytes(
                orjson.dumps(self.report(), default=str, option=orjson.OPT_INDENT_2)
            )
        except OSError as exc:  # the report is for people; recovery itself must not fail on it
            _logger.warning("cannot write recovery.json: %s", exc)
