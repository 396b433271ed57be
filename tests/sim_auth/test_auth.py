"""Tests of mm.sim.auth: Kalshi RSA-PSS signing, key files, the key registry and the simulator's verifier."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from mm.clock import SimulatedClock
from mm.domain.errors import MmError
from mm.sim.auth import (
    ACCESS_KEY_HEADER,
    ACCESS_SIGNATURE_HEADER,
    ACCESS_TIMESTAMP_HEADER,
    WS_SIGNING_PATH,
    AuthError,
    KeyFileError,
    KeyRegistry,
    Verifier,
    auth_headers,
    generate_key,
    load_private_key,
    public_key_pem,
    sign_request,
    signing_message,
    timestamp_ms,
    write_private_key,
)

T0_US = 1_768_660_200_000_000  # 2026-01-17T14:30:00Z
T0_MS = T0_US // 1000
USER = "user-1"
ORDERS = "/trade-api/v2/portfolio/orders"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return generate_key()


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0_US)


@pytest.fixture
def registry(key: rsa.RSAPrivateKey) -> KeyRegistry:
    reg = KeyRegistry()
    reg.register(key.public_key(), USER, key_id="8f2c1b8e-0f0e-4a4b-9d5c-2b4f7d1e6a10")
    return reg


@pytest.fixture
def key_id(registry: KeyRegistry) -> str:
    (kid,) = registry.keys_of(USER)
    return kid


@pytest.fixture
def verifier(registry: KeyRegistry, clock: SimulatedClock) -> Verifier:
    return Verifier(registry, clock)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(old)


def _pss_verify(public: rsa.RSAPublicKey, signature_b64: str, message: bytes) -> None:
    public.verify(
        base64.b64decode(signature_b64, validate=True),
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def _details(exc: pytest.ExceptionInfo[AuthError]) -> str:
    assert exc.value.status == 401
    assert exc.value.code == "authentication_error"
    return exc.value.details


# --- signing -------------------------------------------------------------------------------------------------


def test_sign_request_signs_exactly_timestamp_method_path(key: rsa.RSAPrivateKey) -> None:
    sig = sign_request(key, 1703123456789, "get", "/trade-api/v2/portfolio/orders")
    # Known answer: the message is the concatenation, nothing else (no separators, no host, no body).
    _pss_verify(key.public_key(), sig, b"1703123456789GET/trade-api/v2/portfolio/orders")
    with pytest.raises(InvalidSignature):
        _pss_verify(key.public_key(), sig, b"1703123456789GET/portfolio/orders")
    assert signing_message(1703123456789, "get", ORDERS + "?limit=5") == b"1703123456789GET" + ORDERS.encode()


def test_signature_is_standard_padded_base64_of_a_2048_bit_pss_signature(key: rsa.RSAPrivateKey) -> None:
    sig = sign_request(key, T0_MS, "POST", "/trade-api/v2/portfolio/events/orders")
    assert len(sig) % 4 == 0 and "-" not in sig and "_" not in sig
    assert len(base64.b64decode(sig, validate=True)) == 256
    # PSS is randomised: two signatures of the same message differ, and both verify.
    assert sig != sign_request(key, T0_MS, "POST", "/trade-api/v2/portfolio/events/orders")


def test_auth_headers_strip_the_query_before_signing(key: rsa.RSAPrivateKey) -> None:
    headers = auth_headers("kid", key, "GET", ORDERS + "?limit=5&cursor=abc", T0_MS)
    assert set(headers) == {ACCESS_KEY_HEADER, ACCESS_TIMESTAMP_HEADER, ACCESS_SIGNATURE_HEADER}
    assert headers[ACCESS_KEY_HEADER] == "kid"
    assert headers[ACCESS_TIMESTAMP_HEADER] == str(T0_MS)
    _pss_verify(key.public_key(), headers[ACCESS_SIGNATURE_HEADER], f"{T0_MS}GET{ORDERS}".encode())


def test_timestamp_ms_reads_the_clock(clock: SimulatedClock) -> None:
    clock.advance_us(1_999)
    assert timestamp_ms(clock) == T0_MS + 1


def test_signing_message_refuses_a_non_int_timestamp() -> None:
    with pytest.raises(TypeError):
        signing_message(True, "GET", ORDERS)
    with pytest.raises(TypeError):
        signing_message(1.5, "GET", ORDERS)  # type: ignore[arg-type]


# --- verification --------------------------------------------------------------------------------------------


def test_signed_get_and_post_verify(verifier: Verifier, key: rsa.RSAPrivateKey, key_id: str) -> None:
    get = auth_headers(key_id, key, "GET", ORDERS + "?limit=5", T0_MS)
    assert verifier.verify("GET", ORDERS + "?limit=5", get) == USER
    # The query is not signed: verifying without it, or with another query, gives the same answer.
    assert verifier.verify("GET", ORDERS, get) == USER
    assert verifier.verify("GET", ORDERS + "?limit=1000", get) == USER

    post_path = "/trade-api/v2/portfolio/events/orders"
    post = auth_headers(key_id, key, "POST", post_path, T0_MS)
    assert verifier.verify("POST", post_path, post) == USER
    assert verifier.verify("post", post_path, post) == USER  # method case does not matter


def test_lower_case_header_names_are_accepted(verifier: Verifier, key: rsa.RSAPrivateKey, key_id: str) -> None:
    headers = {k.lower(): v for k, v in auth_headers(key_id, key, "GET", ORDERS, T0_MS).items()}
    assert verifier.verify("GET", ORDERS, headers) == USER
    mixed = {k.title(): v for k, v in headers.items()}
    assert verifier.verify("GET", ORDERS, mixed) == USER


@pytest.mark.parametrize(
    ("method", "path", "ts_delta", "corrupt_sig"),
    [
        ("GET", "/trade-api/v2/portfolio/balance", 0, False),  # another path
        ("GET", "/portfolio/orders", 0, False),  # the path without its /trade-api/v2 prefix
        ("DELETE", ORDERS, 0, False),  # another method
        ("GET", ORDERS, 1, False),  # timestamp changed by 1 ms, still inside the window
        ("GET", ORDERS, 0, True),  # signature bytes flipped
    ],
)
def test_tampering_gives_incorrect_signature(
    verifier: Verifier,
    key: rsa.RSAPrivateKey,
    key_id: str,
    method: str,
    path: str,
    ts_delta: int,
    corrupt_sig: bool,
) -> None:
    headers = auth_headers(key_id, key, "GET", ORDERS, T0_MS)
    headers[ACCESS_TIMESTAMP_HEADER] = str(T0_MS + ts_delta)
    if corrupt_sig:
        raw = bytearray(base64.b64decode(headers[ACCESS_SIGNATURE_HEADER]))
        raw[17] ^= 0x01
        headers[ACCESS_SIGNATURE_HEADER] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(AuthError) as exc:
        verifier.verify(method, path, headers)
    assert _details(exc) == "INCORRECT_API_KEY_SIGNATURE"


@pytest.mark.parametrize("bad_signature", ["not base64!!", "AAAA", base64.b64encode(b"\x00" * 256).decode()])
def test_garbage_signatures_are_incorrect(verifier: Verifier, key_id: str, bad_signature: str) -> None:
    headers = {ACCESS_KEY_HEADER: key_id, ACCESS_TIMESTAMP_HEADER: str(T0_MS), ACCESS_SIGNATURE_HEADER: bad_signature}
    with pytest.raises(AuthError) as exc:
        verifier.verify("GET", ORDERS, headers)
    assert _details(exc) == "INCORRECT_API_KEY_SIGNATURE"


def test_signature_by_another_key_is_incorrect(verifier: Verifier, other_key: rsa.RSAPrivateKey, key_id: str) -> None:
    with pytest.raises(AuthError) as exc:
        verifier.verify("GET", ORDERS, auth_headers(key_id, other_key, "GET", ORDERS, T0_MS))
    assert _details(exc) == "INCORRECT_API_KEY_SIGNATURE"


def test_unknown_key_is_not_found(verifier: Verifier, key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(AuthError) as exc:
        verifier.verify("GET", ORDERS, auth_headers(str(uuid.uuid4()), key, "GET", ORDERS, T0_MS))
    assert _details(exc) == "NOT_FOUND"


@pytest.mark.parametrize(
    ("age_ms", "ok"),
    [(0, True), (4_900, True), (5_000, True), (5_001, False), (30_000, False), (-5_000, True), (-6_000, False)],
)
def test_timestamp_window(
    verifier: Verifier, clock: SimulatedClock, key: rsa.RSAPrivateKey, key_id: str, age_ms: int, ok: bool
) -> None:
    """The request's timestamp may be up to 5 s old or 5 s ahead of the server clock (negative age = future)."""
    clock.advance_us(20_000_000)  # the server clock moves on 20 s; the client signed age_ms before that
    headers = auth_headers(key_id, key, "GET", ORDERS, T0_MS + 20_000 - age_ms)
    if ok:
        assert verifier.verify("GET", ORDERS, headers) == USER
    else:
        with pytest.raises(AuthError) as exc:
            verifier.verify("GET", ORDERS, headers)
        assert _details(exc) == "header_timestamp_expired"


