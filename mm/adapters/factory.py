"""Build the :class:`ExchangeAdapter` an Exchange spec describes (FR-111, FR-112, FR-603, FR-604).

:func:`build_adapter` is the one place that turns a materialised :class:`ExchangeSpec` into a live object:

* venue ``kalshi``: the spec's ``base_url``/``ws_url`` (prod and demo are filled in by the spec; ``custom``
  gives both); venue ``simulator``: the spec's URLs when it is not embedded, else ``simulator_urls`` from the
  caller that started the embedded simulator. Both speak Kalshi's API, so both get a :class:`KalshiAdapter`.
* venue ``polymarket``: :class:`NotSupportedError` (no adapter yet).
* Credentials come only from the environment and key files named by the spec: the key id from the env var
  ``api_key_env``, the PEM from ``private_key_env`` or the file ``private_key_file``. For a simulator without
  key references the caller passes ``signer``. Errors name the variable or field, never a value.
* Client-side rate limits from ``rate_limits`` (FR-603): the tier's token buckets and Kalshi's request costs,
  with the spec's reads/writes per second (requests at the default cost) as the refill rates.
* ``execution="paper"`` (the default) wraps the adapter in :class:`PaperExecution` — market data from the venue,
  orders kept in-process — so nothing reaches the venue. ``execution="live"`` requires ``allow_live: true``
  on the spec (the paper-trading safety gate); otherwise :class:`LiveTradingNotAllowedError`.

Nothing here connects: the caller awaits ``connect()``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Literal

from mm.adapters.base import ExchangeAdapter
from mm.adapters.errors import ExchangeError, NotSupportedError
from mm.adapters.fill_models import fill_model_from_name
from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.adapters.kalshi.rest import KalshiRestClient
from mm.adapters.kalshi.signer import KalshiSigner, KeyFileError
from mm.adapters.kalshi.ws import KalshiWebSocket
from mm.adapters.paper import PaperExecution
from mm.adapters.ratelimit import ClientRateLimiter, PressureHook, ThrottleHook
from mm.clock import Clock
from mm.observability.metrics import Metrics
from mm.specs.exchange import ExchangeSpec

__all__ = [
    "DEFAULT_PAPER_BALANCE",
    "Execution",
    "LiveTradingNotAllowedError",
    "build_adapter",
    "build_venue_adapter",
    "signer_from_spec",
]

Execution = Literal["paper", "live"]
DEFAULT_PAPER_BALANCE = Decimal(10_000)


class LiveTradingNotAllowedError(ExchangeError):
    """Live execution was asked for on an Exchange whose spec does not say ``allow_live: true``."""


def signer_from_spec(spec: ExchangeSpec, environ: Mapping[str, str]) -> KalshiSigner:
    """The signer from the spec's key references (env var names / key file path), never from the spec itself."""
    if spec.api_key_env is None:
        raise KeyFileError(f"exchange venue {spec.venue}: api_key_env (the env var holding the API key id) is not set")
    if spec.private_key_env is not None:
        return KalshiSigner.from_env(spec.api_key_env, spec.private_key_env, environ)
    if spec.private_key_file is not None:
        key_id = environ.get(spec.api_key_env, "")
        if not key_id:
            raise KeyFileError(f"environment variable {spec.api_key_env} (the API key id) is not set")
        return KalshiSigner.from_file(key_id, spec.private_key_file)
    raise KeyFileError(f"exchange venue {spec.venue}: set private_key_env or private_key_file")


def _urls(spec: ExchangeSpec, simulator_urls: tuple[str, str] | None) -> tuple[str, str]:
    embedded = spec.venue == "simulator" and spec.simulator is not None and spec.simulator.embedded
    if embedded:
        if simulator_urls is None:
            raise ValueError("an embedded simulator's URLs must be given (simulator_urls) by whoever started it")
        return simulator_urls
    if spec.base_url is None or spec.ws_url is None:
        raise ValueError(f"exchange venue {spec.venue} ({spec.environment}): base_url and ws_url are required")
    return spec.base_url, spec.ws_url


