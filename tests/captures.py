"""Recorded captures of a plain client session, and per-exchange schema validation of them.

``record_session`` is what an ordinary client of the backups API does in one sitting, against the
bundled mock (clean, or with planted defects), written as HAR 1.2 by ``harfile`` (the library
Schemathesis writes its HAR reports with). ``validate_per_exchange`` is what today's traffic
validators do with such a file (Redocly's drift, ``oav validate-traffic``, Prism's proxy): each
exchange alone, its answer held to the contract's schema for its operation and status, with
Schemathesis' own response checks. ``synthetic_capture`` writes a big capture for the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import harfile
import httpx

from conformance.contract import load_contract
from conformance.mock import MockServer, create_app
from conformance.mock.world import default_seed

# Looks like a real Raff key (raff_pub_…) and is unique enough to grep for: the judge must never print it.
CANARY_KEY = "raff_pub_CANARYcapture7Qm4xZ9vL2sK8pW3nR6tY1"
# A backup is ready a few requests after its create on the mock's request clock; a server whose
# backups never get there (backups_never_ready) leaves the poll after this many reads.
MAX_POLLS = 12
CREATOR = harfile.Creator(name="raff-conformance tests/captures.py", version="1")


class Session:
    """A plain httpx client whose every exchange goes into a HAR file, as a proxy would record it."""

    def __init__(self, har: harfile.HarFile, base_url: str, api_key: str, project_id: str) -> None:
        self.har = har
        self.project_id = project_id
        self.http = httpx.Client(
            base_url=base_url, headers={"Accept": "application/json", "X-API-Key": api_key}, timeout=10.0
        )
        self._lock = threading.Lock()  # harfile writes one entry at a time

    def close(self) -> None:
        self.http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        project: bool = True,
    ) -> httpx.Response:
        headers = {"X-Project-ID": self.project_id} if project else {}
        started = datetime.now(UTC)
        clock = time.perf_counter()
        response = self.http.request(method, path, params=params, json=body, headers=headers)
        elapsed_ms = round((time.perf_counter() - clock) * 1000, 3)
        self._record(response, started, elapsed_ms)
        return response

    def _record(self, response: httpx.Response, started: datetime, elapsed_ms: float) -> None:
        request = response.request
        content = request.content
        post = None
        if content:
            post = harfile.PostData(mimeType=request.headers.get("content-type", ""), text=content.decode())
        entry_request = harfile.Request(
            method=request.method,
            url=str(request.url),
            httpVersion="HTTP/1.1",
            headers=[harfile.Record(name=k, value=v) for k, v in request.headers.multi_items()],
            queryString=[harfile.Record(name=k, value=v) for k, v in request.url.params.multi_items()],
            postData=post,
            bodySize=len(content),
        )
        entry_response = harfile.Response(
            status=response.status_code,
            statusText=response.reason_phrase,
            httpVersion=response.http_version,
            headers=[harfile.Record(name=k, value=v) for k, v in response.headers.multi_items()],
            content=harfile.Content(
                size=len(response.content),
                mimeType=response.headers.get("content-type", ""),
                text=response.text,
            ),
            bodySize=len(response.content),
        )
        with self._lock:
            self.har.add_entry(
                startedDateTime=started,
                time=elapsed_ms,
                request=entry_request,
                response=entry_response,
                timings=harfile.Timings(send=0, wait=elapsed_ms, receive=0),
            )

    # -- the API, as a client application would call it -----------------------------------

    def create(self, vm_id: str, name: str) -> str | None:
        answer = self.send("POST", "/api/v1/backups", body={"vm_id": vm_id, "name": name})
        return _data(answer).get("id") if answer.status_code == 202 else None

    def wait_ready(self, backup_id: str | None) -> None:
        """Poll getBackup until the backup is ready (or failed, or gone), at most MAX_POLLS times."""
        if backup_id is None:
            return
        for _ in range(MAX_POLLS):
            answer = self.send("GET", f"/api/v1/backups/{backup_id}")
            if answer.status_code != 200 or _data(answer).get("status") in ("ready", "failed"):
                return

    def listing(self, **params: Any) -> httpx.Response:
        return self.send("GET", "/api/v1/backups", params=params or None)


def _data(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}



# ---- the session ---------------------------------------------------------------------------


def _backup(session: Session, backup_id: str | None, method: str = "GET", suffix: str = "") -> None:
    if backup_id is not None:
        session.send(method, f"/api/v1/backups/{backup_id}{suffix}")


def _script(session: Session, ids: dict[str, str], gate: _Gate | None) -> None:
    """One sitting of a client application: every operation of the contract, in a plausible order.

    1. read the VM and its backups; 2. back it up twice (and the second VM once), polling each
    until ready; 3. list the VM's backups, whole and one page; 4. reset its series and list again
    (the closed points must still be there); 5. the next two backups (0, then 1); 6. restore a
    closed point and poll it back to ready; 7. the key's whole listing; 8. the second VM's next
    backup (its series untouched by the reset) and its listing; 9. delete the newest point, list,
    delete the closed series through one of its points; list, and read a deleted point (404);
    10. delete everything else the session created.
    """
    vm, other = ids["RAFF_VM_ID"], ids["RAFF_SECOND_VM_ID"]
    session.send("GET", f"/api/v1/vms/{vm}", project=False)  # getVM takes no X-Project-ID
    session.listing(vm_id=vm)
    a1 = session.create(vm, "capture-a1")
    session.wait_ready(a1)
    a2 = session.create(vm, "capture-a2")
    session.wait_ready(a2)
    # The second VM's series is open before the first VM's reset, so its next backup shows whether
    # the reset left it alone (RC-09).
    b1 = session.create(other, "capture-b1")
    session.wait_ready(b1)
    session.listing(vm_id=vm)
    session.listing(vm_id=vm, limit=1, offset=1)
    session.send("POST", f"/api/v1/vms/{vm}/backups/reset-chain")
    if gate is not None:
        # The listing after the reset and the next create go out together: their order is unknown.
        gate.armed = True
        a3 = _together(lambda: session.listing(vm_id=vm), lambda: session.create(vm, "capture-a3"))
    else:
        session.listing(vm_id=vm)
        a3 = session.create(vm, "capture-a3")
    session.wait_ready(a3)
    a4 = session.create(vm, "capture-a4")
    session.wait_ready(a4)
    if a1 is not None:
        session.send("POST", f"/api/v1/backups/{a1}/restore")
        session.wait_ready(a1)
    session.listing()
    b2 = session.create(other, "capture-b2")
    session.wait_ready(b2)
    session.listing(vm_id=other)
    _backup(session, a4, "DELETE")  # the newest point: nothing depends on it
    session.listing(vm_id=vm)  # what a client looks at to pick the series it deletes
    _backup(session, a1, "DELETE", "/chain")  # the closed series (a1, a2)
    session.listing(vm_id=vm)
    _backup(session, a1)  # deleted: 404
    for point in (a3, b2, b1):  # newest first, so that no point has a dependent when deleted
        _backup(session, point, "DELETE")
    session.listing()


def _tidy_up_script(session: Session, ids: dict[str, str], gate: _Gate | None) -> None:
    """Another sitting: a client tidying a VM's backups, with the mistakes a person makes in a console.

    1. two backups; 2. reset the series, and reset again before any backup (a double click);
    3. two backups of the new series, and one of the second VM; 4. delete the first of the new series
    alone (later points depend on it: refused), list, and delete the open series through its newest
    point instead, with listings right before and after; 5. delete the rest.
    """
    vm, other = ids["RAFF_VM_ID"], ids["RAFF_SECOND_VM_ID"]
    a1 = session.create(vm, "tidy-a1")
    session.wait_ready(a1)
    a2 = session.create(vm, "tidy-a2")
    session.wait_ready(a2)
    session.send("POST", f"/api/v1/vms/{vm}/backups/reset-chain")
    session.send("POST", f"/api/v1/vms/{vm}/backups/reset-chain")
    a3 = session.create(vm, "tidy-a3")
    session.wait_ready(a3)
    a4 = session.create(vm, "tidy-a4")
    session.wait_ready(a4)
    b1 = session.create(other, "tidy-b1")
    session.wait_ready(b1)
    session.listing(vm_id=vm)
    _backup(session, a3, "DELETE")  # a4 depends on it: the server must refuse, pointing to the series delete
    session.listing(vm_id=vm)
    session.listing()
    _backup(session, a4, "DELETE", "/chain")  # the open series (a3, a4), beside the closed one (a1, a2)
    session.listing()
    session.listing(vm_id=vm)
    for point in (a4, a3, a2, a1, b1):  # whatever is left, newest first
        _backup(session, point, "DELETE")
    session.listing()


SCRIPTS = {"plain": _script, "tidy-up": _tidy_up_script}


class _Gate:
    """ASGI wrapper: once armed, the next request is held until another one has arrived, so that the
    two are in flight together and their recorded intervals overlap (the server then answers both
    as usual; nothing else about the mock changes)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state  # MockServer reads app.state.world and app.state.closing
        self.armed = False
        self._waiting: asyncio.Event | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.armed:
            if self._waiting is None:
                self._waiting = waiting = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiting.wait(), 5.0)
            else:
                self.armed = False
                self._waiting.set()
                self._waiting = None
        await self.app(scope, receive, send)


