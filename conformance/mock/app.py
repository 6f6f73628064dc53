"""The bundled mock of the Raff VM-backups API: a Starlette app built from the merged contract.

Routes, parameters and request bodies come from ``load_contract().merged`` (see
``validation.py``); the behaviour behind them lives in ``world.py``; planted defects
(``defects.py``) and fault modes (``faults.py``) make it misbehave on request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from conformance.contract import load_contract
from conformance.mock import faults as fault_modes
from conformance.mock.clock import make_clock
from conformance.mock.defects import check_defects
from conformance.mock.validation import FORMAT_CHECKER, MAX_BODY_BYTES, OperationRules, RequestError, build_rules
from conformance.mock.world import RESET_MESSAGE, Account, ApiError, World

logger = logging.getLogger(__name__)

ERROR_LABELS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    500: "Internal Server Error",
}
# A path id that is not a UUID names no resource, so it is a 404 where the contract lists 404.
# resetBackupChain answers 400 instead: its published 400 (BadRequest) is the one its path
# parameter check belongs to, and the requirement (RC-05) allows either.
PATH_ERROR_STATUS = {"resetBackupChain": 400}
PLAIN_404_OPERATIONS = frozenset({"getBackup", "getVM"})  # where error_body_not_json strikes
PROJECT_HEADER = ("header", "x-project-id")

Handler = Callable[[Account, dict[str, Any], Any], Awaitable[Response]]


class MockApp(Starlette):
    """Starlette, with the fault modes and rate limit in front of everything else."""

    def __init__(
        self,
        *,
        world: World,
        rules: dict[str, OperationRules],
        defects: frozenset[str],
        faults: frozenset[str],
        rate_limit: float | None,
        real_stack: bool = False,
    ) -> None:
        self.world = world
        self.real_stack = real_stack
        self.rules = rules
        self.defects = defects
        # createBackup's name limit, from the contract (the name-length defects act at its edge).
        self.max_name = rules["createBackup"].body_validator.schema["properties"]["name"]["maxLength"]  # type: ignore[union-attr]
        self.faults = faults
        self.limiter = fault_modes.RateLimiter(rate_limit) if rate_limit is not None else None
        self.closing = threading.Event()  # set by the server when it stops, so hung requests let go
        self._requests = itertools.count(1)
        self._resetting: set[str] = set()  # VMs whose reset is being handled (reset_at_once_crashes)
        self._handlers: dict[str, Handler] = {
            "listBackups": self._list_backups,
            "createBackup": self._create_backup,
            "getBackup": self._get_backup,
            "deleteBackup": self._delete_backup,
            "restoreBackup": self._restore_backup,
            "deleteBackupChain": self._delete_backup_chain,
            "getVM": self._get_vm,
            "resetBackupChain": self._reset_backup_chain,
        }
        missing = sorted(rules.keys() - self._handlers.keys())
        if missing:
            raise RuntimeError(f"the contract has operations the mock does not implement: {missing}")
        super().__init__(routes=[])
        # Every request goes to one endpoint that routes by the contract's paths. Not a catch-all
        # Route: its pattern ".*" does not match a path holding a newline (%0A), which would fall
        # through to Starlette's plain-text 404.
        self.router.default = _Endpoint(self._handle)
        self.router.redirect_slashes = False
        self.state.world = world
        self.state.closing = self.closing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        number = next(self._requests)
        tick = getattr(self.world.clock, "tick", None)
        if tick is not None:
            tick()
        if "hang" in self.faults:
            await fault_modes.hang(receive, send, self.closing)
            return
        if "drop_connections" in self.faults and number % 3 == 0:
            await fault_modes.drop_connection(receive, send)
            return
        if "slow" in self.faults:
            await asyncio.sleep(fault_modes.SLOW_SECONDS)
        early: Response | None = None
        if "rate_limit_storm" in self.faults:
            early = fault_modes.storm_response()
        elif "server_errors" in self.faults and number % 2 == 0:
            early = fault_modes.service_unavailable()
        elif self.limiter is not None:
            key = dict(scope.get("headers", [])).get(b"x-api-key", b"").decode("latin-1")
            if not self.limiter.allow(key):
                early = fault_modes.too_many_requests(self.limiter.limit)
        if early is None and self.real_stack and not routes(scope.get("raw_path") or scope["path"].encode()):
            early = _router_404()
        if self.real_stack:
            send = _respelled(send, number)
        if early is not None:
            await early(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    # ---- request handling -------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        path = request.scope["path"]
        candidates = {rule.method: rule for rule in self.rules.values() if rule.pattern.fullmatch(path)}
        if not candidates:
            return _router_404() if self.real_stack else _error(404, "No such endpoint")
        rules = candidates.get(request.method)
        if rules is None:
            if request.method in ("PUT", "PATCH") and "undeclared_method_accepted" in self.defects:
                # A leftover handler nobody documented: it answers as if it did something.
                return JSONResponse({"success": True, "message": "Operation completed successfully"})
            methods = sorted(candidates)
            if "allow_header_lists_undeclared_method" in self.defects:
                methods = sorted({*methods, "PUT"})  # an Allow header copied from another route
            allow = ", ".join(methods)
            return _error(405, f"Method {request.method} not allowed; use {allow}", headers={"Allow": allow})
        try:
            return await self._operate(rules, request)
        except ApiError as exc:
            return self._error_for(rules.operation_id, exc.status, exc.message)
        except Exception:
            # A mock bug, not an input problem: answer it visibly so self-tests and Schemathesis see it.
            logger.exception("mock failure on %s %s", request.method, path)
            return _error(500, "Mock failure (a bug in the mock, not in the request)")

    async def _operate(self, rules: OperationRules, request: Request) -> Response:
        op = rules.operation_id
        account = self.world.account_for_key(request.headers.get("x-api-key"))
        if account is None and not (op == "resetBackupChain" and self._reset_skips_auth(request)):
            return _error(401, "A valid X-API-Key header is required")
        path_values = rules.pattern.fullmatch(request.scope["path"])
        assert path_values is not None  # _handle matched it already
        try:
            values = rules.validate(
                path=path_values.groupdict(),
                query=request.query_params,
                headers=request.headers,
                skip=self._skipped_checks(op, request),
            )
            sent = await _read_body(request, rules)
            if op == "createBackup" and "create_coerces_wrong_typed_name" in self.defects:
                sent = _name_as_text(sent)
            body = rules.parse_body(request.headers.get("content-type"), sent)
            if op == "createBackup" and "name_at_max_length_rejected" in self.defects and self._name_at_limit(body):
                return _error(400, f"Invalid request body at name: longer than {self.max_name - 1} characters")
            if op == "listBackups" and "vm_filter_case_sensitive" in self.defects and "vm_id" in values:
                values["vm_id"] = request.query_params.get("vm_id")  # compared as sent, not as a UUID
            crash = await self._matrix_defect(op, request, path_values.groupdict().get("id") or "")
            if crash is not None:
                return crash
        except RequestError as exc:
            if exc.location == "path":
                if op == "resetBackupChain" and "reset_non_uuid_id_crashes" in self.defects:
                    return _error(500, "unhandled error: invalid UUID in path")
                return self._error_for(op, PATH_ERROR_STATUS.get(op, 404), exc.message)
            return _error(400, exc.message)  # a missing header reads "X-Project-ID required", as the docs word it
        return await self._handlers[op](account, values, body)  # type: ignore[arg-type]

    async def _matrix_defect(self, op: str, request: Request, path_id: str) -> Response | None:
        """The variant matrix's planted defects that act on how a request is written."""
        if op == "resetBackupChain" and "reset_upper_case_id_not_found" in self.defects and path_id != path_id.lower():
            return self._error_for(op, 404, "VM not found")
        if (
            op == "deleteBackup"
            and "delete_repeated_project_header_crashes" in self.defects
            and len(request.headers.getlist("x-project-id")) > 1
        ):
            return _error(500, "unhandled error: header X-Project-ID has 2 values")
        project = request.headers.get("x-project-id") or ""
        if op == "resetBackupChain" and "reset_project_case_sensitive" in self.defects and project != project.lower():
            return _error(400, "X-Project-ID must be a UUID")  # compared as sent, not as a UUID
        if op == "resetBackupChain" and "reset_unparsed_body_crashes" in self.defects:
            sent = await request.body()
            try:
                json.loads(sent or b"null")
            except ValueError:
                return _error(500, "unhandled error: invalid character in request body")
        return None

    def _name_at_limit(self, body: Any) -> bool:
        return isinstance(body, dict) and isinstance(body.get("name"), str) and len(body["name"]) == self.max_name

    def _skipped_checks(self, op: str, request: Request) -> frozenset[tuple[str, str]]:
        """Parameter checks that a planted defect switches off."""
        if op == "listBackups" and "malformed_vm_filter_ignored" in self.defects:
            vm_filter = request.query_params.get("vm_id")
            if vm_filter is not None and not FORMAT_CHECKER.conforms(vm_filter, "uuid"):
                return frozenset({("query", "vm_id")})
        if op != "resetBackupChain":
            return frozenset()
        project = request.headers.get("x-project-id")
        if project is None and "reset_ignores_missing_project" in self.defects:
            return frozenset({PROJECT_HEADER})
        if (
            project is not None
            and not FORMAT_CHECKER.conforms(project, "uuid")
            and "reset_accepts_non_uuid_project" in self.defects
        ):
            return frozenset({PROJECT_HEADER})
        return frozenset()

    def _reset_skips_auth(self, request: Request) -> bool:
        """Planted defects: reset-chain without the key check, or with one that only asks for a key."""
        if "reset_ignores_auth" in self.defects:
            return True
        return "reset_wrong_key_accepted" in self.defects and bool(request.headers.get("x-api-key"))

    def _error_for(self, op: str, status: int, message: str) -> Response:
        if status == 404 and op in PLAIN_404_OPERATIONS and "error_body_not_json" in self.defects:
            return PlainTextResponse("Not Found", status_code=404)
        return _error(status, message)

    # ---- operations ---------------------------------------------------------------------------

    async def _list_backups(self, account: Account, values: dict[str, Any], _body: Any) -> Response:
        items, total = self.world.list_backups(
            account, values.get("X-Project-ID"), values.get("vm_id"), values.get("limit", 50), values.get("offset", 0)
        )
        return JSONResponse({"success": True, "data": items, "total": total})

    async def _create_backup(self, account: Account, values: dict[str, Any], body: Any) -> Response:
        data = self.world.create_backup(account, values["X-Project-ID"], body["vm_id"].lower(), body.get("name"))
        return JSONResponse({"success": True, "data": data}, status_code=202)

    async def _get_backup(self, account: Account, values: dict[str, Any], _body: Any) -> Response:
        data = self.world.get_backup(account, values["X-Project-ID"], values["id"])
        return JSONResponse({"success": True, "data": data})

    async def _delete_backup(self, account: Account, values: dict[str, Any], _body: Any) -> Response:
        self.world.delete_backup(account, values["X-Project-ID"], values["id"])
        if "delete_answers_plain_text" in self.defects:
            return PlainTextResponse("Backup deleted")
        return JSONResponse({"success": True, "message": "Backup deleted"})

    async def _restore_backup(self, account: Account, values: dict[str, Any], _body: Any) -> Response:
        backup_id = values["id"]
        if "restore_takes_vm_id" in self.defects and backup_id in self.world.vms:
            # A VM's id taken for "the VM's newest backup": an id of another kind acted on.
            own = [b for b in self.world.backups.values() if b.vm_id == backup_id]
            backup_id = max(own, key=lambda b: b.seq).id if own else backup_id
        data = self.world.restore_backup(account, values["X-Project-ID"], backup_id)
        return JSONResponse({"success": True, "data": data}, status_code=202)

    async def _delete_backup_chain(self, account: Account, values: dict[str, Any], _body: Any) -> Response:
        self.world.delete_chain(account, values["X-Project-ID"], values["id"])
        return JSONResponse({"success": True, "message": "Backup series deleted"})

    async def _get_vm(self, account: Account, values: dict[str, Any], _body: Any) -> Response:
        success = "get_vm_success_false" not in self.defects
        return JSONResponse({"success": success, "data": self.world.get_vm(account, values["id"])})

    async def _reset_backup_chain(self, account: Account | None, values: dict[str, Any], _body: Any) -> Response:
        vm_id = values["id"]
        if "reset_takes_backup_id" in self.defects and vm_id not in self.world.vms and vm_id in self.world.backups:
            vm_id = self.world.backups[vm_id].vm_id  # a backup's id taken for its VM's
        if "reset_at_once_crashes" in self.defects:
            if vm_id in self._resetting:
                return _error(500, "unhandled error: reset already running for this VM")
            self._resetting.add(vm_id)
            try:
                await asyncio.sleep(0.2)  # the window a second reset of the VM falls into
            finally:
                self._resetting.discard(vm_id)
        self.world.reset_chain(account, values.get("X-Project-ID"), vm_id)
        status = 200 if "reset_returns_200" in self.defects else 202
        if "reset_answers_html" in self.defects:
            # A framework's default page where the handler should have written the SuccessResponse.
            return HTMLResponse(f"<html><body><p>{RESET_MESSAGE}</p></body></html>", status_code=status)
        success = "reset_success_false" not in self.defects
        return JSONResponse({"success": success, "message": RESET_MESSAGE}, status_code=status)


