"""Structured logging (NFR-401) with secret redaction on every line (NFR-301).

Call :func:`configure_logging` once at start-up, then obtain loggers with :func:`get_logger`.

* Output is JSON lines (one object per line) when ``json=True``, or when ``json`` is ``None`` and the
  stream is not a TTY — i.e. in production, where logs are shipped and parsed. A terminal gets
  structlog's human-readable console renderer.
* Correlation ids: anything bound with ``structlog.contextvars.bind_contextvars(correlation_id=...)``
  is merged into every line logged in that context (task or thread).
* Redaction: :func:`redaction_processor` runs as the last step before rendering, after exceptions and
  stacks have been formatted to text, so a secret in a traceback or exception message is caught too.
  The JSON serializer's fallback for unknown objects also redacts their ``str()``.
* Level: :func:`set_level` changes the threshold at runtime (FR-1001 hot-reload). The threshold lives in
  this module and is consulted by a processor on every call, so loggers obtained or bound *before*
  the change obey it too (structlog's own filtering wrapper bakes the level into the logger class).
* Third-party libraries using stdlib ``logging`` (HTTP/WebSocket clients log request headers at DEBUG)
  are routed through the same redaction and renderer via the root logger.

Timestamps on log lines are wall-clock *metadata* read by structlog (ISO-8601, UTC). They are not
trading time: decisions and recorded events take their time from :mod:`mm.clock`.
"""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from mm.observability.redaction import redact, redact_text

__all__ = [
    "LEVELS",
    "configure_logging",
    "get_level",
    "get_logger",
    "is_enabled",
    "redaction_processor",
    "reset_logging",
    "set_level",
]

LEVELS: Final = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
"""Valid level names (case-insensitive) and their numeric severity (same numbers as stdlib)."""

# structlog method name -> severity. ``exception`` logs at ERROR; ``msg`` is an alias of ``info``.
_METHOD_LEVELS: Final = {
    "debug": 10, "info": 20, "msg": 20, "warning": 30, "warn": 30,
    "error": 40, "exception": 40, "critical": 50, "fatal": 50,
}  # fmt: skip

_level: int = LEVELS["INFO"]
_CHATTY: Final = ("httpx",)
"""Libraries that log every HTTP request at INFO: WARNING and up unless the level is DEBUG (the audit trail already
holds every order call and answer; at INFO they were a third of the quickstart's log lines)."""
_stdlib_handler: logging.Handler | None = None
_saved_root_level: int | None = None  # the stdlib root level before we took it over


def _parse_level(level: str) -> int:
    try:
        return LEVELS[level.upper()]
    except (KeyError, AttributeError):
        raise ValueError(f"invalid log level {level!r}; valid levels: {', '.join(LEVELS)}") from None


def set_level(level: str) -> None:
    """Set the minimum level (DEBUG, INFO, WARNING, ERROR, CRITICAL; any case), effective immediately
    for every logger, including ones obtained before the call. Invalid names raise ``ValueError``."""
    global _level  # noqa: PLW0603 -- the single process-wide threshold is the point
    _level = _parse_level(level)
    logging.getLogger().setLevel(_level)  # third-party loggers follow the same threshold
    for name in _CHATTY:
        logging.getLogger(name).setLevel(_level if _level <= LEVELS["DEBUG"] else max(_level, LEVELS["WARNING"]))


def is_enabled(level: str) -> bool:
    """Whether lines at ``level`` are emitted now (cheap: for skipping work on hot paths)."""
    return LEVELS[level] >= _level


def get_level() -> str:
    """The current minimum level name."""
    return next(name for name, value in LEVELS.items() if value == _level)


