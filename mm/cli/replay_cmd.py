"""``mmctl replay FILE``: replay a recorded session through the node and check it reproduces the recording (FR-902).

By default the full replay (:class:`~mm.controller.replay_node.NodeReplayer`): the unmodified Market reconciler
runs every recorded reconcile cycle on the recorded clock against the recording (a replay adapter answers its
order calls), and every ``quote_generated``, order action and ``state_snapshot`` must come out identical.
``--quotes-only`` replays only the quote path (:class:`~mm.reconcilers.replay_path.EngineQuotePath`): faster, and
exact on older recordings that lack what the full replay needs — which is why an older recording (no
``replay_format`` in its ``session_start``) gets the quote path unless ``--full`` asks for the node.

Exit codes: 0 identical, 1 a divergence (the report names the record, field, expected and got) or a file that
cannot be replayed (a corrupt or truncated line: the file and line number, never a traceback).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from mm.cli.exit_codes import ExitCode
from mm.cli.spec_files import load_strategy_and_policy
from mm.controller.replay_node import NodeReplayer, NodeReplayReport
from mm.reconcilers.replay_path import EngineQuotePath
from mm.recording.format import SessionFormatError, SessionReader
from mm.recording.replay import MODES, Divergence, ReplayError, ReplayMode, ReplayReport, SessionReplayer

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def load_strategy_override(paths: list[str]) -> dict[str, Any]:
    """The one Strategy in ``paths`` (admitted like ``mmctl apply``), as a spec mapping."""
    strategy, _ = load_strategy_and_policy(paths)
    if strategy is None:
        raise ReplayError(f"no Strategy in {', '.join(paths)}")
    return strategy


def _print_divergence(d: Divergence) -> None:
    out.print(f"  record:   {d.index} (seq {d.seq})", markup=False)
    out.print(f"  type:     {d.type}", markup=False)
    out.print(f"  field:    {d.field}", markup=False)
    out.print(f"  expected: {d.expected!r}", markup=False)
    out.print(f"  got:      {d.got!r}", markup=False)


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
    quotes_only: Annotated[
        bool,
        typer.Option("--quotes-only", help="Replay only the quote path (strategy + risk), not the whole node."),
    ] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help="Run the node even on an older recording (approximately: see the docs)."),
    ] = False,
) -> int:
    """Replay a recorded session through the node (FR-902): exit 0 when every quote_generated, order action and
    state_snapshot is reproduced exactly, 1 with the first divergence (record, field, expected, got) or when the
    file cannot be replayed."""
    if mode not in MODES:
        err.print(f"error: --mode must be one of {', '.join(MODES)}, not {mode!r}", markup=False)
        return ExitCode.USAGE
    chosen: ReplayMode = "accelerated" if mode == "accelerated" else "realtime" if mode == "realtime" else "instant"
    report: ReplayReport | NodeReplayReport
    notes: list[str] = []
    try:
        override = load_strategy_override(filename) if filename else None
        if not quotes_only and not full and recording_format(file) < 2:
            quotes_only = True
            notes.append(
                "an older recording (no reconcile records, no answers to cancels and amends): the node cannot be "
                "replayed on it exactly, so its quote path is (--full runs the node on it, approximately)"
            )
        if quotes_only:
            report = SessionReplayer(
                file, EngineQuotePath, mode=chosen, speed=speed, from_snapshot=from_snapshot, strategy_override=override
            ).run()
        else:
            report = NodeReplayer(
                file, mode=chosen, speed=speed, from_snapshot=from_snapshot, strategy_override=override
            ).run()
    except (SessionFormatError, ReplayError) as exc:
        err.print(f"error: cannot replay: {exc}", markup=False)
        return ExitCode.ERROR
    out.print(report.describe(), markup=False)
    for note in [*notes, *getattr(report, "notes", ())]:
        out.print(f"note: {note}", markup=False)
    if report.divergence is None:
        return ExitCode.OK
    _print_divergence(report.divergence)
    if isinstance(report, NodeReplayReport) and report.replay_format < 2:
        out.print("note: --quotes-only checks an older recording's quotes exactly", markup=False)
    return ExitCode.DIFFERENCES


def recording_format(path: str) -> int:
    """The file's ``session_start.replay_format`` (1 when absent: written before the full replay existed)."""
    with SessionReader(path) as reader:
        first = next(iter(reader), None)
    return int(first.data.get("replay_format") or 1) if first is not None and first.type == "session_start" else 2