class _Endpoint:
    """The ASGI endpoint behind every request."""

    def __init__(self, handle: Callable[[Request], Awaitable[Response]]) -> None:
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._handle(Request(scope, receive))
        await response(scope, receive, send)


def _name_as_text(sent: bytes) -> bytes:
    """The body with a name of another JSON type turned into text (create_coerces_wrong_typed_name)."""
    try:
        body = json.loads(sent)
    except ValueError:
        return sent
    if isinstance(body, dict) and body.get("name") is not None and not isinstance(body["name"], str):
        body["name"] = json.dumps(body["name"])
        return json.dumps(body).encode()
    return sent


async def _read_body(request: Request, rules: OperationRules) -> bytes:
    """The request body, read only where the operation takes one, and never beyond the size cap."""
    if rules.body_validator is None:
        return b""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestError("body", "body", f"Request body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# Real stacks' habits (``real_stack``), so the suite is kept honest about HTTP as the RFCs write it.
# Header names are case-insensitive (RFC 9110 §5.1) and media types are case-insensitive with
# parameters (RFC 9110 §8.3.1): alternate responses carry each spelling.
CONTENT_TYPE_SPELLINGS = ((b"Content-type", b"application/json; charset=utf-8"), (b"CONTENT-TYPE", b"Application/JSON"))


def routes(raw_path: bytes) -> bool:
    """Whether a router of a typical stack could route this raw path to a template at all.

    Go's net/http, nginx and most gateways clean or refuse the path before routing: an encoded
    slash inside a segment, an empty segment (``//``, a trailing ``/``), or a dot segment (plain or
    percent-encoded, ``..`` or ``%2e%2e``) never matches a ``{id}`` template and gets the router's own
    plain-text 404. The raw path is needed because uvicorn's ``scope["path"]`` is percent-decoded
    (``a%2Fb`` reads as ``a/b`` there) and keeps dot segments as sent. A path that passes must still
    match a template of the contract (``_handle``); a single segment that is merely not a UUID
    (``not-a-uuid``, ``123``, ``%20``) does, and the operation answers it with its JSON Error.
    """
    path = raw_path.split(b"?", 1)[0]
    segments = path.split(b"/")[1:]
    if b"%2f" in path.lower() or b"" in segments:
        return False
    return not any(segment.lower().replace(b"%2e", b".") in (b".", b"..") for segment in segments)


def _router_404() -> Response:
    """What Go's net/http router sends for a path it cannot route (body without Go's trailing newline)."""
    return PlainTextResponse("404 page not found", status_code=404, media_type="text/plain; charset=utf-8")


def _respelled(send: Send, number: int) -> Send:
    """``send`` with the response's Content-Type (and Retry-After) names and values respelled.

    Requests are numbered from 1: odd ones get ``CONTENT-TYPE`` (JSON as ``Application/JSON``), even
    ones ``Content-type`` (``application/json; charset=utf-8``); ``retry-after`` is lower-case on every
    429. h11, which uvicorn uses here, writes names exactly as given (checked on the wire in
    tests/test_mock.py).
    """
    name, json_value = CONTENT_TYPE_SPELLINGS[number % 2]

    async def respell(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = []
            for key, value in message.get("headers", []):
                if key.lower() == b"content-type":
                    key = name
                    value = json_value if value.startswith(b"application/json") else value
                elif key.lower() == b"retry-after":
                    key = b"retry-after"
                headers.append((key, value))
            message = {**message, "headers": headers}
        await send(message)

    return respell


def _error(status: int, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": ERROR_LABELS[status], "message": message}, status_code=status, headers=headers)


def create_app(
    *,
    defects: Iterable[str] = (),
    seed: dict[str, Any] | None = None,
    backup_delay: float = 0.3,
    restore_delay: float = 0.2,
    rate_limit: float | None = None,
    faults: Iterable[str] = (),
    real_stack: bool = False,
    time_mode: str = "wall",
    one_backup_at_a_time: bool = False,
) -> Starlette:
    """A fresh mock with its own state; ``app.state.world`` holds it (``.credentials()`` for the ids).

    ``time_mode`` "requests" counts the delays in requests instead of seconds (see mock/clock.py).
    """
    chosen_defects = check_defects(defects)
    chosen_faults = fault_modes.check_faults(faults)
    world = World(
        seed,
        defects=chosen_defects,
        backup_delay=backup_delay,
        restore_delay=restore_delay,
        clock=make_clock(time_mode),
        one_backup_at_a_time=one_backup_at_a_time,
    )
    return MockApp(
        world=world,
        rules=build_rules(load_contract()),
        defects=chosen_defects,
        faults=chosen_faults,
        rate_limit=rate_limit,
        real_stack=real_stack,
    )
