"""Loading a session into a tape: events, derived mids, our own live orders taken out of the book, bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mm.backtest.own_orders import OwnOrderBook, book_level
from mm.backtest.tape import DELTA, SNAPSHOT, TRADE, TapeError, load_tape
from mm.domain.book import OrderBook
from mm.domain.orders import OrderRequest
from mm.domain.price import Price, Quantity
from mm.domain.sides import OrderSide, Side
from mm.recording.format import SessionFormatError, SessionRecord, read_session
from tests.backtest.sessions import SessionWriter, quiet_book

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = next((ROOT / "examples" / "sessions").glob("*.jsonl.gz"))


def test_events_mirror_the_market_data_records(tmp_path: Path) -> None:
    writer = quiet_book(SessionWriter()).delta(1, "yes", 4600, 500, 500).trade(2, 5500, 300, "buy")
    tape = load_tape(writer.write(tmp_path / "s.jsonl.gz"))
    assert tape.kinds == [SNAPSHOT, DELTA, TRADE]
    assert (tape.arg_a[1], tape.arg_b[1], tape.arg_c[1]) == (0, 4600, 500)
    trade = tape.trades[tape.arg_a[2]]
    assert (trade.price.units, trade.quantity.units, trade.taker_side.value) == (5500, 300, "buy")
    # mid after each event, doubled: 0.50 → (0.46 + 0.55) / 2 → unchanged by the trade
    assert tape.mid_x2 == [10_000, 10_100, 10_100]
    assert tape.top == [True, True, False]


def test_the_example_session_tape_replays_to_its_own_mids_and_never_exceeds_the_recorded_book() -> None:
    tape = load_tape(EXAMPLE)
    records = [r for r in read_session(EXAMPLE) if r.type in ("book_snapshot", "book_delta")]
    book, full = OrderBook(tape.grid), OrderBook(tape.grid)
    applied = 0
    n = tape.events
    for i in range(n):
        kind, ts, a = tape.kinds[i], tape.ts_us[i], tape.arg_a[i]
        if kind == SNAPSHOT:
            _, yes, no = tape.snapshots[a]
            book.apply_snapshot(yes, no, ts)
        elif kind == DELTA:
            book.apply_delta(Side.YES if a == 0 else Side.NO, tape.arg_b[i], tape.arg_c[i], ts)
        mid = book.mid()
        assert tape.mid_x2[i] == (-1 if mid is None else int(mid * 20_000))
        if i + 1 < n and tape.ts_us[i + 1] == ts:
            continue  # compare with the recorded book once every record of this instant is in
        while applied < len(records) and records[applied].ts_us <= ts:
            r = records[applied]
            if r.type == "book_snapshot":
                full.apply_snapshot(r.data["yes_bids"], r.data["no_bids"], r.ts_us)
            else:
                side = Side.YES if r.data["side"] == "yes" else Side.NO
                full.apply_delta(side, r.data["price_units"], r.data["delta_units"], r.ts_us)
            applied += 1
        for side in (Side.YES, Side.NO):
            recorded_sizes = dict(full.depth(side, 100))
            assert all(size <= recorded_sizes.get(price, 0) for price, size in book.depth(side, 100)), (i, side)
    # Recorded trading live: our orders were in the book, and the tape took them out.
    assert tape.recorded.orders_sent > 0 and tape.own_adjustments > 0


def sent(writer: SessionWriter, at_s: float, price: int = 4600, size: int = 2000) -> SessionWriter:
    """The node sends a live YES bid (client order id c1)."""
    data = {"client_order_id": "c1", "side": "yes", "order_side": "buy", "price_units": price, "size_units": size}
    return writer.add(at_s, "order_sent", data)


def acked(writer: SessionWriter, at_s: float, size: int = 2000) -> SessionWriter:
    data = {"client_order_id": "c1", "exchange_order_id": "e1", "status": "open", "remaining_units": size}
    return writer.add(at_s, "order_ack", data)


def updated(writer: SessionWriter, at_s: float, status: str, price: int, filled: int = 0) -> SessionWriter:
    """The venue's order_update for c1 (20 contracts in all)."""
    data = {
        "client_order_id": "c1",
        "exchange_order_id": "e1",
        "status": status,
        "price_units": price,
        "size_units": 2000,
        "filled_units": filled,
        "remaining_units": 0 if status in ("cancelled", "filled") else 2000 - filled,
    }
    return writer.add(at_s, "order_update", data)


