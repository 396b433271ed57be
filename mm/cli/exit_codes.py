"""Exit codes, mapped from errors in one place (kubectl's convention).

====  =====================================================================
0     success
1     an error (invalid specs, a failed operation); for ``diff``: differences
2     a usage error (unknown option, missing argument)
3     ``run``: shut down forced immediate (SIGQUIT, a second Ctrl-C)
4     ``run``: stopped with the kill switch tripped
5     ``run``: the node's health check failed (shut down in ``shutdown.health_failure_mode``)
6     ``run``: the shutdown did not complete (orders of ours left open, or writes not flushed)
130   interrupted (Ctrl-C)
====  =====================================================================

``run`` takes its codes from :class:`mm.controller.shutdown.ExitCode` (a finished shutdown decides them).
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