def _together(first: Callable[[], Any], second: Callable[[], str | None]) -> str | None:
    """Run both calls at once (two connections); return what the second returned."""
    barrier = threading.Barrier(2)
    result: list[str | None] = [None]

    def run_first() -> None:
        barrier.wait()
        first()

    thread = threading.Thread(target=run_first)
    thread.start()
    barrier.wait()
    result[0] = second()
    thread.join()
    return result[0]


def _seed(api_key: str) -> dict[str, Any]:
    seed = default_seed()
    seed["accounts"][0]["api_key"] = api_key
    return seed


def record_session(
    har_path: Path,
    *,
    defects: Iterable[str] = (),
    api_key: str = CANARY_KEY,
    overlap: bool = False,
    real_stack: bool = False,
    script: str = "plain",
) -> None:
    """Record one plain client session against the mock (with ``defects`` planted) as HAR 1.2.

    The mock counts its time in requests, so backups get ready after a few polls with no wall wait.
    ``overlap`` sends the listing after the reset and the next create at once (see
    ``record_overlapping_session``).
    """
    app = create_app(defects=defects, seed=_seed(api_key), time_mode="requests", real_stack=real_stack)
    gate = _Gate(app) if overlap else None
    with MockServer(gate or app) as server, harfile.open(Path(har_path), creator=CREATOR) as har:
        ids = server.credentials()
        session = Session(har, server.base_url, api_key, ids["RAFF_PROJECT_ID"])
        try:
            SCRIPTS[script](session, ids, gate)
        finally:
            session.close()


