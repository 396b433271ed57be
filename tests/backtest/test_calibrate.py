"""Fill-model calibration on small hand-built recordings whose right answer is known by construction.

Every file is written with the recorder's own encoding (``encode_record``): a session_start with a 1¢ grid, a
book, our real orders' lives (order_sent / order_ack / order_update / fill ...) and public trades. Our order is a
YES bid at 0.50 for 5 contracts unless a test says otherwise; the book's other bids sit at 0.45 / asks at 0.55.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from mm.backtest.calibrate import CalibrationError, calibrate, match_fills
from mm.backtest.ghost import FillRecord
from mm.recording.format import SessionFormatError, encode_record

MARKET = "KXTEST-26AUG1317-T1"
T0 = 1_786_653_000_000_000
CID = "mm:abc:1:yb:0"
EID = "order-1"


class Recording:
    """Appends records (seq from 1, ``ts_us`` advancing 0.1 s a record unless told) and writes a .jsonl.gz."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.ts = T0
        self.levels: dict[tuple[str, int], int] = {}
        self.add(
            "session_start",
            {
                "format": "mm-session/1",
                "session_id": "s1",
                "market_ids": [MARKET],
                "config": {"markets": []},
                "seeds": {},
                "market_info": {"grid": [[0, 10000, 100]]},
            },
        )
        self.snapshot([[4500, 1000]], [[4500, 1000]])

    def add(self, type_: str, data: dict[str, Any], *, after_s: float = 0.1) -> None:
        self.ts += round(after_s * 1_000_000)
        self.lines.append(encode_record(len(self.lines) + 1, self.ts, type_, MARKET, data))

    def snapshot(self, yes: list[list[int]], no: list[list[int]]) -> None:
        self.levels = {("yes", p): n for p, n in yes} | {("no", p): n for p, n in no}
        self.add("book_snapshot", {"yes_bids": yes, "no_bids": no, "grid": [[0, 10000, 100]]})

    def delta(self, side: str, price: int, change: int) -> None:
        size = self.levels.get((side, price), 0) + change
        self.levels[(side, price)] = size
        action = "remove" if size == 0 else ("add" if size == change else "update")
        data = {"side": side, "price_units": price, "size_units": size, "delta_units": change, "action": action}
        self.add("book_delta", data)

    def trade(self, price: int, size: int, taker: str, *, after_s: float = 0.1) -> None:
        data = {"trade_id": f"t{len(self.lines)}", "price_units": price, "size_units": size, "taker_side": taker}
        self.add("trade", data | {"venue_ts_us": self.ts + round(after_s * 1_000_000)}, after_s=after_s)

    def sent(
        self, cid: str = CID, price: int = 5000, size: int = 500, side: str = "yes", order_side: str = "buy"
    ) -> None:
        data = {
            "client_order_id": cid,
            "side": side,
            "order_side": order_side,
            "price_units": price,
            "size_units": size,
        }
        self.add("order_sent", data | {"time_in_force": "good_till_canceled", "post_only": True})

    def ack(self, cid: str = CID, eid: str = EID, remaining: int = 500) -> None:
        data = {"client_order_id": cid, "exchange_order_id": eid, "status": "open", "filled_units": 0}
        self.add("order_ack", data | {"remaining_units": remaining})

    def update(
        self,
        status: str,
        price: int = 5000,
        size: int = 500,
        filled: int = 0,
        cid: str = CID,
        eid: str = EID,
        venue_ts: int | None = None,
    ) -> None:
        data: dict[str, Any] = {
            "client_order_id": cid,
            "exchange_order_id": eid,
            "status": status,
            "price_units": price,
        }
        data |= {
            "size_units": size,
            "filled_units": filled,
            "remaining_units": 0 if status in ("filled", "cancelled") else size - filled,
        }
        self.add("order_update", data | {"execution": "live", "venue_ts_us": venue_ts or self.ts})

    def fill(self, price: int, size: int, *, cid: str = CID, eid: str = EID, execution: str = "live") -> None:
        data: dict[str, Any] = {
            "fill_id": f"f{len(self.lines)}",
            "order_id": eid,
            "client_order_id": cid,
            "side": "yes",
        }
        data |= {"order_side": "buy", "price_units": price, "size_units": size, "remaining_units": None, "fee": "0"}
        self.add("fill", data | {"is_taker": False, "execution": execution, "venue_ts_us": self.ts})

    def place(self, price: int = 5000, size: int = 500) -> None:
        """Our bid, as the simulator records it: sent, acked, our size shows in the book, the venue's update."""
        self.sent(price=price, size=size)
        self.ack(remaining=size)
        self.delta("yes", price, size)
        self.update("open", price, size)

    def write(self, path: Path) -> Path:
        self.add("session_end", {"reason": "node stopped"})
        path.write_bytes(gzip.compress(b"".join(self.lines)))
        return path


