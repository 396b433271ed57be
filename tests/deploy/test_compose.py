"""docker-compose.yml, .env.example, the compose node specs and the controller's entry point (NFR-501), checked
without a Docker engine: the compose file is parsed and each thing it relies on is verified against the repository
and the code — paths, variables, ports, the specs (admitted by ``mmctl validate``), the commands (parsed by the
CLI) — and the controller's entry point and specs are run for real against a real simulator process, the way the
two containers talk to each other."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import orjson
import pytest
import yaml
from typer.testing import CliRunner

from mm.adapters.kalshi.signer import KalshiSigner
from mm.cli.main import app
from mm.clock import SimulatedClock
from mm.sim.setup import build_state, load_or_create_key
from mm.specs.exchange import ExchangeSpec
from mm.specs.node import TradingNodeSpec
from mm.specs.yaml_loader import load_path
from mm.state.checkpoint import LockFile
from tests.deploy.dockerfiles import REPO, healthcheck_command, parse_dockerfile, parse_mmctl

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SPECS_DIR = REPO / "deploy" / "docker" / "specs"
ENTRYPOINT = REPO / "deploy" / "docker" / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent
_VARIABLE = re.compile(r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and name.strip() == name and name not in values, f".env.example: bad line {line!r}"
            values[name] = value
    return values


def compose_variables_of(text: str) -> dict[str, set[str]]:
    """Variables interpolated in compose ``text`` with their modifiers; ``$$`` is a literal dollar."""
    found: dict[str, set[str]] = {}
    for match in _VARIABLE.finditer(text.replace("$$", "")):
        found.setdefault(match.group("braced") or match.group("bare"), set()).add(match.group("rest") or "")
    return found


def compose_variables() -> dict[str, set[str]]:
    """Every variable the compose file interpolates, with its modifiers (``:-default``, ``:?error``)."""
    return compose_variables_of((REPO / "docker-compose.yml").read_text())


def interpolate(value: Any, env: dict[str, str] | None = None) -> Any:
    """``value`` with ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}`` replaced as docker compose would with
    ``env`` (default: .env.example, a placeholder for the required values it leaves empty)."""
    if env is None:
        env = {name: val or f"<{name}>" for name, val in env_example().items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        rest = match.group("rest") or ""
        if name in env and (env[name] or not rest.startswith(":")):
            return env[name]
        if rest.startswith((":-", "-")):
            return rest.split("-", 1)[1]
        raise AssertionError(f"${{{name}}} is not set")

    return _VARIABLE.sub(substitute, value.replace("$$", "\x00")).replace("\x00", "$")


def spec_documents() -> dict[str, dict[str, Any]]:
    """The compose node specs by kind, read as mmctl reads them (numbers as exact decimals)."""
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(SPECS_DIR.glob("*.yaml")):
        for doc in load_path(path):
            docs[doc.data["kind"]] = doc.data
    return docs


def command_of(service: str) -> list[str]:
    command: list[str] = interpolate(SERVICES[service]["command"])
    return command


def mounts(service: str) -> list[tuple[str, str, str]]:
    """(source, target, mode) of a service's volumes (short syntax)."""
    out = []
    for entry in SERVICES[service].get("volumes", []):
        assert isinstance(entry, str), f"{service}: use the short volume syntax"
        source, target, *mode = entry.split(":")
        out.append((source, target, mode[0] if mode else "rw"))
    return out


def mount_source(service: str, target: str) -> tuple[str, str]:
    (found,) = [(source, mode) for source, t, mode in mounts(service) if t == target]
    return found


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


# ---------------------------------------------------------------------- the file itself


def test_the_four_services() -> None:
    assert set(SERVICES) == {"controller", "simulator", "prometheus", "grafana"}


def test_every_mounted_host_path_exists_and_every_named_volume_is_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for service in SERVICES:
        for source, target, mode in mounts(service):
            assert target.startswith("/"), f"{service}: {target}"
            assert mode in {"ro", "rw"}
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{service} mounts {source}, which is not in the repository"
            else:
                assert source in declared, f"{service}: named volume {source} is not declared"