def record_session_at(har_path: Path, base_url: str, ids: dict[str, str], api_key: str = CANARY_KEY) -> None:
    """The same session against a server this project did not write (Prism, say), as HAR 1.2."""
    with harfile.open(Path(har_path), creator=CREATOR) as har:
        session = Session(har, base_url, api_key, ids["RAFF_PROJECT_ID"])
        try:
            _script(session, ids, None)
        finally:
            session.close()


def record_overlapping_session(har_path: Path, *, defects: Iterable[str] = (), api_key: str = CANARY_KEY) -> None:
    """The same session, but the listing right after the reset overlaps in time with the next create."""
    record_session(har_path, defects=defects, api_key=api_key, overlap=True)


def har_entries(har_path: Path) -> list[dict[str, Any]]:
    """The entries of a (small) HAR file."""
    return json.loads(Path(har_path).read_text())["log"]["entries"]


# ---- the benchmark's big capture -------------------------------------------------------------

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class _Template:
    """One recorded session, with what must change in each replayed copy."""

    entries: list[dict[str, Any]]
    created: frozenset[str]  # ids of the backups the session created
    start: datetime
    span: timedelta
    copy_ids: dict[str, str] = field(default_factory=dict)


def _template(tmp: Path) -> _Template:
    record_session(tmp)
    entries = har_entries(tmp)
    created: set[str] = set()
    for entry in entries:
        if entry["request"]["method"] == "POST" and entry["request"]["url"].endswith("/api/v1/backups"):
            created.update(_UUID.findall(entry["response"]["content"].get("text", ""))[:1])
    start = datetime.fromisoformat(entries[0]["startedDateTime"])
    last = entries[-1]
    end = datetime.fromisoformat(last["startedDateTime"]) + timedelta(milliseconds=last["time"])
    return _Template(entries, frozenset(created), start, end - start)


