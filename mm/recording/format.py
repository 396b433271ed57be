"""The session file format (FR-901): one JSON object per line, gzip-compressed, written by
:class:`~mm.recording.recorder.SessionRecorder` and read back by :class:`SessionReader`.

Every line is a record::

    {"seq": 12, "ts_us": 1786653000123456, "type": "book_delta", "market": "KXBTCD-26AUG1317-T94749.99",
     "data": {"side": "yes", "price_units": 4800, "size_units": 500, "delta_units": 500, "action": "add"}}

* ``seq`` counts the records of one file from 1, without gaps (the writer numbers them as it writes them,
  so a record the recorder had to drop never leaves a hole; a ``recording_gap`` record says so instead).
* ``ts_us`` is the node's clock (UTC microseconds) when the event was recorded — under the embedded simulator
  that is the simulated market clock, which is what a replay must inject.
* ``type`` is one of :data:`RECORD_TYPES`; ``data`` holds the type's fields (:data:`REQUIRED_FIELDS`).
* Values are exact: prices are ints of $0.0001 (``*_units`` next to a price), sizes ints of 1/100 contract,
  money ints of micro-dollars (``*_micros``) or decimal strings (``fee``); floats only for model values
  (volatility, reservation price, time to settlement in seconds).

A damaged file never produces a traceback: a line that is not a valid record, or a gzip stream that ends
early (a crash mid-write) raises :class:`SessionFormatError` naming the file and the line, after every complete
record before it was delivered; with ``skip_bad=True`` bad lines are skipped and counted instead.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import orjson

__all__ = [
    "ALWAYS_RECORDED",
    "FORMAT_VERSION",
    "RECORD_TYPES",
    "REQUIRED_FIELDS",
    "TOGGLES",
    "SessionFormatError",
    "SessionReader",
    "SessionRecord",
    "decode_line",
    "encode_record",
    "read_session",
]

FORMAT_VERSION: Final = "mm-session/1"

# type → (field, accepted JSON types) that every record of the type must carry. Extra fields are allowed
# (a newer writer may add some); a missing or mistyped required field is a format error.
_INT = (int,)
_STR = (str,)
_OPT_STR = (str, type(None))
_OPT_INT = (int, type(None))
_NUM = (int, float)
_DICT = (dict,)
_LIST = (list,)
_BOOL = (bool,)

REQUIRED_FIELDS: Final[Mapping[str, tuple[tuple[str, tuple[type, ...]], ...]]] = {
    "session_start": (
        ("format", _STR),
        ("session_id", _STR),
        ("market_ids", _LIST),
        ("config", _DICT),
        ("seeds", _DICT),
    ),
    "book_snapshot": (("yes_bids", _LIST), ("no_bids", _LIST)),
    "book_delta": (
        ("side", _STR),
        ("price_units", _INT),
        ("size_units", _INT),
        ("delta_units", _INT),
        ("action", _STR),
    ),
    "trade": (("trade_id", _STR), ("price_units", _INT), ("size_units", _INT), ("taker_side", _STR)),
    "volatility_update": (("sigma", _NUM),),
    "quote_generated": (("inputs", _DICT), ("strategy", _DICT), ("risk", _DICT)),
    "order_sent": (
        ("client_order_id", _STR),
        ("side", _STR),
        ("order_side", _STR),
        ("price_units", _INT),
        ("size_units", _INT),
    ),
    "order_ack": (("client_order_id", _STR), ("exchange_order_id", _OPT_STR), ("status", _STR)),
    "order_rejected": (("client_order_id", _STR), ("reason", _STR)),
    "order_unknown": (("client_order_id", _STR), ("reason", _STR)),
    "order_cancel": (("exchange_order_id", _STR),),
    "order_amend": (("exchange_order_id", _STR),),
    "order_update": (("client_order_id", _OPT_STR), ("exchange_order_id", _OPT_STR), ("status", _STR)),
    "fill": (
        ("fill_id", _STR),
        ("order_id", _STR),
        ("price_units", _INT),
        ("size_units", _INT),
        ("remaining_units", _OPT_INT),
        ("fee", _STR),
    ),
    "state_snapshot": (("accounts", _LIST),),
    # What a full replay needs beyond FR-901's list (docs/recording.md, "Replay"): where each Market cycle ran
    # and the venue's answer to each order call, plus the node-level changes to our orders and positions.
    "reconcile": (("resource", _STR), ("now_us", _INT)),
    "order_result": (("action", _STR), ("error", _OPT_STR)),
    "book_state": (("stale", _BOOL),),
    "node_cancel": (("execution", _STR), ("reason", _STR), ("orders", _LIST)),
    "orders_resync": (("execution", _STR),),
    "market_settled": (("execution", _STR), ("value_units", _INT)),
    "config_reload": (("resource", _STR), ("applied", _BOOL), ("digest_before", _STR), ("digest_after", _STR)),
    "component_swap": (("resource", _STR), ("slot", _STR), ("from", _STR), ("to", _STR)),
    "recording_gap": (("dropped", _INT),),
    "session_end": (("reason", _STR),),
}
RECORD_TYPES: Final[frozenset[str]] = frozenset(REQUIRED_FIELDS)

TOGGLES: Final[Mapping[str, str]] = {
    "book_snapshot": "book_snapshots",
    "book_delta": "book_deltas",
    "trade": "trades",
    "volatility_update": "quotes",
    "quote_generated": "quotes",
    "order_sent": "orders",
    "order_ack": "orders",
    "order_rejected": "orders",
    "order_unknown": "orders",
    "order_cancel": "orders",
    "order_amend": "orders",
    "order_update": "orders",
    "fill": "fills",
    "state_snapshot": "state",
    "order_result": "orders",
    "book_state": "book_snapshots",
    "node_cancel": "orders",
    "orders_resync": "orders",
    "market_settled": "fills",
}
"""Record type → the ``recording.events`` flag (FR-904) that turns it off."""
ALWAYS_RECORDED: Final[frozenset[str]] = RECORD_TYPES - frozenset(TOGGLES)
"""session_start/end, reconcile cycles, config reloads, component swaps and gaps: a file is not replayable without
them."""

_FIELD_TYPES: Final[Mapping[str, tuple[type, ...]]] = {
    "seq": _INT,
    "ts_us": _INT,
    "type": _STR,
    "market": _STR,
    "data": _DICT,
}
_CHUNK: Final = 1 << 16


class SessionFormatError(ValueError):
    """A session file line that is not a valid record (or a stream that ends mid-line), with where it is."""

    def __init__(self, path: Path | str, line_number: int, reason: str) -> None:
        super().__init__(f"{path}:{line_number}: {reason}")
        self.path = Path(path)
        self.line_number = line_number
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One decoded line. ``data`` holds exactly what was written (ints, strings, floats for model values)."""

    seq: int
    ts_us: int
    type: str
    market: str
    data: Mapping[str, Any] = field(default_factory=dict)


