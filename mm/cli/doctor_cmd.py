"""``mmctl doctor``: a preflight before going live — one ``PASS|FAIL|WARN  <check>: <detail>`` line per check,
and on a failure a ``fix:`` line saying what to do.

Checks: the specs pass admission (every problem listed); for each Exchange: credentials resolve (env vars set,
key file present), key file permissions (0600 or stricter), the exchange answers (``GET /exchange/status``, short
timeout), the key authenticates (a signed ``GET /portfolio/balance``), the configured rate tier (compared with
``GET /account/limits`` when the venue answers it), clock drift (the venue's HTTP ``Date`` header against the local
wall clock — coarse, 1 s resolution; the node checks NTP itself); the state dir is writable; which Markets would
trade live. Exit code 0 when nothing FAILs, 1 otherwise.

Secrets never reach the output: credentials are named by their env var or file, never shown (the key id
included); every line goes through :func:`~mm.observability.redaction.redact_text`.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console

from mm.adapters.factory import signer_from_spec
from mm.adapters.kalshi.signer import KalshiSigner
from mm.cli.exit_codes import ExitCode
from mm.clock import WallClock, datetime_to_us
from mm.domain.errors import MmError
from mm.observability.redaction import redact_text
from mm.specs.admission import AdmittedResource, admit
from mm.specs.exchange import ExchangeSpec, Tier
from mm.specs.market import MarketSelectorSpec, MarketSpec
from mm.specs.node import TradingNodeSpec
from mm.specs.yaml_loader import load_sources_collect

__all__ = ["Check", "doctor", "run_checks"]

out = Console(highlight=False, soft_wrap=True)

Status = Literal["PASS", "FAIL", "WARN"]
DRIFT_WARN_S = 1.0
KALSHI_KEYS_URL = "https://kalshi.com/account/profile (API keys)"


@dataclass(frozen=True, slots=True)
class Check:
    status: Status
    check: str
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        text = [f"{self.status:<4}  {self.check}: {redact_text(self.detail)}"]
        if self.fix and self.status != "PASS":
            text.append(f"      fix: {redact_text(self.fix)}")
        return text


@dataclass
class _Probe:
    """What the exchange's unauthenticated status call told us (reachability and the clock)."""

    ok: bool
    date_header: str | None = None
    local_mid_us: int = 0


def _issues_detail(lines: list[str]) -> str:
    return "\n".join(f"      - {line}" for line in lines)


def _spec_checks(paths: list[str]) -> tuple[list[Check], list[AdmittedResource]]:
    documents, load_issues = load_sources_collect(paths)
    result = admit(documents)
    issues = [str(i) for i in (*load_issues, *result.issues)]
    checks: list[Check] = []
    if issues:
        count = len(issues)
        checks.append(
            Check(
                "FAIL",
                "specs valid",
                f"{count} problem{'s' if count != 1 else ''} found:\n{_issues_detail(issues)}",
                f"correct the fields listed (file:line:col) and re-run `mmctl validate -f {' -f '.join(paths)}`",
            )
        )
    else:
        checks.append(Check("PASS", "specs valid", f"{len(result.resources)} resources admitted"))
    for warning in result.warnings:
        checks.append(Check("WARN", "specs", str(warning)))
    return checks, list(result.resources)


def _key_file_check(name: str, spec: ExchangeSpec) -> Check:
    label = f"Exchange/{name} key file permissions"
    if spec.private_key_file is None:
        if spec.private_key_env is not None:
            return Check("PASS", label, f"no key file: the key comes from ${spec.private_key_env}")
        return Check("WARN", label, "no private_key_file or private_key_env configured")
    path = Path(spec.private_key_file).expanduser()
    try:
        st = path.stat()
    except OSError as exc:
        return Check(
            "FAIL",
            label,
            f"{path}: {(exc.strerror or str(exc)).lower()}",
            "point private_key_file at your PEM key (downloaded when the API key was created)",
        )
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISREG(st.st_mode):
        return Check("FAIL", label, f"{path} is not a regular file", "point private_key_file at the PEM key file")
    if mode & 0o077:
        return Check("FAIL", label, f"{path} has mode {mode:04o}: readable by group or others", f"chmod 600 {path}")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return Check("WARN", label, f"{path} (mode {mode:04o}) is owned by another user", f"chown $USER {path}")
    return Check("PASS", label, f"{path}: mode {mode:04o}")


