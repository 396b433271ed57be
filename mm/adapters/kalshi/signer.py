"""Kalshi request signing (kalshi-api.md §2): RSA-PSS over ``timestamp_ms + METHOD + path``.

The one implementation of the client side of Kalshi auth: the adapter signs with it, and the exchange
simulator's verifier checks against the same message format. :class:`KalshiSigner` holds a key id and
private key loaded from a key file or a PEM in an environment variable — never from a spec — and
produces the three ``KALSHI-ACCESS-*`` headers. Keys and signatures never appear in messages.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mm.domain.errors import MmError

ACCESS_KEY_HEADER: Final = "KALSHI-ACCESS-KEY"
ACCESS_TIMESTAMP_HEADER: Final = "KALSHI-ACCESS-TIMESTAMP"
ACCESS_SIGNATURE_HEADER: Final = "KALSHI-ACCESS-SIGNATURE"
WS_SIGNING_PATH: Final = "/trade-api/ws/v2"
"""The path a WebSocket upgrade is signed over, whatever URL the client dials (kalshi-api.md §2)."""


def pss_padding() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


# --- errors -------------------------------------------------------------------------------------------------


class KeyFileError(MmError):
    """A private key file that is missing, unreadable, not an RSA PEM key, or readable by group or others."""


def _strip_query(path: str) -> str:
    return path.split("?", 1)[0]


def signing_message(timestamp_ms: int, method: str, path: str) -> bytes:
    """The bytes Kalshi signs: ``f"{timestamp_ms}{METHOD}{path}"`` with any ``?query`` removed from ``path``."""
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int):
        raise TypeError(f"timestamp_ms must be an int, not {type(timestamp_ms).__name__}")
    return f"{timestamp_ms}{method.upper()}{_strip_query(path)}".encode()


def sign_request(private_key: rsa.RSAPrivateKey, timestamp_ms: int, method: str, path: str) -> str:
    """Sign one request: standard padded base64 of RSA-PSS/SHA-256 over :func:`signing_message`.

    ``path`` is the full URL path including ``/trade-api/v2`` (or :data:`WS_SIGNING_PATH` for a WebSocket); a
    ``?query`` suffix, if present, is stripped first, since Kalshi does not sign it.
    """
    signature = private_key.sign(signing_message(timestamp_ms, method, path), pss_padding(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def auth_headers(
    key_id: str, private_key: rsa.RSAPrivateKey, method: str, path: str, timestamp_ms: int
) -> dict[str, str]:
    """The three ``KALSHI-ACCESS-*`` headers for one request (``path`` with or without its query string)."""
    return {
        ACCESS_KEY_HEADER: key_id,
        ACCESS_TIMESTAMP_HEADER: str(timestamp_ms),
        ACCESS_SIGNATURE_HEADER: sign_request(private_key, timestamp_ms, method, path),
    }


def _looks_like_pem(value: str | Path) -> bool:
    return isinstance(value, str) and "-----BEGIN" in value


def load_private_key(path_or_pem: str | Path) -> rsa.RSAPrivateKey:
    """Load an RSA private key from a PEM file path or from PEM text (a ``str`` containing ``-----BEGIN``).

    A key *file* whose permission bits grant anything to group or others (``mode & 0o077``) is refused with
    :class:`KeyFileError` on POSIX systems — fix it with ``chmod 600 <file>``. Encrypted keys, non-RSA keys and
    unparsable input also raise :class:`KeyFileError`; no message includes the key's contents.
    """
    if _looks_like_pem(path_or_pem):
        data = str(path_or_pem).encode()
        source = "PEM text"
    else:
        path = Path(path_or_pem)
        source = str(path)
        try:
            st = path.stat()
        except OSError as exc:
            raise KeyFileError(f"cannot read private key file {path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"private key path {path} is not a regular file")
        if os.name == "posix" and st.st_mode & 0o077:
            raise KeyFileError(
                f"private key file {path} has mode {stat.S_IMODE(st.st_mode):04o}, readable by others; "
                f"restrict it with `chmod 600 {path}`"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KeyFileError(f"cannot read private key file {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(f"private key in {source} is encrypted; an unencrypted PEM key is required") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(f"{source} does not hold a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{source} holds a {type(key).__name__}, not an RSA private key")
    return key


class KalshiSigner:
    """Signs requests for one API key. Build with :meth:`from_file` or :meth:`from_env`."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key_id: str, private_key: rsa.RSAPrivateKey) -> None:
        if not key_id:
            raise KeyFileError("the API key id is empty")
        self.key_id = key_id
        self._key = private_key

    @classmethod
    def from_file(cls, key_id: str, path: str | Path) -> KalshiSigner:
        return cls(key_id, load_private_key(Path(path)))

    @classmethod
    def from_env(cls, key_id_env: str, private_key_env: str, environ: Mapping[str, str] | None = None) -> KalshiSigner:
        """Key id and PEM from environment variables (their NAMES come from the Exchange spec)."""
        env = os.environ if environ is None else environ
        key_id = env.get(key_id_env, "")
        pem = env.get(private_key_env, "")
        if not key_id:
            raise KeyFileError(f"environment variable {key_id_env} (the API key id) is not set")
        if not pem:
            raise KeyFileError(f"environment variable {private_key_env} (the private key PEM) is not set")
        return cls(key_id, load_private_key(pem))

    def headers(self, method: str, path: str, timestamp_ms: int) -> dict[str, str]:
        """The ``KALSHI-ACCESS-*`` headers for ``METHOD path`` (query string ignored) at ``timestamp_ms``."""
        return auth_headers(self.key_id, self._key, method, path, timestamp_ms)

    def __repr__(self) -> str:
        return f"KalshiSigner(key_id={self.key_id!r})"  # never the key