def test_configuration_and_secrets_are_mounted_read_only() -> None:
    for service in SERVICES:
        for source, target, mode in mounts(service):
            if source.startswith("./"):
                assert mode == "ro", f"{service}: {source} -> {target} should be read-only"
    assert mount_source("controller", "/sim") == ("sim-state", "ro")  # the simulator's private key lives there


def test_every_variable_is_in_env_example_and_every_example_is_used() -> None:
    example = env_example()
    used = compose_variables()
    secret_sources = {s["environment"] for s in (COMPOSE.get("secrets") or {}).values() if "environment" in s}
    assert set(used) | secret_sources <= set(example), "add these to .env.example"
    assert set(example) <= set(used) | secret_sources, "these .env.example entries are used nowhere"


def test_secrets_have_no_value_in_the_example_and_compose_refuses_to_start_without_them() -> None:
    example = env_example()
    used = compose_variables()
    for name in ("MMCTL_API_TOKEN", "GRAFANA_ADMIN_PASSWORD"):
        assert example[name] == "", f"{name} must not have a value in .env.example"
        assert any(rest.startswith(":?") for rest in used[name]), f"${{{name}:?...}}: fail fast when unset"
    # every optional variable's example value is the compose file's default, so the example documents it
    for name, rests in used.items():
        for rest in rests:
            if rest.startswith(":-"):
                assert example[name] == rest[2:], f"{name}: .env.example says {example[name]!r}, compose {rest}"


def test_ports_are_published_on_the_host_loopback_only() -> None:
    for service, spec in SERVICES.items():
        for port in spec.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{service}: {port} would be public"
    assert "ports" not in SERVICES["simulator"]


# ---------------------------------------------------------------------- the controller and its specs


def test_the_compose_specs_validate() -> None:
    result = CliRunner().invoke(app, ["validate", "-f", str(SPECS_DIR)])
    assert result.exit_code == 0, result.output
    assert {"Exchange", "TradingNode", "Strategy", "RiskPolicy", "MarketSelector"} <= set(spec_documents())


def test_the_commands_parse_as_mmctl_commands() -> None:
    params = parse_mmctl(command_of("controller"))
    assert params["filename"] == ["/etc/mmctl"] and str(params["state_dir"]) == "/var/lib/mmctl"
    sim = parse_mmctl(command_of("simulator"))
    assert sim["host"] == "0.0.0.0" and sim["speed"] == 1.0  # real time: the controller runs on its wall clock
    assert mount_source("simulator", str(sim["state_dir"]))[0] == "sim-state"


def test_the_controller_reads_its_specs_and_keeps_its_state_on_a_volume() -> None:
    command = command_of("controller")
    assert mount_source("controller", option(command, "-f")) == ("./deploy/docker/specs", "ro")
    state_dir = option(command, "--state-dir")
    assert mount_source("controller", state_dir)[0] == "controller-state"
    node = TradingNodeSpec.model_validate(spec_documents()["TradingNode"]["spec"])
    for path in (node.state_dir, node.persistence.path, node.recording.output_dir):
        assert path == state_dir or path.startswith(state_dir + "/"), f"{path} is not on the state volume"


def test_the_controller_api_is_reachable_by_prometheus_with_the_token() -> None:
    controller = SERVICES["controller"]
    node = TradingNodeSpec.model_validate(spec_documents()["TradingNode"]["spec"])
    assert node.api.host == "0.0.0.0" and node.api.allow_non_loopback and node.metrics.enabled
    assert not node.api.metrics_public  # /metrics needs the token
    assert node.api.token_env is not None and node.api.token_env in controller["environment"]
    assert controller["environment"]["MMCTL_TOKEN"] == "${MMCTL_API_TOKEN}"  # the CLI inside the container
    (published,) = controller["ports"]
    assert published.rsplit(":", 1)[1] == str(node.api.port)
    assert COMPOSE["secrets"]["mmctl_api_token"]["environment"] == node.api.token_env
    assert prometheus_token_file() is not None