@pytest.fixture
def rec() -> Recording:
    return Recording()


def test_a_print_through_our_bid_fills_the_tape_models_at_our_price(rec: Recording, tmp_path: Path) -> None:
    rec.place()
    rec.trade(4900, 800, "sell")  # a taker sold through our 0.50 bid: the venue filled us first
    rec.fill(5000, 500)
    rec.update("filled", filled=500)
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"))
    assert report.comparable and report.reason is None
    assert (report.orders_followed, report.real_fills, report.real_units) == (1, 1, 500)
    for name in ("trade_through", "queue"):
        m = report.figures(name)
        assert (m.ghost_fills, m.ghost_units, m.matched_units, m.same_price_units) == (1, 500, 500, 500)
        assert m.match_rate == m.recall == m.precision == m.order_agreement == 1.0
        assert report.passes(name) is True
    cross = report.figures("cross")
    assert (cross.ghost_fills, cross.matched_units, cross.match_rate, cross.recall) == (0, 0, 0.0, 0.0)
    assert cross.precision is None and report.passes("cross") is False  # no ghost fill: no precision to speak of


@pytest.mark.parametrize("own_delta", ["before_ack", "between", "after_update"])
def test_a_touch_fills_only_the_queue_model_once_the_queue_ahead_is_gone(
    rec: Recording, tmp_path: Path, own_delta: str
) -> None:
    """Others rest 3 contracts at 0.50 before us. Our own 5 show in the recorded book (wherever the recorder put
    that delta relative to our order records) and must not count as queue ahead of us."""
    rec.delta("yes", 5000, 300)
    rec.sent()
    if own_delta == "before_ack":
        rec.delta("yes", 5000, 500)
    rec.ack()
    if own_delta == "between":
        rec.delta("yes", 5000, 500)
    rec.update("open")
    if own_delta == "after_update":
        rec.delta("yes", 5000, 500)
    rec.trade(5000, 300, "sell")  # takes the 3 contracts ahead of us: not ours yet
    rec.delta("yes", 5000, -300)
    rec.trade(5000, 200, "sell")  # reaches us
    rec.fill(5000, 200)
    rec.delta("yes", 5000, -200)
    rec.update("partially_filled", filled=200)
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"))
    queue = report.figures("queue")
    assert (queue.ghost_fills, queue.ghost_units, queue.matched_units) == (1, 200, 200)
    assert queue.match_rate == 1.0
    assert report.figures("trade_through").ghost_fills == 0  # a touch is not a print through our price
    assert report.figures("cross").ghost_fills == 0
    assert report.figures("trade_through").recall == 0.0


