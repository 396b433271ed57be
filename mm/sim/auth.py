"""Kalshi's RSA-PSS request authentication (kalshi-api.md §2): signing, key files, and the simulator's verifier.

Two halves live here because they must agree byte for byte:

* **Client side** — :func:`sign_request` and :func:`auth_headers`, plus key helpers (:func:`generate_key`,
  :func:`write_private_key`, :func:`load_private_key`, :func:`public_key_pem`). Dependency-light on purpose
  (``cryptography`` and the standard library only) so a Kalshi client adapter can import it.
* **Server side** — :class:`KeyRegistry` (key id → public key and user id, persisted as JSON holding public keys
  only) and :class:`Verifier`, which checks the three ``KALSHI-ACCESS-*`` headers and raises :class:`AuthError`.

What is signed: ``f"{timestamp_ms}{METHOD}{path}"`` where ``path`` is the URL path including ``/trade-api/v2``
and without the query string; host and body are not signed. The signature is RSA-PSS with SHA-256, MGF1(SHA-256)
and a salt as long as the digest (32 bytes), sent as standard padded base64. A WebSocket upgrade is signed over
the literal path :data:`WS_SIGNING_PATH` whatever URL the client dials.

401 ``details`` strings (``code`` is always ``authentication_error``; the body's ``message`` repeats the code, as
in live captures):

=============================== =========================================================================
``MISSING_ACCESS_KEY``          no ``KALSHI-ACCESS-KEY`` header (or an empty one) — simulator's choice
``MISSING_ACCESS_TIMESTAMP``    no ``KALSHI-ACCESS-TIMESTAMP`` header — simulator's choice
``MISSING_ACCESS_SIGNATURE``    no ``KALSHI-ACCESS-SIGNATURE`` header — simulator's choice
``INVALID_ACCESS_TIMESTAMP``    the timestamp is not a whole number of milliseconds — simulator's choice
``NOT_FOUND``                   the key id is not registered (Kalshi capture)
``header_timestamp_expired``    the timestamp is more than ``max_skew_ms`` (5 s) from the server clock, in either
                                direction (Kalshi capture; the doc says ±5 s passes and −30 s fails)
``INCORRECT_API_KEY_SIGNATURE`` the signature does not verify, or is not valid base64 (Kalshi capture)
=============================== =========================================================================

Checks run in that order: headers, key, timestamp, signature. Secrets never appear in errors or reprs: messages
name the failing check only, not the signature, the key id or any key material.

Key files: :func:`write_private_key` writes PKCS#8 PEM, unencrypted, mode ``0600``, atomically (a temp file
opened with ``os.open(..., 0o600)`` in the same directory, then ``os.replace``). :func:`load_private_key` refuses
(:class:`KeyFileError`) a key file whose mode grants any group or other permission, like OpenSSH does, and says
how to fix it (``chmod 600``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mm.adapters.kalshi.signer import (
    ACCESS_KEY_HEADER,
    ACCESS_SIGNATURE_HEADER,
    ACCESS_TIMESTAMP_HEADER,
    WS_SIGNING_PATH,
    KeyFileError,
    auth_headers,
    load_private_key,
    pss_padding,
    sign_request,
    signing_message,
)
from mm.clock import Clock
from mm.domain.errors import MmError

__all__ = [
    "ACCESS_KEY_HEADER",
    "ACCESS_SIGNATURE_HEADER",
    "ACCESS_TIMESTAMP_HEADER",
    "AUTHENTICATION_ERROR",
    "DEFAULT_MAX_SKEW_MS",
    "DETAILS_BAD_SIGNATURE",
    "DETAILS_INVALID_TIMESTAMP",
    "DETAILS_MISSING_KEY",
    "DETAILS_MISSING_SIGNATURE",
    "DETAILS_MISSING_TIMESTAMP",
    "DETAILS_TIMESTAMP_EXPIRED",
    "DETAILS_UNKNOWN_KEY",
    "KEY_BITS",
    "WS_SIGNING_PATH",
    "AuthError",
    "KeyFileError",
    "KeyRegistry",
    "RegisteredKey",
    "Verifier",
    "auth_headers",
    "generate_key",
    "load_private_key",
    "public_key_pem",
    "sign_request",
    "signing_message",
    "timestamp_ms",
    "write_private_key",
]


KEY_BITS: Final = 2048
DEFAULT_MAX_SKEW_MS: Final = 5_000
"""Accepted distance between the client's timestamp and the server clock, past or future (inclusive)."""