def prometheus_token_file() -> str | None:
    """Where the prometheus service gets the API token secret (its ``target``; /run/secrets/<name> by default)."""
    for entry in SERVICES["prometheus"].get("secrets", []):
        source = entry if isinstance(entry, str) else entry["source"]
        if source == "mmctl_api_token":
            target = None if isinstance(entry, str) else entry.get("target")
            return str(target) if target and target.startswith("/") else f"/run/secrets/{target or source}"
    return None


def test_prometheus_scrapes_the_controller_with_the_secret_as_bearer_token() -> None:
    """The contract with deploy/prometheus/prometheus.yml: target, metrics path, token file, rule files."""
    node = TradingNodeSpec.model_validate(spec_documents()["TradingNode"]["spec"])
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    jobs = [
        job
        for job in config["scrape_configs"]
        if any(f"controller:{node.api.port}" in t for sc in job.get("static_configs", []) for t in sc["targets"])
    ]
    assert jobs, f"no scrape job targets controller:{node.api.port}"
    job = jobs[0]
    assert job.get("metrics_path", "/metrics") == node.metrics.path
    token_file = (job.get("authorization") or {}).get("credentials_file") or job.get("bearer_token_file")
    assert token_file == prometheus_token_file()
    config_dir = PurePosixPath(next(t for s, t, _ in mounts("prometheus") if s.endswith("prometheus.yml"))).parent
    rules_target = config_dir / "rules"
    assert mount_source("prometheus", str(rules_target))[0] == "./deploy/prometheus/rules"
    rule_files = [config_dir / f for f in config.get("rule_files", [])]  # relative to the config file
    assert rule_files and all(f.parent == rules_target for f in rule_files)
    assert all(list((REPO / "deploy/prometheus/rules").glob(f.name)) for f in rule_files)


def test_grafana_provisions_from_the_mounted_dashboards_and_prometheus() -> None:
    """The contract with deploy/grafana/provisioning: dashboards from the mounted folder, data source prometheus."""
    provisioning = REPO / "deploy/grafana/provisioning"
    assert mount_source("grafana", "/etc/grafana/provisioning")[0] == "./deploy/grafana/provisioning"
    dashboards_target = "/var/lib/grafana/dashboards"
    assert mount_source("grafana", dashboards_target)[0] == "./deploy/grafana/dashboards"
    providers = [
        p
        for f in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for p in (yaml.safe_load(f.read_text()) or {}).get("providers", [])
    ]
    assert any(p.get("options", {}).get("path", "").startswith(dashboards_target) for p in providers)
    sources = [
        s
        for f in sorted((provisioning / "datasources").glob("*.y*ml"))
        for s in (yaml.safe_load(f.read_text()) or {}).get("datasources", [])
    ]
    assert any(s.get("type") == "prometheus" and "prometheus:9090" in s.get("url", "") for s in sources)


def test_the_exchange_points_at_the_simulator_service_with_the_entrypoints_key() -> None:
    exchange = ExchangeSpec.model_validate(spec_documents()["Exchange"]["spec"])
    assert exchange.venue == "simulator" and exchange.simulator is not None and not exchange.simulator.embedded
    sim_port = option(command_of("simulator"), "--port")
    assert exchange.base_url == f"http://simulator:{sim_port}/trade-api/v2"
    assert exchange.ws_url == f"ws://simulator:{sim_port}/trade-api/ws/v2"
    script = ENTRYPOINT.read_text()
    assert f"export {exchange.api_key_env}" in script  # the key id's variable is the one the entrypoint sets
    assert f'link="${{SIM_KEY_LINK:-{exchange.private_key_file}}}"' in script
    controller = SERVICES["controller"]
    assert mount_source("controller", controller["environment"]["SIM_STATE_DIR"]) == ("sim-state", "ro")
    assert controller["entrypoint"] == ["sh", "/opt/mmctl/docker/entrypoint.sh"]
    assert mount_source("controller", "/opt/mmctl/docker/entrypoint.sh") == ("./deploy/docker/entrypoint.sh", "ro")
    assert controller["depends_on"]["simulator"]["condition"] == "service_healthy"
    assert "healthcheck" in SERVICES["simulator"]  # or the image's check (the controller's /health) would fail


