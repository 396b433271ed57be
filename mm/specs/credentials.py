"""Refusing inline credentials in specs.

Specs are stored, versioned, diffed and logged, so a secret written into one would spread everywhere.
Specs may only *reference* credentials: an environment variable's name (``*_env``) or a key file path
(``*_file`` / ``*_path``). This scan runs before model validation so that no later error message can
echo a secret; its own messages name the field, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from mm.specs.types import FieldProblem

_SECRET_WORDS: Final = re.compile(
    r"(^|[_-])(secret|password|passwd|passphrase|token|api[_-]?key|private[_-]?key|access[_-]?key|"
    r"signature|credentials?|auth[_-]?header)([_-]|$)",
    re.IGNORECASE,
)
_REFERENCE_SUFFIXES: Final = ("_env", "_file", "_path")
_PEM: Final = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")


def looks_like_secret_field(name: str) -> bool:
    """A field name that would hold a secret itself (``api_key``, ``token``), not a reference to one."""
    lowered = name.lower()
    if lowered.endswith(_REFERENCE_SUFFIXES):
        return False
    return bool(_SECRET_WORDS.search(lowered))


def find_inline_credentials(spec: Any, path: tuple[str | int, ...] = ()) -> list[FieldProblem]:
    """Paths (relative to ``spec``) where a secret seems to be written inline, with a message."""
    problems: list[FieldProblem] = []
    if isinstance(spec, Mapping):
        for key, value in spec.items():
            here = (*path, key)
            if isinstance(key, str) and looks_like_secret_field(key) and value not in (None, ""):
                problems.append(
                    (
                        here,
                        "credentials must not be written into a spec; reference them instead "
                        "(an env var name in a *_env field, or private_key_file)",
                    )
                )
            else:
                problems += find_inline_credentials(value, here)
    elif isinstance(spec, list):
        for i, value in enumerate(spec):
            problems += find_inline_credentials(value, (*path, i))
    elif isinstance(spec, str) and _PEM.search(spec):
        problems.append((path, "contains a PEM block; put keys in a file and reference it with private_key_file"))
    return problems
