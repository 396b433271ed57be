"""``mmctl replay FILE``: replay a recorded session's quote path and check it reproduces the recording (FR-902).

The quote path it replays is :class:`~mm.reconcilers.replay_path.EngineQuotePath` (the node's own strategy and
risk engines built from the recorded specs); the recording package holds the generic replayer.

Exit codes: 0 identical, 1 a divergence (the report names the record, field, expected and got) or a file that
cannot be replayed (a corrupt or truncated line: the file and line number, never a traceback).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from mm.cli.exit_codes import ExitCode
from mm.reconcilers.replay_path import EngineQuotePath
from mm.recording.format import SessionFormatError
from mm.recording.replay import MODES, ReplayError, ReplayMode, SessionReplayer
from mm.specs.admission import admit
from mm.specs.errors import AdmissionError
from mm.specs.strategy import StrategySpec
from mm.specs.yaml_loader import load_sources

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def load_strategy_override(paths: list[str]) -> dict[str, Any]:
    """The one Strategy in ``paths`` (admitted like ``mmctl apply``), as a spec mapping."""
    result = admit(load_sources(paths))
    strategies = [r for r in result.resources if r.kind == "Strategy"]
    if not strategies:
        if result.issues:
            raise AdmissionError(result.issues)
        raise ReplayError(f"no valid Strategy in {', '.join(paths)}")
    if len(strategies) > 1:
        raise ReplayError(f"several Strategies in {', '.join(paths)} ({', '.join(r.name for r in strategies)})")
    spec = strategies[0].spec
    assert isinstance(spec, StrategySpec)
    dumped: dict[str, Any] = spec.model_dump(mode="json")
    return dumped


def replay(
    file: Annotated[str, typer.Argument(help="A session file (.jsonl.gz or .jsonl).")],
    mode: Annotated[str, typer.Option("--mode", help="instant, accelerated (×--speed) or realtime.")] = "instant",
    speed: Annotated[float, typer.Option("--speed", help="Acceleration factor for --mode accelerated.")] = 10.0,
    from_snapshot: Annotated[
        int | None, typer.Option("--from-snapshot", help="Start checking at the N-th state_snapshot (1 = first).")
    ] = None,
    filename: Annotated[
        list[str] | None,
        typer.Option("--filename", "-f", help="A Strategy to replay instead of the recorded one (what-if)."),
    ] = None,
) -> int:
    """Replay a recorded session's quote path (FR-902): exit 0 when every quote_generated is reproduced exactly,
    1 with the first divergence (record, field, expected, got) or when the file cannot be replayed."""
    if mode not in MODES:
        err.print(f"error: --mode must be one of {', '.join(MODES)}, not {mode!r}", markup=False)
        return ExitCode.USAGE
    chosen: ReplayMode = "accelerated" if mode == "accelerated" else "realtime" if mode == "realtime" else "instant"
    try:
        override = load_strategy_override(filename) if filename else None
        replayer = SessionReplayer(
            file, EngineQuotePath, mode=chosen, speed=speed, from_snapshot=from_snapshot, strategy_override=override
        )
        report = replayer.run()
    except SessionFormatError as exc:
        err.print(f"error: cannot replay: {exc}", markup=False)
        return ExitCode.ERROR
    except ReplayError as exc:
        err.print(f"error: cannot replay: {exc}", markup=False)
        return ExitCode.ERROR
    if report.divergence is not None:
        d = report.divergence
        out.print(report.describe(), markup=False)
        out.print(f"  record:   {d.index} (seq {d.seq})", markup=False)
        out.print(f"  type:     {d.type}", markup=False)
        out.print(f"  field:    {d.field}", markup=False)
        out.print(f"  expected: {d.expected!r}", markup=False)
        out.print(f"  got:      {d.got!r}", markup=False)
        return ExitCode.DIFFERENCES
    out.print(report.describe(), markup=False)
    return ExitCode.OK
