"""Observability: structured logging, secret redaction and Prometheus metrics.

Submodules (import them directly; this package re-exports the most used names):

* :mod:`mm.observability.redaction` — the one redaction function for logs, config diffs and errors.
* :mod:`mm.observability.logging` — structlog configuration, runtime log level, loggers.
* :mod:`mm.observability.metrics` — every NFR-402 metric, in a private registry per instance.
"""

from mm.observability.logging import configure_logging, get_logger, set_level
from mm.observability.metrics import Metrics, render
from mm.observability.redaction import REDACTED, is_sensitive_key, redact, redact_text

__all__ = [
    "REDACTED",
    "Metrics",
    "configure_logging",
    "get_logger",
    "is_sensitive_key",
    "redact",
    "redact_text",
    "render",
    "set_level",
]
