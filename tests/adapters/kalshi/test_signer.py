"""The Kalshi signer: keys from files or env vars, headers that Kalshi's verification accepts."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mm.adapters.kalshi.signer import KalshiSigner, KeyFileError
from mm.clock import SimulatedClock
from mm.sim.auth import KeyRegistry, Verifier, private_key_pem

TS = 1_790_000_000_123


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_headers_sign_timestamp_method_and_path_without_query(key: rsa.RSAPrivateKey) -> None:
    signer = KalshiSigner("kid-1", key)
    headers = signer.headers("get", "/trade-api/v2/portfolio/orders?limit=5", TS)
    assert headers["KALSHI-ACCESS-KEY"] == "kid-1" and headers["KALSHI-ACCESS-TIMESTAMP"] == str(TS)
    signature = base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"])
    key.public_key().verify(  # raises if the message differs from kalshi-api.md §2's
        signature,
        f"{TS}GET/trade-api/v2/portfolio/orders".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )


def test_the_simulators_verifier_accepts_the_signer(key: rsa.RSAPrivateKey) -> None:
    registry = KeyRegistry()
    kid = registry.register(key.public_key(), "alice")
    verifier = Verifier(registry, SimulatedClock(TS * 1000))
    headers = KalshiSigner(kid, key).headers("POST", "/trade-api/v2/portfolio/events/orders", TS)
    assert verifier.verify("POST", "/trade-api/v2/portfolio/events/orders", headers) == "alice"


def test_keys_from_env_vars_and_files(key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    pem = private_key_pem(key).decode()
    signer = KalshiSigner.from_env("KID", "PEM", environ={"KID": "kid-2", "PEM": pem})
    assert signer.key_id == "kid-2"
    path = tmp_path / "k.pem"
    path.write_text(pem)
    path.chmod(0o600)
    assert KalshiSigner.from_file("kid-3", path).key_id == "kid-3"
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        KalshiSigner.from_file("kid-3", path)


def test_missing_credentials_name_the_variable_not_the_value() -> None:
    with pytest.raises(KeyFileError, match="KALSHI_KEY_ID"):
        KalshiSigner.from_env("KALSHI_KEY_ID", "KALSHI_PEM", environ={})
    with pytest.raises(KeyFileError, match="KALSHI_PEM"):
        KalshiSigner.from_env("KALSHI_KEY_ID", "KALSHI_PEM", environ={"KALSHI_KEY_ID": "x"})


def test_repr_never_shows_the_key(key: rsa.RSAPrivateKey) -> None:
    text = repr(KalshiSigner("kid-4", key))
    assert "kid-4" in text and "PRIVATE" not in text and "BEGIN" not in text