def test_window_is_configurable(
    registry: KeyRegistry, clock: SimulatedClock, key: rsa.RSAPrivateKey, key_id: str
) -> None:
    headers = auth_headers(key_id, key, "GET", ORDERS, T0_MS)
    clock.advance(20)
    assert Verifier(registry, clock, max_skew_ms=30_000).verify("GET", ORDERS, headers) == USER
    with pytest.raises(ValueError):
        Verifier(registry, clock, max_skew_ms=-1)


@pytest.mark.parametrize(
    ("missing", "details"),
    [
        (ACCESS_KEY_HEADER, "MISSING_ACCESS_KEY"),
        (ACCESS_TIMESTAMP_HEADER, "MISSING_ACCESS_TIMESTAMP"),
        (ACCESS_SIGNATURE_HEADER, "MISSING_ACCESS_SIGNATURE"),
    ],
)
def test_missing_headers(verifier: Verifier, key: rsa.RSAPrivateKey, key_id: str, missing: str, details: str) -> None:
    headers = auth_headers(key_id, key, "GET", ORDERS, T0_MS)
    del headers[missing]
    with pytest.raises(AuthError) as exc:
        verifier.verify("GET", ORDERS, headers)
    assert _details(exc) == details
    headers[missing] = "  "  # blank counts as missing
    with pytest.raises(AuthError) as exc:
        verifier.verify("GET", ORDERS, headers)
    assert _details(exc) == details


