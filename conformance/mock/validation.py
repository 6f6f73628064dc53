"""Request rules of the mock, derived from the merged contract rather than written by hand.

Every operation of ``load_contract().merged`` becomes an :class:`OperationRules`: its path
pattern, its parameters with JSON-schema validators, and its request body validator. The mock
validates every request against these, so a change in ``specs/`` changes what the mock accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import best_match

from conformance.contract import Contract

# A UUID exactly as RFC 9562 writes it. jsonschema's own "uuid" check goes through uuid.UUID(),
# which also accepts oddities such as underscores between hex digits; Schemathesis generates
# near misses of this exact text form as invalid input, so the mock must reject them too.
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Integers in a query string: plain ASCII digits only (int() would also take "1_0", " 7" or Arabic digits).
_INTEGER_RE = re.compile(r"^-?[0-9]+$")
# Past this many digits a number is clamped instead of parsed: int() refuses > 4300 digits.
_MAX_INTEGER_DIGITS = 18
_HUGE = 2**63 - 1
MAX_BODY_BYTES = 64 * 1024

FORMAT_CHECKER = FormatChecker()


@FORMAT_CHECKER.checks("uuid")
def _is_uuid(instance: object) -> bool:
    return not isinstance(instance, str) or bool(_UUID_RE.match(instance))


def to_json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema (``$ref``s already resolved) as JSON Schema: ``nullable`` becomes a null type."""
    if isinstance(schema, list):
        return [to_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: to_json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") is True:
        if "type" in converted:
            types = converted["type"] if isinstance(converted["type"], list) else [converted["type"]]
            converted["type"] = [*types, "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


def validator_for(schema: dict[str, Any]) -> Draft4Validator:
    """A validator for an OpenAPI 3.0 schema, with formats (uuid, date-time) enforced."""
    return Draft4Validator(to_json_schema(schema), format_checker=FORMAT_CHECKER)


class RequestError(Exception):
    """A request that breaks its operation's rules; ``location`` is path, query, header or body."""

    def __init__(self, location: str, name: str, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.location = location
        self.name = name
        self.message = message
        self.missing = missing


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    required: bool
    schema_type: str | None
    schema_format: str | None
    default: Any
    validator: Draft4Validator

    @property
    def key(self) -> str:
        # Header names are case-insensitive; Starlette hands them over in lower case.
        return self.name.lower() if self.location == "header" else self.name


@dataclass(frozen=True)
class OperationRules:
    operation_id: str
    method: str
    path: str
    pattern: re.Pattern[str]
    parameters: tuple[Parameter, ...]
    body_required: bool
    body_media_types: tuple[str, ...]
    body_validator: Draft4Validator | None

    def validate(
        self,
        *,
        path: Mapping[str, str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
        skip: frozenset[tuple[str, str]] = frozenset(),
    ) -> dict[str, Any]:
        """Checked and typed parameter values keyed by name; raises :class:`RequestError`.

        Headers are checked before the query and the path so that a missing X-Project-ID is
        reported as such even when other values are wrong too. ``skip`` lists (location, key)
        pairs left unchecked, which only planted defects use.
        """
        sources = {"header": headers, "query": query, "path": path}
        values: dict[str, Any] = {}
        for location in ("header", "query", "path"):
            for parameter in self.parameters:
                if parameter.location != location or (location, parameter.key) in skip:
                    continue
                raw = sources[location].get(parameter.key)
                if raw is None:
                    if parameter.required:
                        raise RequestError(location, parameter.name, f"{parameter.name} required", missing=True)
                    if parameter.default is not None:
                        values[parameter.name] = parameter.default
                    continue
                values[parameter.name] = _check_value(parameter, raw)
        return values

    def parse_body(self, content_type: str | None, body: bytes) -> Any:
        """The decoded and checked JSON body; raises :class:`RequestError`."""
        if self.body_validator is None:
            return None  # operations without a request body ignore whatever was sent
        if not body:
            if self.body_required:
                raise RequestError("body", "body", "Request body required", missing=True)
            return None
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type not in self.body_media_types:
            raise RequestError("body", "content-type", f"Content-Type must be {' or '.join(self.body_media_types)}")
        if len(body) > MAX_BODY_BYTES:
            raise RequestError("body", "body", f"Request body larger than {MAX_BODY_BYTES} bytes")
        try:
            document = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise RequestError("body", "body", "Request body is not valid JSON") from None
        error = best_match(self.body_validator.iter_errors(document))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "body"
            raise RequestError("body", where, f"Invalid request body at {where}: {_short(error.message)}")
        return document


def _check_value(parameter: Parameter, raw: str) -> Any:
    value: Any = raw
    if parameter.schema_type == "integer":
        if not _INTEGER_RE.match(raw):
            raise RequestError(parameter.location, parameter.name, f"{parameter.name} must be an integer")
        digits = raw.lstrip("-")
        value = (-_HUGE if raw.startswith("-") else _HUGE) if len(digits) > _MAX_INTEGER_DIGITS else int(raw)
    error = best_match(parameter.validator.iter_errors(value))
    if error is not None:
        raise RequestError(parameter.location, parameter.name, f"Invalid {parameter.name}: {_short(error.message)}")
    if parameter.schema_format == "uuid":
        value = value.lower()  # UUIDs compare case-insensitively; the mock stores them in lower case
    return value


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_rules(contract: Contract) -> dict[str, OperationRules]:
    """Rules for every operation of the merged contract, keyed by operationId."""
    rules: dict[str, OperationRules] = {}
    for operation in contract.operations():
        definition = operation.definition
        parameters = []
        for raw in definition.get("parameters", []):
            parameter = contract.resolve_deep(raw)
            schema = parameter.get("schema", {})
            parameters.append(
                Parameter(
                    name=parameter["name"],
                    location=parameter["in"],
                    required=bool(parameter.get("required", parameter["in"] == "path")),
                    schema_type=schema.get("type"),
                    schema_format=schema.get("format"),
                    default=schema.get("default"),
                    validator=validator_for(schema),
                )
            )
        body = contract.resolve_deep(definition.get("requestBody", {}))
        content = body.get("content", {})
        json_types = tuple(media for media in content if media == "application/json" or media.endswith("+json"))
        body_schema = content[json_types[0]].get("schema", {}) if json_types else None
        rules[operation.operation_id] = OperationRules(
            operation_id=operation.operation_id,
            method=operation.method,
            path=operation.path,
            pattern=operation.pattern,
            parameters=tuple(parameters),
            body_required=bool(body.get("required", False)),
            body_media_types=json_types,
            body_validator=validator_for(body_schema) if body_schema is not None else None,
        )
    return rules
