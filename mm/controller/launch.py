"""``mmctl run``: admit the declared resources, start what the node needs, run, stop, summarise.

With an Exchange of venue ``simulator`` and ``simulator.embedded`` (the quickstart), the simulator is started
in-process at the spec's ``speed``; the node's Clock is the simulator's, so time to settlement, cutoffs and
hourly roll-over play out accelerated, while signing and rate limits stay in real time (the simulator
verifies those against its wall clock, as Kalshi does). The real Kalshi adapter talks to it over loopback:
the same code path as production.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mm.adapters.factory import build_venue_adapter
from mm.adapters.kalshi.adapter import KalshiAdapter
from mm.adapters.kalshi.signer import KalshiSigner
from mm.api.server import ControlApi, load_or_create_token
from mm.api.webhooks import ChangeWebhooks
from mm.clock import Clock, WallClock, datetime_to_us
from mm.controller.gitops import FileReloader, GitOpsSource
from mm.controller.runtime import NodeRuntime, RuntimeOptions
from mm.controller.shutdown import ShutdownRequest, ShutdownSignals, most_urgent
from mm.domain.errors import MmError
from mm.sim.server import Simulator, SimulatorConfig
from mm.specs.admission import AdmittedResource, admit_or_raise
from mm.specs.exchange import ExchangeSpec
from mm.specs.node import TradingNodeSpec
from mm.specs.yaml_loader import load_sources

__all__ = ["FileReloader", "GitOpsSource", "ReloadRefusedError", "RunOptions", "run_node"]


class ReloadRefusedError(MmError):
    """A reload found source files that do not pass admission (nothing was applied)."""


@dataclass
class RunOptions:
    paths: Sequence[str]
    state_dir: Path | None = None
    duration_s: float | None = None
    api_port: int | None = None
    """Override the TradingNode's api.port (0 = any free port)."""
    shutdown_mode: str | None = None
    cycle_s: float = 1.0
    on_started: Callable[[NodeRuntime, ControlApi], None] | None = None
    watch: list[str] | None = None
    """Git-ops: watch these files/directories (``--watch``); default: the ``-f`` paths when
    ``hot_reload.file_watch``."""
    on_gitops: Callable[[GitOpsSource], None] | None = None


def _node_spec(resources: Sequence[AdmittedResource]) -> TradingNodeSpec:
    for resource in resources:
        if resource.kind == "TradingNode":
            assert isinstance(resource.spec, TradingNodeSpec)
            return resource.spec
    return TradingNodeSpec()


def _start_us(text: str | None) -> int | None:
    """``2026-08-13T20:40:00Z`` (the spec's pattern) → µs since the epoch."""
    if text is None:
        return None
    return datetime_to_us(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC))


async def _health_watch(
    runtime: NodeRuntime, node_spec: TradingNodeSpec, request: Callable[[ShutdownRequest], None]
) -> None:
    """FR-1102's health-check trigger: a node unhealthy for ``ping_interval × max_missed_pings`` (its reconcile
    loop stalled, its database writer dead) shuts down in ``shutdown.health_failure_mode`` (default pause, exit
    code 5), so that a supervisor restarts it."""
    mode = node_spec.shutdown.health_failure_mode
    check = node_spec.network.health_check
    limit_s = float(check.ping_interval_seconds) * check.max_missed_pings
    while mode != "none":
        await asyncio.sleep(1.0)
        problems = runtime.health_problems(limit_s)
        if problems:
            runtime.node.event("TradingNode", "HealthCheckFailed", "; ".join(problems), warning=True)
            request(ShutdownRequest(mode, "health"))
            return


