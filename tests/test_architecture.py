"""Rules of design.md §3 that import-linter cannot see."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mm"
CLOCK_READS = re.compile(r"\b(time\.time(_ns)?\(|datetime\.(now|utcnow|today)\(|date\.today\(|time\.monotonic(_ns)?\()")
ALLOWED = {PACKAGE / "clock.py"}


def test_only_the_clock_module_reads_the_system_clock() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in ALLOWED
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if CLOCK_READS.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_no_float_conversions_of_money_in_the_domain() -> None:
    offenders = [
        f"{path.name}:{number}"
        for path in sorted((PACKAGE / "domain").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bfloat\(", line)
    ]
    assert offenders == []
