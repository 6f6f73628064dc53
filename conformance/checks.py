"""Checks: small functions over an ``Exchange`` that raise ``ConformanceFailure``.

The same functions serve hand-written tests, the recorded scenario, the model-based state
machine and (through ``as_schemathesis_check``) generated traffic. A failure carries a
``Finding``: which requirement broke, on which operation, in plain words, with the evidence.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema

from conformance.contract import Contract
from conformance.exchange import Exchange

# violation: the server broke the contract or a documented requirement. spec_gap: it relied on an
# answer only the overlay allows. inconclusive: the evidence could not be gathered (never the
# server's fault by itself). note: worth a reviewer's eye, judges nothing.
Classification = Literal["violation", "spec_gap", "inconclusive", "note"]


@dataclass
class Finding:
    classification: Classification
    requirement: str | None
    operation: str | None
    check: str
    title: str
    message: str
    severity: str = "high"
    exchanges: list[Exchange] = field(default_factory=list)
    confirmed: bool | None = None  # live targets: did a replay of the request show the same answer?
    replay: dict[str, Any] | None = None
    blocked_by: str | None = None  # inconclusive: the step or precondition that could not be had


class ConformanceFailure(AssertionError):
    """A requirement is broken; ``finding`` holds the evidence."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"[{finding.requirement or finding.check}] {finding.title}: {finding.message}")
        self.finding = finding