def test_the_controller_has_time_to_drain_and_a_lock_it_can_recognise() -> None:
    controller = SERVICES["controller"]
    node = TradingNodeSpec.model_validate(spec_documents()["TradingNode"]["spec"])
    grace = controller["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) >= node.shutdown.drain_timeout_seconds + 15
    assert controller["restart"] == "on-failure"  # exit 0 (stopped on request) stays stopped


# ---------------------------------------------------------------------- the entry point, run for real


@pytest.fixture
def stub_path(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A PATH whose ``mmctl`` records its arguments and SIM_API_KEY_ID (python: the venv's)."""
    stub_dir = tmp_path / "stub-bin"
    stub_dir.mkdir()
    record = tmp_path / "mmctl-called"
    stub = stub_dir / "mmctl"
    stub.write_text(
        '#!/bin/sh\n{ echo "key=${SIM_API_KEY_ID:-}"; for a in "$@"; do echo "arg=$a"; done; } > "$STUB_RECORD"\n'
    )
    stub.chmod(0o755)
    yield f"{stub_dir}:{VENV_BIN}:/usr/bin:/bin", record


def run_entrypoint(
    args: list[str], path: str, record: Path, state: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": path, "STUB_RECORD": str(record), "MMCTL_STATE_DIR": str(state), "HOME": str(state)}
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_entrypoint_exports_the_simulators_key_and_execs_mmctl(tmp_path: Path, stub_path: tuple[str, Path]) -> None:
    path, record = stub_path
    sim_dir = tmp_path / "sim"
    key = load_or_create_key(sim_dir, build_state(SimulatedClock(0)))  # what the simulator does at start
    link = tmp_path / "links" / "simulator.pem"
    done = run_entrypoint(
        ["run", "-f", "/etc/mmctl", "--note", "two words"],
        path,
        record,
        tmp_path / "state",
        SIM_STATE_DIR=str(sim_dir),
        SIM_KEY_LINK=str(link),
    )
    assert done.returncode == 0, done.stderr
    assert record.read_text().splitlines() == [
        f"key={key.key_id}",
        "arg=run",
        "arg=-f",
        "arg=/etc/mmctl",
        "arg=--note",
        "arg=two words",
    ]
    assert link.resolve() == key.key_file.resolve()
    signer = KalshiSigner.from_file(key.key_id, link)  # readable through the link, mode 0600 accepted
    assert signer.key_id == key.key_id


def test_the_entrypoint_without_a_simulator_only_execs(tmp_path: Path, stub_path: tuple[str, Path]) -> None:
    path, record = stub_path
    done = run_entrypoint(["run"], path, record, tmp_path / "state")
    assert done.returncode == 0, done.stderr
    assert record.read_text().splitlines() == ["key=", "arg=run"]


def test_the_entrypoint_gives_up_when_the_simulator_never_writes_its_keys(
    tmp_path: Path, stub_path: tuple[str, Path]
) -> None:
    path, record = stub_path
    (tmp_path / "sim").mkdir()
    done = run_entrypoint(
        ["run"], path, record, tmp_path / "state", SIM_STATE_DIR=str(tmp_path / "sim"), SIM_KEY_WAIT_SECONDS="1"
    )
    assert done.returncode == 1 and "no simulator key registry" in done.stderr
    assert not record.exists()  # mmctl was never started


def test_the_entrypoint_waits_for_the_simulators_keys(tmp_path: Path, stub_path: tuple[str, Path]) -> None:
    path, record = stub_path
    sim_dir = tmp_path / "sim"
    sim_dir.mkdir()
    env = {
        "PATH": path,
        "STUB_RECORD": str(record),
        "MMCTL_STATE_DIR": str(tmp_path / "state"),
        "SIM_STATE_DIR": str(sim_dir),
        "SIM_KEY_LINK": str(tmp_path / "link.pem"),
    }
    process = subprocess.Popen(["sh", str(ENTRYPOINT), "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        key = load_or_create_key(sim_dir, build_state(SimulatedClock(0)))  # the simulator starts meanwhile
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert record.read_text().splitlines()[0] == f"key={key.key_id}"


def test_a_crashed_containers_lock_is_recovered_from_without_help(tmp_path: Path) -> None:
    """In a container mmctl gets the same pid (and host name) every start, so a crashed run's lock names a
    live pid; the kernel lock died with the crashed process, which is what counts."""
    lock = tmp_path / "mmctl.lock"
    crashed = {"pid": os.getpid(), "host": socket.gethostname(), "started_us": 123}  # a pid that is alive
    lock.write_bytes(orjson.dumps(crashed))
    taken = LockFile(lock)
    taken.acquire()
    assert taken.previous_run_crashed and taken.stale is not None and taken.stale.started_us == 123
    taken.release()


# ---------------------------------------------------------------------- the two containers, without Docker


def _lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _wait_for(condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_controller_container_runs_against_the_simulator_container(tmp_path: Path) -> None:
    """The compose wiring end to end, minus Docker: the simulator service's command, then the controller's entry
    point with the compose specs (only host names and the volume paths swapped for this machine's), the image's
    HEALTHCHECK command, Prometheus' view of /metrics, and a SIGTERM stop (exit 0, so no restart)."""
    sim_dir, state, specs = tmp_path / "sim", tmp_path / "state", tmp_path / "specs"
    sim_args = command_of("simulator")
    sim_args = [*sim_args[: sim_args.index("--port") + 1], "0", *sim_args[sim_args.index("--port") + 2 :]]
    sim_args[sim_args.index("--state-dir") + 1] = str(sim_dir)
    sim_args[sim_args.index("--host") + 1] = "127.0.0.1"
    token = "test-token-0123456789"
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    simulator = subprocess.Popen(
        [str(VENV_BIN / "mmctl"), *sim_args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    controller: subprocess.Popen[str] | None = None
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(simulator.stdout, lines), daemon=True).start()
        rest = lines.get(timeout=60)
        assert rest.startswith("rest: http://127.0.0.1:")
        sim_port = int(rest.split(":")[3].split("/")[0])

        shutil.copytree(SPECS_DIR, specs)
        link = tmp_path / "links" / "simulator.pem"
        exchange = (specs / "exchange.yaml").read_text()
        node = (specs / "node.yaml").read_text()
        for old, new in ((f"simulator:{option(SERVICES['simulator']['command'], '--port')}", f"127.0.0.1:{sim_port}"),
                         ("/tmp/mmctl/simulator.pem", str(link))):  # fmt: skip
            assert old in exchange
            exchange = exchange.replace(old, new)
        assert "/var/lib/mmctl" in node
        (specs / "exchange.yaml").write_text(exchange)
        (specs / "node.yaml").write_text(node.replace("/var/lib/mmctl", str(state)))

        args = [*command_of("controller"), "--api-port", "0"]
        args[args.index("-f") + 1] = str(specs)
        args[args.index("--state-dir") + 1] = str(state)
        controller_env = {
            **env,
            "MMCTL_API_TOKEN": token,
            "MMCTL_STATE_DIR": str(state),
            "SIM_STATE_DIR": str(sim_dir),
            "SIM_KEY_LINK": str(link),
        }
        controller = subprocess.Popen(
            ["sh", str(ENTRYPOINT), *args],
            env=controller_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        api_url = _wait_for(
            lambda: (state / "api-url").exists() and (state / "api-url").read_text().strip(), 60, "the control API"
        )
        base = str(api_url).replace("0.0.0.0", "127.0.0.1")
        auth = {"Authorization": f"Bearer {token}"}

        def exchange_ready() -> bool:
            status = httpx.get(f"{base}/status", headers=auth, timeout=5).json()
            sim = next(r for r in status["resources"] if r["kind"] == "Exchange")
            return (
                bool(sim["connected"])
                and {c["type"]: c["status"] for c in sim["conditions"]}.get("Authenticated") == "True"
            )

        _wait_for(exchange_ready, 60, "the exchange to connect with the simulator's key")

        healthcheck = healthcheck_command(
            next(i for i in parse_dockerfile((REPO / "Dockerfile").read_text()) if i.keyword == "HEALTHCHECK")
        )
        checked = subprocess.run(
            [sys.executable, *healthcheck[1:]],
            env={**env, "MMCTL_HEALTH_URL": f"{base}/health"},
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 401  # Prometheus without the token
        scraped = httpx.get(f"{base}/metrics", headers=auth, timeout=5)
        assert scraped.status_code == 200
        assert 'mm_websocket_connected{exchange="sim"} 1.0' in scraped.text

        controller.send_signal(signal.SIGTERM)  # docker compose stop
        grace = int(SERVICES["controller"]["stop_grace_period"][:-1])
        assert controller.wait(timeout=grace) == 0
        assert not (state / "mmctl.lock").exists()  # a clean stop: the next start is not a crash recovery
    finally:
        for process in (controller, simulator):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


# ---------------------------------------------------------------------- docs/deploy-aws.md's examples


def checked_block(marker: str) -> str:
    """The fenced block right after ``<!-- checked: MARKER ... -->`` in docs/deploy-aws.md."""
    text = (REPO / "docs" / "deploy-aws.md").read_text()
    after = text.split(f"<!-- checked: {marker}", 1)[1]
    match = re.search(r"```[a-z]*\n(.*?)```", after, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_aws_exchange_example_validates_and_only_references_the_key(tmp_path: Path) -> None:
    spec = tmp_path / "exchange.yaml"
    spec.write_text(checked_block("exchange spec"))
    result = CliRunner().invoke(app, ["validate", "-f", str(spec)])
    assert result.exit_code == 0, result.output
    exchange = ExchangeSpec.model_validate(load_path(spec)[0].data["spec"])
    assert exchange.venue == "kalshi" and not exchange.allow_live
    aws = yaml.safe_load(checked_block("compose"))["services"]["controller"]
    assert exchange.api_key_env in aws["environment"]
    assert any(v.split(":")[1] == exchange.private_key_file for v in aws["volumes"])


def test_the_aws_compose_example_is_the_local_one_without_the_simulator() -> None:
    aws = yaml.safe_load(checked_block("compose"))
    assert set(aws["services"]) == {"controller", "prometheus", "grafana"}
    for name in ("prometheus", "grafana"):  # the versions the local stack (and check-schema.sh) were checked with
        assert aws["services"][name]["image"] == SERVICES[name]["image"], name
    controller = aws["services"]["controller"]
    assert parse_mmctl(controller["command"]) == parse_mmctl(command_of("controller"))
    assert controller["entrypoint"] == SERVICES["controller"]["entrypoint"]
    assert controller["hostname"] == SERVICES["controller"]["hostname"]
    assert controller["stop_grace_period"] == SERVICES["controller"]["stop_grace_period"]
    assert controller["restart"] == "no"  # systemd decides by exit code
    assert controller["logging"]["driver"] == "awslogs"
    assert controller["logging"]["options"]["mode"] == "non-blocking"
    assert "SIM_STATE_DIR" not in controller["environment"]
    assert not any(":/sim" in v for v in controller["volumes"])
    for name, service in aws["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("./"):  # the file sits at the root of the repository's checkout
                assert (REPO / source).exists(), source
                assert (source, "ro") in [(s, m) for s, t, m in mounts(name) if t == target] or name == "controller"
    fetched = re.search(r"names = \(([^)]*)\)", (REPO / "docs" / "deploy-aws.md").read_text())
    assert fetched is not None
    for name, rests in compose_variables_of(checked_block("compose")).items():
        if any(rest.startswith(":?") for rest in rests):
            assert f'"{name}"' in fetched.group(1), f"{name} is required but the fetch script does not write it"
