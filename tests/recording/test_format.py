"""The session file format: every record type round-trips with exact values; damaged files give a clear error
(file and line) after every complete record, or are skipped and counted with ``skip_bad``."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from mm.recording.format import (
    RECORD_TYPES,
    SessionFormatError,
    SessionReader,
    decode_line,
    encode_record,
    read_session,
)

MARKET = "KXBTCD-26AUG1317-T94749.99"
T0 = 1_786_653_000_123_456

# One example of every record type, with the values a replay needs exactly (ints of units, decimal strings,
# floats only for model values, including awkward ones that must read back bit-identical).
EXAMPLES: dict[str, dict[str, Any]] = {
    "session_start": {
        "format": "mm-session/1",
        "session_id": "abc",
        "market_ids": [MARKET],
        "config": {"markets": [{"name": "m1", "strategy": {"max_inventory": "50", "min_spread": "0.01"}}]},
        "seeds": {"simulator": {"sim": 7}, "pythonhashseed": None},
    },
    "book_snapshot": {"yes_bids": [[4800, 500], [4700, 1250]], "no_bids": [[4800, 333]], "grid": [[0, 10000, 100]]},
    "book_delta": {"side": "no", "price_units": 4700, "size_units": 0, "delta_units": -1250, "action": "remove"},
    "trade": {"trade_id": "t-1", "price_units": 5100, "size_units": 101, "taker_side": "buy", "venue_ts_us": T0},
    "volatility_update": {"sigma": 0.1 + 0.2, "estimator": "EwmaVolatility"},
    "quote_generated": {
        "inputs": {"mid": "0.50005", "inventory_units": -150, "time_to_settlement_s": 1799.999999, "volatility": 1e-4},
        "strategy": {"quotes": {"yes_bid": [4800, 500], "yes_ask": [5200, 500], "no_bid": None, "no_ask": None}},
        "risk": {"state": "active", "quotes": None, "rules": [["max_position", "BLOCK", "too long"]]},
    },
    "order_sent": {
        "client_order_id": "mm:5f0c1e9a27b4:3:yb:0",
        "side": "yes",
        "order_side": "buy",
        "price_units": 4800,
        "size_units": 500,
    },
    "order_ack": {"client_order_id": "mm:x:1:yb:0", "exchange_order_id": "ord-1", "status": "open"},
    "order_rejected": {"client_order_id": "mm:x:1:yb:1", "reason": "insufficient balance"},
    "order_unknown": {"client_order_id": "mm:x:1:yb:2", "reason": "timed out"},
    "order_cancel": {"exchange_order_id": "ord-1", "reason": "price_moved"},
    "order_amend": {"exchange_order_id": "ord-1", "price_units": 4700, "size_units": 500},
    "order_update": {"client_order_id": "mm:x:1:yb:0", "exchange_order_id": "ord-1", "status": "partially_filled"},
    "fill": {
        "fill_id": "f-1",
        "order_id": "ord-1",
        "price_units": 4800,
        "size_units": 250,
        "remaining_units": 250,
        "fee": "0.0175",
    },
    "state_snapshot": {"accounts": [{"position_units": 250, "cash_micros": 9_999_988_000_000}]},
    "config_reload": {"resource": "Market/m1", "applied": True, "digest_before": "a", "digest_after": "b"},
    "component_swap": {"resource": "Market/m1", "slot": "spread", "from": "fixed", "to": "volatility_scaled"},
    "recording_gap": {"dropped": 12},
    "reconcile": {"resource": "m1", "generation": 3, "now_us": T0, "kill_switch": [False, False]},
    "order_result": {"action": "cancel", "exchange_order_id": "ord-1", "error": None, "raised": False},
    "book_state": {"stale": True, "reason": "seq gap"},
    "node_cancel": {"execution": "live", "reason": "shutdown", "orders": [["ord-1", None]]},
    "orders_resync": {"execution": "live", "open_orders": [], "adopted": [], "dropped": ["ord-1"]},
    "market_settled": {"execution": "paper", "value_units": 10000, "venue_ts_us": T0},
    "session_end": {"reason": "node stopped (drain)", "state": {"accounts": []}},
}


def write_gz(path: Path, lines: list[bytes]) -> None:
    with gzip.open(path, "wb") as f:
        f.write(b"".join(lines))


def good_lines(n: int) -> list[bytes]:
    return [encode_record(i, T0 + i, "trade", MARKET, EXAMPLES["trade"]) for i in range(1, n + 1)]


def test_the_examples_cover_every_record_type() -> None:
    assert set(EXAMPLES) == RECORD_TYPES


def test_every_record_type_round_trips_exactly(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl.gz"
    lines = [encode_record(i, T0 + i, t, MARKET, data) for i, (t, data) in enumerate(EXAMPLES.items(), 1)]
    write_gz(path, lines)
    records = read_session(path)
    assert [r.type for r in records] == list(EXAMPLES)
    for i, (record, (type_, data)) in enumerate(zip(records, EXAMPLES.items(), strict=True), 1):
        assert (record.seq, record.ts_us, record.type, record.market) == (i, T0 + i, type_, MARKET)
        # tuples are written as arrays: compare through the same JSON normalisation, floats bit for bit
        assert record.data == orjson.loads(orjson.dumps(data))
    assert records[4].data["sigma"] == 0.1 + 0.2  # shortest round-trip repr: not 0.3
    assert records[5].data["inputs"]["mid"] == "0.50005"


def test_plain_jsonl_reads_too(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"".join(good_lines(3)))
    assert [r.seq for r in read_session(path)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"seq": 3, "ts_us": 1, "type": "trade"', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"seq": 3, "ts_us": 1, "type": "nope", "market": "m", "data": {}}', "unknown record type 'nope'"),
        (b'{"seq": 3, "ts_us": "1", "type": "trade", "market": "m", "data": {}}', "field 'ts_us'"),
        (b'{"seq": 3, "ts_us": 1, "type": "fill", "market": "m", "data": {"fill_id": "f"}}', "without 'order_id'"),
        (
            b'{"seq": 3, "ts_us": 1, "type": "book_delta", "market": "m", "data": {"side": "yes", "price_units": 0.48,'
            b' "size_units": 1, "delta_units": 1, "action": "add"}}',
            "book_delta.price_units has the wrong type",
        ),
        (b'{"seq": 7, "ts_us": 1, "type": "recording_gap", "market": "m", "data": {"dropped": 1}}', "seq 7 where 3"),
    ],
)
def test_a_bad_line_names_the_file_and_line_after_the_good_ones(tmp_path: Path, bad: bytes, reason: str) -> None:
    path = tmp_path / "s.jsonl.gz"
    write_gz(path, [*good_lines(2), bad + b"\n", *good_lines(1)])
    seen = []
    with pytest.raises(SessionFormatError) as info:
        for record in SessionReader(path):
            seen.append(record.seq)
    assert seen == [1, 2]
    error = info.value
    assert (error.path, error.line_number) == (path, 3)
    assert reason in error.reason
    assert str(error).startswith(f"{path}:3: ")


def test_skip_bad_skips_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl.gz"
    lines = good_lines(5)
    write_gz(path, [lines[0], b"garbage\n", lines[1], b"\n", lines[3], lines[4]])
    with SessionReader(path, skip_bad=True) as reader:
        seqs = [r.seq for r in reader]
    # after a skipped line the seq expectation restarts: 2 then 4 are both accepted, nothing silently lost
    # beyond what is listed
    assert seqs == [1, 2, 4, 5]
    assert reader.skipped == 2
    assert [n for n, _ in reader.bad_lines] == [2, 4]
    assert "not valid JSON" in reader.bad_lines[0][1]


def sync_flushed_gzip(lines: list[bytes]) -> bytes:
    """What the recorder leaves behind when it crashes after a flush: a gzip stream without its end."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(b"".join(lines)) + compressor.flush(zlib.Z_SYNC_FLUSH)


