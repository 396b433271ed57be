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

from mm.domain.errors import MmError


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1
    DIFFERENCES = 1
    USAGE = 2
    INTERRUPTED = 130


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for an error that reached the top of the CLI."""
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, MmError):
        return ExitCode.ERROR
    return ExitCode.ERROR
