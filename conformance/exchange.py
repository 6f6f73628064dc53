"""A neutral record of one request and its response, whoever sent it.

Hand-written tests hold ``httpx.Response``s and Schemathesis hands out its own ``Response``;
both become an ``Exchange`` so that checks, evidence and the report deal with one shape.
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance.settings import FAKE_KEY_PREFIX, REDACTED

SECRET_HEADERS = frozenset({"x-api-key", "authorization", "cookie", "proxy-authorization"})
# Headers that carry no evidence and only make the report noisy.
# (Date stays: it is the server's clock, the evidence of conformance.judge's timestamp property.)
NOISE_HEADERS = frozenset({"accept-encoding", "connection", "user-agent", "content-length", "accept", "server"})


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class WriteClock:
    """How many requests that may change state (any method but the safe ones, RFC 9110 §9.2.1)
    this process has sent. An exchange remembers the count just after it was sent: while the count
    has not moved, the server's state is as the suite last left it, and a replay of the exchange is
    the same experiment (``Exchange.in_place``)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def sent(self, method: str) -> None:
        if method.upper() not in SAFE_METHODS:
            with self._lock:
                self.count += 1


WRITES = WriteClock()


class RunStop:
    """Ctrl-C or SIGTERM stopped the run: no test may send another request (each would raise
    KeyboardInterrupt again, so a library that swallowed the first one cannot go on), while the
    cleanup (``cleaning``) still deletes what the run created."""

    def __init__(self) -> None:
        self.interrupted = threading.Event()
        self.cleaning = threading.Event()

    def check(self) -> None:
        """Raise KeyboardInterrupt if the run was interrupted and this is not the cleanup."""
        if self.interrupted.is_set() and not self.cleaning.is_set():
            raise KeyboardInterrupt("the run was interrupted")


STOP = RunStop()


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type value, lower-cased, without parameters (RFC 9110 §8.3.1).

    ``Application/JSON; charset=utf-8`` -> ``application/json``; a missing header -> ``""``.
    """
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_media_type(value: str) -> bool:
    """``application/json`` or a structured ``+json`` type (RFC 6839), given a parsed media type."""
    return value == "application/json" or (value.startswith("application/") and value.endswith("+json"))


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value from a plain dict, the name compared case-insensitively (RFC 9110 §5.1)."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def json_body(response: Any) -> Any:
    """The JSON body of an httpx or a Schemathesis response, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def data_id(body: Any) -> str | None:
    """``data.id`` of a parsed answer in the API's envelope, when it is a string."""
    data = body.get("data") if isinstance(body, dict) else None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def parse_body(content: bytes, content_type: str | None) -> Any:
    """The body as shown and checked: parsed JSON under a JSON media type, else the text."""
    if not content:
        return None
    text = content.decode("utf-8", errors="replace")
    if is_json_media_type(media_type(content_type)):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def clean_headers(headers: Any) -> dict[str, str]:
    """Headers worth showing, with secret values replaced by the marker."""
    if isinstance(headers, httpx.Headers):  # keep the names' original case for the report
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.raw]
    else:
        pairs = list(dict(headers).items())
    return {
        key: (REDACTED if key.lower() in SECRET_HEADERS and not is_public_credential(value) else value)
        for key, value in pairs
        if key.lower() not in NOISE_HEADERS
    }


def is_public_credential(value: str) -> bool:
    """An empty credential or one of the suite's fixed fake keys: evidence, not a secret."""
    return value.strip() == "" or value.startswith(FAKE_KEY_PREFIX)


@dataclass
class Exchange:
    operation_id: str | None
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: Any
    status: int | None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: Any = None
    elapsed_s: float = 0.0
    error: str | None = None  # a transport error instead of a response
    # The request as sent (real key included) for a one-off replay; never serialized.
    raw_request: httpx.Request | None = field(default=None, repr=False, compare=False)
    # WRITES.count just after this request was sent (see WriteClock); never serialized.
    writes_seen: int = field(default_factory=lambda: WRITES.count, repr=False, compare=False)
    # What of the exchange the evidence does not hold ("response body", "request body"): a recorded
    # capture may lack or truncate a body. Empty for what the suite sent itself. Judged on the rest only.
    unknown: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def in_place(self) -> bool:
        """Nothing that may change state was sent since this exchange: a replay meets the same state."""
        return WRITES.count == self.writes_seen

    @classmethod
    def from_httpx(cls, response: httpx.Response, operation_id: str | None) -> Exchange:
        request = response.request
        try:
            elapsed = response.elapsed.total_seconds()
        except RuntimeError:
            elapsed = 0.0
        return cls(
            operation_id=operation_id,
            method=request.method,
            url=str(request.url),
            request_headers=clean_headers(request.headers),
            request_body=parse_body(request.content, request.headers.get("content-type", "")),
            status=response.status_code,
            response_headers=clean_headers(response.headers),
            response_body=parse_body(response.content, response.headers.get("content-type", "")),
            elapsed_s=round(elapsed, 4),
            raw_request=request,
        )

    @classmethod
    def from_error(cls, request: httpx.Request, operation_id: str | None, error: Exception) -> Exchange:
        return cls(
            operation_id=operation_id,
            method=request.method,
            url=str(request.url),
            request_headers=clean_headers(request.headers),
            request_body=parse_body(request.content, request.headers.get("content-type", "")),
            status=None,
            error=f"{type(error).__name__}: {error}",
            raw_request=request,
        )

    def response_header(self, name: str) -> str | None:
        """A response header by name, however the server spelled it."""
        return header_value(self.response_headers, name)

    @property
    def media_type(self) -> str:
        """The response's media type, parsed (``""`` when it sent no Content-Type)."""
        return media_type(self.response_header("content-type"))

    @property
    def is_json(self) -> bool:
        """The response declares a JSON media type (``application/json``, any case, any parameters)."""
        return is_json_media_type(self.media_type)

    def curl(self) -> str:
        """A curl command that sends the same request.

        The configured key (recorded as REDACTED) comes from $RAFF_API_KEY; a fake or empty key is
        sent as it was, so the command reproduces a wrong-key request too. curl sets Host itself.
        """
        parts = ["curl", "-sS", "-X", self.method, shlex.quote(self.url)]
        for key, value in self.request_headers.items():
            name = key.lower()
            if name == "host":
                continue
            if name == "x-api-key" and value == REDACTED:
                parts += ["-H", '"X-API-Key: $RAFF_API_KEY"']
            elif name not in SECRET_HEADERS or is_public_credential(value):
                parts += ["-H", shlex.quote(f"{key}: {value}")]
        if self.request_body is not None:
            body = self.request_body if isinstance(self.request_body, str) else json.dumps(self.request_body)
            parts += ["--data", shlex.quote(body)]
        return " ".join(parts)

    def summary(self) -> str:
        outcome = self.error or f"{self.status}"
        return f"{self.method} {self.url} -> {outcome}"

    def to_dict(self) -> dict[str, Any]:
        response = None
        if self.status is not None:
            response = {
                "status": self.status,
                "headers": self.response_headers,
                "body": self.response_body,
                "elapsed_s": self.elapsed_s,
            }
        return {
            "operation_id": self.operation_id,
            "request": {
                "method": self.method,
                "url": self.url,
                "headers": self.request_headers,
                "body": self.request_body,
            },
            "response": response,
            "error": self.error,
            "curl": self.curl(),
        }
