"""NFR-404: the Grafana dashboard and the Prometheus configuration in deploy/ — every metric their PromQL queries is
exported by a running controller (a node quoting on the in-process simulator, its registry rendered as /metrics
renders it), the dashboard has the requirement's five panel groups with thresholds drawn and the 1h/24h/7d ranges,
and the provisioning files point where docker-compose mounts them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mm.alerting import BUILTIN_ALERTS
from mm.observability.metrics import render
from mm.sim.types import BookSide as SimBookSide
from tests.controller.harness import EXCHANGE_YAML, RISK_YAML, market_yaml, running_node, strategy_yaml, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "mmctl.json"
RULES = DEPLOY / "prometheus" / "rules" / "mmctl.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "mmctl.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests" / "mmctl_rules_test.yml"
PROMTOOL = shutil.which("promtool")

PROMETHEUS_SYNTHETIC = {"up"}
"""Series Prometheus itself writes for every scraped target (the mmctl_down rule reads it): not the controller's."""

# --------------------------------------------------------------------------- reading the PromQL

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan", "atan2",
    # aggregation operators: also written ``sum by (x) (expr)``, where no "(" follows the name
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$")


def _blank(pattern: re.Pattern[str], text: str, keep: str = "") -> str:
    return pattern.sub(keep, text)


def _strip_brackets(text: str, opening: str, closing: str) -> str:
    """``text`` with the contents of every ``opening``…``closing`` pair removed (label matchers, range selectors)."""
    out, depth = [], 0
    for char in text:
        if char == opening:
            depth += 1
            if depth == 1:
                out.append(char)
            continue
        if char == closing and depth:
            depth -= 1
            if depth == 0:
                out.append(char)
            continue
        if not depth:
            out.append(char)
    return "".join(out)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions (followed by ``(``),
    keywords, label names (inside ``{…}`` or ``by (…)``) or durations (inside ``[…]``)."""
    text = _blank(_STRING, expr, '""')
    text = _strip_brackets(text, "{", "}")
    text = _strip_brackets(text, "[", "]")
    text = _blank(_LABEL_LIST, text, r"\1 ()")
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def grafana_query_names(query: str) -> set[str]:
    """A Grafana variable query: ``label_values(selector, label)`` reads the selector's metric."""
    match = _LABEL_VALUES.match(query)
    return metric_names(match.group(1) if match else query)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (status) (rate(mm_orders_total{job=~"$job", market=~"$market"}[$__rate_interval]))',
            {"mm_orders_total"},
        ),
        (
            "histogram_quantile(0.95, sum by (job, instance, market, le) (rate(mm_order_latency_seconds_bucket[5m]))) "
            "> 0.1",
            {"mm_order_latency_seconds_bucket"},
        ),
        ('-mm_pnl_daily > ignoring(window) 0.5 * mm_loss_limit{window="daily"}', {"mm_pnl_daily", "mm_loss_limit"}),
        ("a_total / on (x, y) group_left max by (x) (b_gauge) offset 5m", {"a_total", "b_gauge"}),
        ('up{job="mmctl"} == 0 and abs(c:recorded) > 1e3 or vector(0)', {"up", "c:recorded"}),
    ],
)
def test_the_promql_reader_finds_exactly_the_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_label_values_queries_read_their_selector_only() -> None:
    assert grafana_query_names('label_values(mm_inventory{job=~"$job"}, market)') == {"mm_inventory"}