class Inconclusive(Exception):
    """The evidence a requirement needs could not be gathered (a precondition failed, a step was
    not reached). The plugin reports the test as inconclusive for each of its requirements that
    the finding does not name itself; it is never a violation."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"inconclusive: {finding.blocked_by}: {finding.message}")
        self.finding = finding


def inconclusive(
    blocked_by: str,
    message: str,
    exchange: Exchange | Iterable[Exchange] | None = None,
    *,
    requirement: str | None = None,
) -> Inconclusive:
    """An Inconclusive naming what blocked (``blocked_by``) and what actually happened (``message``)."""
    exchanges = [] if exchange is None else [exchange] if isinstance(exchange, Exchange) else list(exchange)
    operation = exchanges[-1].operation_id if exchanges else None
    return Inconclusive(
        Finding(
            "inconclusive",
            requirement,
            operation,
            "precondition",
            f"could not be proven: {blocked_by} was not available",
            message,
            "low",
            exchanges,
            blocked_by=blocked_by,
        )
    )


def note(requirement: str | None, exchange: Exchange, title: str, message: str, *, check: str) -> Finding:
    """A finding that judges nothing: shown with its requirement for a reviewer to read."""
    return Finding("note", requirement, exchange.operation_id, check, title, message, "low", [exchange])


def fail(
    requirement: str | None,
    exchange: Exchange | Iterable[Exchange] | None,
    title: str,
    message: str,
    *,
    check: str = "assertion",
    severity: str = "high",
) -> ConformanceFailure:
    exchanges = [] if exchange is None else [exchange] if isinstance(exchange, Exchange) else list(exchange)
    operation = exchanges[-1].operation_id if exchanges else None
    return ConformanceFailure(Finding("violation", requirement, operation, check, title, message, severity, exchanges))


def expected_statuses(contract: Contract, operation_id: str) -> str:
    return ", ".join(
        f"{code}{'' if origin == 'published' else ' (overlay)'}"
        for code, origin in contract.documented_statuses(operation_id).items()
    )


def status_code_is(exchange: Exchange, expected: int | Iterable[int], requirement: str | None) -> None:
    """The answer has one of the expected status codes."""
    __tracebackhide__ = True
    allowed = {expected} if isinstance(expected, int) else set(expected)
    if exchange.status in allowed:
        return
    got = exchange.error or f"{exchange.status}"
    want = " or ".join(str(code) for code in sorted(allowed))
    raise fail(
        requirement,
        exchange,
        f"expected {want}, got {got}",
        f"{exchange.method} {exchange.url} answered {got}; the requirement needs {want}. "
        f"Body: {_short(exchange.response_body)}",
        check="status_code",
    )


def status_code_conformance(contract: Contract, exchange: Exchange, requirement: str | None = "RC-14") -> None:
    """The status code is documented for the operation (published spec or overlay)."""
    __tracebackhide__ = True
    if exchange.operation_id is None or exchange.status is None:
        return
    if contract.origin(exchange.operation_id, exchange.status) == "undocumented":
        raise fail(
            requirement,
            exchange,
            f"undocumented status {exchange.status}",
            f"{exchange.operation_id} answered {exchange.status}, which neither the published spec nor the "
            f"documented behaviour allows (documented: {expected_statuses(contract, exchange.operation_id)}).",
            check="status_code_conformance",
        )


def response_schema_conformance(contract: Contract, exchange: Exchange, requirement: str | None = "RC-14") -> None:
    """The body is JSON and validates against the schema documented for its status."""
    __tracebackhide__ = True
    if exchange.operation_id is None or exchange.status is None:
        return
    status_code_conformance(contract, exchange, requirement)
    schema = contract.response_schema(exchange.operation_id, exchange.status)
    if schema is None:
        return
    documented = contract.response_media_types(exchange.operation_id, exchange.status)
    content_type = exchange.response_header("content-type")
    body = exchange.response_body
    if exchange.media_type not in documented:
        if json_value(body) is not None:
            # The body is JSON, only labelled with a media type the contract does not list.
            raise fail(
                requirement,
                exchange,
                "JSON body under an undocumented media type",
                f"{exchange.operation_id} answered {exchange.status} with Content-Type {content_type!r}; the "
                f"contract documents {', '.join(documented)} for it. The body is JSON: {_short(body)}",
                check="response_media_type",
            )
        raise fail(
            requirement,
            exchange,
            "response is not JSON",
            f"{exchange.operation_id} answered {exchange.status} with Content-Type {content_type!r} and body "
            f"{_short(body)}; the contract documents {', '.join(documented)}.",
            check="response_schema_conformance",
        )
    if isinstance(body, str) or body is None:
        raise fail(
            requirement,
            exchange,
            "JSON response does not parse",
            f"{exchange.operation_id} answered {exchange.status} with Content-Type {content_type!r} but a body that "
            f"is not JSON: {_short(body)}",
            check="response_schema_conformance",
        )
    validator = _validator(contract, exchange.operation_id, exchange.status, schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(exchange.response_body))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise fail(
            requirement,
            exchange,
            "response body does not match its schema",
            f"{exchange.operation_id} {exchange.status}: at {where}: {error.message}",
            check="response_schema_conformance",
        )


_VALIDATORS: dict[tuple[int, str, int], jsonschema.Draft4Validator] = {}


def _validator(contract: Contract, operation_id: str, status: int, schema: Any) -> jsonschema.Draft4Validator:
    """One validator per response of the contract: every exchange is validated (conformance.judge),
    and building one (the draft-4 rewrite of the schema included) costs more than using it."""
    key = (id(contract), operation_id, status)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = jsonschema.Draft4Validator(
            _nullable_to_draft4(schema), format_checker=jsonschema.FormatChecker()
        )
    return _VALIDATORS[key]


def error_body(contract: Contract, exchange: Exchange, requirement: str | None) -> None:
    """A 4xx answer carries a JSON Error body ({error, message}) as documented."""
    __tracebackhide__ = True
    response_schema_conformance(contract, exchange, requirement)
    body = exchange.response_body
    if not isinstance(body, dict) or not any(isinstance(body.get(key), str) for key in ("error", "message")):
        raise fail(
            requirement,
            exchange,
            "error answer without an Error body",
            f"{exchange.status} came with {_short(body)}; an Error body has 'error' and 'message' strings.",
            check="error_body",
        )


def spec_gap(contract: Contract, exchange: Exchange, requirement: str | None) -> Finding | None:
    """A finding when the answer is allowed only by the overlay (the published spec omits it)."""
    if exchange.operation_id is None or exchange.status is None:
        return None
    if contract.origin(exchange.operation_id, exchange.status) != "overlay":
        return None
    entry = contract.overlay_entry(exchange.operation_id, exchange.status)
    why = entry.description if entry else "documented outside the published spec"
    basis = entry.basis if entry else "documented"
    return Finding(
        "spec_gap",
        requirement,
        exchange.operation_id,
        "spec_gap",
        f"{exchange.operation_id} answered {exchange.status}, which the published spec omits",
        f"The published spec lists {expected_statuses(contract, exchange.operation_id)}; "
        f"{exchange.status} is allowed only by the overlay ({basis}): {why}",
        "low",
        [exchange],
    )


def conforms(contract: Contract, exchange: Exchange, requirement: str | None = "RC-14") -> None:
    """Every contract check that applies to any exchange."""
    __tracebackhide__ = True
    response_schema_conformance(contract, exchange, requirement)
    if exchange.status is not None and 400 <= exchange.status < 500:
        error_body(contract, exchange, requirement)


def as_schemathesis_check(contract: Contract, check: Callable[[Contract, Exchange], None]) -> Callable[..., None]:
    """Wrap an exchange check for ``case.call_and_validate(checks=[...])``."""

    def schemathesis_check(ctx: Any, response: Any, case: Any) -> None:
        check(contract, exchange_from_schemathesis(case, response))

    schemathesis_check.__name__ = check.__name__
    return schemathesis_check


def exchange_from_schemathesis(case: Any, response: Any) -> Exchange:
    """An Exchange from a Schemathesis ``Case`` and its ``Response``."""
    request = response.request
    try:
        body: Any = json.loads(response.content) if response.content else None
    except ValueError:
        body = response.content.decode("utf-8", errors="replace")
    raw_request_body = request.body
    if isinstance(raw_request_body, bytes):
        raw_request_body = raw_request_body.decode("utf-8", errors="replace")
    try:
        request_body = json.loads(raw_request_body) if raw_request_body else None
    except (ValueError, TypeError):
        request_body = raw_request_body
    from conformance.exchange import clean_headers

    return Exchange(
        operation_id=case.operation.definition.raw.get("operationId"),
        method=request.method,
        url=request.url,
        request_headers=clean_headers(request.headers),
        request_body=request_body,
        status=response.status_code,
        response_headers=clean_headers({k: ", ".join(v) for k, v in response.headers.items()}),
        response_body=body,
        elapsed_s=round(response.elapsed, 4),
    )


def json_value(body: Any) -> Any:
    """The body as parsed JSON (a dict or list, or a string that parses as one), else None."""
    if isinstance(body, dict | list):
        return body
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict | list) else None
    return None


def _nullable_to_draft4(schema: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` as JSON Schema: the type also admits null."""
    if isinstance(schema, dict):
        converted = {key: _nullable_to_draft4(value) for key, value in schema.items() if key != "example"}
        if converted.pop("nullable", False) is True and "type" in converted:
            converted["type"] = [converted["type"], "null"]
        return converted
    if isinstance(schema, list):
        return [_nullable_to_draft4(item) for item in schema]
    return schema


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"