def test_an_amend_the_book_shows_before_the_venue_confirms_it_is_our_size(rec: Recording, tmp_path: Path) -> None:
    """As the simulator records it: the node amends 0.50 → 0.49, the book shows our 5 contracts leave 0.50 and join
    0.49 (behind 2 of others), then the venue's update confirms. The ghost re-queues behind the 2 only."""
    rec.delta("yes", 4900, 200)
    rec.place()
    rec.add("order_amend", {"exchange_order_id": EID, "client_order_id": CID, "price_units": 4900, "size_units": 500})
    rec.delta("yes", 5000, -500)
    rec.delta("yes", 4900, 500)
    rec.update("open", price=4900)
    rec.trade(4900, 200, "sell")
    rec.trade(4900, 300, "sell")
    rec.fill(4900, 300)
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"), models=["queue"])
    queue = report.figures("queue")
    assert (queue.ghost_units, queue.matched_units, queue.match_rate) == (300, 300, 1.0)


def test_size_that_joined_before_us_is_ahead_and_after_us_behind(rec: Recording, tmp_path: Path) -> None:
    """The same touch with a stranger's size at our price: after us it is behind us (the touch still reaches us);
    before us it is ahead (the touch is used up before it reaches us)."""
    rec.delta("yes", 5000, 300)
    rec.place(size=500)
    rec.delta("yes", 5000, 400)  # someone else, after us: behind us, so no effect
    rec.trade(5000, 300, "sell")
    rec.trade(5000, 200, "sell")
    rec.fill(5000, 200)
    report = calibrate(rec.write(tmp_path / "a.jsonl.gz"))
    assert report.figures("queue").ghost_units == 200

    other = Recording()
    other.delta("yes", 5000, 300)
    other.delta("yes", 5000, 500)  # 5 contracts of a stranger ahead of us, then we join
    other.place(size=500)
    other.trade(5000, 300, "sell")
    other.trade(5000, 200, "sell")
    other.fill(5000, 200)
    report = calibrate(other.write(tmp_path / "b.jsonl.gz"))
    assert report.figures("queue").ghost_units == 0 and report.figures("queue").recall == 0.0


def test_a_crossed_book_fills_only_the_cross_model(rec: Recording, tmp_path: Path) -> None:
    rec.place()
    rec.delta("no", 5100, 300)  # a NO bid at 0.51 = a YES ask at 0.49, through our 0.50 bid: displayed, never traded
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"))
    cross = report.figures("cross")
    assert (cross.ghost_fills, cross.ghost_units) == (1, 300)
    assert report.figures("trade_through").ghost_fills == report.figures("queue").ghost_fills == 0
    # The real order never filled: nothing to compare, and no rate is made up.
    assert not report.comparable and "no real fill" in (report.reason or "")
    assert cross.match_rate is None and cross.precision is None and cross.recall is None
    assert "nothing to compare" in report.describe()


def test_ghosts_follow_the_venue_not_the_nodes_intent(rec: Recording, tmp_path: Path) -> None:
    rec.place()
    rec.add("order_cancel", {"exchange_order_id": EID, "client_order_id": CID, "reason": "not_desired"})
    rec.trade(4900, 500, "sell")  # before the venue took the cancel: the real order filled, and so do the ghosts
    rec.fill(5000, 500)
    rec.update("filled", filled=500)
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"))
    assert report.figures("trade_through").matched_units == 500

    moved = Recording()
    moved.place()
    moved.add("order_amend", {"exchange_order_id": EID, "client_order_id": CID, "price_units": 4800, "size_units": 500})
    moved.update("open", price=4800)  # the venue moved it to 0.48
    moved.trade(4900, 500, "sell")  # through 0.50, not through 0.48: no fill
    report = calibrate(moved.write(tmp_path / "m.jsonl.gz"))
    assert all(m.ghost_fills == 0 for m in report.models)


