"""What only the launcher of a node can do, handed to the API: stop the node, rescan its source files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

__all__ = ["ApiHooks"]


class ApiHooks:
    def __init__(self) -> None:
        self.shutdown: Callable[[str], None] | None = None
        """Begin a shutdown with a mode (immediate, drain, pause, unwind)."""
        self.reload: Callable[[], Awaitable[list[str]]] | None = None
        """Rescan the source files; returns the keys whose spec changed."""
        self.suspend_source: Callable[[str], bool] | None = None
        """Suspend the git-ops source (a rollback of what it manages); returns whether there was one."""