def build_venue_adapter(
    spec: ExchangeSpec,
    clock: Clock,
    *,
    environ: Mapping[str, str] | None = None,
    simulator_urls: tuple[str, str] | None = None,
    signer: KalshiSigner | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_throttle: ThrottleHook | None = None,
    on_pressure: PressureHook | None = None,
    log: Callable[[str], None] | None = None,
    metrics: Metrics | None = None,
    exchange_label: str = "kalshi",
    wall_clock: Clock | None = None,
) -> KalshiAdapter:
    """The venue adapter itself (market data, and orders for whoever is allowed to send them).

    ``clock`` stamps what the adapter reports (book times, events); ``wall_clock`` (default: ``clock``) signs
    requests and meters the rate limits, which the venue measures in real time — they differ when the node
    runs on an accelerated simulator's market time.

    The caller owns the live gate: :func:`build_adapter` applies it, and the controller checks each Market's
    ``execution`` against ``allow_live`` before sending a live order through this adapter.
    """
    if spec.venue == "polymarket":
        raise NotSupportedError("polymarket adapter not implemented yet")
    env = os.environ if environ is None else environ
    base_url, ws_url = _urls(spec, simulator_urls)
    if signer is None:
        if spec.venue == "simulator" and spec.api_key_env is None:
            raise KeyFileError("a simulator exchange without key references needs an explicit signer")
        signer = signer_from_spec(spec, env)
    limits = spec.rate_limits
    real = wall_clock if wall_clock is not None else clock
    limiter = ClientRateLimiter(
        real,
        sleep,
        tier=limits.tier,
        reads_per_second=limits.reads_per_second,
        writes_per_second=limits.writes_per_second,
        on_throttle=on_throttle,
        on_pressure=on_pressure,
    )
    rest = KalshiRestClient(base_url, signer, real, sleep=sleep, limiter=limiter)
    ws = KalshiWebSocket(ws_url, signer, real, sleep=sleep, log=log)
    return KalshiAdapter(
        rest, ws, clock, log=log, metrics=metrics, exchange_label=exchange_label, wall_clock=wall_clock
    )


def build_adapter(
    spec: ExchangeSpec,
    clock: Clock,
    *,
    environ: Mapping[str, str] | None = None,
    execution: Execution = "paper",
    simulator_urls: tuple[str, str] | None = None,
    signer: KalshiSigner | None = None,
    paper_balance: Decimal = DEFAULT_PAPER_BALANCE,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_throttle: ThrottleHook | None = None,
    on_pressure: PressureHook | None = None,
    log: Callable[[str], None] | None = None,
    fill_model: str = "trade_through",
) -> ExchangeAdapter:
    """The adapter for ``spec`` (see the module docstring). ``environ`` defaults to ``os.environ``.

    ``fill_model`` (paper only): ``trade_through`` (default), ``cross``, ``queue`` or ``touch``
    (:mod:`mm.adapters.fill_models`).
    """
    if execution not in ("paper", "live"):
        raise ValueError(f"execution must be 'paper' or 'live', not {execution!r}")
    paper_fills = fill_model_from_name(fill_model)  # a typo fails here, in live mode too
    if spec.venue == "polymarket":
        raise NotSupportedError("polymarket adapter not implemented yet")
    if execution == "live" and not spec.allow_live:
        raise LiveTradingNotAllowedError(
            f"live execution refused: the {spec.venue} exchange spec does not set allow_live: true"
        )
    adapter = build_venue_adapter(
        spec,
        clock,
        environ=environ,
        simulator_urls=simulator_urls,
        signer=signer,
        sleep=sleep,
        on_throttle=on_throttle,
        on_pressure=on_pressure,
        log=log,
    )
    if execution == "live":
        return adapter
    return PaperExecution(
        adapter,
        clock,
        starting_balance=paper_balance,
        capabilities=adapter.capabilities,
        fill_model=paper_fills,
        log=log,
    )
