"""Property tests of the matching engine: random operation sequences by several users.

Every sequence runs through the engine and through a naive reference (a flat list of resting orders,
matched by sorting) written straight from the rules in kalshi-api.md §5/§7; they must agree on every
trade, status and level. After every operation the engine must also keep its invariants: never crossed,
level totals = sum of resting remainders, replaying its book changes reproduces ``levels()``, counts add
up per order, and YES bought = YES sold with each fill funding exactly $1 per contract.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mm.domain.ticks import TickGrid
from mm.sim.matching import FOK_INSUFFICIENT_VOLUME, POST_ONLY_CROSS, MatchingEngine, MatchResult
from mm.sim.types import BookChange, BookSide, OrderStatus, SelfTradePrevention, SimOrder, TimeInForce, Trade
from tests.sim.test_matching import TICKER, replay

BID, ASK = BookSide.BID, BookSide.ASK
GTC, IOC, FOK = TimeInForce.GOOD_TILL_CANCELED, TimeInForce.IMMEDIATE_OR_CANCEL, TimeInForce.FILL_OR_KILL
RESTING, EXECUTED, CANCELED = OrderStatus.RESTING, OrderStatus.EXECUTED, OrderStatus.CANCELED
USERS = ("u0", "u1", "u2")
GRIDS = {"linear_cent": TickGrid.linear_cent(), "tapered_deci_cent": TickGrid.tapered_deci_cent()}


@dataclass
class Ref:
    """The reference's view of one order."""

    user: str
    side: BookSide
    price: int
    remaining: int
    priority: int
    stp: SelfTradePrevention
    post_only: bool
    status: OrderStatus = RESTING
    fill: int = 0


class Reference:
    """Obviously-correct matching: scan every resting order, sort by price then priority."""

    def __init__(self) -> None:
        self.orders: dict[str, Ref] = {}
        self.seq = itertools.count()

    def crossing(self, side: BookSide, price: int) -> list[tuple[str, Ref]]:
        opposite = ASK if side is BID else BID
        rows = [
            (oid, o)
            for oid, o in self.orders.items()
            if o.status is RESTING and o.side is opposite and (o.price <= price if side is BID else o.price >= price)
        ]
        return sorted(rows, key=lambda r: (r[1].price if side is BID else -r[1].price, r[1].priority))

    def submit(self, oid: str, o: Ref, tif: TimeInForce) -> tuple[list[tuple[str, int, int]], str | None]:
        self.orders[oid] = o
        if o.post_only and self.crossing(o.side, o.price):
            o.status = CANCELED
            return [], POST_ONLY_CROSS
        if tif is FOK and sum(r.remaining for _, r in self.crossing(o.side, o.price) if r.user != o.user) < o.remaining:
            o.status = CANCELED
            return [], FOK_INSUFFICIENT_VOLUME
        trades = self.match(o)
        if o.status is RESTING:
            o.status = EXECUTED if not o.remaining else (RESTING if tif is GTC else CANCELED)
        return trades, None

    def match(self, o: Ref) -> list[tuple[str, int, int]]:
        trades = []
        for oid, maker in self.crossing(o.side, o.price):
            if not o.remaining:
                break
            if maker.user == o.user:
                if o.stp is SelfTradePrevention.TAKER_AT_CROSS:
                    o.status = CANCELED
                    break
                maker.status = CANCELED
                continue
            qty = min(o.remaining, maker.remaining)
            o.remaining -= qty
            o.fill += qty
            maker.remaining -= qty
            maker.fill += qty
            if not maker.remaining:
                maker.status = EXECUTED
            trades.append((oid, maker.price, qty))
        return trades

    def amend(self, oid: str, price: int, total: int) -> tuple[list[tuple[str, int, int]], str | None]:
        o = self.orders[oid]
        remaining = total - o.fill
        if price == o.price and remaining <= o.remaining:
            o.remaining = remaining
            return [], None
        if o.post_only and self.crossing(o.side, price):
            return [], POST_ONLY_CROSS
        o.price, o.remaining, o.priority = price, remaining, next(self.seq)
        trades = self.match(o)
        if o.status is RESTING and not o.remaining:
            o.status = EXECUTED
        return trades, None

    def levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        sizes: dict[tuple[BookSide, int], int] = {}
        for o in self.orders.values():
            if o.status is RESTING:
                sizes[o.side, o.price] = sizes.get((o.side, o.price), 0) + o.remaining
        bids = sorted(((p, n) for (s, p), n in sizes.items() if s is BID), reverse=True)
        asks = sorted((p, n) for (s, p), n in sizes.items() if s is ASK)
        return bids, asks