def _shift_text(text: str, ids: dict[str, str], offset: timedelta, since: datetime) -> str:
    """Fresh ids for the session's backups; the session's own timestamps moved on by ``offset``
    (seeded ones, older than the session, stay as they are so that every copy shows them alike)."""
    text = _UUID.sub(lambda m: ids.get(m.group(0), m.group(0)), text)

    def move(match: re.Match[str]) -> str:
        raw = match.group(0)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value < since:
            return raw
        moved = value + offset
        if raw.endswith("Z") and "." not in raw:
            return moved.strftime("%Y-%m-%dT%H:%M:%SZ")
        return moved.isoformat().replace("+00:00", "Z") if raw.endswith("Z") else moved.isoformat()

    return _ISO.sub(move, text)


def _replayed(template: _Template, copy: int) -> Iterator[dict[str, Any]]:
    offset = (template.span + timedelta(seconds=1)) * copy
    fresh = (uuid.UUID(int=(copy << 64) | index, version=4) for index in range(len(template.created)))
    ids = {old: str(new) for old, new in zip(sorted(template.created), fresh, strict=True)}
    since = template.start - timedelta(minutes=1)
    for entry in template.entries:
        text = json.dumps(entry)
        moved = json.loads(_shift_text(text, ids, offset, since))
        moved["startedDateTime"] = (datetime.fromisoformat(entry["startedDateTime"]) + offset).isoformat()
        for header in moved["response"]["headers"]:
            if header["name"].lower() == "date":
                header["value"] = format_datetime(parsedate_to_datetime(header["value"]) + offset, usegmt=True)
        yield moved


def synthetic_capture(path: Path, exchanges: int) -> None:
    """A capture of ``exchanges`` exchanges of plain client sessions, written as a stream.

    Recording 100,000 exchanges against the mock takes minutes, so one session is recorded and
    replayed: each copy gets fresh ids for the backups it creates and all of its own times
    (startedDateTime, Date, created_at, expire_date) moved on past the previous copy, so the copies
    follow one another as sessions of one client would. Entries are written one at a time through
    harfile; only the one recorded session is held in memory.
    """
    path = Path(path)
    template = _template(path.with_suffix(".template.har"))
    path.with_suffix(".template.har").unlink()
    written = 0
    with open(path, "w") as fd:
        # harfile writes the preamble and the closing brackets; the entries go in as JSON objects.
        har = harfile.HarFile(fd, creator=CREATOR)
        copy = 0
        while written < exchanges:
            for entry in _replayed(template, copy):
                if written >= exchanges:
                    break
                har.add_entry(
                    startedDateTime=entry["startedDateTime"],
                    time=entry["time"],
                    request=_request(entry["request"]),
                    response=_response(entry["response"]),
                    timings=harfile.Timings(send=0, wait=entry["time"], receive=0),
                )
                written += 1
            copy += 1
        har.close()


def _records(items: list[dict[str, str]]) -> list[harfile.Record]:
    return [harfile.Record(name=item["name"], value=item["value"]) for item in items]


def _request(raw: dict[str, Any]) -> harfile.Request:
    post = raw.get("postData")
    return harfile.Request(
        method=raw["method"],
        url=raw["url"],
        httpVersion=raw["httpVersion"],
        headers=_records(raw["headers"]),
        queryString=_records(raw["queryString"]),
        postData=harfile.PostData(mimeType=post["mimeType"], text=post.get("text")) if post else None,
        bodySize=raw["bodySize"],
    )