async def run_node(options: RunOptions) -> dict[str, Any]:
    """Run until ``duration_s`` elapses (real seconds) or SIGINT/SIGTERM; returns the summary."""
    admitted = admit_or_raise(load_sources(list(options.paths) or list(options.watch or [])))
    node_spec = _node_spec(admitted)
    state_dir = options.state_dir if options.state_dir is not None else Path(node_spec.state_dir)
    embedded = [
        r
        for r in admitted
        if r.kind == "Exchange"
        and isinstance(r.spec, ExchangeSpec)
        and r.spec.venue == "simulator"
        and r.spec.simulator is not None
        and r.spec.simulator.embedded
    ]
    simulators: dict[str, Simulator] = {}
    wall = WallClock()
    clock: Clock = wall
    async with contextlib.AsyncExitStack() as stack:
        for resource in embedded:
            spec = resource.spec
            assert isinstance(spec, ExchangeSpec) and spec.simulator is not None
            sim = Simulator(
                SimulatorConfig(
                    speed=float(spec.simulator.speed),
                    seed=spec.simulator.seed,
                    state_dir=state_dir / "sim" / resource.name,
                    start_us=_start_us(spec.simulator.start),
                    tier=spec.rate_limits.tier,
                )
            )
            await stack.enter_async_context(sim)
            simulators[resource.name] = sim
            clock = sim.clock  # the node lives on the (first) simulator's market time

        def build(name: str, spec: ExchangeSpec) -> KalshiAdapter:
            sim = simulators.get(name)
            if sim is not None:
                signer = KalshiSigner.from_file(sim.api_key.key_id, sim.api_key.key_file)
                return build_venue_adapter(
                    spec,
                    clock,
                    simulator_urls=(sim.rest_url, sim.ws_url),
                    signer=signer,
                    wall_clock=wall,
                    metrics=runtime.metrics,
                    exchange_label=name,
                )
            return build_venue_adapter(spec, clock, wall_clock=wall, metrics=runtime.metrics, exchange_label=name)

        runtime = NodeRuntime(
            clock,
            RuntimeOptions(
                state_dir=state_dir,
                database=Path(node_spec.persistence.path) if options.state_dir is None else None,
                cycle_s=options.cycle_s,
                checkpoint_interval_s=float(node_spec.recovery.checkpoint_interval_seconds),
                pnl_snapshot_interval_s=float(node_spec.persistence.pnl_snapshot_interval_seconds),
                recording_dir=state_dir / "sessions" if options.state_dir is not None else None,
            ),
            build,
        )
        watch_paths = [p for p in (options.watch if options.watch else options.paths) if p != "-"]
        gitops = GitOpsSource(runtime, watch_paths)
        same_files = not options.watch or list(options.watch) == list(options.paths)
        start_source = await gitops.source_label() if same_files and watch_paths else "file"
        await runtime.start(admitted, source=start_source)
        if watch_paths:
            await gitops.rescan("startup")  # claims what it declares; a --watch DIR is applied here
        if options.on_gitops is not None:
            options.on_gitops(gitops)
        token = load_or_create_token(state_dir, node_spec.api.token_env)
        api = ControlApi(
            runtime,
            token,
            host=node_spec.api.host,
            port=options.api_port if options.api_port is not None else node_spec.api.port,
            metrics_public=node_spec.api.metrics_public,
        )
        await api.start()
        (state_dir / "api-url").write_text(api.url + "\n")  # how mmctl finds this node from its state dir
        webhooks = ChangeWebhooks(runtime, list(node_spec.api.change_webhooks))
        webhooks.start()
        if options.on_started is not None:
            options.on_started(runtime, api)
        stop = asyncio.Event()
        requests: list[ShutdownRequest] = []

        def request_shutdown(request: ShutdownRequest) -> None:
            """Every trigger ends here: it only records and wakes the loop (FR-1102); the loop does the work."""
            if stop.is_set() and request.mode == "immediate":
                runtime.interrupt_wait.set()  # already shutting down: stop waiting for fills
            requests.append(request)
            stop.set()

        signals = ShutdownSignals(options.shutdown_mode or node_spec.shutdown.default_mode, request_shutdown)
        api.hooks.shutdown = lambda mode: request_shutdown(ShutdownRequest(mode, "api"))

        async def reload_requested() -> list[str]:
            result = await gitops.rescan("api", force=True)
            if result.outcome in ("rejected", "stalled"):
                raise ReloadRefusedError(result.error or result.outcome)
            return [*result.changed, *(f"{key} (pruned)" for key in result.pruned)]

        def suspend_requested(reason: str) -> bool:
            gitops.suspend(reason)
            return True

        if watch_paths:
            api.hooks.reload = reload_requested
            api.hooks.suspend_source = suspend_requested
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, signals.handle, sig)
        health = asyncio.create_task(_health_watch(runtime, node_spec, request_shutdown), name="health-watch")
        if watch_paths:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, gitops.request_rescan, "signal")
        watcher: asyncio.Task[None] | None = None
        if watch_paths and (options.watch or (node_spec.hot_reload.enabled and node_spec.hot_reload.file_watch)):
            watcher = asyncio.create_task(gitops.watch(stop), name="gitops-watch")
        try:
            if options.duration_s is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), options.duration_s)
            else:
                await stop.wait()
        finally:
            health.cancel()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            summary = runtime.summary()
            summary["api"] = api.url
            summary["state_dir"] = str(state_dir)
            await webhooks.stop()
            await api.stop()
            with contextlib.suppress(FileNotFoundError):
                (state_dir / "api-url").unlink()
            chosen = most_urgent(requests) or ShutdownRequest(options.shutdown_mode or "", "duration")
            outcome = await runtime.stop(chosen.mode or node_spec.shutdown.default_mode, chosen.trigger)
            # signal handlers stay until here: a second Ctrl-C during a drain must still reach us
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        if outcome is not None:
            summary["shutdown"] = {
                "mode": outcome.mode,
                "trigger": outcome.trigger,
                "seconds": round(outcome.seconds, 3),
                "cancelled": outcome.cancelled,
                "open_orders_left": outcome.open_orders_left,
                "unwound_contracts": str(outcome.unwound_contracts),
                "flushed": outcome.flushed,
                "notes": outcome.notes,
            }
        summary["exit_code"] = runtime.exit_code()
        summary["final"] = runtime.summary()["accounts"]
        return summary