AUTHENTICATION_ERROR: Final = "authentication_error"
DETAILS_MISSING_KEY: Final = "MISSING_ACCESS_KEY"
DETAILS_MISSING_TIMESTAMP: Final = "MISSING_ACCESS_TIMESTAMP"
DETAILS_MISSING_SIGNATURE: Final = "MISSING_ACCESS_SIGNATURE"
DETAILS_INVALID_TIMESTAMP: Final = "INVALID_ACCESS_TIMESTAMP"
DETAILS_UNKNOWN_KEY: Final = "NOT_FOUND"
DETAILS_TIMESTAMP_EXPIRED: Final = "header_timestamp_expired"
DETAILS_BAD_SIGNATURE: Final = "INCORRECT_API_KEY_SIGNATURE"

_REGISTRY_FORMAT: Final = 1
_US_PER_MS: Final = 1_000


class AuthError(MmError):
    """A request that failed authentication; ``status`` is the HTTP status (401) and :meth:`body` its JSON body.

    ``str(error)`` is a human-readable reason that never contains a signature, key id or key material.
    """

    def __init__(
        self, code: str, details: str, status: int = 401, *, message: str | None = None, reason: str | None = None
    ) -> None:
        """``message`` is the body's ``message`` field (defaults to ``code``, as live captures show);
        ``reason`` is the text of the exception (defaults to ``details``)."""
        super().__init__(reason or details)
        self.code = code
        self.details = details
        self.status = status
        self.message = message if message is not None else code

    def body(self) -> dict[str, Any]:
        """``{"error": {code, message, details}, "code", "message", "details"}``: the nested object live captures
        show plus top-level copies of its fields (kalshi-api.md §3), so clients reading either form work."""
        fields = {"code": self.code, "message": self.message, "details": self.details}
        return {"error": dict(fields), **fields}


def _auth_error(details: str, reason: str) -> AuthError:
    return AuthError(AUTHENTICATION_ERROR, details, 401, reason=reason)


# --- signing (client side) ------------------------------------------------------------------------------------


def timestamp_ms(clock: Clock) -> int:
    """The clock's current time in whole Unix milliseconds, the unit of ``KALSHI-ACCESS-TIMESTAMP``."""
    return clock.now_us() // _US_PER_MS


# --- key files ------------------------------------------------------------------------------------------------


def generate_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 private key (public exponent 65537), the kind Kalshi issues."""
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM bytes. Secret: never log the result."""
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """The public half of ``key`` (either half accepted) as SubjectPublicKeyInfo PEM text."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory created with ``mode`` and ``os.replace``.

    The temp file is opened with ``O_CREAT | O_EXCL`` and ``mode`` so it is never, even briefly, more permissive
    than ``mode`` (the umask can only narrow it; ``fchmod`` then makes it exactly ``mode``).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_private_key(path: str | Path, key: rsa.RSAPrivateKey, *, overwrite: bool = False) -> Path:
    """Write ``key`` to ``path`` as unencrypted PKCS#8 PEM with mode ``0600``, atomically; return the path.

    Refuses (:class:`KeyFileError`) to replace an existing file unless ``overwrite`` is true: losing a private
    key to a typo is not recoverable.
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise KeyFileError(f"refusing to overwrite existing key file {target} (pass overwrite=True to replace it)")
    _atomic_write(target, private_key_pem(key), 0o600)
    return target