def test_a_truncated_gzip_stream_reads_every_complete_line_then_says_so(tmp_path: Path) -> None:
    path = tmp_path / "crashed.jsonl.gz"
    path.write_bytes(sync_flushed_gzip(good_lines(4)))
    seen = []
    with pytest.raises(SessionFormatError) as info:
        for record in SessionReader(path):
            seen.append(record.seq)
    assert seen == [1, 2, 3, 4]
    assert info.value.line_number == 5
    assert "truncated" in info.value.reason and "end marker" in info.value.reason


def test_a_gzip_stream_cut_mid_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(b"".join(good_lines(6)))
    # cut a complete file somewhere inside the last line's compressed bytes
    path.write_bytes(whole[: len(whole) - 12])
    with SessionReader(path, skip_bad=True) as reader:
        seqs = [r.seq for r in reader]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 1
    assert reader.skipped == 1
    number, reason = reader.bad_lines[0]
    assert number == len(seqs) + 1 and "truncated" in reason


def test_corrupt_gzip_data_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.jsonl.gz"
    whole = bytearray(gzip.compress(b"".join(good_lines(50))))
    whole[len(whole) // 2] ^= 0xFF
    whole[len(whole) // 2 + 1] ^= 0xFF
    path.write_bytes(bytes(whole))
    with pytest.raises(SessionFormatError) as info:
        list(SessionReader(path))
    assert info.value.path == path
    assert info.value.line_number >= 1


def test_an_empty_gz_file_and_a_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl.gz"
    empty.write_bytes(b"")
    with pytest.raises(SessionFormatError, match="empty file"):
        read_session(empty)
    with pytest.raises(SessionFormatError, match="cannot open"):
        read_session(tmp_path / "missing.jsonl.gz")


def test_decode_line_rejects_a_bool_for_an_int() -> None:
    line = encode_record(1, T0, "recording_gap", MARKET, {"dropped": True})
    with pytest.raises(ValueError, match="wrong type"):
        decode_line(line)
