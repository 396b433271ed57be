"""Session recording (FR-900): the node's market data, decisions and orders as replayable JSON Lines files.

:mod:`mm.recording.format` defines the records and reads files back (:class:`SessionReader`);
:mod:`mm.recording.recorder` writes them without blocking the trading loop (:class:`SessionRecorder`).
See docs/recording.md.
"""

from mm.recording.format import (
    FORMAT_VERSION,
    RECORD_TYPES,
    SessionFormatError,
    SessionReader,
    SessionRecord,
    decode_line,
    encode_record,
    read_session,
)
from mm.recording.recorder import SessionRecorder, sanitise_market, session_file_name

__all__ = [
    "FORMAT_VERSION",
    "RECORD_TYPES",
    "SessionFormatError",
    "SessionReader",
    "SessionRecord",
    "SessionRecorder",
    "decode_line",
    "encode_record",
    "read_session",
    "sanitise_market",
    "session_file_name",
]