def encode_record(seq: int, ts_us: int, type_: str, market: str, data: Mapping[str, Any]) -> bytes:
    """One record as a JSON line (with its ``\\n``). Floats are written shortest-round-trip by orjson, so they
    read back bit-identical; a non-finite float would be written as ``null`` (callers pass None instead)."""
    return orjson.dumps(
        {"seq": seq, "ts_us": ts_us, "type": type_, "market": market, "data": data},
        option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS,
    )


def decode_line(line: bytes | str) -> SessionRecord:
    """Parse and validate one line; raises ``ValueError`` with the reason (no file or line: the reader adds them)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"a record must be a JSON object, not {type(obj).__name__}")
    for name, types in _FIELD_TYPES.items():
        value = obj.get(name)
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError(f"field {name!r} missing or not a {types[0].__name__} (got {value!r:.60})")
    type_ = obj["type"]
    required = REQUIRED_FIELDS.get(type_)
    if required is None:
        raise ValueError(f"unknown record type {type_!r}")
    data = obj["data"]
    for name, types in required:
        if name not in data:
            raise ValueError(f"{type_} record without {name!r}")
        value = data[name]
        # bool is an int subclass: True must not pass for a price
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ValueError(f"{type_}.{name} has the wrong type: {value!r:.60}")
    return SessionRecord(obj["seq"], obj["ts_us"], type_, obj["market"], data)


class SessionReader:
    """Iterate the records of a session file (``.jsonl.gz`` or plain ``.jsonl``), in file order.

    Strict by default: the first bad line raises :class:`SessionFormatError` (file, line number, reason) after
    every record before it was yielded. ``skip_bad=True`` skips bad lines instead and lists them in
    :attr:`bad_lines`; a stream that cannot be read on (truncated or corrupt gzip) ends the iteration and is
    listed too. ``seq`` must go up by one from line to line (a skipped line resets the expectation).
    """

    def __init__(self, path: Path | str, *, skip_bad: bool = False) -> None:
        self.path = Path(path)
        self.skip_bad = skip_bad
        self.bad_lines: list[tuple[int, str]] = []
        """(line number, reason) of every line skipped (``skip_bad``)."""
        self.records_read = 0
        self.lines_read = 0
        self._file: IO[bytes] | None = None

    @property
    def skipped(self) -> int:
        return len(self.bad_lines)

    def __enter__(self) -> SessionReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __iter__(self) -> Iterator[SessionRecord]:
        expected_seq: int | None = None
        for number, line, stream_error in self._lines():
            self.lines_read = number
            if stream_error is not None:
                self._bad(number, stream_error)
                return
            if not line.strip():
                self._bad(number, "empty line")
                expected_seq = None
                continue
            try:
                record = decode_line(line)
                if expected_seq is not None and record.seq != expected_seq:
                    raise ValueError(f"seq {record.seq} where {expected_seq} was expected (records missing)")
            except ValueError as exc:
                self._bad(number, str(exc))
                expected_seq = None
                continue
            expected_seq = record.seq + 1
            self.records_read += 1
            yield record

    def _bad(self, number: int, reason: str) -> None:
        if not self.skip_bad:
            raise SessionFormatError(self.path, number, reason)
        self.bad_lines.append((number, reason))

    def _lines(self) -> Iterator[tuple[int, bytes, str | None]]:
        """(line number, line without its newline, None) per complete line; then, if the stream cannot be
        read to its end, one (next line number, b"", reason). Decompresses by hand (not ``gzip.open``) so
        that a truncated or corrupt stream still yields every complete line before the damage."""
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close() / __exit__
        except OSError as exc:
            yield 1, b"", f"cannot open: {exc.strerror or exc}"
            return
        raw = self._file
        head = raw.read(2)
        raw.seek(0)
        compressed = head == b"\x1f\x8b"
        if not head and self.path.suffix == ".gz":
            yield 1, b"", "empty file: not even a gzip header (the writer stopped before its first flush)"
            return
        decompressor = zlib.decompressobj(wbits=47) if compressed else None  # 47: gzip, with header check
        pending = b""
        number = 0
        while True:
            chunk = raw.read(_CHUNK)
            if not chunk:
                break
            if decompressor is not None:
                try:
                    data = decompressor.decompress(chunk)
                    # A file may hold several gzip members (appended sessions): start the next one.
                    while decompressor.eof and decompressor.unused_data:
                        rest = decompressor.unused_data
                        decompressor = zlib.decompressobj(wbits=47)
                        data += decompressor.decompress(rest)
                except zlib.error as exc:
                    yield number + 1, b"", f"corrupt gzip data after line {number}: {exc}"
                    return
            else:
                data = chunk
            pending += data
            lines = pending.split(b"\n")
            pending = lines.pop()
            for line in lines:
                number += 1
                yield number, line, None
        truncated = decompressor is not None and not decompressor.eof and (number > 0 or pending)
        if pending:
            why = "truncated: the last line has no end" + (
                " (the gzip stream ends before its end marker: the writer stopped mid-write)" if truncated else ""
            )
            yield number + 1, b"", why
        elif truncated:
            yield (
                number + 1,
                b"",
                "truncated: the gzip stream ends before its end marker (the writer stopped mid-write)",
            )
        elif decompressor is not None and number == 0 and not decompressor.eof:
            yield 1, b"", "empty or unreadable gzip stream"


def read_session(path: Path | str, *, skip_bad: bool = False) -> list[SessionRecord]:
    """Every record of a session file (see :class:`SessionReader`)."""
    with SessionReader(path, skip_bad=skip_bad) as reader:
        return list(reader)
