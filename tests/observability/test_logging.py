"""Tests of mm.observability.logging: JSON output, redaction on every path, context, runtime level."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import structlog

from mm.observability.logging import (
    LEVELS,
    configure_logging,
    get_level,
    get_logger,
    reset_logging,
    set_level,
)
from mm.observability.redaction import REDACTED

PEM_BODY = "MIIEowIBAAKCAQEAsecretsecretsecret"
PEM = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("INFO", json=True, stream=out)
    try:
        yield out
    finally:
        structlog.contextvars.clear_contextvars()
        reset_logging()


Records = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def records(stream: io.StringIO) -> Records:
    """Parse everything written so far as JSON lines (fails if any line is not JSON)."""
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_utc_iso_timestamp_level_and_logger_name(records: Records) -> None:
    get_logger("mm.test", component="quoter").info("quoted", price=Decimal("0.56"), size=10)
    [rec] = records()
    assert rec["event"] == "quoted"
    assert rec["level"] == "info"
    assert rec["logger"] == "mm.test"
    assert rec["component"] == "quoter"
    assert rec["price"] == "0.56"  # exact decimal string, never a float
    assert rec["size"] == 10
    assert rec["timestamp"].endswith("Z")
    assert datetime.fromisoformat(rec["timestamp"]).utcoffset() is not None


def test_secrets_in_fields_are_redacted_and_references_kept(stream: io.StringIO, records: Records) -> None:
    get_logger().info(
        "connecting",
        api_key="abc123",
        api_key_env="KALSHI_KEY_ID",
        private_key_file="/etc/mm/kalshi.pem",
        headers={"Authorization": "Bearer zzz", "KALSHI-ACCESS-SIGNATURE": "sig+/==", "Accept": "json"},
    )
    raw = stream.getvalue()
    for secret in ("abc123", "zzz", "sig+/=="):
        assert secret not in raw
    [rec] = records()
    assert rec["api_key"] == REDACTED
    assert rec["api_key_env"] == "KALSHI_KEY_ID"
    assert rec["private_key_file"] == "/etc/mm/kalshi.pem"
    assert rec["headers"] == {
        "Authorization": REDACTED,
        "KALSHI-ACCESS-SIGNATURE": REDACTED,
        "Accept": "json",
    }


def test_secrets_in_messages_are_redacted(stream: io.StringIO, records: Records) -> None:
    log = get_logger()
    log.info(f"loaded signing key {PEM}")
    log.warning("retrying GET /portfolio?api_key=abc123 with Authorization: Bearer zzz")
    raw = stream.getvalue()
    assert PEM_BODY not in raw
    assert "abc123" not in raw
    assert "zzz" not in raw
    assert [r["event"] for r in records()] == [
        f"loaded signing key {REDACTED}",
        f"retrying GET /portfolio?api_key={REDACTED} with Authorization: {REDACTED}",
    ]


def test_secrets_in_exceptions_are_redacted(stream: io.StringIO, records: Records) -> None:
    log = get_logger()
    try:
        raise ValueError(f"signature rejected for api_key=abc123, key was {PEM}")
    except ValueError:
        log.exception("order failed")
    raw = stream.getvalue()
    assert PEM_BODY not in raw
    assert "abc123" not in raw
    [rec] = records()
    assert rec["level"] == "error"
    assert "Traceback" in rec["exception"]
    assert "ValueError" in rec["exception"]
    assert REDACTED in rec["exception"]


def test_unknown_objects_are_stringified_and_redacted(stream: io.StringIO, records: Records) -> None:
    class Conn:
        def __str__(self) -> str:
            return "Conn(password=hunter2)"

    get_logger().info("state", conn=Conn())
    assert "hunter2" not in stream.getvalue()
    assert records()[0]["conn"] == f"Conn(password={REDACTED})"


def test_correlation_id_from_contextvars(records: Records) -> None:
    log = get_logger()
    structlog.contextvars.bind_contextvars(correlation_id="req-42")
    log.info("inside")
    structlog.contextvars.clear_contextvars()
    log.info("outside")
    inside, outside = records()
    assert inside["correlation_id"] == "req-42"
    assert "correlation_id" not in outside


def test_set_level_applies_to_loggers_obtained_before(records: Records) -> None:
    plain = get_logger("early")
    bound = get_logger("early-bound").bind(market="KX")  # a concrete, already-assembled logger
    plain.debug("hidden-1")
    bound.debug("hidden-2")
    set_level("debug")
    assert get_level() == "DEBUG"
    plain.debug("shown-1")
    bound.debug("shown-2")
    set_level("WARNING")
    plain.info("hidden-3")
    bound.warning("shown-3")
    assert [r["event"] for r in records()] == ["shown-1", "shown-2", "shown-3"]


def test_invalid_level_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        set_level("verbose")
    with pytest.raises(ValueError, match="valid levels"):
        configure_logging("loud", json=True, stream=io.StringIO())
    assert set(LEVELS) >= {"DEBUG", "INFO", "WARNING", "ERROR"}  # NFR-401's levels


def test_stdlib_logging_goes_through_redaction(stream: io.StringIO, records: Records) -> None:
    foreign = logging.getLogger("websockets.client")
    foreign.debug("> KALSHI-ACCESS-KEY: hidden-because-debug")
    foreign.warning("> KALSHI-ACCESS-SIGNATURE: c2lnbmF0dXJl")
    structlog.contextvars.bind_contextvars(correlation_id="req-7")
    foreign.error("handshake failed for %s", "Bearer tok123")
    raw = stream.getvalue()
    assert "c2lnbmF0dXJl" not in raw
    assert "tok123" not in raw
    assert "hidden-because-debug" not in raw
    sig, failed = records()
    assert sig["event"] == f"> KALSHI-ACCESS-SIGNATURE: {REDACTED}"
    assert sig["logger"] == "websockets.client"
    assert sig["level"] == "warning"
    assert failed["correlation_id"] == "req-7"


def test_httpx_request_lines_only_at_debug(records: Records) -> None:
    """httpx logs each request at INFO: kept out at INFO (the audit trail has the order calls), shown at DEBUG,
    and its warnings always pass."""
    httpx_log = logging.getLogger("httpx")
    httpx_log.info("HTTP Request: GET http://127.0.0.1/a")
    httpx_log.warning("retrying")
    set_level("DEBUG")
    httpx_log.info("HTTP Request: GET http://127.0.0.1/b")
    set_level("INFO")
    httpx_log.info("HTTP Request: GET http://127.0.0.1/c")
    assert [r["event"] for r in records()] == ["retrying", "HTTP Request: GET http://127.0.0.1/b"]
    reset_logging()
    assert httpx_log.level == logging.NOTSET  # an embedding program gets httpx's own default back


def test_reconfigure_replaces_stream_and_stdlib_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    try:
        configure_logging("INFO", json=True, stream=first)
        configure_logging("INFO", json=True, stream=second)
        get_logger().info("hello")
        logging.getLogger("lib").warning("from stdlib")
        assert first.getvalue() == ""
        events = [json.loads(line)["event"] for line in second.getvalue().splitlines()]
        assert events == ["hello", "from stdlib"]
    finally:
        reset_logging()


def test_format_follows_tty_when_not_forced() -> None:
    plain, tty = io.StringIO(), FakeTTY()
    try:
        configure_logging("INFO", stream=plain)
        get_logger().info("machine", api_key="abc123")
        configure_logging("INFO", stream=tty)
        get_logger().info("human", api_key="abc123")
        configure_logging("INFO", json=False, stream=plain)
        get_logger().info("forced-console")
    finally:
        reset_logging()
    json_line, console_line = plain.getvalue().splitlines()
    assert json.loads(json_line)["event"] == "machine"
    assert "forced-console" in console_line
    assert not console_line.startswith("{")
    assert "human" in tty.getvalue()
    assert REDACTED in tty.getvalue()
    assert "abc123" not in tty.getvalue() + plain.getvalue()


def test_logger_created_before_configuration_uses_later_configuration() -> None:
    module_level = get_logger("mm.early")  # the usual `log = get_logger(__name__)` at import time
    out = io.StringIO()
    try:
        configure_logging("INFO", json=True, stream=out)
        module_level.info("after-configure", token="t0k3n")
    finally:
        reset_logging()
    rec = json.loads(out.getvalue())
    assert (rec["event"], rec["logger"], rec["token"]) == ("after-configure", "mm.early", REDACTED)