def _price(grid: TickGrid, level: int) -> int:
    """A price in a narrow band around $0.50 (so orders cross often), on the grid."""
    mid = grid.index_of(5000)
    return grid.levels[mid + level]


submit_op = st.tuples(
    st.just("submit"),
    st.sampled_from(USERS),
    st.sampled_from((BID, ASK)),
    st.integers(-2, 2),
    st.integers(1, 600),  # 1/100 contract: fractional counts on purpose
    st.sampled_from((GTC, GTC, GTC, IOC, FOK)),
    st.sampled_from((False, False, True)),  # post-only a third of the time
    st.sampled_from(tuple(SelfTradePrevention)),
)
cancel_op = st.tuples(st.just("cancel"), st.integers(0, 10_000))
decrease_op = st.tuples(st.just("decrease"), st.integers(0, 10_000), st.integers(0, 700))
amend_op = st.tuples(st.just("amend"), st.integers(0, 10_000), st.integers(-2, 2), st.integers(1, 900))
cancel_all_op = st.tuples(st.just("cancel_all"), st.sampled_from((*USERS, None)))
ops = st.lists(
    st.one_of(submit_op, submit_op, submit_op, cancel_op, decrease_op, amend_op, cancel_all_op),
    min_size=20,
    max_size=80,
)


class Run:
    """Drives the engine and the reference side by side and checks them after every op."""

    def __init__(self, grid: TickGrid) -> None:
        trade_ids = (f"t{i}" for i in itertools.count())
        self.grid = grid
        self.engine = MatchingEngine(TICKER, grid, trade_ids.__next__)
        self.ref = Reference()
        self.ids: list[str] = []
        self.trades: list[Trade] = []
        self.changes: list[BookChange] = []
        self.now = 0

    def apply(self, op: tuple[Any, ...]) -> None:
        self.now += 1
        kind = op[0]
        if kind == "submit":
            _, user, side, level, count, tif, post_only, stp = op
            oid = f"o{len(self.ids)}"
            self.ids.append(oid)
            price = _price(self.grid, level)
            order = SimOrder(
                oid, user, TICKER, side, price, count, count, time_in_force=tif, post_only=post_only, stp=stp
            )
            expected = self.ref.submit(oid, Ref(user, side, price, count, next(self.ref.seq), stp, post_only), tif)
            self.check_result(self.engine.submit(order, self.now), expected)
        elif kind == "cancel_all":
            for order, changes in self.engine.cancel_all(self.now, op[1]):
                assert op[1] is None or order.user_id == op[1]
                self.ref.orders[order.order_id].status = CANCELED
                self.changes.extend(changes)
            assert self.engine.resting(op[1]) == []
        elif self.ids:
            self.apply_to_existing(op)

    def apply_to_existing(self, op: tuple[Any, ...]) -> None:
        oid = self.ids[op[1] % len(self.ids)]
        ref = self.ref.orders[oid]
        if ref.status is not RESTING:
            try:
                self.engine.cancel(oid, self.now)
            except ValueError:
                return
            raise AssertionError(f"{oid} is not resting in the reference, yet the engine cancelled it")
        if op[0] == "cancel":
            _, changes = self.engine.cancel(oid, self.now)
            ref.status = CANCELED
        elif op[0] == "decrease":
            target = ref.remaining - op[2]
            if target < 0:
                return
            _, changes = (
                self.engine.decrease(oid, self.now, reduce_by=op[2])
                if op[2]
                else self.engine.decrease(oid, self.now, reduce_to=target)
            )
            ref.remaining = target
            ref.status = RESTING if target else CANCELED
        else:
            price, total = _price(self.grid, op[2]), ref.fill + op[3]
            expected = self.ref.amend(oid, price, total)
            self.check_result(self.engine.amend(oid, self.now, price=price, total_count=total), expected)
            return
        self.changes.extend(changes)

    def check_result(self, result: MatchResult, expected: tuple[list[tuple[str, int, int]], str | None]) -> None:
        assert [(t.maker_order_id, t.price, t.count) for t in result.trades] == expected[0]
        assert result.reject_reason == expected[1]
        assert all(t.taker_order_id == result.order.order_id for t in result.trades)
        self.trades.extend(result.trades)
        self.changes.extend(result.book_changes)

    def check_invariants(self) -> None:
        engine = self.engine
        bids, asks = engine.levels()
        assert (bids, asks) == self.ref.levels()
        if bids and asks:
            assert bids[0][0] < asks[0][0], "the book is crossed"
        assert replay(self.changes) == (bids, asks)
        resting: dict[tuple[BookSide, int], int] = {}
        for o in engine.resting():
            resting[o.side, o.price] = resting.get((o.side, o.price), 0) + o.remaining_count
        assert resting == {**{(BID, p): n for p, n in bids}, **{(ASK, p): n for p, n in asks}}
        bought = sold = cost = 0
        for oid in self.ids:
            o, ref = engine.get(oid), self.ref.orders[oid]
            assert (o.status, o.fill_count, o.remaining_count if o.status is RESTING else 0) == (
                ref.status,
                ref.fill,
                ref.remaining if ref.status is RESTING else 0,
            )
            if o.status is CANCELED:
                assert o.remaining_count == 0 and 0 <= o.fill_count <= o.initial_count
            else:
                assert o.initial_count == o.fill_count + o.remaining_count
                assert (o.remaining_count > 0) is (o.status is RESTING)
            bought += o.fill_count if o.side is BID else 0
            sold += o.fill_count if o.side is ASK else 0
            cost += o.taker_fill_cost + o.maker_fill_cost
        traded = sum(t.count for t in self.trades)
        assert bought == sold == traded
        assert cost == traded * 100  # every contract traded is funded with exactly $1 between the two sides
        assert all(t.taker_user_id != t.maker_user_id for t in self.trades)


