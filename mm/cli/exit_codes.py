"""Exit codes, mapped from errors in one place (kubectl's convention).

====  =====================================================================
0     success
1     an error (invalid specs, a failed operation); for ``diff``: differences
2     a usage error (unknown option, missing argument)
130   interrupted (Ctrl-C)
====  =====================================================================
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1
    DIFFERENCES = 1
    USAGE = 2
    INTERRUPTED = 130


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for an error that reached the top of the CLI (usage errors are typer's: 2)."""
    # MmError (invalid specs, failed operations) and unexpected errors alike are 1; only ^C differs.
    return ExitCode.INTERRUPTED if isinstance(error, KeyboardInterrupt) else ExitCode.ERROR
