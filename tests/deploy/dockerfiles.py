"""Just enough of Dockerfile and .dockerignore syntax to check ours without a Docker engine (tests/deploy)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.main

from mm.cli.main import app

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    """Upper case: FROM, RUN, COPY, ..."""
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form argument (``["a", "b"]``), None for the shell form."""
        return _exec_form(self.args)

    def flags(self) -> tuple[dict[str, str], list[str]]:
        """``--name=value`` flags (COPY, HEALTHCHECK) and the remaining words (shell-split)."""
        words = shlex.split(self.args)
        flags: dict[str, str] = {}
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags[name] = value
        return flags, words


def _exec_form(text: str) -> list[str] | None:
    text = text.strip()
    if not text.startswith("["):
        return None
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order: comments and blank lines dropped, ``\\`` continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # comments may sit inside a continued instruction; Docker skips them too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The build stages, each starting with its FROM."""
    out: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            out.append([])
        assert out, f"line {instruction.line}: {instruction.keyword} before the first FROM"
        out[-1].append(instruction)
    return out


def healthcheck_command(instruction: Instruction) -> list[str]:
    """The command of ``HEALTHCHECK [--options] CMD ["..."]`` (exec form required)."""
    match = re.match(r"^((?:--\S+\s+)*)CMD\s+(.*)$", instruction.args, re.DOTALL)
    assert match is not None, f"HEALTHCHECK without CMD: {instruction.args!r}"
    command = _exec_form(match.group(2))
    assert command is not None, "HEALTHCHECK CMD should use the exec form (no shell in between)"
    return command


# ---------------------------------------------------------------------- .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go's filepath.Match plus ``**``) as a regex over a context-relative path."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes?, pattern) in file order; ``!pattern`` re-includes."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line[1:] if include else line
        pattern = pattern.strip().lstrip("/").removeprefix("./").rstrip("/")
        rules.append((not include, _pattern_regex(pattern)))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether ``path`` (relative to the context) is left out of the build context: the last rule matching it
    or one of its parent directories decides."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for excludes, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            verdict = excludes
    return verdict


def parse_mmctl(args: list[str]) -> dict[str, Any]:
    """Parse ``mmctl ARGS`` as the CLI would, without running it: the subcommand's parameters. Raises the CLI's
    usage error (``No such option``...) for anything the command does not accept."""
    group = typer.main.get_command(app)
    root = group.context_class(group, info_name="mmctl")
    command = group.get_command(root, args[0])  # type: ignore[attr-defined]
    assert command is not None, f"mmctl has no subcommand {args[0]!r}"
    params: dict[str, Any] = command.make_context(args[0], list(args[1:]), parent=root).params
    return params
