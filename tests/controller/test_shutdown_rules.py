"""The pure rules of shutdown (FR-1101/1102): which mode runs, signal → request, outcome → exit code."""

from __future__ import annotations

import signal

import pytest

from mm.controller.shutdown import (
    ExitCode,
    ShutdownOutcome,
    ShutdownRequest,
    ShutdownSignals,
    exit_code,
    most_urgent,
    resolve,
)
from mm.specs.node import Shutdown, UnwindOptions


@pytest.mark.parametrize("mode", ["drain", "pause", "immediate"])
def test_the_requested_mode_runs_when_nothing_overrides_it(mode: str) -> None:
    assert resolve(ShutdownRequest(mode, "api"), Shutdown(), kill_switch_tripped=False).mode == mode


@pytest.mark.parametrize("trigger", ["SIGQUIT", "kill_switch", "SIGINT (second)"])
def test_sigquit_kill_switch_and_a_second_sigint_are_always_immediate(trigger: str) -> None:
    assert resolve(ShutdownRequest("drain", trigger), Shutdown(), kill_switch_tripped=False).mode == "immediate"


def test_a_tripped_kill_switch_forces_immediate_whatever_was_asked() -> None:
    assert resolve(ShutdownRequest("unwind", "SIGTERM"), Shutdown(), kill_switch_tripped=True).mode == "immediate"


def test_unwind_needs_explicit_enabling_and_falls_back_to_drain() -> None:
    assert resolve(ShutdownRequest("unwind", "api"), Shutdown(), kill_switch_tripped=False).mode == "drain"
    enabled = Shutdown(unwind=UnwindOptions(enabled=True))
    assert resolve(ShutdownRequest("unwind", "api"), enabled, kill_switch_tripped=False).mode == "unwind"


def test_an_unknown_mode_takes_the_configured_default() -> None:
    options = Shutdown(default_mode="pause")
    assert resolve(ShutdownRequest("", "duration"), options, kill_switch_tripped=False).mode == "pause"


def test_signals_first_sigterm_default_then_second_sigint_immediate() -> None:
    seen: list[ShutdownRequest] = []
    signals = ShutdownSignals("drain", seen.append)
    signals.handle(signal.SIGINT)
    assert seen[-1] == ShutdownRequest("drain", "SIGINT")
    signals.handle(signal.SIGTERM)
    assert seen[-1] == ShutdownRequest("drain", "SIGTERM")
    signals.handle(signal.SIGINT)
    assert seen[-1] == ShutdownRequest("immediate", "SIGINT (second)")
    assert most_urgent(signals.requests) == ShutdownRequest("immediate", "SIGINT (second)")


def test_sigquit_asks_for_immediate_at_once() -> None:
    seen: list[ShutdownRequest] = []
    ShutdownSignals("pause", seen.append).handle(signal.SIGQUIT)
    assert seen == [ShutdownRequest("immediate", "SIGQUIT")]


@pytest.mark.parametrize(
    ("trigger", "tripped", "code"),
    [
        ("SIGTERM", False, ExitCode.OK),
        ("api", False, ExitCode.OK),
        ("duration", False, ExitCode.OK),
        ("SIGQUIT", False, ExitCode.FORCED),
        ("SIGINT (second)", False, ExitCode.FORCED),
        ("SIGTERM", True, ExitCode.KILL_SWITCH),
        ("health", False, ExitCode.HEALTH),
    ],
)
def test_exit_code_by_reason(trigger: str, tripped: bool, code: ExitCode) -> None:
    assert exit_code(ShutdownOutcome("drain", trigger), kill_switch_tripped=tripped) is code


def test_an_incomplete_shutdown_says_so_whatever_the_reason() -> None:
    assert exit_code(ShutdownOutcome("drain", "SIGTERM", open_orders_left=1), kill_switch_tripped=False) == 6
    assert exit_code(ShutdownOutcome("pause", "health", flushed=False), kill_switch_tripped=False) == 6
    assert len({int(c) for c in ExitCode}) == len(ExitCode)  # one code per reason
