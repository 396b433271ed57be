"""The AlertManager against real receivers: non-blocking raising, routing by severity, throttling end to end,
retries with backoff, dead and hanging receivers (failures recorded, never raised), the delivery deadline,
the lifecycle (backlog before start, flush on close, abandoned deliveries), history and records."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from mm.alerting import AlertManager, AlertThrottle
from mm.alerting.channels import LogChannel, WebhookChannel
from mm.clock import SimulatedClock, WallClock
from mm.specs.node import Alerting
from mm.state.records import AlertRecord
from tests.alerting.receivers import HttpReceiver, closed_port, wait_until

S = 1_000_000
T0 = 1_768_660_200_000_000


def recording_sleep(delays: list[float]) -> Callable[[float], Awaitable[None]]:
    """The backoff waits, recorded; each yields to the loop but does not actually wait."""

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    return sleep


def manager(*channels: Any, records: list[AlertRecord] | None = None, **kw: Any) -> AlertManager:
    kw.setdefault("clock", WallClock())
    kw.setdefault("retry_base_s", 0.01)
    sink = records.append if records is not None else None
    return AlertManager(list(channels), record=sink, **kw)


async def test_raise_alert_returns_at_once_while_delivery_happens_in_the_background() -> None:
    records: list[AlertRecord] = []
    async with HttpReceiver(hang=True) as rx:
        alerts = manager(WebhookChannel(f"{rx.base}/h", ["warning", "critical"]), records=records)
        alerts.start()
        entry = alerts.raise_alert("high_inventory", message="inventory 90% of max", market="M1", inventory=450)
        assert not entry.done  # returned without awaiting the (hanging) receiver
        await wait_until(lambda: rx.attempts == 1, what="the delivery to start")
        assert records == []  # recorded once final, not before
        rx.release()
        assert await alerts.flush(timeout=10)
        assert entry.status == "delivered"
        await alerts.aclose()
    body = rx.received[0].body
    assert (body["name"], body["severity"], body["market"]) == ("high_inventory", "warning", "M1")
    assert body["data"] == {"inventory": 450}
    [record] = records
    assert record.data["delivery"] == {"webhook": {"status": "delivered", "attempts": 1, "error": None}}


async def test_alerts_go_only_to_channels_that_take_their_severity() -> None:
    async with HttpReceiver() as critical_only, HttpReceiver() as everything:
        alerts = manager(
            WebhookChannel(f"{critical_only.base}/h", ["critical"]), LogChannel(["info", "warning", "critical"])
        )
        alerts.start()
        warning = alerts.raise_alert("stale_market_data")  # catalogue default: warning
        critical = alerts.raise_alert("reconciliation_mismatch", message="YES 10 here, 12 there")
        info = alerts.raise_alert("db_recovered")
        assert await alerts.flush(timeout=10)
        await alerts.aclose()
    assert set(warning.outcomes) == {"log"} and warning.alert.severity == "warning"
    assert set(critical.outcomes) == {"webhook", "log"} and critical.status == "delivered"
    assert info.alert.severity == "info"
    assert [r.body["name"] for r in critical_only.received] == ["reconciliation_mismatch"]
    assert everything.received == []


async def test_each_alert_fires_once_under_throttling_and_critical_bypasses_it() -> None:
    clock = SimulatedClock(T0)
    records: list[AlertRecord] = []
    async with HttpReceiver() as rx:
        hook = WebhookChannel(f"{rx.base}/h", ["warning", "critical"])
        alerts = manager(hook, clock=clock, records=records, throttle=AlertThrottle(300 * S, 1))
        alerts.start()
        first = alerts.raise_alert("high_latency", message="p99 120 ms")
        other = alerts.raise_alert("websocket_disconnect")
        clock.advance(10)
        repeat = alerts.raise_alert("high_latency", message="p99 130 ms")
        kills = [alerts.raise_alert("kill_switch_triggered", message=f"trip {i}") for i in range(3)]
        assert await alerts.flush(timeout=10)
        assert repeat.status == "throttled" and repeat.outcomes == {}
        assert [r.body["name"] for r in rx.received].count("high_latency") == 1
        assert [r.body["name"] for r in rx.received].count("websocket_disconnect") == 1
        assert [r.body["message"] for r in rx.received if r.body["name"] == "kill_switch_triggered"] == [
            "trip 0", "trip 1", "trip 2"]  # fmt: skip
        stats = alerts.stats()
        assert stats["by_name"]["high_latency"] == {"allowed": 1, "suppressed": 1, "bypassed": 0}
        assert stats["by_name"]["kill_switch_triggered"]["bypassed"] == 2
        assert stats["throttled"] == 1
        clock.advance(300)  # the window has passed: the next one goes out and reports the suppressed one
        later = alerts.raise_alert("high_latency", message="p99 140 ms")
        assert await alerts.flush(timeout=10)
        await alerts.aclose()
    assert first.status == other.status == later.status == "delivered"
    assert all(k.status == "delivered" for k in kills)
    assert rx.received[-1].body["suppressed"] == 1 and later.alert.suppressed == 1
    throttled = [r for r in records if r.data["throttled"]]
    assert [(r.name, r.message, r.data["delivery"]) for r in throttled] == [("high_latency", "p99 130 ms", {})]
    assert len(records) == 7  # every raised alert is recorded, throttled or not


async def test_a_receiver_that_fails_twice_gets_the_alert_on_the_third_try() -> None:
    delays: list[float] = []
    records: list[AlertRecord] = []
    async with HttpReceiver(failures=2) as rx:
        alerts = manager(
            WebhookChannel(f"{rx.base}/h", ["critical"]), records=records, retry_base_s=0.5,
            sleep=recording_sleep(delays),
        )  # fmt: skip
        alerts.start()
        entry = alerts.raise_alert("reconnect_failed", message="5 reconnects failed")
        assert await alerts.flush(timeout=10)
        await alerts.aclose()
    assert rx.attempts == 3 and len(rx.received) == 1
    assert delays == [0.5, 1.0]  # exponential backoff
    outcome = entry.outcomes["webhook"]
    assert (outcome.status, outcome.attempts, outcome.error) == ("delivered", 3, None)
    assert records[0].data["delivery"]["webhook"] == {"status": "delivered", "attempts": 3, "error": None}


async def test_a_dead_receiver_is_recorded_as_failed_and_never_raised() -> None:
    records: list[AlertRecord] = []
    alerts = manager(WebhookChannel(f"http://127.0.0.1:{closed_port()}/h", ["critical"]), LogChannel(["critical"]),
                     records=records, max_attempts=3)  # fmt: skip
    alerts.start()
    entry = alerts.raise_alert("exchange_outage", message="exchange unreachable")  # must not raise
    assert await alerts.flush(timeout=10)
    await alerts.aclose()
    failed = entry.outcomes["webhook"]
    assert failed.status == "failed" and failed.attempts == 3
    assert failed.error is not None and "ConnectError" in failed.error
    assert entry.outcomes["log"].status == "delivered"
    assert entry.status == "partial"
    delivery = records[0].data["delivery"]
    assert delivery["webhook"]["status"] == "failed" and delivery["log"]["status"] == "delivered"
    assert alerts.stats()["failed"] == 1


async def test_a_refusing_receiver_is_not_retried() -> None:
    async with HttpReceiver(refuse_with=400) as rx:
        alerts = manager(WebhookChannel(f"{rx.base}/h", ["critical"]), max_attempts=5)
        alerts.start()
        entry = alerts.raise_alert("kill_switch_triggered")
        assert await alerts.flush(timeout=10)
        await alerts.aclose()
    assert rx.attempts == 1
    assert entry.outcomes["webhook"].error is not None and entry.outcomes["webhook"].error.startswith("HTTP 400")


async def test_a_hanging_receiver_times_out_each_attempt() -> None:
    async with HttpReceiver(hang=True) as rx:
        alerts = manager(WebhookChannel(f"{rx.base}/h", ["critical"]), attempt_timeout_s=0.2, max_attempts=2)
        alerts.start()
        entry = alerts.raise_alert("kill_switch_triggered")
        assert await alerts.flush(timeout=10)
        await alerts.aclose()
    outcome = entry.outcomes["webhook"]
    assert (outcome.status, outcome.attempts, outcome.error) == ("failed", 2, "timed out after 0.2 s")


async def test_nothing_is_tried_after_the_delivery_deadline() -> None:
    async with HttpReceiver(failures=10**6) as rx:
        alerts = manager(WebhookChannel(f"{rx.base}/h", ["critical"]), max_attempts=100, retry_base_s=0.05,
                         delivery_deadline_s=0.5)  # fmt: skip
        alerts.start()
        started = asyncio.get_running_loop().time()
        entry = alerts.raise_alert("kill_switch_triggered")
        assert await alerts.flush(timeout=10)
        elapsed = asyncio.get_running_loop().time() - started
        await alerts.aclose()
    outcome = entry.outcomes["webhook"]
    assert outcome.status == "failed" and 1 < outcome.attempts < 100
    assert outcome.error is not None and "deadline" in outcome.error
    assert elapsed < 1.5


async def test_alerts_raised_before_start_go_out_when_it_starts() -> None:
    async with HttpReceiver() as rx:
        alerts = manager(WebhookChannel(f"{rx.base}/h", ["critical"]))
        entry = alerts.raise_alert("recovery_discrepancy", message="positions differ")
        assert not entry.done and alerts.stats()["pending"] == 1
        assert not await alerts.flush(timeout=0.1)  # not started: nothing can deliver it yet
        alerts.start()
        assert await alerts.flush(timeout=10)
        await alerts.aclose()
    assert entry.status == "delivered" and rx.received[0].body["name"] == "recovery_discrepancy"


async def test_close_flushes_pending_deliveries() -> None:
    async with HttpReceiver(failures=1) as rx:
        alerts = manager(WebhookChannel(f"{rx.base}/h", ["critical"]), retry_base_s=0.2)
        alerts.start()
        entry = alerts.raise_alert("kill_switch_triggered")
        assert await alerts.aclose(timeout=10)  # waits for the retry instead of dropping it
    assert entry.status == "delivered" and len(rx.received) == 1


async def test_close_abandons_what_cannot_finish_in_time_and_records_it() -> None:
    records: list[AlertRecord] = []
    async with HttpReceiver(hang=True) as rx:
        alerts = manager(WebhookChannel(f"{rx.base}/h", ["critical"]), records=records)
        alerts.start()
        entry = alerts.raise_alert("kill_switch_triggered")
        await wait_until(lambda: rx.attempts == 1, what="the delivery to start")
        assert not await alerts.aclose(timeout=0.1)
    outcome = entry.outcomes["webhook"]
    assert outcome.status == "failed" and outcome.error == "abandoned at shutdown"
    assert records[0].data["delivery"]["webhook"]["status"] == "failed"
    after = alerts.raise_alert("kill_switch_triggered")  # after close: recorded as failed, still never raises
    assert after.outcomes["webhook"].error == "alert manager closed"
    assert len(records) == 2


async def test_forwarded_alerts_are_delivered_but_not_recorded_again() -> None:
    records: list[AlertRecord] = []
    async with HttpReceiver() as rx:
        alerts = manager(WebhookChannel(f"{rx.base}/h", ["critical"]), records=records)
        alerts.start()
        queue_alert = AlertRecord(T0, "critical", "db_queue_full", "over capacity", {"capacity": 10, "depth": 11})
        alerts.forward(queue_alert)
        assert await alerts.flush(timeout=10)
        [entry] = alerts.history()
        await alerts.aclose()
    assert entry.status == "delivered" and records == []
    body = rx.received[0].body
    assert (body["name"], body["timestamp_us"], body["data"]) == ("db_queue_full", T0, {"capacity": 10, "depth": 11})


async def test_history_is_newest_first_filtered_and_bounded() -> None:
    alerts = manager(LogChannel(["info", "warning", "critical"]), history_size=5, clock=SimulatedClock(T0))
    alerts.start()
    for i in range(4):
        alerts.raise_alert("high_inventory", message=f"w{i}")
        alerts.raise_alert("kill_switch_triggered", message=f"c{i}")
    assert await alerts.flush(timeout=10)
    await alerts.aclose()
    assert [e.alert.message for e in alerts.history()] == ["c3", "w3", "c2", "w2", "c1"]  # only 5 kept
    assert [e.alert.message for e in alerts.history(severity="critical", limit=2)] == ["c3", "c2"]
    assert [e.alert.message for e in alerts.history(name="high_inventory")] == ["w3", "w2"]
    assert [e.id for e in alerts.history(limit=1)] == [8]


async def test_data_is_made_exact_and_redacted_and_records_serialise() -> None:
    records: list[AlertRecord] = []
    alerts = manager(LogChannel(["warning"]), records=records)
    alerts.start()
    entry = alerts.raise_alert(
        "clock_drift", drift_s=0.15, limit=Decimal("0.1"), api_token="tok-123", nested={"a": 1.5}
    )
    assert await alerts.flush(timeout=10)
    await alerts.aclose()
    assert entry.alert.data == {
        "drift_s": Decimal("0.15"), "limit": Decimal("0.1"), "api_token": "***REDACTED***",
        "nested": {"a": Decimal("1.5")},
    }  # fmt: skip
    assert entry.alert.message == "NTP drift > 100ms"  # the catalogue's description when no message is given
    [(_sql, row)] = records[0].writes()  # canonical JSON refuses floats: this proves none are left
    assert "tok-123" not in str(row)


async def test_unknown_names_default_to_warning_and_bad_severities_to_critical() -> None:
    alerts = manager(LogChannel(["warning", "critical"]))
    alerts.start()
    assert alerts.raise_alert("something_new").alert.severity == "warning"
    assert alerts.raise_alert("x", "loud").alert.severity == "critical"  # type: ignore[arg-type]
    await alerts.aclose()


async def test_the_test_alert_goes_through_every_channel_whatever_its_severities() -> None:
    async with HttpReceiver() as rx:
        alerts = manager(WebhookChannel(f"{rx.base}/h", ["critical"]), LogChannel(["critical"]),
                         throttle=AlertThrottle(300 * S, 1))  # fmt: skip
        with pytest.raises(RuntimeError, match="not running"):
            await alerts.test_alert()
        alerts.start()
        first = await alerts.test_alert("hello", "info", requested_by="cli")
        second = await alerts.test_alert("again", "info")
        await alerts.aclose()
    assert first.status == second.status == "delivered"  # never throttled
    assert set(first.outcomes) == {"webhook", "log"}
    assert [r.body["message"] for r in rx.received] == ["hello", "again"]
    assert rx.received[0].body["data"] == {"requested_by": "cli"}


def test_from_spec_builds_the_enabled_channels() -> None:
    spec = Alerting.model_validate(
        {
            "channels": {
                "slack": {"enabled": True, "webhook_url_env": "S"},
                "webhook": {"enabled": True, "url": "http://127.0.0.1:9/h"},
            },
            "throttle": {"window_seconds": 60, "max_alerts_per_window": 3},
        }
    )
    alerts = AlertManager.from_spec(spec, clock=WallClock(), environ={"S": "http://127.0.0.1:9/s"})
    assert [c.name for c in alerts.channels] == ["log", "slack", "webhook"]
    assert (alerts.throttle.window_us, alerts.throttle.max_per_window) == (60 * S, 3)
    with pytest.raises(Exception, match="environment variable S is not set"):
        AlertManager.from_spec(spec, clock=WallClock(), environ={}, strict=True)


async def test_an_alert_raised_from_another_thread_is_handed_to_the_loop() -> None:
    async with HttpReceiver() as rx:
        alerts = manager(WebhookChannel(f"{rx.base}/h", ["warning"]))
        alerts.start()
        detached = await asyncio.to_thread(alerts.raise_alert, "clock_drift", None, "drift 150 ms")
        assert detached.id == 0
        await wait_until(lambda: bool(rx.received), what="the delivery")
        await alerts.aclose()
    [entry] = alerts.history()
    assert entry.id == 1 and entry.status == "delivered" and entry.alert.message == "drift 150 ms"