def live_order_session() -> SessionWriter:
    """Our live YES bid of 20 contracts at 0.46, inside the quiet book's spread: acked, then shown by the book."""
    writer = quiet_book(SessionWriter(execution="live"))
    acked(sent(writer, 1), 1.1)
    return writer.delta(1.2, "yes", 4600, 2000, 2000)


def test_our_live_orders_are_taken_out_of_the_book(tmp_path: Path) -> None:
    writer = live_order_session()
    # A resync while it rests: the snapshot holds our 20 contracts at 0.46 as well.
    writer.snapshot(2, [(4600, 2000), (4500, 2000), (4400, 3000)], [(4500, 2000), (4400, 3000)])
    tape = load_tape(writer.write(tmp_path / "s.jsonl.gz"))
    # The recorded best YES bid is ours (0.46: mid 0.505); the tape's stays at 0.45 (mid 0.50) throughout.
    assert tape.kinds == [SNAPSHOT, SNAPSHOT] and tape.mid_x2 == [10_000, 10_000]
    assert tape.snapshots[1][1] == ((4400, 3000), (4500, 2000))
    assert tape.own_adjustments == 2  # the delta that was ours, the snapshot that held ours


def test_a_fill_and_a_cancel_give_the_level_back(tmp_path: Path) -> None:
    writer = live_order_session()
    # 5 of ours fill (the venue takes them off its book), then the rest is cancelled — the book shows the cancel
    # before the venue's order update — and someone else bids there.
    fill = {"fill_id": "f1", "order_id": "e1", "price_units": 4600, "size_units": 500, "remaining_units": 2000}
    writer.add(2, "fill", {**fill, "fee": "0"})
    writer.delta(2.1, "yes", 4600, -500, 1500)
    writer.add(3, "order_cancel", {"exchange_order_id": "e1", "client_order_id": "c1"})
    writer.delta(3.05, "yes", 4600, -1500, 0)
    updated(writer, 3.1, "cancelled", 4600, filled=500)
    writer.delta(4, "yes", 4600, 700, 700)
    tape = load_tape(writer.write(tmp_path / "s.jsonl.gz"))
    # While ours rested the tape never showed it; someone else's 7 contracts at 0.46 are the best bid again.
    assert tape.kinds == [SNAPSHOT, DELTA] and (tape.arg_b[1], tape.arg_c[1]) == (4600, 700)
    assert tape.mid_x2 == [10_000, 10_100]
    assert tape.own_adjustments == 3


def test_our_change_shown_by_the_book_before_the_venues_order_update_is_ours(tmp_path: Path) -> None:
    """The simulator's book shows our add or move 0.1-4 s (recorded time) before the venue's order_ack /
    order_update: the claim made at order_sent / order_amend already recognises the change as ours."""
    writer = quiet_book(SessionWriter(execution="live"))
    sent(writer, 1)
    writer.delta(1.05, "yes", 4600, 2000, 2000)  # our new bid, before the ack
    acked(writer, 1.1)
    amend = {"exchange_order_id": "e1", "client_order_id": "c1", "price_units": 4700, "size_units": 2000}
    writer.add(2, "order_amend", amend)
    writer.delta(2.05, "yes", 4600, -2000, 0)  # our move to 0.47, before the venue's update
    writer.delta(2.06, "yes", 4700, 2000, 2000)
    updated(writer, 2.5, "open", 4700)
    writer.delta(3, "yes", 4700, 300, 2300)  # then someone joins behind us
    tape = load_tape(writer.write(tmp_path / "s.jsonl.gz"))
    assert tape.kinds == [SNAPSHOT, DELTA] and (tape.arg_b[1], tape.arg_c[1]) == (4700, 300)
    assert tape.mid_x2 == [10_000, 10_200]  # only the stranger's 3 contracts at 0.47 show
    assert tape.own_adjustments == 3


def test_a_rejected_order_claims_nothing(tmp_path: Path) -> None:
    writer = quiet_book(SessionWriter(execution="live"))
    sent(writer, 1).add(1.1, "order_rejected", {"client_order_id": "c1", "reason": "post-only cross"})
    writer.delta(2, "yes", 4600, 2000, 2000)  # the very size we had sent, but someone else's: we never rested
    tape = load_tape(writer.write(tmp_path / "s.jsonl.gz"))
    assert tape.own_adjustments == 0 and tape.mid_x2 == [10_000, 10_100]