def test_a_cancel_ends_the_ghost(rec: Recording, tmp_path: Path) -> None:
    rec.place()
    rec.sent(cid="mm:abc:1:yb:1", price=4800)
    rec.ack(cid="mm:abc:1:yb:1", eid="order-2")
    rec.add("order_cancel", {"exchange_order_id": EID, "client_order_id": CID, "reason": "not_desired"})
    rec.update("cancelled")
    rec.trade(4700, 900, "sell")  # through both prices: only the order still resting (0.48) can fill
    rec.fill(4800, 500, cid="mm:abc:1:yb:1", eid="order-2")
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"))
    for name in ("trade_through", "queue"):
        m = report.figures(name)
        assert (m.ghost_fills, m.ghost_units, m.matched_units) == (1, 500, 500), name


@pytest.mark.parametrize(("window_s", "ghost_fills"), [(5.0, 1), (1.0, 0)])
def test_a_filled_orders_ghost_rests_one_window_longer(
    rec: Recording, tmp_path: Path, window_s: float, ghost_fills: int
) -> None:
    """The venue filled us on a touch the tape models cannot see; a print through 2 s later fills their ghost,
    which still matches within a 5 s window (the ghost rests that long after the real fill), not within 1 s."""
    rec.delta("yes", 5000, 9000)
    rec.place()
    rec.trade(5000, 500, "sell")
    rec.fill(5000, 500)
    rec.update("filled", filled=500)
    rec.trade(4900, 500, "sell", after_s=2.0)
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"), models=["trade_through"], window_s=window_s)
    m = report.figures("trade_through")
    assert m.ghost_fills == ghost_fills
    assert m.matched_units == 500 * ghost_fills and m.match_rate == float(ghost_fills)


def test_a_print_from_before_our_order_rested_does_not_fill_it(rec: Recording, tmp_path: Path) -> None:
    rec.place()
    # recorded now, but printed at the venue 1 s ago: before we sent the order
    rec.add(
        "trade", {"trade_id": "late", "price_units": 4900, "size_units": 500, "taker_side": "sell", "venue_ts_us": T0}
    )
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"))
    assert all(m.ghost_fills == 0 for m in report.models)


@pytest.mark.parametrize(("printed_after_s", "fills"), [(0.05, 0), (0.15, 1)])
def test_a_print_before_the_venue_placed_our_order_does_not_fill_it(
    rec: Recording, tmp_path: Path, printed_after_s: float, fills: int
) -> None:
    """Sent at t, acked at t + 0.1 s; the venue says (in an update recorded later) the order rested from t + 0.1 s.
    A print through our price at t + 0.05 s, recorded after the ack, came too early; one at t + 0.15 s did not."""
    rec.sent()
    sent = rec.ts
    rec.ack()
    data = {"trade_id": "t", "price_units": 4900, "size_units": 500, "taker_side": "sell"}
    rec.add("trade", data | {"venue_ts_us": sent + round(printed_after_s * 1e6)}, after_s=0.5)
    rec.update("open", venue_ts=sent + 100_000)
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"), models=["trade_through"])
    assert report.figures("trade_through").ghost_fills == fills


def test_paper_fills_are_not_a_truth_to_compare_with(rec: Recording, tmp_path: Path) -> None:
    rec.place()
    rec.trade(4900, 800, "sell")
    rec.fill(5000, 500, execution="paper")
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"))
    assert not report.comparable and report.paper_fills == 1 and report.real_fills == 0
    assert "paper" in (report.reason or "")
    assert all(getattr(m, rate) is None for m in report.models for rate in ("match_rate", "recall", "precision"))
    assert report.figures("trade_through").ghost_fills == 1  # the ghosts still ran
    assert report.passes("queue") is None
    out = report.to_json()
    assert json.loads(json.dumps(out)) == out and out["comparable"] is False and out["reason"] == report.reason


