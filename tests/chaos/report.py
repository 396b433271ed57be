"""Render the chaos suite's measurements as docs/resilience.md's table.

    python -m tests.chaos.report                          # print the table of .chaos/results.json
    python -m tests.chaos.report FILE --write docs/resilience.md

``--write`` replaces what is between the ``<!-- chaos-results:begin -->`` and ``<!-- chaos-results:end -->``
markers of the document and leaves the rest alone. ``make chaos`` runs the suite and then this.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tests.chaos.results import RESULTS_DIR
from tests.chaos.scenarios import SCENARIOS

BEGIN = "<!-- chaos-results:begin -->"
END = "<!-- chaos-results:end -->"
HIDDEN = {"seed", "xfail_reason", "failure"}


def _pick(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Several tests may measure one scenario (kill -9 once and the soak): show the longest run."""
    return max(entries, key=lambda e: (e.get("details", {}).get("kills", 0), entries.index(e)))


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _recovery(entry: dict[str, Any]) -> str:
    details = entry.get("details", {})
    median = details.get("restart_to_quoting_s_median")
    if median is not None:
        kills = details["kills"]
        return (
            f"median {_seconds(median)}, max {_seconds(details['restart_to_quoting_s_max'])} "
            f"over {kills} kill{'s' if kills != 1 else ''}"
        )
    return _seconds(entry.get("recovery_s"))


def _notes(entry: dict[str, Any]) -> str:
    details = entry.get("details", {})
    parts = []
    for key, value in details.items():
        if key in HIDDEN or isinstance(value, list | dict) or key.startswith("restart_to_quoting"):
            continue
        parts.append(f"{key.replace('_', ' ')} {value}")
    return "; ".join(parts)


def _result(entry: dict[str, Any]) -> str:
    outcome = str(entry.get("outcome", "unknown"))
    details = entry.get("details", {})
    if outcome == "xfailed":
        return f"xfail ({details.get('xfail_reason', '')})"
    if outcome == "failed" and details.get("failure"):
        return f"**failed**: {details['failure']}"
    return outcome


def render(document: dict[str, Any]) -> str:
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for entry in document.get("results", []):
        by_scenario.setdefault(entry["scenario"], []).append(entry)
    lines = [
        f"Measured by `{document.get('command', 'make chaos')}` on {document.get('generated', '?')} "
        f"(commit {document.get('commit') or '?'}; {document.get('machine', '')}); "
        "regenerate with `make chaos`.",
        "",
        "| scenario | injected | expected behaviour | recovery time (what) | data lost | result | other figures |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        entries = by_scenario.get(scenario.id)
        if not entries:
            lines.append(f"| {scenario.title} | {scenario.injection} | {scenario.expected} | not run | — | not run | |")
            continue
        entry = _pick(entries)
        lost = entry.get("data_lost")
        lines.append(
            f"| {scenario.title} | {scenario.injection} | {scenario.expected} | "
            f"{_recovery(entry)} ({scenario.measured}) | {'—' if lost is None else lost} | {_result(entry)} | "
            f"{_notes(entry)} |"
        )
    return "\n".join(lines) + "\n"


def write(document_path: Path, table: str) -> None:
    text = document_path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{document_path}: no {BEGIN} … {END} markers to write between")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    document_path.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", type=Path, default=RESULTS_DIR / "results.json")
    parser.add_argument("--write", type=Path, help="the document whose results section to replace")
    args = parser.parse_args(argv)
    if not args.results.exists():
        raise SystemExit(f"{args.results}: no results (run `make chaos` first)")
    table = render(json.loads(args.results.read_text()))
    if args.write is not None:
        write(args.write, table)
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