def _response(raw: dict[str, Any]) -> harfile.Response:
    content = raw["content"]
    text = content.get("text")
    return harfile.Response(
        status=raw["status"],
        statusText=raw["statusText"],
        httpVersion=raw["httpVersion"],
        headers=_records(raw["headers"]),
        content=harfile.Content(
            size=len(text.encode()) if text is not None else content["size"], mimeType=content["mimeType"], text=text
        ),
        bodySize=raw["bodySize"],
    )


# ---- per-exchange schema validation (the baseline) ---------------------------------------------


@dataclass(frozen=True)
class _Operation:
    operation_id: str
    method: str
    template: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]


@cache
def _schema() -> Any:
    import schemathesis

    return schemathesis.openapi.from_dict(load_contract().merged)


@cache
def _operations() -> tuple[_Operation, ...]:
    found = []
    for template, item in load_contract().merged["paths"].items():
        names = tuple(re.findall(r"{([^}]+)}", template))
        pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "([^/]+)", re.escape(template)) + "$")
        for method, spec in item.items():
            if method in ("get", "post", "put", "patch", "delete", "head", "options"):
                found.append(_Operation(spec["operationId"], method.upper(), template, pattern, names))
    return tuple(found)


def operation_of(entry: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """The contract's operationId for a HAR entry's method and path, with its path parameters."""
    path = urlsplit(entry["request"]["url"]).path
    for operation in _operations():
        found = operation.pattern.match(path)
        if operation.method == entry["request"]["method"] and found:
            return operation.operation_id, dict(zip(operation.names, found.groups(), strict=True))
    return None


def _response_checks() -> list[Any]:
    """Schemathesis' checks that judge one answer alone: none of them sends a request."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]


def validate_one(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-exchange validation of one HAR entry: its answer against the contract, nothing else."""
    from schemathesis.core.failures import Failure, FailureGroup

    request, answer = entry["request"], entry["response"]
    url = urlsplit(request["url"])
    found = operation_of(entry)
    if found is None:
        return [{"operation": f"{request['method']} {url.path}", "status": answer["status"],
                 "check": "undocumented_operation", "title": "Undocumented operation",
                 "message": "no operation of the contract has this method and path"}]
    operation_id, path_parameters = found
    operation = next(op for op in _operations() if op.operation_id == operation_id)
    api_operation = _schema()[operation.template][operation.method]
    headers = {h["name"]: h["value"] for h in request["headers"]}
    query = {q["name"]: q["value"] for q in request.get("queryString", [])}
    post = request.get("postData")
    body = json.loads(post["text"]) if post and post.get("text") else None
    with_body: dict[str, Any] = {"body": body, "media_type": "application/json"} if body is not None else {}
    case = api_operation.Case(
        method=operation.method, path_parameters=path_parameters, headers=headers, query=query or None, **with_body
    )
    import requests
    from schemathesis.core.transport import Response

    text = answer["content"].get("text") or ""
    grouped: dict[str, list[str]] = {}
    for header in answer["headers"]:
        grouped.setdefault(header["name"].lower(), []).append(header["value"])
    sent = requests.Request(
        method=request["method"], url=request["url"], headers=headers, data=post.get("text") if post else None
    ).prepare()
    response = Response(
        status_code=answer["status"],
        headers=grouped,
        content=text.encode(),
        request=sent,
        elapsed=entry["time"] / 1000,
        message=answer.get("statusText", ""),
        http_version=answer.get("httpVersion", "HTTP/1.1").removeprefix("HTTP/"),
        verify=True,
    )
    try:
        case.validate_response(response, checks=_response_checks())
    except FailureGroup as group:
        failures: list[Failure] = list(group.exceptions)
    except Failure as failure:
        failures = [failure]
    else:
        return []
    name = f"{operation.method} {operation.template}"
    return [
        {
            "operation": name,
            "status": answer["status"],
            "check": type(failure).__name__,
            "title": failure.title,
            "message": failure.message,
        }
        for failure in failures
    ]


def validate_per_exchange(har_path: Path) -> list[dict[str, Any]]:
    """What today's traffic validators report on a capture: one record per failure of one exchange."""
    failures: list[dict[str, Any]] = []
    for index, entry in enumerate(har_entries(har_path)):
        failures.extend({"entry": index, **failure} for failure in validate_one(entry))
    return failures