def _credentials_check(name: str, spec: ExchangeSpec, environ: Mapping[str, str]) -> tuple[Check, KalshiSigner | None]:
    label = f"Exchange/{name} credentials resolve"
    try:
        signer = signer_from_spec(spec, environ)
    except MmError as exc:
        fix = "set the environment variables the Exchange spec names"
        if spec.api_key_env is not None:
            fix = f"export {spec.api_key_env}=<your API key id>"
            if spec.private_key_env is not None:
                fix += f" and {spec.private_key_env}=<the PEM private key>"
            elif spec.private_key_file is not None:
                fix += f"; keep the PEM key at {spec.private_key_file} with mode 0600"
        if "chmod" in str(exc):
            fix = f"chmod 600 {spec.private_key_file}"
        return Check("FAIL", label, str(exc), fix), None
    where = f"${spec.private_key_env}" if spec.private_key_env is not None else str(spec.private_key_file)
    return Check("PASS", label, f"key id from ${spec.api_key_env}, RSA private key from {where}"), signer


def _signed_path(base_url: str, path: str) -> str:
    return urlsplit(base_url).path.rstrip("/") + path


async def _probe(client: httpx.AsyncClient, name: str, base_url: str, wall: WallClock) -> tuple[Check, _Probe]:
    label = f"Exchange/{name} exchange reachable"
    url = base_url.rstrip("/") + "/exchange/status"
    sent = wall.monotonic_ns()
    sent_us = wall.now_us()
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        return (
            Check(
                "FAIL",
                label,
                f"GET {url}: {type(exc).__name__}",
                "check the network, DNS and proxy settings, and the Exchange's base_url "
                "(Kalshi publishes its status at https://status.kalshi.com)",
            ),
            _Probe(False),
        )
    elapsed_ns = wall.monotonic_ns() - sent
    probe = _Probe(True, response.headers.get("date"), sent_us + elapsed_ns // 2000)
    ms = elapsed_ns / 1e6
    if response.status_code != 200:
        return (
            Check(
                "FAIL", label, f"GET {url}: HTTP {response.status_code}", "check base_url (it ends in /trade-api/v2)"
            ),
            probe,
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    trading = body.get("trading_active") if isinstance(body, dict) else None
    if trading is False:
        return Check("WARN", label, f"{base_url} answered in {ms:.0f} ms but trading is paused"), probe
    return Check("PASS", label, f"{base_url} answered in {ms:.0f} ms"), probe


def _clock_check(name: str, probe: _Probe) -> Check:
    label = f"Exchange/{name} clock drift"
    note = "coarse: the venue's Date header has 1 s resolution; NTP sync is checked by the node (time_sync)"
    if probe.date_header is None:
        return Check("WARN", label, f"the venue sent no Date header: not checked ({note})")
    try:
        server_us = datetime_to_us(parsedate_to_datetime(probe.date_header))
    except (TypeError, ValueError):
        return Check("WARN", label, "the venue's Date header does not parse: not checked")
    # The header truncates to the second: the server's time was within [server, server + 1 s).
    drift_s = (probe.local_mid_us - server_us - 500_000) / 1e6
    if abs(drift_s) > DRIFT_WARN_S:
        return Check(
            "WARN",
            label,
            f"local clock {drift_s:+.1f} s from the venue ({note}); Kalshi refuses signatures more than 5 s off",
            "enable NTP (timedatectl set-ntp true / chronyd) and check the time zone is not applied to UTC",
        )
    return Check("PASS", label, f"{drift_s:+.1f} s ({note})")


async def _signed_get(
    client: httpx.AsyncClient, base_url: str, path: str, signer: KalshiSigner, wall: WallClock
) -> httpx.Response:
    headers = signer.headers("GET", _signed_path(base_url, path), wall.now_us() // 1000)
    return await client.get(base_url.rstrip("/") + path, headers=headers)


def _error_details(response: httpx.Response) -> str:
    """The venue's error code (never an echo of what we sent)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    nested = body.get("error")
    error: dict[str, object] = nested if isinstance(nested, dict) else body
    details = error.get("details") or error.get("code") or ""
    return str(details)[:80] if isinstance(details, str) else ""


async def _auth_check(
    client: httpx.AsyncClient, name: str, spec: ExchangeSpec, base_url: str, signer: KalshiSigner, wall: WallClock
) -> Check:
    label = f"Exchange/{name} authenticates"
    try:
        response = await _signed_get(client, base_url, "/portfolio/balance", signer, wall)
    except httpx.HTTPError as exc:
        return Check("FAIL", label, f"signed GET /portfolio/balance: {type(exc).__name__}", "see reachability above")
    if response.status_code == 200:
        return Check("PASS", label, "signed GET /portfolio/balance accepted")
    details = _error_details(response)
    detail = f"signed GET /portfolio/balance: HTTP {response.status_code}" + (f" ({details})" if details else "")
    if response.status_code == 401:
        fix = (
            f"the key id in ${spec.api_key_env} is not registered at this venue, or does not belong to the private "
            f"key; create or look up the key at {KALSHI_KEYS_URL} and set both (demo and prod keys differ)"
        )
        if "timestamp" in details.lower():
            fix = "the request timestamp was refused: fix the clock (NTP), then re-run"
        elif "signature" in details.lower():
            fix = f"the private key does not match the key id in ${spec.api_key_env}: use the key created with it"
        return Check("FAIL", label, detail, fix)
    if response.status_code == 403:
        return Check("FAIL", label, detail, "the key lacks permission: create a key with trading access")
    return Check("FAIL", label, detail, "retry later; if it persists, check the venue's status page")


async def _tier_check(
    client: httpx.AsyncClient,
    name: str,
    spec: ExchangeSpec,
    base_url: str,
    signer: KalshiSigner | None,
    wall: WallClock,
) -> Check:
    label = f"Exchange/{name} rate tier"
    limits = spec.rate_limits
    configured = f"configured {limits.tier} ({limits.reads_per_second} reads/s, {limits.writes_per_second} writes/s)"
    if signer is None:
        return Check("WARN", label, f"{configured}; the venue's tier not checked (credentials did not resolve)")
    try:
        response = await _signed_get(client, base_url, "/account/limits", signer, wall)
    except httpx.HTTPError:
        return Check("WARN", label, f"{configured}; GET /account/limits failed")
    if response.status_code in (401, 403):
        return Check("WARN", label, f"{configured}; not compared: the venue refused the signed request")
    if response.status_code != 200:
        return Check("PASS", label, f"{configured}; the venue does not report limits (HTTP {response.status_code})")
    try:
        body = response.json()
    except ValueError:
        body = {}
    venue_tier = str(body.get("usage_tier", "")).lower() if isinstance(body, dict) else ""
    if not venue_tier:
        return Check("PASS", label, f"{configured}; the venue does not report its tier")
    order = list(get_args(Tier))
    if venue_tier == limits.tier:
        return Check("PASS", label, f"{configured}; the venue says {venue_tier}")
    if venue_tier in order and order.index(venue_tier) < order.index(limits.tier):
        return Check(
            "FAIL",
            label,
            f"{configured}, but the account is {venue_tier}: the client would exceed the venue's limits (429s)",
            f"set rate_limits.tier: {venue_tier} on Exchange/{name}",
        )
    return Check("PASS", label, f"{configured}; the venue allows {venue_tier} (more: the client stays below it)")


async def _exchange_checks(
    name: str, spec: ExchangeSpec, environ: Mapping[str, str], timeout_s: float, wall: WallClock
) -> list[Check]:
    prefix = f"Exchange/{name}"
    if spec.venue == "simulator" and spec.simulator is not None and spec.simulator.embedded:
        text = "embedded simulator, started by mmctl run"
        return [
            Check("PASS", f"{prefix} credentials resolve", f"{text} (it creates its own key in the state dir)"),
            Check("PASS", f"{prefix} exchange reachable", text),
            Check("PASS", f"{prefix} rate tier", f"configured {spec.rate_limits.tier}; {text}"),
        ]
    if spec.venue == "polymarket":
        return [Check("FAIL", f"{prefix} venue", "polymarket is not supported yet", "use venue kalshi")]
    checks: list[Check] = []
    if spec.api_key_env is None and spec.venue == "simulator":
        checks.append(
            Check(
                "FAIL",
                f"{prefix} credentials resolve",
                "a simulator that is not embedded needs key references",
                "set api_key_env and private_key_file (from `mmctl sim`: key_id and key_file)",
            )
        )
        signer = None
    else:
        checks.append(_key_file_check(name, spec))
        credentials, signer = _credentials_check(name, spec, environ)
        checks.append(credentials)
    base_url = spec.base_url or ""
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        reachable, probe = await _probe(client, name, base_url, wall)
        checks.append(reachable)
        if not probe.ok:
            return checks
        if signer is not None:
            checks.append(await _auth_check(client, name, spec, base_url, signer, wall))
        else:
            checks.append(Check("WARN", f"{prefix} authenticates", "not checked: the credentials did not resolve"))
        checks.append(await _tier_check(client, name, spec, base_url, signer, wall))
        checks.append(_clock_check(name, probe))
    return checks


def _state_dir_check(state_dir: Path) -> Check:
    label = "state dir writable"
    if not state_dir.exists():
        parent = next((p for p in state_dir.absolute().parents if p.exists()), None)
        if parent is not None and os.access(parent, os.W_OK | os.X_OK):
            return Check("PASS", label, f"{state_dir} does not exist yet; mmctl run will create it (in {parent})")
        return Check("FAIL", label, f"{state_dir} does not exist and cannot be created", f"mkdir -p {state_dir}")
    try:
        with tempfile.NamedTemporaryFile(dir=state_dir, prefix=".mmctl-doctor-", delete=True) as handle:
            handle.write(b"ok")
            handle.flush()
    except OSError as exc:
        return Check(
            "FAIL",
            label,
            f"{state_dir}: {(exc.strerror or str(exc)).lower()}",
            "make it writable by this user (chown/chmod), or pass --state-dir",
        )
    return Check("PASS", label, f"{state_dir}: created and removed a file")


def _live_gate(resources: list[AdmittedResource]) -> Check:
    exchanges = {r.name: r.spec for r in resources if isinstance(r.spec, ExchangeSpec)}
    live: list[str] = []
    refused: list[str] = []
    paper = 0
    for resource in resources:
        spec = resource.spec
        if isinstance(spec, MarketSpec):
            execution, exchange = spec.execution, spec.exchange_ref
        elif isinstance(spec, MarketSelectorSpec):
            execution, exchange = spec.template.execution, spec.exchange_ref
        else:
            continue
        if execution != "live":
            paper += 1
            continue
        target = exchanges.get(exchange)
        entry = f"{resource.key} on Exchange/{exchange}"
        (live if target is not None and target.allow_live else refused).append(entry)
    if refused:
        return Check(
            "FAIL",
            "live gate",
            f"live without allow_live: {', '.join(refused)}",
            "set allow_live: true on the Exchange, or execution: paper",
        )
    if not live:
        return Check("PASS", "live gate", f"nothing would trade live ({paper} paper)")
    return Check("PASS", "live gate", f"would trade LIVE: {', '.join(live)}; {paper} paper")


async def run_checks(
    paths: list[str],
    state_dir: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    timeout_s: float = 5.0,
) -> list[Check]:
    """Every check, in order (the CLI prints them)."""
    env = os.environ if environ is None else environ
    wall = WallClock()
    checks, resources = _spec_checks(paths)
    exchanges = [(r.name, r.spec) for r in resources if isinstance(r.spec, ExchangeSpec)]
    results = await asyncio.gather(*(_exchange_checks(n, s, env, timeout_s, wall) for n, s in exchanges))
    for result in results:
        checks.extend(result)
    if not exchanges:
        checks.append(Check("WARN", "exchanges", "no Exchange declared: nothing to connect to"))
    node = next((r.spec for r in resources if isinstance(r.spec, TradingNodeSpec)), None)
    directory = state_dir if state_dir is not None else Path(node.state_dir if node is not None else "./data")
    checks.append(_state_dir_check(directory))
    checks.append(_live_gate(resources))
    return checks


def doctor(
    filename: Annotated[list[str], typer.Option("--filename", "-f", help="Resource files or directories.")],
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="The node's state dir (default: the TradingNode's).")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds per venue request.")] = 5.0,
) -> int:
    """Preflight before going live: specs, credentials, key file permissions, exchange reachable, authentication,
    rate tier, clock drift, state dir, live gate. Exit code 0 when nothing FAILs, 1 otherwise."""
    if output not in ("text", "json"):
        raise typer.BadParameter("--output must be text or json")
    checks = asyncio.run(run_checks(filename, state_dir, timeout_s=timeout))
    failed = any(c.status == "FAIL" for c in checks)
    if output == "json":
        body = {
            "ok": not failed,
            "checks": [{k: redact_text(v) for k, v in asdict(c).items()} for c in checks],
        }
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        for check in checks:
            for line in check.lines():
                out.print(line, markup=False)
        counts = {s: sum(1 for c in checks if c.status == s) for s in ("PASS", "WARN", "FAIL")}
        out.print(f"{counts['PASS']} passed, {counts['WARN']} warnings, {counts['FAIL']} failed", markup=False)
    return ExitCode.ERROR if failed else ExitCode.OK