@settings(max_examples=300, deadline=None)
@given(grid_name=st.sampled_from(sorted(GRIDS)), operations=ops)
def test_engine_agrees_with_the_reference_and_keeps_its_invariants(
    grid_name: str, operations: list[tuple[Any, ...]]
) -> None:
    run = Run(GRIDS[grid_name])
    for op in operations:
        run.apply(op)
        run.check_invariants()


def random_ops(rng: random.Random, n: int) -> list[tuple[Any, ...]]:
    """Uniformly random ops: hypothesis favours simple draws (one user, one price), which rarely trade."""
    out: list[tuple[Any, ...]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.55:
            tif = rng.choice((GTC, GTC, GTC, IOC, FOK))
            out.append(("submit", rng.choice(USERS), rng.choice((BID, ASK)), rng.randint(-3, 3), rng.randint(1, 600),
                        tif, rng.random() < 0.2, rng.choice(tuple(SelfTradePrevention))))  # fmt: skip
        elif roll < 0.7:
            out.append(("cancel", rng.randrange(10_000)))
        elif roll < 0.8:
            out.append(("decrease", rng.randrange(10_000), rng.randint(0, 300)))
        elif roll < 0.98:
            out.append(("amend", rng.randrange(10_000), rng.randint(-3, 3), rng.randint(1, 900)))
        else:
            out.append(("cancel_all", rng.choice((*USERS, None))))
    return out


@settings(max_examples=100, deadline=None)
@given(grid_name=st.sampled_from(sorted(GRIDS)), seed=st.integers(0, 2**32 - 1))
def test_random_sequences_agree_with_the_reference(grid_name: str, seed: int) -> None:
    """Longer uniformly random runs: deep queues, many trades, lazy deletions and compactions."""
    run = Run(GRIDS[grid_name])
    for op in random_ops(random.Random(seed), 300):
        run.apply(op)
        run.check_invariants()
    assert run.trades, "a run this long should trade"