def test_paper_sessions_are_left_as_recorded(tmp_path: Path) -> None:
    writer = quiet_book(SessionWriter(execution="paper"))
    acked(sent(writer, 1), 1.1)
    writer.delta(1.2, "yes", 4600, 2000, 2000)  # not our paper order (it never reached the venue): someone's
    tape = load_tape(writer.write(tmp_path / "s.jsonl.gz"))
    assert tape.own_adjustments == 0 and tape.mid_x2 == [10_000, 10_100]


def record(seq: int, type_: str, data: dict[str, object]) -> SessionRecord:
    return SessionRecord(seq, seq, type_, "M", data)


def test_orders_claim_their_book_level_from_the_nodes_first_action() -> None:
    kinds = [("yes", "buy", 4500), ("yes", "sell", 5500), ("no", "buy", 4500), ("no", "sell", 5500)]
    requests = [OrderRequest("M", Side(s), OrderSide(o), Price(p), Quantity(100), "c") for s, o, p in kinds]
    assert [book_level(r) for r in requests] == [(Side.YES, 4500), (Side.NO, 4500), (Side.NO, 4500), (Side.YES, 4500)]
    own = OwnOrderBook("M")
    sent_data = {"client_order_id": "c", "side": "no", "order_side": "sell", "price_units": 5500, "size_units": 300}
    change = own.on_record(record(1, "order_sent", sent_data))
    assert change is not None and own.claimed((Side.YES, 4500)) == 300  # selling NO at 0.55 = a YES bid at 0.45
    change = own.on_record(record(2, "order_ack", {"client_order_id": "c", "exchange_order_id": "e", "status": "open"}))
    assert change is not None and change.rests and change.placed
    update = {"client_order_id": "c", "exchange_order_id": "e", "status": "open", "price_units": 5600}
    change = own.on_record(record(3, "order_update", {**update, "size_units": 300, "filled_units": 100}))
    assert change is not None and change.rests and not change.placed and change.order.remaining == 200
    assert (own.claimed((Side.YES, 4500)), own.claimed((Side.YES, 4400))) == (0, 200)
    # The fill the update already counted takes nothing more; the next one fills the rest and ends the order.
    fill = {"fill_id": "f", "order_id": "e", "price_units": 5600, "size_units": 100, "fee": "0"}
    change = own.on_record(record(4, "fill", fill))
    assert change is not None and change.end is None and own.claimed((Side.YES, 4400)) == 200
    change = own.on_record(record(5, "fill", {**fill, "size_units": 200}))
    assert change is not None and change.end == "filled" and change.fill_units == 200
    assert own.claimed((Side.YES, 4400)) == 0
    assert own.on_record(record(6, "fill", {**fill, "order_id": "unknown"})) is None


def test_a_corrupt_line_names_the_file_and_line_or_is_skipped(tmp_path: Path) -> None:
    writer = quiet_book(SessionWriter()).delta(1, "yes", 4600, 500, 500)
    writer.lines.insert(2, b'{"seq": 3, "this is not": json\n')
    path = writer.write(tmp_path / "s.jsonl.gz")
    with pytest.raises(SessionFormatError) as caught:
        load_tape(path)
    assert caught.value.line_number == 3
    tape = load_tape(path, skip_bad=True)
    assert [line for line, _ in tape.bad_lines] == [3]


def test_a_truncated_file_is_reported_by_line(tmp_path: Path) -> None:
    writer = quiet_book(SessionWriter()).delta(1, "yes", 4600, 500, 500)
    whole = gzip.compress(b"".join(writer.lines))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) - 12])
    with pytest.raises(SessionFormatError, match="truncated"):
        load_tape(path)


def test_sessions_that_cannot_be_backtested(tmp_path: Path) -> None:
    no_data = SessionWriter().write(tmp_path / "empty.jsonl.gz")
    with pytest.raises(TapeError, match="no market data"):
        load_tape(no_data)
    writer = quiet_book(SessionWriter()).delta(1, "yes", 4500, -3000, 0)
    with pytest.raises(TapeError, match=r"s\.jsonl\.gz:3: the book_delta"):
        load_tape(writer.write(tmp_path / "s.jsonl.gz"))
    headless = SessionWriter()
    headless.lines.pop(0)
    quiet_book(headless)
    headless.lines[0] = headless.lines[0].replace(b'"seq":2', b'"seq":1')
    with pytest.raises(TapeError, match="not the session_start"):
        load_tape(headless.write(tmp_path / "h.jsonl.gz"))
