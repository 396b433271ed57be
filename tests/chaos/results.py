"""Measurements of a chaos run, written to a JSON file that :mod:`tests.chaos.report` renders.

Each test gets a :class:`Measurement` (the ``measure`` fixture): the scenario id, the recovery time in seconds
(what it is the time of is the scenario's ``measured``), the data lost (0 when the invariants hold) and any
other figures worth reporting. The session writes every measurement, with the test's outcome, to
``.chaos/results.json`` when the full suite ran (``-m chaos``) and ``.chaos/quick.json`` otherwise, or to
``$MM_CHAOS_RESULTS``. ``.chaos/`` carries its own ``.gitignore``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mm.clock import WallClock, format_rfc3339_us

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / ".chaos"


@dataclass
class Measurement:
    scenario: str
    test: str
    recovery_s: float | None = None
    data_lost: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    outcome: str = "unknown"

    def recovered(self, seconds: float) -> None:
        self.recovery_s = round(seconds, 3)

    def lost(self, count: int) -> None:
        self.data_lost = count

    def note(self, **figures: Any) -> None:
        self.details.update({k: _round(v) for k, v in figures.items()})

    def series(self, name: str, values: list[float]) -> None:
        """A list of times: kept whole, with its median and max."""
        if values:
            self.details[name] = [round(v, 3) for v in values]
            self.details[f"{name}_median"] = round(statistics.median(values), 3)
            self.details[f"{name}_max"] = round(max(values), 3)


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def results_path(full: bool) -> Path:
    override = os.environ.get("MM_CHAOS_RESULTS")
    if override:
        return Path(override)
    return RESULTS_DIR / ("results.json" if full else "quick.json")


def write_results(path: Path, measurements: list[Measurement], *, command: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent == RESULTS_DIR:
        (RESULTS_DIR / ".gitignore").write_text("*\n")
    document = {
        "generated": format_rfc3339_us(WallClock().now_us()),
        "command": command,
        "commit": _commit(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "results": [asdict(m) for m in measurements],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _commit() -> str:
    """HEAD's short id, with ``+changes`` when the working tree differs from it (what ran is not that commit)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=5
        )
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
    except OSError:
        return ""
    commit = head.stdout.strip()
    return f"{commit}+changes" if commit and changed.stdout.strip() else commit