def _filter_by_level(_logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    # First in the chain so a suppressed debug line costs almost nothing.
    if _METHOD_LEVELS.get(method_name, LEVELS["INFO"]) < _level:
        raise structlog.DropEvent
    return event_dict


def _name_to_logger_key(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    # structlog.get_logger() reserves the keyword "logger", so get_logger() binds the name as
    # "logger_name"; rename it so our lines and stdlib lines (add_logger_name) share the "logger" key.
    if "logger_name" in event_dict:
        event_dict["logger"] = event_dict.pop("logger_name")
    return event_dict


def redaction_processor(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: return ``event_dict`` with :func:`~mm.observability.redaction.redact`
    applied (values under sensitive keys replaced, strings scrubbed). Must run last before rendering."""
    redacted: EventDict = redact(event_dict)
    return redacted


def _json_default(obj: object) -> str:
    """Serializer fallback: exact decimal strings for money, ISO 8601 for datetimes, and a redacted
    ``str()`` for anything else — redaction leaves arbitrary objects alone, so scrub their text here."""
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    return redact_text(str(obj))


def _json_dumps(obj: Any, **_kw: Any) -> str:
    # Our own fallback replaces structlog's (which would repr() Decimals as "Decimal('1.5')").
    return jsonlib.dumps(obj, default=_json_default, ensure_ascii=False)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or exotic streams
        return False


def configure_logging(level: str = "INFO", *, json: bool | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog (and route stdlib ``logging``) to write to ``stream`` (default stderr).

    ``json``: True for JSON lines, False for the console renderer, None to decide by ``stream.isatty()``.
    May be called again (tests, re-configuration); the previous stdlib handler is replaced.
    """
    global _stdlib_handler, _saved_root_level  # noqa: PLW0603 -- replace our own previous handler
    out: TextIO = stream if stream is not None else sys.stderr
    use_json = (not _is_tty(out)) if json is None else json
    _parse_level(level)  # validate before anything is changed
    if _saved_root_level is None:
        _saved_root_level = logging.getLogger().level
    set_level(level)

    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_json_dumps)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=_is_tty(out))
    )
    # Shared by structlog loggers and foreign (stdlib) records. Order matters: exceptions and stacks
    # become text first, then redaction sees that text, then the renderer; nothing runs after redaction.
    enrich: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[
            _filter_by_level,
            structlog.contextvars.merge_contextvars,
            _name_to_logger_key,
            *enrich,
            redaction_processor,
            renderer,
        ],
        # All methods enabled in the wrapper; _filter_by_level does the filtering so it can change.
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        # Not cached: a re-configure (new stream, new renderer) then reaches existing lazy loggers.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            *enrich,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redaction_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    if _stdlib_handler is not None:
        root.removeHandler(_stdlib_handler)
    root.addHandler(handler)
    _stdlib_handler = handler


def _stderr_defaults() -> None:
    """structlog's defaults, but writing to stderr: before :func:`configure_logging` (or in a program that never
    calls it, or a test) a log line must never land in stdout, which is a command's output (``-o json``)."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))


_stderr_defaults()


def reset_logging() -> None:
    """Undo :func:`configure_logging`: structlog defaults, our stdlib handler removed, the stdlib root
    level restored and our threshold back to INFO.

    For tests and for tools that embed the package and want their own logging setup back.
    """
    global _stdlib_handler, _saved_root_level, _level  # noqa: PLW0603
    structlog.reset_defaults()
    _stderr_defaults()
    root = logging.getLogger()
    if _stdlib_handler is not None:
        root.removeHandler(_stdlib_handler)
        _stdlib_handler = None
    if _saved_root_level is not None:
        root.setLevel(_saved_root_level)
        _saved_root_level = None
    _level = LEVELS["INFO"]
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET)


def get_logger(name: str | None = None, **initial: Any) -> FilteringBoundLogger:
    """A structlog logger; ``name`` (if given) is bound as ``logger``, ``initial`` as extra context."""
    if name is not None:
        initial["logger_name"] = name  # see _name_to_logger_key
    # A lazy proxy: it picks up whatever configuration is current when it first logs, so module-level
    # ``log = get_logger(__name__)`` is fine even though it runs before configure_logging().
    logger: FilteringBoundLogger = structlog.get_logger(**initial)
    return logger
