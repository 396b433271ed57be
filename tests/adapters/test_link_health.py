"""LinkStats and combine_clock (mm.adapters.link_health): what an adapter measures about its link."""

from __future__ import annotations

from mm.adapters.link_health import RTT_WINDOW, ClockOffset, ClockSample, LinkStats, combine_clock
from mm.clock import SimulatedClock

NS = 1_000_000_000
S_US = 1_000_000
MS_US = 1_000


def stats() -> tuple[LinkStats, SimulatedClock]:
    wall = SimulatedClock(0, monotonic_start_ns=5 * NS)
    return LinkStats(wall), wall


def test_round_trips_failures_and_last_success() -> None:
    link, wall = stats()
    started = link.begin()
    wall.advance_us(200 * MS_US)
    link.answered(started, 200)
    h = link.snapshot(True, 1, clock_window_s=60)
    assert h.rtt_p50_s == 0.2 and h.rtt_samples == 1
    assert h.consecutive_failures == 0 and h.last_success_wall_ns == 5 * NS + NS // 5

    for status in (503, 500):
        link.answered(link.begin(), status)  # a 5xx is a failure and no RTT sample
    started = link.begin()
    wall.advance_us(2 * S_US)
    link.failed(started, "timed out", timed_out=True)  # a timeout's duration is a (lower bound) sample
    link.failed(link.begin(), "network error (ConnectError)", timed_out=False)  # a refused connection is not
    h = link.snapshot(True, 1, clock_window_s=60)
    assert h.consecutive_failures == 4 and link.failures == 4
    assert h.last_failure == "network error (ConnectError)"
    assert h.rtt_samples == 2 and h.rtt_p50_s == (0.2 + 2.0) / 2
    assert h.seconds_since(h.last_success_wall_ns) == 2.0

    link.answered(link.begin(), 404)  # refused, but it answered: reachable
    assert link.snapshot(True, 1, clock_window_s=60).consecutive_failures == 0


def test_the_rtt_window_keeps_the_last_samples_only() -> None:
    link, wall = stats()
    for _ in range(RTT_WINDOW):
        started = link.begin()
        wall.advance_us(900 * MS_US)
        link.answered(started, 200)
    for _ in range(RTT_WINDOW // 2 + 1):
        link.answered(link.begin(), 200)  # instant answers
    h = link.snapshot(None, 0, clock_window_s=60)
    assert h.rtt_samples == RTT_WINDOW and h.rtt_p50_s == 0.0


def test_stream_frames_are_seen_when_they_change_or_the_stream_reconnects() -> None:
    link, wall = stats()
    assert link.snapshot(False, 0, clock_window_s=60).ws_last_frame_wall_ns is None
    up = link.snapshot(True, 3, clock_window_s=60).ws_last_frame_wall_ns
    assert up == wall.monotonic_ns()
    wall.advance(5)
    assert link.snapshot(True, 3, clock_window_s=60).ws_last_frame_wall_ns == up  # nothing new for 5 s
    wall.advance(1)
    assert link.snapshot(True, 4, clock_window_s=60).ws_last_frame_wall_ns == wall.monotonic_ns()
    wall.advance(1)
    down = link.snapshot(False, 0, clock_window_s=60)
    assert down.ws_connected is False and down.seconds_since(down.ws_last_frame_wall_ns) == 1.0
    wall.advance(1)
    again = link.snapshot(True, 4, clock_window_s=60)  # a new connection with, by chance, the same count
    assert again.ws_last_frame_wall_ns == wall.monotonic_ns()


def test_a_server_reading_during_the_request_bounds_the_offset_both_ways() -> None:
    link, _ = stats()
    # sent at 1000 s, answered at 1000.2 s (our clock); the server read 1005.1 s: offset in [4.9 s, 5.1 s] ± 1 ms
    link.clock_reading(1005_100 * MS_US, MS_US, 1000 * S_US, 1000_200 * MS_US)
    clock = link.snapshot(None, 0, clock_window_s=60).clock
    assert clock == ClockOffset(4_899 * MS_US, 5_101 * MS_US, 1)
    assert clock.estimate_us == 5 * S_US and clock.error_us == 101 * MS_US


def test_samples_intersect_newest_first_and_a_contradiction_means_the_clock_moved() -> None:
    def sample(low_ms: int, high_ms: int | None, at_s: int = 100) -> ClockSample:
        return ClockSample(at_s * NS, low_ms * MS_US, None if high_ms is None else high_ms * MS_US)

    now = 100 * NS
    assert combine_clock([], now, 60 * NS) is None
    narrowed = combine_clock([sample(-50, 30), sample(-10, 80), sample(-20, None)], now, 60 * NS)
    assert narrowed == ClockOffset(-10 * MS_US, 30 * MS_US, 3)
    # the clock was stepped by 5 s: the older samples disagree with the newest and are ignored
    stepped = combine_clock([sample(-5, 5), sample(-4, 4), sample(4_990, 5_010)], now, 60 * NS)
    assert stepped == ClockOffset(4_990 * MS_US, 5_010 * MS_US, 1)
    # too old to count
    aged = combine_clock([sample(4_990, 5_010, at_s=10), sample(-20, None, at_s=90)], now, 60 * NS)
    assert aged == ClockOffset(-20 * MS_US, None, 1)
    assert aged.estimate_us == -20 * MS_US and aged.error_us is None


def test_lower_bounds_keep_only_the_highest_and_age_out() -> None:
    link, wall = stats()
    link.server_time_at_least(1005 * S_US, S_US, 1000 * S_US)  # "5 s ahead", to within the 1 s resolution
    link.server_time_at_least(1000 * S_US, S_US, 1000 * S_US)
    assert link.snapshot(None, 0, clock_window_s=10).clock == ClockOffset(4 * S_US, None, 2)
    wall.advance(11)
    assert link.snapshot(None, 0, clock_window_s=10).clock is None


def test_one_stream_time_is_wanted_per_snapshot() -> None:
    link, _ = stats()
    assert link.stream_time_wanted
    link.stream_time(1005_000, 1000 * S_US)  # ms on the venue's clock; received at 1000 s on ours
    assert not link.stream_time_wanted  # the adapter stops reading message times...
    clock = link.snapshot(None, 0, clock_window_s=60).clock
    assert clock == ClockOffset(4_999 * MS_US, None, 1)
    assert link.stream_time_wanted  # ...until the next snapshot