def test_no_headers_at_all(verifier: Verifier) -> None:
    with pytest.raises(AuthError) as exc:
        verifier.verify("GET", ORDERS, {})
    assert _details(exc) == "MISSING_ACCESS_KEY"


@pytest.mark.parametrize("ts", ["abc", "1.5e12", "-1703123456789", str(T0_MS / 1000)])
def test_malformed_timestamp(verifier: Verifier, key_id: str, ts: str) -> None:
    headers = {ACCESS_KEY_HEADER: key_id, ACCESS_TIMESTAMP_HEADER: ts, ACCESS_SIGNATURE_HEADER: "AAAA"}
    with pytest.raises(AuthError) as exc:
        verifier.verify("GET", ORDERS, headers)
    assert _details(exc) == "INVALID_ACCESS_TIMESTAMP"


def test_seconds_timestamp_is_expired(verifier: Verifier, key: rsa.RSAPrivateKey, key_id: str) -> None:
    """A client sending Unix seconds instead of milliseconds is ~56 years out of the window."""
    headers = auth_headers(key_id, key, "GET", ORDERS, T0_MS // 1000)
    with pytest.raises(AuthError) as exc:
        verifier.verify("GET", ORDERS, headers)
    assert _details(exc) == "header_timestamp_expired"


def test_websocket_is_verified_against_the_literal_path(
    verifier: Verifier, key: rsa.RSAPrivateKey, key_id: str
) -> None:
    assert WS_SIGNING_PATH == "/trade-api/ws/v2"
    headers = auth_headers(key_id, key, "GET", "/trade-api/ws/v2", T0_MS)
    assert verifier.verify_websocket(headers) == USER
    # Signing the URL actually dialled (say a local simulator's /ws) does not verify.
    dialled = auth_headers(key_id, key, "GET", "/ws", T0_MS)
    with pytest.raises(AuthError) as exc:
        verifier.verify_websocket(dialled)
    assert _details(exc) == "INCORRECT_API_KEY_SIGNATURE"


def test_error_body_nests_and_copies_and_leaks_nothing(verifier: Verifier, key: rsa.RSAPrivateKey, key_id: str) -> None:
    headers = auth_headers(key_id, key, "GET", ORDERS, T0_MS)
    with pytest.raises(AuthError) as exc:
        verifier.verify("DELETE", ORDERS, headers)
    body = exc.value.body()
    assert body == {
        "error": {
            "code": "authentication_error",
            "message": "authentication_error",
            "details": "INCORRECT_API_KEY_SIGNATURE",
        },
        "code": "authentication_error",
        "message": "authentication_error",
        "details": "INCORRECT_API_KEY_SIGNATURE",
    }
    json.dumps(body)
    text = str(exc.value) + repr(exc.value) + json.dumps(body)
    assert headers[ACCESS_SIGNATURE_HEADER] not in text
    assert headers[ACCESS_SIGNATURE_HEADER][:16] not in text
    assert key_id not in text
    assert isinstance(exc.value, MmError)


def test_auth_error_defaults() -> None:
    err = AuthError("authentication_error", "NOT_FOUND")
    assert err.status == 401 and err.message == "authentication_error" and str(err) == "NOT_FOUND"


# --- key files -----------------------------------------------------------------------------------------------


def test_write_private_key_is_0600_even_with_a_permissive_umask(
    tmp_path: Path, key: rsa.RSAPrivateKey, permissive_umask: None
) -> None:
    path = write_private_key(tmp_path / "k.pem", key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]  # no temp file left behind
    loaded = load_private_key(path)
    assert loaded.private_numbers() == key.private_numbers()


def test_write_private_key_refuses_to_overwrite(
    tmp_path: Path, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    path = write_private_key(tmp_path / "k.pem", key)
    with pytest.raises(KeyFileError, match="overwrite"):
        write_private_key(path, other_key)
    assert load_private_key(path).private_numbers() == key.private_numbers()
    write_private_key(path, other_key, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_private_key(path).private_numbers() == other_key.private_numbers()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_loading_a_key_readable_by_others_raises(tmp_path: Path, key: rsa.RSAPrivateKey, mode: int) -> None:
    path = write_private_key(tmp_path / "k.pem", key)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600") as exc:
        load_private_key(path)
    assert "PRIVATE KEY" not in str(exc.value)
    path.chmod(0o400)  # owner read-only is fine
    assert load_private_key(path).private_numbers() == key.private_numbers()


def test_load_private_key_from_pem_text(key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    assert load_private_key(pem).private_numbers() == key.private_numbers()


def test_load_private_key_errors(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        load_private_key(tmp_path / "missing.pem")
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_private_key(tmp_path)
    with pytest.raises(KeyFileError, match="does not hold"):
        load_private_key("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    ).decode()
    with pytest.raises(KeyFileError, match="encrypted"):
        load_private_key(encrypted)
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(KeyFileError, match="not an RSA"):
        load_private_key(ec_pem)


def test_generate_key_is_rsa_2048() -> None:
    k = generate_key()
    assert k.key_size == 2048 and k.public_key().public_numbers().e == 65537


def test_public_key_pem(key: rsa.RSAPrivateKey) -> None:
    pem = public_key_pem(key)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in pem
    assert public_key_pem(key.public_key()) == pem


# --- registry ------------------------------------------------------------------------------------------------


def test_register_returns_uuid4_key_ids(key: rsa.RSAPrivateKey) -> None:
    reg = KeyRegistry()
    kid = reg.register(key.public_key(), USER)
    assert uuid.UUID(kid).version == 4 and kid in reg and len(reg) == 1
    entry = reg.get(kid)
    assert entry is not None and entry.user_id == USER
    with pytest.raises(ValueError):
        reg.register(key.public_key(), USER, key_id=kid)
    assert reg.revoke(kid) and not reg.revoke(kid) and kid not in reg


def test_revoked_key_is_not_found(
    registry: KeyRegistry, verifier: Verifier, key: rsa.RSAPrivateKey, key_id: str
) -> None:
    headers = auth_headers(key_id, key, "GET", ORDERS, T0_MS)
    registry.revoke(key_id)
    with pytest.raises(AuthError) as exc:
        verifier.verify("GET", ORDERS, headers)
    assert _details(exc) == "NOT_FOUND"


def test_create_key_writes_a_0600_pem_named_by_key_id_and_registers_it(
    tmp_path: Path, clock: SimulatedClock, permissive_umask: None
) -> None:
    reg = KeyRegistry()
    kid, pem_path = reg.create_key("alice", tmp_path / "keys")
    assert pem_path == tmp_path / "keys" / f"{kid}.pem"
    assert stat.S_IMODE(pem_path.stat().st_mode) == 0o600
    assert reg.keys_of("alice") == [kid]
    private = load_private_key(pem_path)
    assert Verifier(reg, clock).verify("GET", ORDERS, auth_headers(kid, private, "GET", ORDERS, T0_MS)) == "alice"


def test_registry_save_load_round_trip_has_no_private_material(
    tmp_path: Path, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, clock: SimulatedClock
) -> None:
    reg = KeyRegistry()
    k1 = reg.register(key, "alice")  # a private key is accepted; only its public half is kept
    k2 = reg.register(other_key.public_key(), "bob")
    state = tmp_path / "state" / "keys.json"
    state.parent.mkdir()
    reg.save(state)
    text = state.read_text()
    assert "PRIVATE" not in text
    assert str(key.private_numbers().d) not in text
    assert json.loads(text)["keys"][0]["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert [p.name for p in state.parent.iterdir()] == ["keys.json"]

    loaded = KeyRegistry.load(state)
    assert len(loaded) == 2 and loaded.keys_of("alice") == [k1] and loaded.keys_of("bob") == [k2]
    entry = loaded.get(k1)
    assert entry is not None and entry.public_key.public_numbers() == key.public_key().public_numbers()
    verifier = Verifier(loaded, clock)
    assert verifier.verify("GET", ORDERS, auth_headers(k2, other_key, "GET", ORDERS, T0_MS)) == "bob"


def test_registry_load_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "keys.json"
    for payload in (
        {"format": 2, "keys": []},
        {"format": 1},
        {"format": 1, "keys": [{"key_id": "x"}]},
        {"format": 1, "keys": [{"key_id": "x", "user_id": "u", "public_key_pem": "nope"}]},
        [1],
    ):
        bad.write_text(json.dumps(payload))
        with pytest.raises(ValueError):
            KeyRegistry.load(bad)
