"""Secret scrubbing applied to everything before any report file is written.

Evidence is copied from live traffic, so a key can hide anywhere: a header, a curl command,
an error body that echoes it, an assertion message. Redaction therefore walks the whole
structure and rewrites strings too, not just the header dicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from conformance.report.model import FAKE_KEY_PREFIX, REDACTED

# Header (and field) names whose value is a credential wherever they appear as a dict key.
SECRET_NAMES = frozenset(
    {"x-api-key", "authorization", "proxy-authorization", "cookie", "set-cookie", "api_key", "api-key", "apikey"}
)

_NOT_ALREADY = r"(?!\[REDACTED\])"
# A shell variable ("X-API-Key: $RAFF_API_KEY" in our curl commands) is a placeholder, not a
# secret; rewriting it would break the reproduce command for nothing.
_NOT_VARIABLE = r"(?!\$)"
# Nor is one of the suite's own fake keys: the evidence of a wrong-key test is the key it sent.
_NOT_FAKE = rf"(?!{re.escape(FAKE_KEY_PREFIX)})"
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # "X-API-Key: v", "'Authorization': 'Bearer v'", "x-api-key=v" in curl strings, reprs, messages.
    re.compile(
        r"(?i)(\b(?:x-api-key|proxy-authorization|authorization)[\"']?\s*[:=]\s*[\"']?)"
        + _NOT_ALREADY
        + _NOT_VARIABLE
        + _NOT_FAKE
        + r"((?:(?:bearer|basic|token|digest)\s+)?[^\s\"'`,;}\]\\]+)"
    ),
    # Cookies hold "a=b; c=d", so the value runs to the end of the quoted string or line.
    re.compile(r"(?i)(\b(?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)" + _NOT_ALREADY + _NOT_VARIABLE + r"([^\"'\r\n\\]+)"),
    # Keys passed in a query string.
    re.compile(r"(?i)([?&](?:api[_-]?key|access_token|token)=)" + _NOT_ALREADY + r"([^&#\s\"']+)"),
)
# Raff keys look like raff_pub_… (raff-go's docs). Scrubbing the shape too means a key the
# caller forgot to pass in ``secrets`` still does not reach a report.
_RAFF_KEY = re.compile(r"\braff_[a-z]{2,8}_[A-Za-z0-9]{8,}")


# Every pattern above needs one of these in the lower-cased text; a string without any of them
# (most of a report: statuses, ids, messages) skips the regular expressions.
_PATTERN_WORDS = ("authorization", "x-api-key", "cookie", "token", "apikey", "api_key", "api-key", "raff_")


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret value and credential-looking header value replaced."""
    return _redact_text(text, _longest_first(secrets))


def _longest_first(secrets: Iterable[str]) -> tuple[str, ...]:
    # Longest first, so a secret that contains another is replaced whole.
    return tuple(sorted({s for s in secrets if s}, key=len, reverse=True))


def _redact_text(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    lowered = text.lower()
    if not any(word in lowered for word in _PATTERN_WORDS):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return _RAFF_KEY.sub(REDACTED, text)


def redact(obj: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``obj`` (JSON-like: dicts, lists, strings, scalars) with secrets replaced."""
    return _redact(obj, _longest_first(secrets))


def _redact(obj: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(obj, str):
        return _redact_text(obj, secrets)
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            new_key = _redact_text(key, secrets) if isinstance(key, str) else key
            public = isinstance(value, str) and (value.strip() == "" or value.startswith(FAKE_KEY_PREFIX))
            if isinstance(key, str) and key.lower() in SECRET_NAMES and value is not None and not public:
                out[new_key] = [REDACTED for _ in value] if isinstance(value, list) else REDACTED
            else:
                out[new_key] = _redact(value, secrets)
        return out
    if isinstance(obj, list | tuple):
        return [_redact(item, secrets) for item in obj]
    return obj
