"""How mmctl reaches resources: a running node's control API, or the state dir offline.

``--server`` (or ``MMCTL_SERVER``) names the node's API; the token comes from ``MMCTL_TOKEN`` or the state
dir's ``api-token``. Without ``--server``, a state dir whose lock is held by a running node is reached through
the address that node wrote next to its token (``api-url``); a state dir with no node running is edited offline
(:class:`~mm.controller.offline.OfflineSession`) — the verbs that can work offline do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mm.domain.errors import MmError
from mm.state.checkpoint import live_lock_holder

__all__ = ["ApiError", "Target", "resolve_target"]

DEFAULT_STATE_DIR = Path("./data")


class ApiError(MmError):
    """The control API refused the request (the message carries its answer) or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class Target:
    state_dir: Path
    server: str | None
    token: str | None

    @property
    def online(self) -> bool:
        return self.server is not None

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        assert self.server is not None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = httpx.request(
                method, self.server.rstrip("/") + path, json=json, params=params, headers=headers, timeout=30.0
            )
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the control API at {self.server}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            detail = body.get("error") or body.get("detail") if isinstance(body, dict) else body
            problems = body.get("problems") if isinstance(body, dict) else None
            message = f"{method} {path}: HTTP {response.status_code}: {detail}"
            if problems:
                message += "\n" + "\n".join(f"  {p}" for p in problems)
            raise ApiError(message, status=response.status_code, body=body)
        return body


def resolve_target(server: str | None, state_dir: Path | None, token_env: str = "MMCTL_TOKEN") -> Target:
    directory = state_dir or Path(os.environ.get("MMCTL_STATE_DIR", str(DEFAULT_STATE_DIR)))
    url = server or os.environ.get("MMCTL_SERVER")
    if url is None and live_lock_holder(directory / "mmctl.lock") is not None and (directory / "api-url").exists():
        url = (directory / "api-url").read_text().strip()
    token = os.environ.get(token_env)
    if token is None and (directory / "api-token").exists():
        token = (directory / "api-token").read_text().strip()
    return Target(directory, url, token)
