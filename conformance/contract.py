"""The contract under test: the published spec, the documented-behaviour overlay, and the
requirement catalogue, all loaded from ``specs/``.

The merged document (published spec with the overlay applied) is what the suite tests
against; ``Contract.origin`` tells, for any operation and status code, whether the code is
allowed by the published spec or only by an overlay entry (a *spec gap*).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonpath_ng.ext import parse as parse_jsonpath

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
PUBLISHED_PATH = SPECS_DIR / "raff-backups.openapi.yaml"
OVERLAY_PATH = SPECS_DIR / "overlays" / "documented-behaviour.yaml"
REQUIREMENTS_PATH = SPECS_DIR / "requirements.yaml"

# libyaml's parser where PyYAML has it (its wheels do): the same documents, about ten times faster
# than the pure-Python one, which took 0.1 s of every run's start.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
Origin = Literal["published", "overlay", "undocumented"]


@dataclass(frozen=True)
class OverlayEntry:
    """One overlay action that added a response code to an operation."""

    operation_id: str
    status: str
    description: str
    source: str
    basis: str  # "documented" or "inferred"


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    definition: dict[str, Any]

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """The path template as a regex, one named group per path parameter; use with ``fullmatch``
        (``$`` would also match before a trailing newline)."""
        parts = re.split(r"(\{[^}]+\})", self.path)
        return re.compile("".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts))


@dataclass(frozen=True)
class Requirement:
    id: str
    statement: str
    source: str
    source_url: str
    kind: str
    operations: tuple[str, ...]


@dataclass
class Contract:
    published: dict[str, Any]
    merged: dict[str, Any]
    overlay_entries: list[OverlayEntry]
    requirements: dict[str, Requirement]
    published_sha256: str
    overlay_sha256: str
    _ops: dict[str, Operation] = field(default_factory=dict)
    _schemas: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ops = {op.operation_id: op for op in iter_operations(self.merged)}

    @property
    def title(self) -> str:
        return str(self.published["info"]["title"])

    @property
    def version(self) -> str:
        return str(self.published["info"]["version"])

    def operations(self) -> list[Operation]:
        return list(self._ops.values())

    def operation(self, operation_id: str) -> Operation:
        return self._ops[operation_id]

    def route(self, method: str, path: str) -> Operation | None:
        """The operation a request's method and path name, if the contract declares one."""
        return next((op for op in self._ops.values() if op.method.upper() == method.upper()
                     and op.pattern.fullmatch(path)), None)

    def declared_methods(self, path: str) -> list[str]:
        """The methods the contract declares for a path (none: a path the contract does not speak of)."""
        return sorted({op.method.upper() for op in self._ops.values() if op.pattern.fullmatch(path)})

    def documented_statuses(self, operation_id: str) -> dict[str, Origin]:
        """Every status code of the merged contract for the operation, with its origin."""
        published_op = _find_operation(self.published, operation_id)
        published_codes = set(published_op.get("responses", {})) if published_op else set()
        return {
            code: ("published" if code in published_codes else "overlay")
            for code in self._ops[operation_id].definition.get("responses", {})
        }

    def origin(self, operation_id: str, status: int | str) -> Origin:
        """Where the contract allows this status for the operation, if anywhere."""
        codes = self.documented_statuses(operation_id)
        status = str(status)
        for candidate in (status, f"{status[0]}XX", "default"):
            if candidate in codes:
                return codes[candidate]
        return "undocumented"

    def backup_statuses(self, kind: Literal["in_progress", "settled"]) -> tuple[str, ...]:
        """The documented Backup status values of one kind (the overlay's ``x-raff-status-values``)."""
        status = self.merged["components"]["schemas"]["Backup"]["properties"]["status"]
        return tuple(status.get("x-raff-status-values", {}).get(kind, ()))

    def overlay_entry(self, operation_id: str, status: int | str) -> OverlayEntry | None:
        for entry in self.overlay_entries:
            if entry.operation_id == operation_id and entry.status == str(status):
                return entry
        return None

    def response_media_types(self, operation_id: str, status: int | str) -> list[str]:
        """The media types documented for a response (lower-cased ``content`` keys), if any."""
        response = self._ops[operation_id].definition.get("responses", {}).get(str(status))
        if response is None:
            return []
        return [str(key).lower() for key in self.resolve(response).get("content", {})]

    def response_schema(self, operation_id: str, status: int | str) -> dict[str, Any] | None:
        """The JSON schema of the documented response body (``$ref``s resolved), if any.

        Resolved once per response (every exchange of a run is checked): callers must not mutate it.
        """
        key = (operation_id, str(status))
        if key not in self._schemas:
            self._schemas[key] = self._response_schema(operation_id, status)
        return self._schemas[key]

    def _response_schema(self, operation_id: str, status: int | str) -> dict[str, Any] | None:
        responses = self._ops[operation_id].definition.get("responses", {})
        response = responses.get(str(status))
        if response is None:
            return None
        response = self.resolve(response)
        content = response.get("content", {}).get("application/json")
        if not content or "schema" not in content:
            return None
        return self.resolve_deep(content["schema"])

    def resolve(self, node: Any) -> Any:
        """Follow a local ``$ref`` (repeatedly) in the merged document."""
        while isinstance(node, dict) and "$ref" in node:
            node = _pointer(self.merged, node["$ref"])
        return node

    def resolve_deep(self, node: Any) -> Any:
        """A copy of ``node`` with every local ``$ref`` inlined (the contract has no cycles)."""
        node = self.resolve(node)
        if isinstance(node, dict):
            return {key: self.resolve_deep(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self.resolve_deep(value) for value in node]
        return node


def iter_operations(document: dict[str, Any]) -> list[Operation]:
    operations = []
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                definition = item[method]
                operations.append(Operation(definition["operationId"], method.upper(), path, definition))
    return operations


def _find_operation(document: dict[str, Any], operation_id: str) -> dict[str, Any] | None:
    for operation in iter_operations(document):
        if operation.operation_id == operation_id:
            return operation.definition
    return None


def _pointer(document: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported, got {ref!r}")
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _merge(target: Any, update: Any) -> Any:
    """Overlay 1.0 update semantics: objects merge recursively, arrays append, scalars replace."""
    if isinstance(target, dict) and isinstance(update, dict):
        for key, value in update.items():
            target[key] = _merge(target[key], value) if key in target else copy.deepcopy(value)
        return target
    if isinstance(target, list) and isinstance(update, list):
        target.extend(copy.deepcopy(update))
        return target
    return copy.deepcopy(update)


def apply_overlay(document: dict[str, Any], overlay: dict[str, Any]) -> tuple[dict[str, Any], list[OverlayEntry]]:
    """Apply an OpenAPI Overlay 1.0 document; return the merged copy and what it added."""
    merged = copy.deepcopy(document)
    entries: list[OverlayEntry] = []
    for action in overlay.get("actions", []):
        matches = parse_jsonpath(action["target"]).find(merged)
        if not matches:
            raise ValueError(f"overlay target matches nothing: {action['target']}")
        for match in matches:
            if action.get("remove"):
                container = match.context.value if match.context else None
                key = str(match.path)
                if isinstance(container, dict):
                    container.pop(key.strip("'"), None)
                continue
            before = set(match.value) if isinstance(match.value, dict) else set()
            _merge(match.value, action.get("update", {}))
            entries.extend(_added_responses(match, before, action))
    return merged, entries


def _added_responses(match: Any, before: set[str], action: dict[str, Any]) -> list[OverlayEntry]:
    """Response codes an action added to an operation's ``responses`` object."""
    operation = match.context.value if match.context else None
    if not (isinstance(operation, dict) and "operationId" in operation and match.value is operation.get("responses")):
        return []
    return [
        OverlayEntry(
            operation_id=operation["operationId"],
            status=code,
            description=" ".join(str(action.get("description", "")).split()),
            source=str(action.get("x-raff-source", "")),
            basis=str(action.get("x-raff-basis", "inferred")),
        )
        for code in match.value
        if code not in before
    ]


def read_yaml(text: str | bytes) -> Any:
    """A YAML document as plain data, with the safe loader's rules (no tags that build objects)."""
    return yaml.load(text, Loader=_YAML_LOADER)


def load_requirements(path: Path = REQUIREMENTS_PATH) -> dict[str, Requirement]:
    raw = read_yaml(path.read_text(encoding="utf-8"))["requirements"]
    return {
        req_id: Requirement(
            id=req_id,
            statement=" ".join(entry["statement"].split()),
            source=entry["source"],
            source_url=entry.get("source_url", ""),
            kind=entry["kind"],
            operations=tuple(entry["operations"]),
        )
        for req_id, entry in raw.items()
    }


@functools.lru_cache(maxsize=4)
def load_contract(
    published_path: Path = PUBLISHED_PATH,
    overlay_path: Path = OVERLAY_PATH,
    requirements_path: Path = REQUIREMENTS_PATH,
) -> Contract:
    """Load and merge the contract. Cached: callers must not mutate the returned documents."""
    published_text = published_path.read_bytes()
    overlay_text = overlay_path.read_bytes()
    published = read_yaml(published_text)
    merged, entries = apply_overlay(published, read_yaml(overlay_text))
    return Contract(
        published=published,
        merged=merged,
        overlay_entries=entries,
        requirements=load_requirements(requirements_path),
        published_sha256=hashlib.sha256(published_text).hexdigest(),
        overlay_sha256=hashlib.sha256(overlay_text).hexdigest(),
    )