def test_report_as_json_and_text(rec: Recording, tmp_path: Path) -> None:
    rec.place()
    rec.trade(4900, 800, "sell")
    rec.fill(5000, 500)
    report = calibrate(rec.write(tmp_path / "s.jsonl.gz"), window_s=2.5, seed=7)
    out = report.to_json()
    assert json.loads(json.dumps(out)) == out
    assert out["window_s"] == 2.5 and out["seed"] == 7 and out["real_units"] == 500 and out["comparable"] is True
    queue = next(m for m in out["models"] if m["model"] == "queue")
    assert queue["match_rate"] == 1.0 and queue["matched_units"] == 500
    text = report.describe()
    assert (
        "queue" in text and "100.0%" in text and "±2.5 s" in text and "queue meets" in text and "cross misses" in text
    )


def test_match_pairs_quantity_greedily_within_the_window() -> None:
    def f(order: str, s: float, qty: int, price: int = 5000) -> FillRecord:
        return FillRecord(order, T0 + round(s * 1e6), qty, price, False)

    real = [f("a", 0, 100), f("a", 10, 100), f("b", 0, 50)]
    ghost = [f("a", 1, 60), f("a", 2, 60, 4900), f("a", 16, 100), f("c", 0, 50)]
    m = match_fills("x", real, ghost, 5_000_000)
    # a@0 takes 60 + 40 of the ghosts at 1 s and 2 s; a@10 finds nothing within ±5 s (20 left at 2 s is too early,
    # 16 s too late); b has no ghost, c no real fill.
    assert (m.matched_units, m.same_price_units) == (100, 60)
    assert (m.real_fills, m.real_units, m.ghost_fills, m.ghost_units) == (3, 250, 4, 270)
    assert (m.real_fills_found, m.ghost_fills_found) == (1, 2)
    assert m.recall == 100 / 250 and m.precision == 100 / 270 and m.match_rate == 200 / 520
    assert (m.orders_with_fills, m.order_min_units, m.order_max_units) == (3, 200, 50 + 50 + 220)
    edge = match_fills("x", [f("a", 0, 100)], [f("a", 5, 100)], 5_000_000)  # the window is inclusive
    assert edge.matched_units == 100
    assert match_fills("x", [f("a", 0, 100)], [f("a", 5.000001, 100)], 5_000_000).matched_units == 0
    assert (m + edge).matched_units == 200 and (m + edge).model == "x"


def test_a_truncated_file_raises_with_file_and_line_unless_skip_bad(rec: Recording, tmp_path: Path) -> None:
    rec.place()
    rec.trade(4900, 800, "sell")
    rec.fill(5000, 500)
    rec.add("session_end", {"reason": "x"})
    raw = gzip.compress(b"".join(rec.lines))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(raw[: len(raw) - 12])  # the writer stopped mid-stream
    with pytest.raises(SessionFormatError) as exc:
        calibrate(path)
    assert exc.value.path == path and exc.value.line_number >= 1 and "truncated" in exc.value.reason
    report = calibrate(path, skip_bad=True)
    assert report.skipped_lines >= 1 and report.real_fills == 1


def test_a_book_that_does_not_rebuild_is_a_calibration_error(rec: Recording, tmp_path: Path) -> None:
    rec.place()
    rec.add(
        "book_delta", {"side": "yes", "price_units": 4500, "size_units": 0, "delta_units": -5000, "action": "remove"}
    )
    rec.trade(4900, 800, "sell")
    rec.fill(5000, 500)
    path = rec.write(tmp_path / "s.jsonl.gz")
    with pytest.raises(CalibrationError) as exc:
        calibrate(path)
    assert exc.value.line_number == 7 and "out of sync" in exc.value.reason
    report = calibrate(path, skip_bad=True)  # that record skipped and counted; the rest compared
    assert report.skipped_lines == 1 and report.figures("trade_through").match_rate == 1.0


def test_bad_arguments_are_refused(rec: Recording, tmp_path: Path) -> None:
    path = rec.write(tmp_path / "s.jsonl.gz")
    with pytest.raises(ValueError, match="models"):
        calibrate(path, models=["magic"])
    with pytest.raises(ValueError, match="window_s"):
        calibrate(path, window_s=-1)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError):
        calibrate(empty)