# --------------------------------------------------------------------------- the files


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def load_yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target."""
    return [
        (f"panel {panel['title']!r} target {target.get('refId')}", target["expr"])
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def variable_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            out.append((f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query))
    return out


def rule_queries(rules: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"rule {rule.get('alert') or rule.get('record')}", str(rule["expr"]))
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def referenced_names() -> dict[str, list[str]]:
    """Metric name → where it is queried, over the dashboard (panels and variables) and the alert rules."""
    where: dict[str, list[str]] = {}
    dashboard = load_dashboard()
    for place, expr in dashboard_queries(dashboard) + rule_queries(load_yaml(RULES)):
        for name in metric_names(expr):
            where.setdefault(name, []).append(place)
    for place, query in variable_queries(dashboard):
        for name in grafana_query_names(query):
            where.setdefault(name, []).append(place)
    return where


# --------------------------------------------------------------------------- every queried metric is exported


def exported_sample_names(exposition: str) -> tuple[set[str], set[str]]:
    """(every sample name the exposition's families can carry, those with samples now). A family is exported
    even before its first labelled child exists (its HELP and TYPE are there; a series appears at the event)."""
    declared: set[str] = set()
    present: set[str] = set()
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    for family in text_string_to_metric_families(exposition):
        declared.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        present.update(sample.name for sample in family.samples)
    return declared, present


async def test_every_metric_the_dashboard_and_the_rules_query_is_exported_by_a_running_controller(
    tmp_path: Path,
) -> None:
    def docs(tickers: list[str]) -> list[str]:
        return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market_yaml("m1", tickers[0])]

    async with running_node(tmp_path, docs) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        h.take(ticker, SimBookSide.ASK, 4800, 200)  # a fill: the fill-driven series exist too
        await wait_until(lambda: h.runtime.node.fills_seen == 1, what="the fill")
        metrics = h.runtime.metrics
        await wait_until(
            lambda: metrics.registry.get_sample_value("mm_exchange_rtt_seconds", {"exchange": "sim"}) is not None,
            what="a first degradation check",
        )
        declared, present = exported_sample_names(render(metrics).decode())

    referenced = referenced_names()
    missing = {name: places for name, places in referenced.items() if name not in declared | PROMETHEUS_SYNTHETIC}
    assert not missing, f"queried but not exported by the controller: {missing}"
    # the reader really read the queries: names of every panel group and of the rules are among them
    assert {
        "mm_pnl_realized",
        "mm_orders_total",
        "mm_inventory_limit",
        "mm_quote_generation_seconds_bucket",
        "mm_rate_limit_tokens_total",
        "process_cpu_seconds_total",
        "mm_kill_switch_active",
        "mm_websocket_reconnect_failures",
    } <= set(referenced)
    # and what a quoting, filled node has done shows up at once (the rest are series of rarer events: resyncs,
    # drift, fees, write errors, clock offset — exported, with series from their first occurrence)
    quoting_series = {
        "mm_pnl_realized",
        "mm_pnl_unrealized",
        "mm_pnl_daily",
        "mm_inventory",
        "mm_inventory_limit",
        "mm_loss_limit",
        "mm_open_orders",
        "mm_orders_total",
        "mm_fills_total",
        "mm_filled_contracts_total",
        "mm_spread_captured",
        "mm_quote_uptime_seconds_total",
        "mm_two_sided_seconds_total",
        "mm_market_reconciled_seconds_total",
        "mm_time_to_settlement_seconds",
        "mm_quote_generation_seconds_bucket",
        "mm_order_latency_seconds_bucket",
        "mm_book_update_seconds_bucket",
        "mm_websocket_messages_total",
        "mm_websocket_connected",
        "mm_rate_limit_tokens_total",
        "mm_rate_limit_refill_rate",
        "mm_rate_limit_usage_ratio",
        "mm_exchange_rtt_seconds",
        "mm_kill_switch_active",
        "mm_ready",
        "mm_db_queue_depth",
        "mm_disk_usage_bytes",
        "mm_disk_free_bytes",
        "mm_network_bytes_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    }
    assert quoting_series <= set(referenced)
    assert quoting_series <= present, f"no series yet: {sorted(quoting_series - present)}"


# --------------------------------------------------------------------------- the dashboard itself

PANEL_GROUPS = {
    "Overview": ["Current PnL", "Inventory per market", "Active orders", "System health"],
    "Trading Activity": ["Orders over time (by status)", "Fills over time", "Fill rate", "Average spread captured"],
    "Risk": ["Inventory vs limits", "PnL vs daily limit", "Time to next settlement", "Kill switch"],
    "Performance": ["Quote generation latency", "Order latency", "WebSocket message rate", "API rate limit usage"],
    "System": ["Memory usage", "CPU usage", "Network I/O", "Disk usage"],
}
"""NFR-404's five groups and, in each, a panel for every item the requirement lists."""


def groups(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Row title → the panels under it (rows expanded: the panels follow their row)."""
    out: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] | None = None
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = out.setdefault(panel["title"], list(panel.get("panels", [])))
        elif current is not None:
            current.append(panel)
    return out


def thresholds(panel: dict[str, Any]) -> list[float]:
    steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
    return [step["value"] for step in steps if step["value"] is not None]


def panel_named(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    found = [p for p in all_panels(dashboard["panels"]) if p.get("title") == title]
    assert len(found) == 1, f"{len(found)} panels titled {title!r}"
    return found[0]


def test_the_dashboard_has_the_five_panel_groups_with_every_listed_panel() -> None:
    dashboard = load_dashboard()
    got = groups(dashboard)
    assert list(got) == list(PANEL_GROUPS)
    for group, titles in PANEL_GROUPS.items():
        present = [p["title"] for p in got[group]]
        assert set(titles) <= set(present), f"{group}: missing {set(titles) - set(present)}"
    ids = [p["id"] for p in all_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] != "row":
            assert panel.get("targets"), f"panel {panel['title']!r} queries nothing"


def test_alerting_thresholds_are_drawn_on_the_graphs() -> None:
    dashboard = load_dashboard()
    rules = {r["alert"]: str(r["expr"]) for g in load_yaml(RULES)["groups"] for r in g["rules"]}
    expected = {
        # design.md §9: quote generation target 15 µs p50, the requirement's 10 ms
        "Quote generation latency": [0.000015, 0.01],
        # network.latency defaults: warn 100 ms (the high_latency rule), critical 500 ms
        "Order latency": [0.1, 0.5],
        "Book update latency": [0.002],
        # high_inventory at 80% of the limit, the limit
        "Inventory used (share of limit)": [0.8, 1],
        # daily_loss_warning 50%, daily_loss_critical 80%, the limit
        "Daily loss used (share of limit)": [0.5, 0.8, 1],
        "Kill switch": [1],
        "Exchange round trip and clock": [0.1],
        "API rate limit usage": [0.8, 1],
    }
    for title, values in expected.items():
        panel = panel_named(dashboard, title)
        assert thresholds(panel) == values, title
        if panel["type"] == "timeseries":
            style = panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"]
            assert style != "off", f"{title}: thresholds not drawn"
    # the limits themselves are series on the risk graphs, at the alert rules' levels
    inventory = " ".join(t["expr"] for t in panel_named(dashboard, "Inventory vs limits")["targets"])
    assert "0.8 * mm_inventory_limit" in inventory and "0.8 * mm_inventory_limit" in rules["high_inventory"]
    loss = " ".join(t["expr"] for t in panel_named(dashboard, "PnL vs daily limit")["targets"])
    assert "-0.5 * mm_loss_limit" in loss and "0.5 * mm_loss_limit" in rules["daily_loss_warning"]
    assert "-0.8 * mm_loss_limit" in loss and "0.8 * mm_loss_limit" in rules["daily_loss_critical"]
    assert "> 0.1" in rules["high_latency"] and "> 0.1" in rules["clock_drift"]


def test_time_ranges_1h_24h_7d_and_the_datasource_as_a_variable() -> None:
    dashboard = load_dashboard()
    picker = dashboard["timepicker"]
    assert "time_options" not in picker  # gone from Grafana's schema; quick_ranges and the links carry the ranges
    assert {("now-1h", "now"), ("now-24h", "now"), ("now-7d", "now")} <= {
        (r["from"], r["to"]) for r in picker["quick_ranges"]
    }
    assert dashboard["time"] == {"from": "now-1h", "to": "now"}
    assert {link["url"] for link in dashboard["links"]} >= {f"?from=now-{r}&to=now" for r in ("1h", "24h", "7d")}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


# --------------------------------------------------------------------------- Prometheus and provisioning


def test_the_rules_mirror_nfr_403_built_in_alerts_with_their_severities() -> None:
    rules = {r["alert"]: r for g in load_yaml(RULES)["groups"] for r in g["rules"]}
    nfr_403 = {name: d for name, d in BUILTIN_ALERTS.items() if d.origin == "NFR-403"}
    assert len(nfr_403) == 10
    for name, definition in nfr_403.items():
        assert name in rules, f"no Prometheus rule for {name}"
        assert rules[name]["labels"]["severity"] == definition.severity, name
        assert rules[name]["annotations"]["summary"], name


def test_prometheus_scrapes_the_controller_with_its_token_and_loads_the_rules() -> None:
    config = load_yaml(PROMETHEUS)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    mmctl = jobs["mmctl"]
    assert mmctl.get("metrics_path", "/metrics") == "/metrics"
    assert [t for c in mmctl["static_configs"] for t in c["targets"]] == ["controller:8080"]
    assert mmctl["authorization"] == {"type": "Bearer", "credentials_file": "/etc/prometheus/mmctl-token"}
    # rule_files are relative to the config file: they must find the rules beside it
    matched = {p for pattern in config["rule_files"] for p in PROMETHEUS.parent.glob(pattern)}
    assert RULES in matched
    # the rules' "mmctl_down" watches this very job
    assert 'job="mmctl"' in next(
        str(r["expr"]) for g in load_yaml(RULES)["groups"] for r in g["rules"] if r["alert"] == "mmctl_down"
    )


def test_grafana_provisioning_loads_the_dashboard_from_where_compose_mounts_it() -> None:
    datasources = load_yaml(DATASOURCES)["datasources"]
    prometheus = [d for d in datasources if d["type"] == "prometheus"]
    assert len(prometheus) == 1 and prometheus[0]["isDefault"] is True
    assert prometheus[0]["url"] == "http://prometheus:9090"
    variable = next(v for v in load_dashboard()["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == prometheus[0]["uid"]  # the variable's default is this data source
    providers = load_yaml(PROVIDERS)["providers"]
    assert [p["options"]["path"] for p in providers] == ["/var/lib/grafana/dashboards"]
    assert all(p["type"] == "file" for p in providers)
    assert DASHBOARD.parent.name == "dashboards" and DASHBOARD.suffix == ".json"


# --------------------------------------------------------------------------- Prometheus's own checker

needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")


@needs_promtool
def test_promtool_accepts_the_config_and_the_rules_fire_when_they_should(tmp_path: Path) -> None:
    """The alert rules' unit tests (deploy/prometheus/tests/: each rule silent before its condition, firing after,
    with its labels and annotations), and promtool's own check of the config (with a token file where it says)."""
    assert PROMTOOL is not None
    tested = subprocess.run([PROMTOOL, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    token = tmp_path / "mmctl-token"
    token.write_text("token\n")
    config = tmp_path / "prometheus.yml"
    config.write_text(PROMETHEUS.read_text().replace("/etc/prometheus/mmctl-token", str(token)))
    shutil.copytree(RULES.parent, tmp_path / "rules")
    checked = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 12 rules found" in checked.stdout + checked.stderr


def test_every_nfr_403_rule_has_a_promtool_unit_test() -> None:
    tested = {case["alertname"] for test in load_yaml(RULE_TESTS)["tests"] for case in test["alert_rule_test"]}
    rules = {r["alert"] for g in load_yaml(RULES)["groups"] for r in g["rules"]}
    assert tested == rules
