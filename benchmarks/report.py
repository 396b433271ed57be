"""Print median and p99 per benchmark from a pytest-benchmark JSON file saved with --benchmark-save-data.

    python benchmarks/report.py .benchmarks/latest.json

pytest-benchmark shows min/median/max but no percentiles; notes on issues quote median and p99.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str) -> None:
    report = json.loads(Path(path).read_text())
    print(f"{'benchmark':50s} {'median':>12s} {'p99':>12s} {'rounds':>8s}")
    for bench in sorted(report["benchmarks"], key=lambda b: b["stats"]["median"]):
        data = sorted(bench["stats"]["data"])
        p99 = data[min(len(data) - 1, int(len(data) * 0.99))]
        print(f"{bench['name']:50s} {_fmt(bench['stats']['median']):>12s} {_fmt(p99):>12s} {len(data):>8d}")


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.3f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.3f} ms"


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".benchmarks/latest.json")
