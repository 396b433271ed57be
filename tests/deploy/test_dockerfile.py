"""The Dockerfile (NFR-501/502), checked without a Docker engine: its instructions are parsed and every claim
they make about the repository and the package is verified against the real thing — the console script, the
CLI's options, the files it copies (and that .dockerignore keeps them in the context), that those files alone
build the package, and that its HEALTHCHECK command really tells a healthy API from a broken one."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.exceptions import TyperException

from mm.specs.node import Api
from tests.deploy.dockerfiles import (
    REPO,
    Instruction,
    dockerignore_rules,
    healthcheck_command,
    ignored,
    parse_dockerfile,
    parse_mmctl,
    stages,
)

INSTRUCTIONS = parse_dockerfile((REPO / "Dockerfile").read_text())
STAGES = stages(INSTRUCTIONS)
FINAL = STAGES[-1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
IGNORE_RULES = dockerignore_rules((REPO / ".dockerignore").read_text())


def final(keyword: str) -> list[Instruction]:
    return [i for i in FINAL if i.keyword == keyword]


def the_one(keyword: str) -> Instruction:
    found = final(keyword)
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


def final_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in final("ENV"):
        _, words = instruction.flags()
        for word in words:
            name, sep, value = word.partition("=")
            assert sep, f"line {instruction.line}: use ENV NAME=value"
            env[name] = value
    return env


def cmd() -> list[str]:
    command = the_one("CMD").exec_form()
    assert command is not None, "CMD should use the exec form"
    return command


# ---------------------------------------------------------------------- base, user, install


def test_the_parser_reads_continuations_and_exec_forms() -> None:
    parsed = parse_dockerfile('FROM a AS b\n# c\nRUN x \\\n  # inside\n  && y\nCMD ["p", "q r"]\n')
    assert [(i.keyword, i.args, i.line) for i in parsed] == [
        ("FROM", "a AS b", 1),
        ("RUN", "x && y", 3),
        ("CMD", '["p", "q r"]', 6),
    ]
    assert parsed[2].exec_form() == ["p", "q r"] and parsed[1].exec_form() is None


def test_every_stage_is_slim_python_3_11_and_copies_come_from_defined_stages() -> None:
    names: set[str] = set()
    for stage in STAGES:
        image, *rest = stage[0].args.split()
        assert image.startswith("python:3.11-slim"), image
        if rest:
            assert rest[0].upper() == "AS" and len(rest) == 2
            names.add(rest[1])
    for stage in STAGES:
        for copy in (i for i in stage if i.keyword == "COPY"):
            source = copy.flags()[0].get("from")
            assert source is None or source in names, f"line {copy.line}: COPY --from={source}: no such stage"


def test_the_image_runs_as_a_non_root_user_created_in_it() -> None:
    users = final("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in {"root", "0"}
    assert users[-1].line > max(i.line for i in final("RUN")), "a RUN after USER would run as that user anyway"
    creation = " ".join(i.args for i in final("RUN"))
    assert "useradd" in creation and creation.split("useradd", 1)[1].split("&&")[0].split()[-1] == user
    assert "--uid 0 " not in creation


def test_the_package_is_installed_from_the_repository_not_editable() -> None:
    project = PYPROJECT["project"]["name"]
    runs = [i.args for stage in STAGES for i in stage if i.keyword == "RUN"]
    assert any("pip wheel" in run and run.rstrip().endswith(" .") for run in runs), "the build stage builds ."
    installs = [run for run in (i.args for i in final("RUN")) if "pip install" in run]
    assert installs and all(" -e " not in f" {run} " and "--editable" not in run for run in installs)
    assert any(f" {project}" in run for run in installs)


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    copied = []
    for stage in STAGES:
        for copy in (i for i in stage if i.keyword in {"COPY", "ADD"}):
            flags, words = copy.flags()
            if "from" in flags:
                continue
            *sources, _destination = words
            for source in sources:
                assert (REPO / source).exists(), f"line {copy.line}: COPY {source}: not in the repository"
                assert not ignored(source, IGNORE_RULES), f"line {copy.line}: {source} is excluded by .dockerignore"
                copied.append(source)
    assert {"pyproject.toml", "mm"} <= set(copied)


def test_dockerignore_keeps_the_venv_data_git_caches_and_secrets_out() -> None:
    for path in (".venv/bin/python", "data/quickstart/mmctl.db", ".git/HEAD", ".env", "mm/__pycache__/x.pyc",
                 ".mypy_cache/3.11/x.json", ".pytest_cache/v/x", ".ruff_cache/x", "mmctl.egg-info/PKG-INFO",
                 "keys/kalshi.pem"):  # fmt: skip
        assert ignored(path, IGNORE_RULES), path
    assert not ignored(".env.example", IGNORE_RULES)
    assert not ignored("mm/cli/main.py", IGNORE_RULES)


def test_the_copied_files_alone_build_the_package(tmp_path: Path) -> None:
    """What the build stage's COPY lines put in /src is enough for setuptools: an sdist built from exactly those
    files has every module and the console script (a missing README or package would fail here)."""
    context = tmp_path / "src"
    context.mkdir()
    for copy in (i for i in STAGES[0] if i.keyword == "COPY"):
        *sources, destination = copy.flags()[1]
        for source in sources:
            # Docker: a directory's contents go to the destination; a file goes into a destination ending in /
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, context / destination, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target = context / destination / source if destination.endswith("/") else context / destination
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(REPO / source, target)
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"],
        cwd=context,
        check=True,
        capture_output=True,
    )
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        entry_points = next(n for n in archive.getnames() if n.endswith("egg-info/entry_points.txt"))
        scripts = archive.extractfile(entry_points).read().decode()  # type: ignore[union-attr]
        pkg_info = next(n for n in archive.getnames() if n.count("/") == 1 and n.endswith("/PKG-INFO"))
        metadata = archive.extractfile(pkg_info).read().decode()  # type: ignore[union-attr]
    modules = {str(p.relative_to(REPO)) for p in (REPO / "mm").rglob("*.py")}
    assert modules <= names and "mm/py.typed" in names
    assert "mmctl = mm.cli.main:main" in scripts
    readme = (REPO / PYPROJECT["project"]["readme"]).read_text().splitlines()[0]
    assert readme in metadata  # setuptools quietly builds without a missing readme; the long description shows it


# ---------------------------------------------------------------------- entrypoint, command, state


def test_the_entrypoint_is_the_packages_console_script() -> None:
    entrypoint = the_one("ENTRYPOINT").exec_form()
    assert entrypoint is not None and len(entrypoint) == 1, "ENTRYPOINT should be the exec form of one command"
    scripts = PYPROJECT["project"]["scripts"]
    assert entrypoint[0] in scripts
    module, _, function = scripts[entrypoint[0]].partition(":")
    target = getattr(__import__(module, fromlist=[function]), function)
    assert callable(target)


def test_the_default_command_parses_as_an_mmctl_command() -> None:
    params = parse_mmctl(cmd())
    assert params["filename"] == ["/etc/mmctl"]
    assert str(params["state_dir"]) == "/var/lib/mmctl"
    with pytest.raises(TyperException, match="No such option"):  # the check can fail
        parse_mmctl([*cmd(), "--no-such-option"])


def test_the_state_dir_is_a_volume_owned_by_the_user_and_the_cli_default() -> None:
    state_dir = cmd()[cmd().index("--state-dir") + 1]
    volumes = [v for i in final("VOLUME") for v in (i.exec_form() or i.args.split())]
    assert state_dir in volumes
    assert final_env()["MMCTL_STATE_DIR"] == state_dir  # `docker exec ... mmctl status` finds the node
    user = final("USER")[-1].args.split(":")[0]
    assert any(f"chown {user}:{user} {state_dir}" in i.args for i in final("RUN"))
    specs_dir = cmd()[cmd().index("-f") + 1]
    assert any(specs_dir in i.args and "mkdir" in i.args for i in final("RUN"))


# ---------------------------------------------------------------------- healthcheck


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_healthcheck(url: str | None) -> int:
    command = healthcheck_command(the_one("HEALTHCHECK"))
    env = {k: v for k, v in os.environ.items() if k != "MMCTL_HEALTH_URL"}
    if url is not None:
        env["MMCTL_HEALTH_URL"] = url
    done = subprocess.run([sys.executable, *command[1:]], check=False, env=env, capture_output=True, timeout=30)
    return done.returncode


def test_the_healthcheck_calls_health_with_python_on_the_api_port() -> None:
    command = healthcheck_command(the_one("HEALTHCHECK"))
    assert command[0] == "python" and not {"curl", "wget"} & set(" ".join(command).split())
    default = final_env()["MMCTL_HEALTH_URL"]
    port = Api().port
    assert default == f"http://127.0.0.1:{port}/health" and f"'{default}'" in command[-1]
    assert str(port) in the_one("EXPOSE").args.split()


def test_the_healthcheck_command_passes_on_health_and_fails_otherwise(health_server: str) -> None:
    assert run_healthcheck(f"{health_server}/health") == 0
    assert run_healthcheck(f"{health_server}/broken") != 0  # a 503 is unhealthy
    assert run_healthcheck(closed_port_url()) != 0  # nothing listening


def closed_port_url() -> str:
    """A loopback URL where nothing listens (a port bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/health"
