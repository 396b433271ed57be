"""The ``TradingNode`` kind: the singleton runtime's configuration.

Its blocks are the requirements' YAML blocks as written there: ``shutdown`` (FR-1101), ``recovery``
(FR-1201/1202), ``recording`` (FR-904), ``hot_reload`` (FR-1006), ``alerting`` (NFR-403), ``network``
(NFR-204), ``time_sync`` (NFR-203), ``startup`` (FR-1401/1402), ``risk.aggregate`` (FR-1302), plus the
control ``api``, ``metrics``, ``persistence`` and ``logging``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from decimal import Decimal
from typing import Literal

from pydantic import Field

from mm.specs.types import (
    Contracts,
    Dollars,
    EnvVarName,
    FieldProblem,
    Int,
    Multiplier,
    NonNegativeContracts,
    OpenUnit,
    PositiveDecimal,
    PositiveDollars,
    PositiveInt,
    Seconds,
    SpecModel,
    Ticker,
)

Severity = Literal["info", "warning", "critical"]


def _severities(*levels: Severity) -> Callable[[], list[Severity]]:
    return lambda: list(levels)


class UnwindOptions(SpecModel):
    enabled: bool = Field(False, description="unwind must be enabled explicitly (it crosses the spread).")
    max_slippage: PositiveDecimal = Field(Decimal("0.02"), le=Decimal("0.5"), description="Dollars from mid.")
    timeout_seconds: Seconds = Decimal(60)


class Shutdown(SpecModel):
    default_mode: Literal["immediate", "drain", "unwind", "pause"] = "drain"
    drain_timeout_seconds: Seconds = Decimal(30)
    unwind: UnwindOptions = UnwindOptions()
    save_state_on_pause: bool = True
    health_failure_mode: Literal["immediate", "drain", "pause", "none"] = Field(
        "pause",
        description="FR-1102: shut down in this mode when the node's health check fails (its reconcile loop "
        "stalls); none keeps running.",
    )


class AutoResumeThreshold(SpecModel):
    position_contracts: NonNegativeContracts = Decimal(10)
    pnl_dollars: Dollars = Decimal(5)


class Recovery(SpecModel):
    enabled: bool = True
    checkpoint_interval_seconds: Seconds = Decimal(10)
    auto_resume_threshold: AutoResumeThreshold = AutoResumeThreshold()
    require_manual_approval: bool = False


class RecordingEvents(SpecModel):
    book_snapshots: bool = True
    book_deltas: bool = True
    trades: bool = True
    quotes: bool = True
    orders: bool = True
    fills: bool = True
    state: bool = True


class Recording(SpecModel):
    enabled: bool = True
    output_dir: str = "./data/sessions"
    events: RecordingEvents = RecordingEvents()
    snapshot_interval_seconds: Seconds = Decimal(60)
    compression: Literal["none", "gzip"] = "gzip"
    retention_days: PositiveInt = 30
    max_storage_mb: PositiveInt = 1000
    async_write: bool = True
    buffer_size: PositiveInt = 1000


class HotReload(SpecModel):
    enabled: bool = True
    file_watch: bool = True
    drain_timeout_seconds: Seconds = Decimal(5)
    validation_timeout_seconds: Seconds = Decimal(1)
    max_changes_per_minute: PositiveInt = 10
    require_confirmation: bool = False


class LogChannel(SpecModel):
    enabled: bool = True
    severities: list[Severity] = Field(default_factory=_severities("info", "warning", "critical"))


class SlackChannel(SpecModel):
    enabled: bool = False
    webhook_url_env: EnvVarName | None = Field(None, description="Env var holding the webhook URL (a secret).")
    channel: str | None = None
    severities: list[Severity] = Field(default_factory=_severities("warning", "critical"))


class PagerDutyChannel(SpecModel):
    enabled: bool = False
    routing_key_env: EnvVarName | None = None
    severities: list[Severity] = Field(default_factory=_severities("critical"))


class EmailChannel(SpecModel):
    enabled: bool = False
    smtp_host: str | None = None
    smtp_port: PositiveInt = 587
    use_tls: bool = True
    username_env: EnvVarName | None = None
    password_env: EnvVarName | None = None
    sender: str = "mmctl@localhost"
    recipients: list[str] = Field(default_factory=list)
    severities: list[Severity] = Field(default_factory=_severities("critical"))


class WebhookChannel(SpecModel):
    enabled: bool = False
    url: str | None = Field(None, pattern=r"^https?://", description="Target URL (use url_env if it holds a token).")
    url_env: EnvVarName | None = None
    severities: list[Severity] = Field(default_factory=_severities("warning", "critical"))


class AlertChannels(SpecModel):
    log: LogChannel = LogChannel()
    slack: SlackChannel = SlackChannel()
    pagerduty: PagerDutyChannel = PagerDutyChannel()
    email: EmailChannel = EmailChannel()
    webhook: WebhookChannel = WebhookChannel()


class Throttle(SpecModel):
    window_seconds: Seconds = Decimal(300)
    max_alerts_per_window: PositiveInt = 10


class CustomAlert(SpecModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    condition: str = Field(
        min_length=1, description="Expression over metrics, e.g. mm_fills_total / mm_orders_total < 0.01"
    )
    window: str = Field("1h", pattern=r"^[0-9]+(s|m|h|d)$")
    severity: Severity = "warning"
    message: str = ""


class Alerting(SpecModel):
    channels: AlertChannels = AlertChannels()
    throttle: Throttle = Throttle()
    custom_alerts: list[CustomAlert] = Field(default_factory=list)


class Reconnect(SpecModel):
    initial_delay_ms: PositiveInt = 100
    max_delay_ms: PositiveInt = 60000
    backoff_multiplier: Multiplier = Decimal(2)
    jitter: bool = True


class HealthCheck(SpecModel):
    ping_interval_seconds: Seconds = Decimal(30)
    ping_timeout_seconds: Seconds = Decimal(5)
    max_missed_pings: PositiveInt = 3


class Latency(SpecModel):
    warn_threshold_ms: PositiveInt = 100
    critical_threshold_ms: PositiveInt = 500
    action_on_critical: Literal["widen_spread", "pause", "ignore"] = "widen_spread"


class Network(SpecModel):
    reconnect: Reconnect = Reconnect()
    health_check: HealthCheck = HealthCheck()
    latency: Latency = Latency()


class TimeSync(SpecModel):
    ntp_servers: list[str] = Field(default_factory=lambda: ["time.aws.amazon.com", "pool.ntp.org"])
    max_drift_ms: PositiveInt = 100
    check_interval_seconds: Seconds = Decimal(60)
    action_on_drift: Literal["warn", "pause_trading", "ignore"] = "warn"


class ManualPosition(SpecModel):
    YES: NonNegativeContracts = Decimal(0)
    NO: NonNegativeContracts = Decimal(0)
    avg_price_yes: OpenUnit | None = None
    avg_price_no: OpenUnit | None = None


class ManualAvgPrices(SpecModel):
    YES: OpenUnit | None = None
    NO: OpenUnit | None = None


class PositionHandling(SpecModel):
    source: Literal["exchange", "checkpoint", "manual"] = "exchange"
    manual_positions: dict[Ticker, ManualPosition] = Field(default_factory=dict)
    avg_price_method: Literal["query_exchange", "current_price", "manual", "mark_to_market"] = "query_exchange"
    manual_avg_prices: dict[Ticker, ManualAvgPrices] = Field(default_factory=dict)


class Startup(SpecModel):
    position_handling: PositionHandling = PositionHandling()
    max_starting_inventory: Contracts = Field(Decimal(500), description="Refuse to start above this, contracts.")
    require_confirmation_if_positions: bool = False


class AggregateLimits(SpecModel):
    """FR-1302: limits across every market of the node."""

    max_total_notional: PositiveDollars = Decimal(1000)
    max_total_contracts: Contracts = Decimal(5000)
    max_daily_loss: PositiveDollars = Decimal(200)
    max_hourly_loss: PositiveDollars = Decimal(100)
    max_concurrent_markets: PositiveInt = 5


class NodeRisk(SpecModel):
    aggregate: AggregateLimits = AggregateLimits()


class ChangeWebhook(SpecModel):
    """FR-1007: POST every configuration change event here (retried with exponential backoff)."""

    url: str | None = Field(None, pattern=r"^https?://", description="Target URL (use url_env if it holds a token).")
    url_env: EnvVarName | None = Field(None, description="Env var holding the URL (when it carries a secret).")
    max_attempts: PositiveInt = Field(5, description="Attempts per event before it is dropped (logged).")


class Api(SpecModel):
    host: str = Field("127.0.0.1", description="Bind address; loopback unless allow_non_loopback is true.")
    port: Int = Field(8080, ge=0, le=65535, description="0 = pick a free port.")
    token_env: EnvVarName | None = Field(
        None, description="Env var holding the bearer token; None = generate one into the state dir (0600)."
    )
    allow_non_loopback: bool = Field(False, description="Permit binding to a non-loopback address.")
    metrics_public: bool = Field(False, description="Serve /metrics without the token.")
    change_webhooks: list[ChangeWebhook] = Field(default_factory=list, description="FR-1007 change notifications.")


class Metrics(SpecModel):
    enabled: bool = True
    path: str = Field("/metrics", pattern=r"^/")


class MarketDataSamples(SpecModel):
    enabled: bool = False
    interval_seconds: Seconds = Decimal(10)


class Persistence(SpecModel):
    backend: Literal["sqlite"] = "sqlite"
    path: str = "./data/mmctl.db"
    pnl_snapshot_interval_seconds: Seconds = Decimal(60)
    market_data_samples: MarketDataSamples = MarketDataSamples()
    history_limit: PositiveInt = Field(20, description="Revisions kept per resource (FR-1005).")
    write_queue_size: PositiveInt = 10000


class Logging(SpecModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


class TradingNodeSpec(SpecModel):
    state_dir: str = Field("./data", description="Lock file, checkpoints, generated API token.")
    trading_state: Literal["active", "reducing", "halted"] = "active"
    shutdown: Shutdown = Shutdown()
    recovery: Recovery = Recovery()
    recording: Recording = Recording()
    hot_reload: HotReload = HotReload()
    alerting: Alerting = Alerting()
    network: Network = Network()
    time_sync: TimeSync = TimeSync()
    startup: Startup = Startup()
    risk: NodeRisk = NodeRisk()
    api: Api = Api()
    metrics: Metrics = Metrics()
    persistence: Persistence = Persistence()
    logging: Logging = Logging()

    def check(self) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        if not self.api.allow_non_loopback and not _is_loopback(self.api.host):
            problems.append(
                (
                    ("api", "host"),
                    f"{self.api.host!r} is not a loopback address; the control API binds to loopback unless "
                    "api.allow_non_loopback is true",
                )
            )
        if self.shutdown.default_mode == "unwind" and not self.shutdown.unwind.enabled:
            problems.append((("shutdown", "default_mode"), "unwind requires shutdown.unwind.enabled: true"))
        r = self.network.reconnect
        if r.initial_delay_ms > r.max_delay_ms:
            problems.append((("network", "reconnect", "initial_delay_ms"), "must not exceed max_delay_ms"))
        lat = self.network.latency
        if lat.warn_threshold_ms > lat.critical_threshold_ms:
            problems.append((("network", "latency", "warn_threshold_ms"), "must not exceed critical_threshold_ms"))
        hc = self.network.health_check
        if hc.ping_timeout_seconds >= hc.ping_interval_seconds:
            problems.append(
                (("network", "health_check", "ping_timeout_seconds"), "must be below ping_interval_seconds")
            )
        ph = self.startup.position_handling
        if ph.source == "manual" and not ph.manual_positions:
            problems.append(
                (("startup", "position_handling", "manual_positions"), "source: manual needs manual_positions")
            )
        if ph.avg_price_method == "manual" and not (ph.manual_avg_prices or ph.manual_positions):
            problems.append(
                (("startup", "position_handling", "manual_avg_prices"), "avg_price_method: manual needs prices")
            )
        agg = self.risk.aggregate
        if agg.max_hourly_loss > agg.max_daily_loss:
            problems.append((("risk", "aggregate", "max_hourly_loss"), "must not exceed max_daily_loss"))
        problems += self._alert_channel_problems()
        return problems

    def _alert_channel_problems(self) -> list[FieldProblem]:
        ch = self.alerting.channels
        base = ("alerting", "channels")
        problems: list[FieldProblem] = []
        if ch.slack.enabled and ch.slack.webhook_url_env is None:
            problems.append(((*base, "slack", "webhook_url_env"), "slack is enabled but webhook_url_env is not set"))
        if ch.pagerduty.enabled and ch.pagerduty.routing_key_env is None:
            problems.append(
                ((*base, "pagerduty", "routing_key_env"), "pagerduty is enabled but routing_key_env is not set")
            )
        if ch.email.enabled and (ch.email.smtp_host is None or not ch.email.recipients):
            problems.append(((*base, "email"), "email is enabled but smtp_host or recipients is missing"))
        if ch.webhook.enabled and (ch.webhook.url is None) == (ch.webhook.url_env is None):
            problems.append(((*base, "webhook"), "webhook needs exactly one of url or url_env"))
        return problems


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
