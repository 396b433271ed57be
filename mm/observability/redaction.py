"""Secret redaction: the single function used for log lines, config diffs and error messages.

Safety rule (NFR-301): credentials are never logged; wherever they could surface they are replaced by
:data:`REDACTED`. There is deliberately one implementation, so a fix here protects every output path.

**Which key names are sensitive** (:func:`is_sensitive_key`). The name is split into lower-case words
on ``_``, ``-``, ``.``, whitespace and camelCase boundaries (``privateKeyPem`` -> private, key, pem;
``KALSHI-ACCESS-KEY`` -> kalshi, access, key). Then:

1. If the last word is ``env``, ``file`` or ``path`` the name is a *reference* to where a secret lives
   (``api_key_env``, ``private_key_file``): not a secret, and kept visible so operators can debug
   config.
2. Otherwise it is sensitive if any word is one of :data:`SENSITIVE_WORDS` (secret, token, password,
   signature, cookie, authorization, apikey, ...), or
3. some word is ``key`` and it is either the whole name (``key``, ``key_id``, ``keyId``) or preceded by
   a qualifier in :data:`KEY_QUALIFIERS` (api, private, access, secret, signing, routing, ...), or
4. the words contain ``webhook`` followed by ``url`` (chat webhook URLs embed their own token).

So ``market_key``, ``sort_key``, ``monkey`` and ``keyboard`` stay visible. The rule errs towards
redacting: a false positive costs a little debugging convenience, a false negative leaks a credential.

**Free text** (:func:`redact_text`) is best effort, not a parser. It removes: any PEM block
(``-----BEGIN ...-----`` to the matching ``END``, or to the end of the text if a private key block is
truncated); ``Bearer``/``Basic`` credentials; passwords in URLs (``scheme://user:PASSWORD@host``); and
the value in ``key=value``, ``key: value``, ``"key": "value"`` and ``'key': 'value'`` pairs (including
JSON-escaped ``\\"key\\": \\"value\\"``) whose key is sensitive by the rule above. Not caught: secrets
in free prose with no key name, values that are nested lists in text form, quoted values containing
the same escaped quote character. Structured data should be passed to :func:`redact`, which is exact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

__all__ = ["KEY_QUALIFIERS", "REDACTED", "SENSITIVE_WORDS", "is_sensitive_key", "redact", "redact_text"]

REDACTED: Final = "***REDACTED***"

SENSITIVE_WORDS: Final = frozenset(
    {
        "secret", "secrets", "token", "tokens", "password", "passwords", "passwd", "passphrase",
        "credential", "credentials", "authorization", "signature", "cookie", "cookies",
        "apikey", "privatekey", "accesskey", "secretkey", "accesstoken", "refreshtoken", "sessionid",
    }
)  # fmt: skip
"""Words that make a key name sensitive wherever they appear in it."""

KEY_QUALIFIERS: Final = frozenset(
    {"api", "private", "access", "secret", "signing", "routing", "integration", "encryption", "master"}
)
"""Words that, directly before ``key``, make it a credential (``api_key``) rather than an identifier."""

_REFERENCE_SUFFIXES: Final = frozenset({"env", "file", "path"})

# Acronym runs (API in APIKey), capitalised/lower words, digits: camelCase and snake_case alike.
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


@lru_cache(maxsize=4096)  # log keys repeat endlessly; the split is the expensive part
def is_sensitive_key(key: str) -> bool:
    """True if a value stored under ``key`` must be redacted (rule in the module docstring)."""
    words = [w.lower() for w in _WORD.findall(key)]
    if not words or words[-1] in _REFERENCE_SUFFIXES:
        return False
    if any(w in SENSITIVE_WORDS for w in words):
        return True
    if words in (["key"], ["key", "id"]):
        return True
    for i, word in enumerate(words):
        if word == "key" and i > 0 and words[i - 1] in KEY_QUALIFIERS:
            return True
        if word == "webhook" and "url" in words[i + 1 :]:
            return True
    return False


# --- free-text patterns -------------------------------------------------------------------------------

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
# A private key cut off mid-way (truncated log line, partial paste): redact to the end of the text.
_PEM_TRUNCATED = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*", re.DOTALL)
_URL_PASSWORD = re.compile(r"(?P<prefix>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]+:)[^@/\s]+(?=@)")
_BEARER = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)

# A key name not glued to a preceding identifier character, then the separator (optionally closing
# the key's quotes, possibly JSON-escaped). The value is matched separately so that a non-sensitive
# key's "value" is still scanned for sensitive keys of its own (``a=token=x``).
_KEY_SEP = re.compile(r"(?<![A-Za-z0-9_.\-])(?P<key>[A-Za-z][A-Za-z0-9_.\-]*)\\?[\"']?[ \t]*[:=][ \t]*")
_VALUE = re.compile(
    r"""(?P<dq_open>\\?")(?P<dq>(?:[^"\\]|\\[^"])*)\\?"          # "value" or \"value\"
      | (?P<sq_open>\\?')(?P<sq>(?:[^'\\]|\\[^'])*)\\?'          # 'value'
      | \\?["']?(?P<bare>(?:(?:Bearer|Basic|Digest|Token)[ \t]+)?[^\s,;&{}\[\]()"'\\]+)  # bare (or unclosed)
    """,
    re.VERBOSE | re.IGNORECASE,
)


def _redact_pairs(text: str) -> str:
    out: list[str] = []
    pos = 0  # everything before pos has been copied to out
    search_from = 0
    while (m := _KEY_SEP.search(text, search_from)) is not None:
        search_from = m.end()
        if not is_sensitive_key(m.group("key")):
            continue
        # "token= api_key=..." : the first key has no value of its own; let the next one be handled.
        nxt = _KEY_SEP.match(text, m.end())
        if nxt is not None and is_sensitive_key(nxt.group("key")):
            continue
        v = _VALUE.match(text, m.end())
        if v is None:  # e.g. a nested object: its own keys are scanned on the next iterations
            continue
        group = next(g for g in ("dq", "sq", "bare") if v.group(g) is not None)
        out.append(text[pos : v.start(group)])
        out.append(REDACTED)
        pos = search_from = v.end(group)
    out.append(text[pos:])
    return "".join(out)


def redact_text(text: str) -> str:
    """Return ``text`` with credentials replaced by :data:`REDACTED` (best effort; see module doc)."""
    text = _PEM_BLOCK.sub(REDACTED, text)
    text = _PEM_TRUNCATED.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m.group("prefix") + REDACTED, text)
    text = _redact_pairs(text)
    return _BEARER.sub(lambda m: f"{m.group('scheme')} {REDACTED}", text)


# --- structured data ----------------------------------------------------------------------------------


def redact(value: Any) -> Any:
    """Return a redacted copy of ``value``; the input is never mutated.

    Mappings become dicts whose values under sensitive keys (:func:`is_sensitive_key`) are replaced by
    :data:`REDACTED` — except ``None``, kept so "not configured" stays visible (it reveals nothing).
    Lists, tuples (named tuples keep their type), sets and frozensets are copied element-wise;
    strings go through :func:`redact_text`; everything else (Decimal, int, datetime, ...) is returned
    as is. A container that contains itself is replaced by a marker instead of recursing forever.
    """
    return _redact(value, set())


def _redact(value: Any, active: set[int]) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if not isinstance(value, Mapping | list | tuple | set | frozenset):
        return value
    if id(value) in active:
        return "<recursive>"
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            return {
                k: (REDACTED if isinstance(k, str) and is_sensitive_key(k) and v is not None else _redact(v, active))
                for k, v in value.items()
            }
        items = [_redact(v, active) for v in value]
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # named tuple
            return type(value)(*items)
        if isinstance(value, list):
            return items
        if isinstance(value, tuple):
            return tuple(items)
        return frozenset(items) if isinstance(value, frozenset) else set(items)
    finally:
        active.discard(id(value))
