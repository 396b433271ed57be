"""Tests of mm.observability.redaction: key rule, free-text scrubbing, structured redaction."""

from __future__ import annotations

import copy
from collections import namedtuple
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mm.observability.redaction import REDACTED, is_sensitive_key, redact, redact_text

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA7v1fakefakefakefakefakefake\n"
    "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n"
    "-----END RSA PRIVATE KEY-----"
)

SENSITIVE = [
    "api_key", "private_key", "access_key", "secret_key", "KALSHI-ACCESS-KEY", "KALSHI-ACCESS-SIGNATURE",
    "key_id", "keyId", "key", "KEY", "apiKey", "APIKey", "privateKeyPem", "apikey", "x-api-key",
    "secret", "client_secret", "token", "access_token", "refreshToken", "password", "db.password",
    "passwd", "passphrase", "credentials", "Authorization", "signature", "cookie", "Set-Cookie",
    "routing_key", "webhook_url", "slackWebhookUrl", "signing_key",
]  # fmt: skip
NOT_SENSITIVE = [
    "api_key_env", "private_key_env", "private_key_file", "private_key_path", "webhook_url_env",
    "routing_key_env", "password_env", "secret_file", "monkey", "keyboard", "market_key", "sort_key",
    "keys_total", "market", "price", "KALSHI-ACCESS-TIMESTAMP", "event", "level", "correlation_id", "",
]  # fmt: skip


@pytest.mark.parametrize("key", SENSITIVE)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize("key", NOT_SENSITIVE)
def test_reference_and_ordinary_keys_stay_visible(key: str) -> None:
    assert not is_sensitive_key(key)


# --- redact_text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"loaded key {PEM} from vault", "MIIEowIBAAKCAQEA7v1fakefake"),
        (PEM.replace("\n", "\\n"), "c2VjcmV0c2VjcmV0"),  # PEM as it appears inside JSON / repr
        ("partial -----BEGIN PRIVATE KEY-----\nMIIEtruncat", "MIIEtruncat"),
        ("-----BEGIN CERTIFICATE-----\nMIIcert\n-----END CERTIFICATE-----", "MIIcert"),
        ("Authorization: Bearer zzz.yyy-xxx", "zzz.yyy-xxx"),
        ("sent header Bearer abc123==", "abc123"),
        ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("KALSHI-ACCESS-SIGNATURE: c2lnbmF0dXJl+/== next", "c2lnbmF0dXJl"),
        ('{"api_key": "abc123", "market": "KX"}', "abc123"),
        ("{'password': 'hunter2'}", "hunter2"),
        ('{\\"token\\": \\"tok-in-escaped-json\\"}', "tok-in-escaped-json"),
        ("GET /v2/x?api_key=abc123&limit=5", "abc123"),
        ("a=token=nested_secret", "nested_secret"),
        ("postgres://mm:hunter2@db:5432/mm", "hunter2"),
        ('credentials: {"id": "me", "secret": "inner-secret"}', "inner-secret"),
        ('token:"unterminated-secret', "unterminated-secret"),
        ('token= api_key="next-key-secret"', "next-key-secret"),
    ],
)
def test_redact_text_removes_secret(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert REDACTED in out


def test_redact_text_keeps_surroundings_and_references() -> None:
    text = '{"api_key": "abc123", "api_key_env": "KALSHI_KEY_ID", "market": "KXBTC"}'
    expected = '{"api_key": "***REDACTED***", "api_key_env": "KALSHI_KEY_ID", "market": "KXBTC"}'
    assert redact_text(text) == expected
    assert redact_text("private_key_file=/etc/mm/key.pem") == "private_key_file=/etc/mm/key.pem"
    assert redact_text("placed 3 orders, market_key=KX-1") == "placed 3 orders, market_key=KX-1"
    assert redact_text("") == ""


@given(st.text())
def test_redact_text_is_idempotent(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once


@given(
    prefix=st.text(max_size=30),
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789+/=-_.", min_size=8, max_size=40),
    template=st.sampled_from(
        ['api_key="{}"', "password='{}'", "token={}", '"secret": "{}"', "Authorization: Bearer {}"]
    ),
)
def test_redact_text_catches_keyed_secret_anywhere(prefix: str, secret: str, template: str) -> None:
    # A separator before the key: redaction is keyed on whole names, so "xtoken=" is not "token=".
    assume(secret not in prefix)
    text = prefix + " " + template.format(secret) + " trailing"
    assert secret not in redact_text(text)


# --- redact -------------------------------------------------------------------------------------------


def test_redact_structured() -> None:
    event = {
        "event": f"signing with {PEM}",
        "api_key": "abc123",
        "api_key_env": "KALSHI_KEY_ID",
        "headers": {"Authorization": "Bearer zzz", "KALSHI-ACCESS-KEY": "kid", "Accept": "json"},
        "credentials": {"id": "x", "secret": "y"},
        "price": Decimal("0.56"),
        "count": 3,
        "token": None,
        "items": ["Bearer qqq", ("password=p1",)],
    }
    assert redact(event) == {
        "event": f"signing with {REDACTED}",
        "api_key": REDACTED,
        "api_key_env": "KALSHI_KEY_ID",
        "headers": {"Authorization": REDACTED, "KALSHI-ACCESS-KEY": REDACTED, "Accept": "json"},
        "credentials": REDACTED,
        "price": Decimal("0.56"),
        "count": 3,
        "token": None,  # "not configured" reveals nothing and helps debugging
        "items": [f"Bearer {REDACTED}", (f"password={REDACTED}",)],
    }


def test_redact_keeps_container_types_and_handles_cycles() -> None:
    pair = namedtuple("pair", "name value")
    assert redact(pair("token", "Bearer abc")) == pair("token", f"Bearer {REDACTED}")
    assert redact(frozenset({"x"})) == frozenset({"x"})
    assert redact({"Bearer abc"}) == {f"Bearer {REDACTED}"}
    loop: list[Any] = ["a"]
    loop.append(loop)
    assert redact(loop) == ["a", "<recursive>"]
    shared = {"k": 1}
    assert redact([shared, shared]) == [{"k": 1}, {"k": 1}]  # shared is not a cycle


json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.decimals(allow_nan=False)
key_names = st.sampled_from(SENSITIVE + NOT_SENSITIVE) | st.text(max_size=12)
json_like = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key_names, inner, max_size=4),
    max_leaves=20,
)


@given(json_like)
def test_redact_never_mutates_and_is_idempotent(value: Any) -> None:
    before = copy.deepcopy(value)
    once = redact(value)
    assert value == before
    assert redact(once) == once


@given(
    json_like,
    st.sampled_from(SENSITIVE),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=30),
)
def test_value_under_sensitive_key_never_leaks(other: Any, key: str, secret: str) -> None:
    assume(secret not in repr(other))
    data = {"context": other, "nested": [{key: secret}], key: {"deep": secret}}
    assert secret not in repr(redact(data))