def _load_public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"expected an RSA public key, got {type(key).__name__}")
    return key


# --- server side ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """One API key known to the simulator: its id, its owner and its public half."""

    key_id: str
    user_id: str
    public_key: rsa.RSAPublicKey


class KeyRegistry:
    """The simulator's API keys: key id (UUID4 string) → public key and user id.

    Holds public keys only. :meth:`save` / :meth:`load` persist it as JSON
    (``{"format": 1, "keys": [{"key_id", "user_id", "public_key_pem"}]}``), written atomically.
    """

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[str, RegisteredKey] = {}

    def register(
        self, public_key: rsa.RSAPublicKey | rsa.RSAPrivateKey, user_id: str, *, key_id: str | None = None
    ) -> str:
        """Register ``public_key`` for ``user_id`` and return its key id (a new UUID4 unless ``key_id`` is given).

        A private key is accepted for convenience; only its public half is kept.
        """
        public = public_key.public_key() if isinstance(public_key, rsa.RSAPrivateKey) else public_key
        if not isinstance(public, rsa.RSAPublicKey):
            raise TypeError(f"expected an RSA key, not {type(public).__name__}")
        if not user_id:
            raise ValueError("user_id must not be empty")
        kid = key_id if key_id is not None else str(uuid.uuid4())
        if not kid:
            raise ValueError("key_id must not be empty")
        if kid in self._keys:
            raise ValueError("key id already registered")
        self._keys[kid] = RegisteredKey(kid, user_id, public)
        return kid

    def create_key(self, user_id: str, directory: str | Path) -> tuple[str, Path]:
        """Generate a key pair for ``user_id``, write the private key to ``directory/<key_id>.pem`` (mode 0600),
        register the public half and return ``(key_id, pem_path)``. ``directory`` is created (mode 0700) if absent.
        """
        folder = Path(directory)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = generate_key()
        key_id = str(uuid.uuid4())
        pem_path = write_private_key(folder / f"{key_id}.pem", key)
        self.register(key.public_key(), user_id, key_id=key_id)
        return key_id, pem_path

    def revoke(self, key_id: str) -> bool:
        """Forget ``key_id``; return whether it was registered."""
        return self._keys.pop(key_id, None) is not None

    def get(self, key_id: str) -> RegisteredKey | None:
        """The registered key with id ``key_id``, or ``None``."""
        return self._keys.get(key_id)

    def keys_of(self, user_id: str) -> list[str]:
        """The key ids registered to ``user_id``, in registration order."""
        return [k.key_id for k in self._keys.values() if k.user_id == user_id]

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[RegisteredKey]:
        return iter(list(self._keys.values()))

    def __repr__(self) -> str:
        return f"KeyRegistry({len(self._keys)} keys)"

    def to_json(self) -> dict[str, Any]:
        """The registry as a JSON-ready dict: ids, user ids and public keys (PEM), never private material."""
        return {
            "format": _REGISTRY_FORMAT,
            "keys": [
                {"key_id": k.key_id, "user_id": k.user_id, "public_key_pem": public_key_pem(k.public_key)}
                for k in self._keys.values()
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeyRegistry:
        """Inverse of :meth:`to_json`; raises ``ValueError`` on an unknown format or a malformed entry."""
        if data.get("format") != _REGISTRY_FORMAT:
            raise ValueError(f"unsupported key registry format {data.get('format')!r}")
        registry = cls()
        entries = data.get("keys")
        if not isinstance(entries, list):
            raise ValueError("key registry has no 'keys' list")
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise ValueError("key registry entry is not an object")
            key_id, user_id, pem = entry.get("key_id"), entry.get("user_id"), entry.get("public_key_pem")
            if not (isinstance(key_id, str) and isinstance(user_id, str) and isinstance(pem, str)):
                raise ValueError("key registry entry needs string key_id, user_id and public_key_pem")
            registry.register(_load_public_key(pem), user_id, key_id=key_id)
        return registry

    def save(self, path: str | Path) -> None:
        """Write the registry to ``path`` as JSON, atomically (mode 0644: it holds public keys only)."""
        text = json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"
        _atomic_write(Path(path), text.encode(), 0o644)

    @classmethod
    def load(cls, path: str | Path) -> KeyRegistry:
        """Read a registry written by :meth:`save`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, Mapping):
            raise ValueError(f"{path} does not hold a key registry object")
        return cls.from_json(data)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (works for plain dicts and for case-insensitive header objects)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                value = candidate
                break
    if value is None:
        return None
    value = value.strip()
    return value or None


class Verifier:
    """Checks a request's ``KALSHI-ACCESS-*`` headers against a :class:`KeyRegistry` and a :class:`Clock`.

    The timestamp must be within ``max_skew_ms`` of ``clock`` (inclusive) in the past *or* the future.
    """

    __slots__ = ("_clock", "_max_skew_ms", "_registry")

    def __init__(self, registry: KeyRegistry, clock: Clock, max_skew_ms: int = DEFAULT_MAX_SKEW_MS) -> None:
        if max_skew_ms < 0:
            raise ValueError("max_skew_ms must be >= 0")
        self._registry = registry
        self._clock = clock
        self._max_skew_ms = max_skew_ms

    @property
    def max_skew_ms(self) -> int:
        return self._max_skew_ms

    def verify(self, method: str, path: str, headers: Mapping[str, str]) -> str:
        """Authenticate one request and return its user id, or raise :class:`AuthError` (401).

        ``path`` is the URL path as received (``/trade-api/v2/...``); a ``?query`` suffix is ignored.
        """
        key_id = _header(headers, ACCESS_KEY_HEADER)
        if key_id is None:
            raise _auth_error(DETAILS_MISSING_KEY, f"missing {ACCESS_KEY_HEADER} header")
        ts_text = _header(headers, ACCESS_TIMESTAMP_HEADER)
        if ts_text is None:
            raise _auth_error(DETAILS_MISSING_TIMESTAMP, f"missing {ACCESS_TIMESTAMP_HEADER} header")
        signature_b64 = _header(headers, ACCESS_SIGNATURE_HEADER)
        if signature_b64 is None:
            raise _auth_error(DETAILS_MISSING_SIGNATURE, f"missing {ACCESS_SIGNATURE_HEADER} header")

        registered = self._registry.get(key_id)
        if registered is None:
            raise _auth_error(DETAILS_UNKNOWN_KEY, "unknown API key id")

        if not (ts_text.isascii() and ts_text.isdigit()) or len(ts_text) > 19:
            raise _auth_error(DETAILS_INVALID_TIMESTAMP, f"{ACCESS_TIMESTAMP_HEADER} is not Unix milliseconds")
        ts_ms = int(ts_text)
        skew_ms = timestamp_ms(self._clock) - ts_ms
        if abs(skew_ms) > self._max_skew_ms:
            raise _auth_error(
                DETAILS_TIMESTAMP_EXPIRED,
                f"request timestamp is {skew_ms / 1000:+.3f} s from server time (allowed ±{self._max_skew_ms} ms)",
            )

        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError):
            raise _auth_error(DETAILS_BAD_SIGNATURE, "signature is not valid base64") from None
        try:
            registered.public_key.verify(
                signature, signing_message(ts_ms, method, path), pss_padding(), hashes.SHA256()
            )
        except InvalidSignature:
            raise _auth_error(DETAILS_BAD_SIGNATURE, "signature does not match the request") from None
        return registered.user_id

    def verify_websocket(self, headers: Mapping[str, str]) -> str:
        """Authenticate a WebSocket upgrade: signed over ``GET`` and :data:`WS_SIGNING_PATH`, whatever the URL."""
        return self.verify("GET", WS_SIGNING_PATH, headers)
