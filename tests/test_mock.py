"""Self-tests of the bundled mock (conformance/mock/), over real HTTP on a loopback port.

Every body the clean mock sends is validated against the merged contract's schema for its
operation and status, so the mock cannot drift from ``specs/`` unnoticed. Planted defects are
checked to change what a client observes; faults to misbehave the way their names say.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conformance.contract import load_contract
from conformance.mock import DEFECTS, FAULTS, MockServer, create_app
from conformance.mock.__main__ import main
from conformance.mock.process import mock_process
from conformance.mock.validation import validator_for
from conformance.mock.world import default_seed
from conformance.settings import WRONG_KEY

ROOT = Path(__file__).resolve().parent.parent
# The mock speaks plain HTTP; one shared TLS context spares each client ~90 ms of loading CA certificates.
TLS_CONTEXT = ssl.create_default_context()
CONTRACT = load_contract()
PROJECT_OPERATIONS = {
    # operationId -> (method, path template): the operations that require X-Project-ID
    "createBackup": ("POST", "/api/v1/backups"),
    "getBackup": ("GET", "/api/v1/backups/{id}"),
    "deleteBackup": ("DELETE", "/api/v1/backups/{id}"),
    "restoreBackup": ("POST", "/api/v1/backups/{id}/restore"),
    "deleteBackupChain": ("DELETE", "/api/v1/backups/{id}/chain"),
    "resetBackupChain": ("POST", "/api/v1/vms/{id}/backups/reset-chain"),
}
ALL_OPERATIONS = {
    **PROJECT_OPERATIONS,
    "listBackups": ("GET", "/api/v1/backups"),
    "getVM": ("GET", "/api/v1/vms/{id}"),
}


def media_type(value: str | None) -> str:
    """The media type of a Content-Type value, lower-cased, without parameters (RFC 9110 §8.3.1)."""
    return (value or "").split(";", 1)[0].strip().lower()


def checked(operation_id: str, response: httpx.Response) -> httpx.Response:
    """The response, after checking it is JSON and matches the contract for its status."""
    __tracebackhide__ = True
    assert response.status_code < 500, f"{operation_id} answered {response.status_code}: {response.text}"
    assert media_type(response.headers.get("content-type")) == "application/json", response.headers
    schema = CONTRACT.response_schema(operation_id, response.status_code)
    assert schema is not None, f"{operation_id} answered undocumented {response.status_code}: {response.text}"
    errors = [error.message for error in validator_for(schema).iter_errors(response.json())]
    assert not errors, f"{operation_id} {response.status_code} body breaks the contract: {errors}"
    return response


class Api:
    """A few calls of the API as one identity, each answer checked against the contract."""

    def __init__(self, base_url: str, api_key: str | None, project_id: str | None) -> None:
        headers = {}
        if api_key is not None:
            headers["X-API-Key"] = api_key
        if project_id is not None:
            headers["X-Project-ID"] = project_id
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=10, verify=TLS_CONTEXT)

    def call(self, operation_id: str, *, id: str = "", check: bool = True, **kwargs: Any) -> httpx.Response:
        method, path = ALL_OPERATIONS[operation_id]
        response = self.http.request(method, path.replace("{id}", id), **kwargs)
        return checked(operation_id, response) if check else response

    def create(self, vm_id: str, **body: Any) -> dict[str, Any]:
        response = self.call("createBackup", json={"vm_id": vm_id, **body})
        assert response.status_code == 202, response.text
        return response.json()["data"]

    def reset(self, vm_id: str) -> httpx.Response:
        return self.call("resetBackupChain", id=vm_id)

    def backups(self, vm_id: str | None = None, **params: Any) -> list[dict[str, Any]]:
        if vm_id is not None:
            params["vm_id"] = vm_id
        response = self.call("listBackups", params={"limit": 1000, **params})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def increments(self, vm_id: str) -> list[int | None]:
        return [backup["increment_id"] for backup in self.backups(vm_id)]

    def wait_ready(self, backup_id: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            data = self.call("getBackup", id=backup_id).json()["data"]
            if data["status"] == "ready" or time.monotonic() > deadline:
                return data
            time.sleep(0.02)


@pytest.fixture(scope="session")
def stopping_servers() -> Iterator[list[MockServer]]:
    """Servers asked to stop during the session; waited for together at its end."""
    servers: list[MockServer] = []
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def make_server(stopping_servers: list[MockServer]) -> Iterator[Callable[..., MockServer]]:
    """Starts mocks with the given create_app() options; all are stopped after the test."""
    servers: list[MockServer] = []

    def start(**options: Any) -> MockServer:
        options.setdefault("backup_delay", 0.05)
        options.setdefault("restore_delay", 0.05)
        server = MockServer(create_app(**options)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        # uvicorn takes ~0.2 s to wind down; let it do so in the background rather than per test.
        server.stop(wait=False)
        stopping_servers.append(server)


@pytest.fixture
def server(make_server: Callable[..., MockServer]) -> MockServer:
    """A clean mock with fresh state."""
    return make_server()


@pytest.fixture
def creds(server: MockServer) -> dict[str, str]:
    return server.credentials()


@pytest.fixture
def api(server: MockServer, creds: dict[str, str]) -> Api:
    """The primary identity, scoped to the primary project."""
    return Api(server.base_url, creds["RAFF_API_KEY"], creds["RAFF_PROJECT_ID"])


@pytest.fixture(scope="module")
def shared() -> Iterator[MockServer]:
    """A clean mock shared by the tests that only read or send requests it must reject."""
    app = create_app()
    seeded = set(app.state.world.backups)
    with MockServer(app) as server:
        yield server
    # Every request these tests sent was a read or had to be refused: nothing may have changed.
    assert set(app.state.world.backups) == seeded


@pytest.fixture
def shared_creds(shared: MockServer) -> dict[str, str]:
    return shared.credentials()


@pytest.fixture
def shared_api(shared: MockServer, shared_creds: dict[str, str]) -> Api:
    return Api(shared.base_url, shared_creds["RAFF_API_KEY"], shared_creds["RAFF_PROJECT_ID"])


# ---- seed, credentials, authentication and headers ------------------------------------------


def test_mock_credentials__seeded_identities(shared: MockServer, shared_creds: dict[str, str], shared_api: Api) -> None:
    assert set(shared_creds) == {
        "RAFF_BASE_URL",
        "RAFF_API_KEY",
        "RAFF_PROJECT_ID",
        "RAFF_VM_ID",
        "RAFF_SECOND_VM_ID",
        "RAFF_OTHER_PROJECT_VM_ID",
        "RAFF_OTHER_ACCOUNT_VM_ID",
        "RAFF_OTHER_ACCOUNT_API_KEY",
        "RAFF_OTHER_PROJECT_ID",
    }
    assert shared_creds["RAFF_BASE_URL"] == shared.base_url
    assert shared_creds["RAFF_API_KEY"].startswith("raff_pub_")
    assert shared_creds["RAFF_API_KEY"] != shared_creds["RAFF_OTHER_ACCOUNT_API_KEY"]
    for name in ("RAFF_VM_ID", "RAFF_SECOND_VM_ID", "RAFF_OTHER_PROJECT_VM_ID"):
        vm = shared_api.call("getVM", id=shared_creds[name]).json()["data"]
        assert vm["id"] == shared_creds[name]
    assert shared_api.call("getVM", id=shared_creds["RAFF_OTHER_ACCOUNT_VM_ID"]).status_code == 404
    other = Api(shared.base_url, shared_creds["RAFF_OTHER_ACCOUNT_API_KEY"], None)
    assert other.call("getVM", id=shared_creds["RAFF_OTHER_ACCOUNT_VM_ID"]).status_code == 200
    # Legacy standalone backups are seeded on the second VM, and none on the primary VM.
    assert shared_api.increments(shared_creds["RAFF_SECOND_VM_ID"]) == [None, None]
    assert shared_api.backups(shared_creds["RAFF_VM_ID"]) == []


def test_mock_credentials__fresh_key_per_app() -> None:
    first, second = create_app().state.world.credentials(), create_app().state.world.credentials()
    assert first["RAFF_API_KEY"] != second["RAFF_API_KEY"]
    assert first["RAFF_VM_ID"] == second["RAFF_VM_ID"]  # fixed ids keep curl commands reproducible


def test_mock_seed__custom_structure() -> None:
    def vm(n: int) -> dict[str, Any]:
        return {"id": str(uuid.UUID(int=n)), "name": f"vm-{n}"}

    seed = {
        "accounts": [
            {"id": str(uuid.uuid4()), "projects": [{"id": str(uuid.UUID(int=100)), "vms": [vm(1), vm(2)]}]},
            {"id": str(uuid.uuid4()), "projects": [{"id": str(uuid.UUID(int=200)), "vms": [vm(4)]}]},
        ]
    }
    seed["accounts"][0]["projects"].append({"id": str(uuid.UUID(int=101)), "vms": [vm(3)]})
    credentials = create_app(seed=seed).state.world.credentials()
    assert credentials["RAFF_PROJECT_ID"] == str(uuid.UUID(int=100))
    assert credentials["RAFF_SECOND_VM_ID"] == str(uuid.UUID(int=2))
    assert credentials["RAFF_OTHER_PROJECT_VM_ID"] == str(uuid.UUID(int=3))
    assert credentials["RAFF_OTHER_ACCOUNT_VM_ID"] == str(uuid.UUID(int=4))
    with pytest.raises(ValueError, match="two accounts"):
        create_app(seed={"accounts": seed["accounts"][:1]})


@pytest.mark.parametrize("operation_id", sorted(ALL_OPERATIONS))
@pytest.mark.parametrize("api_key", [None, "raff_pub_wrong"], ids=["no-key", "wrong-key"])
def test_mock_auth__rejected(
    shared: MockServer, shared_creds: dict[str, str], operation_id: str, api_key: str | None
) -> None:
    stranger = Api(shared.base_url, api_key, shared_creds["RAFF_PROJECT_ID"])
    kwargs = {"json": {"vm_id": shared_creds["RAFF_VM_ID"]}} if operation_id == "createBackup" else {}
    response = stranger.call(operation_id, id=shared_creds["RAFF_VM_ID"], **kwargs)
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"


@pytest.mark.parametrize("operation_id", sorted(PROJECT_OPERATIONS))
def test_mock_project_header__missing(shared: MockServer, shared_creds: dict[str, str], operation_id: str) -> None:
    unscoped = Api(shared.base_url, shared_creds["RAFF_API_KEY"], None)
    kwargs = {"json": {"vm_id": shared_creds["RAFF_VM_ID"]}} if operation_id == "createBackup" else {}
    response = unscoped.call(operation_id, id=shared_creds["RAFF_VM_ID"], **kwargs)
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "message": "X-Project-ID required"}


@pytest.mark.parametrize("operation_id", sorted(PROJECT_OPERATIONS))
def test_mock_project_header__not_uuid(shared: MockServer, shared_creds: dict[str, str], operation_id: str) -> None:
    client = Api(shared.base_url, shared_creds["RAFF_API_KEY"], "prj_not-a-uuid")
    kwargs = {"json": {"vm_id": shared_creds["RAFF_VM_ID"]}} if operation_id == "createBackup" else {}
    assert client.call(operation_id, id=shared_creds["RAFF_VM_ID"], **kwargs).status_code == 400


@pytest.mark.parametrize(
    ("operation_id", "status"),
    [
        ("getBackup", 404),
        ("deleteBackup", 404),
        ("restoreBackup", 404),
        ("deleteBackupChain", 404),
        ("getVM", 404),
        ("resetBackupChain", 400),
    ],
)
def test_mock_path_id__not_uuid(shared_api: Api, operation_id: str, status: int) -> None:
    assert shared_api.call(operation_id, id="not-a-uuid").status_code == status


def test_mock_scope__other_project_and_account(
    shared: MockServer, shared_creds: dict[str, str], shared_api: Api
) -> None:
    legacy = shared_api.backups(shared_creds["RAFF_SECOND_VM_ID"])[0]["id"]
    other_project = Api(shared.base_url, shared_creds["RAFF_API_KEY"], shared_creds["RAFF_OTHER_PROJECT_ID"])
    assert other_project.call("getBackup", id=legacy).status_code == 404
    assert other_project.call("restoreBackup", id=legacy).status_code == 404
    assert other_project.call("createBackup", json={"vm_id": shared_creds["RAFF_VM_ID"]}).status_code == 404
    foreign_project = Api(shared.base_url, shared_creds["RAFF_API_KEY"], str(uuid.uuid4()))
    assert foreign_project.call("getBackup", id=legacy).status_code == 404
    other_account = Api(shared.base_url, shared_creds["RAFF_OTHER_ACCOUNT_API_KEY"], shared_creds["RAFF_PROJECT_ID"])
    assert other_account.call("getBackup", id=legacy).status_code == 404
    assert other_account.call("deleteBackup", id=legacy).status_code == 404
    assert shared_api.call("getBackup", id=legacy).status_code == 200  # untouched by all of the above


# ---- create, restore, reset ------------------------------------------------------------------


def test_mock_backup_create__pending_then_ready(api: Api, creds: dict[str, str]) -> None:
    backup = api.create(creds["RAFF_VM_ID"], name="nightly")
    assert backup["status"] == "pending"
    assert backup["increment_id"] == 0
    assert backup["product_vm"] == creds["RAFF_VM_ID"]
    assert backup["project_id"] == creds["RAFF_PROJECT_ID"]
    assert backup["name"] == "nightly"
    assert "vm_id" not in backup
    assert set(CONTRACT.resolve(CONTRACT.merged["components"]["schemas"]["Backup"])["properties"]) == set(backup)
    assert api.wait_ready(backup["id"])["status"] == "ready"
    second = api.create(creds["RAFF_VM_ID"])
    assert second["increment_id"] == 1
    assert second["name"].startswith("manual-backup-")
    assert second["storage_size"] < backup["storage_size"]  # an increment holds only the changed blocks


def test_mock_time__requests_clock_keeps_the_order_of_states(make_server: Callable[..., MockServer]) -> None:
    """On request time a backup goes pending -> creating -> ready, and a restore holds 'restoring',
    counted in requests: no wall time passes, the story a client sees is the same."""
    server = make_server(time_mode="requests", backup_delay=0.3, restore_delay=0.2)
    creds = server.credentials()
    api = Api(server.base_url, creds["RAFF_API_KEY"], creds["RAFF_PROJECT_ID"])
    started = time.monotonic()
    backup = api.create(creds["RAFF_VM_ID"])
    seen = [api.call("getBackup", id=backup["id"]).json()["data"]["status"] for _ in range(3)]
    assert [backup["status"], *seen] == ["pending", "pending", "creating", "ready"]
    assert api.call("restoreBackup", id=backup["id"]).json()["data"]["status"] == "restoring"
    after = [api.call("getBackup", id=backup["id"]).json()["data"]["status"] for _ in range(2)]
    assert after == ["restoring", "ready"]
    assert time.monotonic() - started < 0.3 * 3  # the delays were not slept


def test_mock_time__unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mock time mode"):
        create_app(time_mode="lunar")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"vm_id": "not-a-uuid"},
        {"vm_id": 7},
        {"vm_id": "00000000-0000-4000-8000-00000000000_"},
        {"name": "x" * 129},
        ["not", "an", "object"],
        None,
    ],
)
def test_mock_backup_create__invalid_body(shared_api: Api, shared_creds: dict[str, str], body: Any) -> None:
    if isinstance(body, dict) and "name" in body:
        body = {"vm_id": shared_creds["RAFF_VM_ID"], **body}
    response = shared_api.call(
        "createBackup",
        content=b"" if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_mock_backup_create__unknown_vm(shared_api: Api) -> None:
    assert shared_api.call("createBackup", json={"vm_id": str(uuid.uuid4())}).status_code == 404


def test_mock_backup_restore__ready_only(api: Api, creds: dict[str, str]) -> None:
    backup = api.create(creds["RAFF_VM_ID"])
    assert api.call("restoreBackup", id=backup["id"]).status_code == 409  # still pending
    api.wait_ready(backup["id"])
    restoring = api.call("restoreBackup", id=backup["id"])
    assert restoring.status_code == 202
    assert restoring.json()["data"]["status"] == "restoring"
    assert api.call("restoreBackup", id=backup["id"]).status_code == 409  # already restoring
    assert api.wait_ready(backup["id"])["status"] == "ready"


def test_mock_reset__next_backup_starts_new_series(api: Api, creds: dict[str, str]) -> None:
    """1. two points; 2. reset; 3. the closed points are unchanged and restorable; 4. new series 0, 1."""
    vm = creds["RAFF_VM_ID"]
    old = [api.create(vm), api.create(vm)]
    listed_before = {b["id"]: (b["increment_id"], b["status"]) for b in map(api.wait_ready, [b["id"] for b in old])}
    response = api.reset(vm)
    assert response.status_code == 202
    assert response.json() == {
        "success": True,
        "message": "New baseline queued — the next backup will start a fresh series.",
    }
    listed_after = {b["id"]: (b["increment_id"], b["status"]) for b in api.backups(vm)}
    assert listed_after == listed_before
    assert api.call("restoreBackup", id=old[0]["id"]).status_code == 202
    assert [api.create(vm)["increment_id"], api.create(vm)["increment_id"]] == [0, 1]
    assert api.increments(vm) == [0, 1, 0, 1]


def test_mock_reset__repeated_and_without_points(api: Api, creds: dict[str, str]) -> None:
    vm = creds["RAFF_VM_ID"]
    assert api.reset(vm).status_code == 202  # no series yet
    api.create(vm)
    assert api.reset(vm).status_code == 202
    assert api.reset(vm).status_code == 202
    assert api.create(vm)["increment_id"] == 0


def test_mock_reset__touches_only_the_named_vm(api: Api, creds: dict[str, str]) -> None:
    vm, second = creds["RAFF_VM_ID"], creds["RAFF_SECOND_VM_ID"]
    api.create(vm)
    api.create(second)
    api.reset(vm)
    assert api.create(second)["increment_id"] == 1
    assert api.create(vm)["increment_id"] == 0


@pytest.mark.parametrize("vm_name", ["RAFF_OTHER_PROJECT_VM_ID", "RAFF_OTHER_ACCOUNT_VM_ID", None])
def test_mock_reset__out_of_scope_vm(shared_api: Api, shared_creds: dict[str, str], vm_name: str | None) -> None:
    vm = shared_creds[vm_name] if vm_name else str(uuid.uuid4())
    assert shared_api.reset(vm).status_code == 404


# ---- delete and chain delete -----------------------------------------------------------------


def test_mock_backup_delete__with_dependents_refused(api: Api, creds: dict[str, str]) -> None:
    vm = creds["RAFF_VM_ID"]
    base, _ = api.create(vm), api.create(vm)
    response = api.call("deleteBackup", id=base["id"])
    assert response.status_code == 409
    assert "/chain" in response.json()["message"]
    assert api.increments(vm) == [0, 1]


def test_mock_backup_delete__newest_first(api: Api, creds: dict[str, str]) -> None:
    vm = creds["RAFF_VM_ID"]
    points = [api.create(vm) for _ in range(3)]
    for point in reversed(points):
        assert api.call("deleteBackup", id=point["id"]).status_code == 200
        assert api.call("getBackup", id=point["id"]).status_code == 404
    assert api.backups(vm) == []
    assert api.create(vm)["increment_id"] == 0


def test_mock_backup_delete__legacy(api: Api, creds: dict[str, str]) -> None:
    legacy = api.backups(creds["RAFF_SECOND_VM_ID"])[0]["id"]
    assert api.call("deleteBackup", id=legacy).status_code == 200
    assert api.call("deleteBackup", id=legacy).status_code == 404


def test_mock_chain_delete__removes_exactly_the_series(api: Api, creds: dict[str, str]) -> None:
    vm, second = creds["RAFF_VM_ID"], creds["RAFF_SECOND_VM_ID"]
    closed = [api.create(vm), api.create(vm)]
    api.reset(vm)
    open_series = [api.create(vm)]
    second_before = api.backups(second)
    assert api.call("deleteBackupChain", id=closed[1]["id"]).status_code == 200
    assert [b["id"] for b in api.backups(vm)] == [b["id"] for b in open_series]
    assert api.backups(second) == second_before
    assert api.call("deleteBackupChain", id=closed[0]["id"]).status_code == 404


def test_mock_chain_delete__open_series_and_legacy(api: Api, creds: dict[str, str]) -> None:
    vm, second = creds["RAFF_VM_ID"], creds["RAFF_SECOND_VM_ID"]
    api.create(vm)
    point = api.create(vm)
    assert api.call("deleteBackupChain", id=point["id"]).status_code == 200
    assert api.create(vm)["increment_id"] == 0  # the open series is gone: a fresh baseline
    legacy = api.backups(second)
    assert api.call("deleteBackupChain", id=legacy[0]["id"]).status_code == 200
    assert [b["id"] for b in api.backups(second)] == [b["id"] for b in legacy[1:]]


# ---- list --------------------------------------------------------------------------------------


def test_mock_list__filters_and_total(server: MockServer, api: Api, creds: dict[str, str]) -> None:
    vm = creds["RAFF_VM_ID"]
    created = [api.create(vm)["id"] for _ in range(3)]
    response = api.call("listBackups", params={"vm_id": vm, "limit": 2, "offset": 1}).json()
    assert response["total"] == 3
    assert [b["id"] for b in response["data"]] == created[1:3]
    assert api.call("listBackups", params={"vm_id": vm, "limit": -5, "offset": -2}).json()["data"] == []
    assert api.call("listBackups", params={"limit": 99999999999999999999999}).json()["total"] == 5
    everywhere = Api(server.base_url, creds["RAFF_API_KEY"], None)
    assert everywhere.call("listBackups").json()["total"] == 6  # both projects of the account
    other = Api(server.base_url, creds["RAFF_API_KEY"], creds["RAFF_OTHER_PROJECT_ID"])
    assert {b["product_vm"] for b in other.backups()} == {creds["RAFF_OTHER_PROJECT_VM_ID"]}
    foreign = Api(server.base_url, creds["RAFF_API_KEY"], str(uuid.uuid4()))
    assert foreign.call("listBackups").json() == {"success": True, "data": [], "total": 0}
    assert api.call("listBackups", params={"vm_id": creds["RAFF_OTHER_ACCOUNT_VM_ID"]}).json()["total"] == 0


@pytest.mark.parametrize(
    "params", [{"vm_id": "nope"}, {"limit": "ten"}, {"offset": "1.5"}, {"limit": ""}, {"limit": "1_0"}]
)
def test_mock_list__malformed_query(shared_api: Api, params: dict[str, str]) -> None:
    assert shared_api.call("listBackups", params=params).status_code == 400


# ---- HTTP edges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/backups", "GET, POST"),
        ("TRACE", "/api/v1/backups/00000000-0000-4000-8000-000000000000", "DELETE, GET"),
        ("OPTIONS", "/api/v1/vms/00000000-0000-4000-8000-000000000000/backups/reset-chain", "POST"),
        ("PATCH", "/api/v1/backups/x/chain", "DELETE"),
    ],
)
def test_mock_http__undeclared_method(shared_api: Api, method: str, path: str, allow: str) -> None:
    response = shared_api.http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"] == "Method Not Allowed"


def test_mock_http__unknown_path(shared_api: Api) -> None:
    for path in ("/", "/api/v1/backups/", "/api/v1/vms", "/health", "/api/v1/backups%0A", "/api/v1/vms/a%0Ab/x"):
        response = shared_api.http.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "Not Found"


def test_mock_http__malformed_inputs_never_5xx(shared_api: Api, shared_creds: dict[str, str]) -> None:
    """Hostile bodies, headers and parameters all get a 4xx JSON Error."""
    vm = shared_creds["RAFF_VM_ID"]
    bodies: list[tuple[bytes, str]] = [
        (b"{not json", "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"[" * 50000 + b"]" * 50000, "application/json"),
        (b'{"vm_id": 1' + b"0" * 5000 + b"}", "application/json"),
        (b'{"vm_id": NaN}', "application/json"),
        (json.dumps({"vm_id": vm}).encode(), "text/plain"),
        (json.dumps({"vm_id": vm}).encode(), ""),
        (b"x" * 200_000, "application/json"),
    ]
    for content, content_type in bodies:
        response = shared_api.call("createBackup", content=content, headers={"Content-Type": content_type})
        assert response.status_code == 400, content[:40]
    for project in ("\u00e9t\u00e9", "", "00000000-0000-4000-8000-00000000000G", "{" + str(uuid.uuid4()) + "}"):
        headers = {"X-Project-ID": project.encode("utf-8")}
        assert shared_api.call("getBackup", id=str(uuid.uuid4()), headers=headers).status_code == 400
    weird_ids = [
        "%00",
        "%0A",
        "a%0Ab",
        "\u00fc\u00f1\u00ee",
        "1" * 5000,
        "..%2F..%2Fetc",
        "00000000-0000-4000-8000-00000000000",
    ]
    for weird in weird_ids:
        for operation_id in ("getBackup", "getVM", "resetBackupChain", "deleteBackupChain"):
            response = shared_api.call(operation_id, id=weird)
            assert response.status_code in (400, 404)
    for params in ({"limit": "9" * 5000}, {"offset": "-" + "9" * 30}, {"vm_id": "\u0000"}):
        assert shared_api.call("listBackups", params=params).status_code in (200, 400)


def test_mock_concurrent_create_and_reset__consistent_series(api: Api, creds: dict[str, str]) -> None:
    """50 concurrent creates and resets on one VM leave gapless series without duplicates."""
    vm = creds["RAFF_VM_ID"]
    actions = ["reset" if i % 5 == 2 else "create" for i in range(50)]

    def act(action: str) -> int:
        response = api.reset(vm) if action == "reset" else api.call("createBackup", json={"vm_id": vm})
        return response.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(act, actions))
    assert statuses.count(202) == 50
    increments = api.increments(vm)
    assert len(increments) == actions.count("create")
    # In creation order, each series is 0, 1, 2, … and a new one starts only at 0.
    for previous, current in zip([-1, *increments], increments, strict=False):
        assert current in (0, previous + 1), increments


# ---- defects ------------------------------------------------------------------------------------


def test_mock_defects__catalogue_covers_every_requirement() -> None:
    requirements = set(CONTRACT.requirements)
    assert {defect.requirement for defect in DEFECTS.values()} == requirements
    for name, defect in DEFECTS.items():
        assert defect.name == name
        assert defect.description
    for name in ("reset_returns_200", "backup_storage_size_string", "list_total_ignores_filter"):
        assert name in DEFECTS
    with pytest.raises(ValueError, match=r"valid defects: .*reset_returns_200"):
        create_app(defects=["no_such_defect"])
    with pytest.raises(ValueError, match="valid faults"):
        create_app(faults=["no_such_fault"])


Probe = Callable[[str, dict[str, str]], object]


def _two_resets_at_once(api: Api, creds: dict[str, str]) -> object:
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: api.call("resetBackupChain", id=creds["RAFF_VM_ID"], check=False),
                                range(2)))
    return sorted(r.status_code for r in answers)


def _probe_api(base_url: str, creds: dict[str, str], **overrides: str | None) -> Api:
    options: dict[str, str | None] = {"api_key": creds["RAFF_API_KEY"], "project_id": creds["RAFF_PROJECT_ID"]}
    options.update(overrides)
    return Api(base_url, options["api_key"], options["project_id"])


def _reset_status(vm_name: str | None = "RAFF_VM_ID", vm_id: str | None = None, **overrides: str | None) -> Probe:
    def probe(base_url: str, creds: dict[str, str]) -> object:
        client = _probe_api(base_url, creds, **overrides)
        target = vm_id or creds[str(vm_name)]
        response = client.call("resetBackupChain", id=target, check=False)
        return response.status_code, response.headers.get("content-type")

    return probe


def _scenario(steps: Callable[[Api, dict[str, str]], object]) -> Probe:
    def probe(base_url: str, creds: dict[str, str]) -> object:
        return steps(_probe_api(base_url, creds), creds)

    return probe


def _renumber(api: Api, creds: dict[str, str]) -> object:
    api.create(creds["RAFF_VM_ID"])
    api.reset(creds["RAFF_VM_ID"])
    return [
        b["increment_id"] for b in api.http.get("/api/v1/backups", params={"vm_id": creds["RAFF_VM_ID"]}).json()["data"]
    ]


def _restore_closed(api: Api, creds: dict[str, str]) -> object:
    backup = api.http.post("/api/v1/backups", json={"vm_id": creds["RAFF_VM_ID"]}).json()["data"]
    time.sleep(0.1)
    api.http.post(f"/api/v1/vms/{creds['RAFF_VM_ID']}/backups/reset-chain")
    return api.http.post(f"/api/v1/backups/{backup['id']}/restore").status_code


def _create_increment(api: Api, vm: str) -> object:
    return api.http.post("/api/v1/backups", json={"vm_id": vm}).json()["data"]["increment_id"]


def _numbering(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    _create_increment(api, vm)
    _create_increment(api, vm)
    api.http.post(f"/api/v1/vms/{vm}/backups/reset-chain")
    return _create_increment(api, vm)


def _spill(api: Api, creds: dict[str, str]) -> object:
    _create_increment(api, creds["RAFF_SECOND_VM_ID"])
    api.http.post(f"/api/v1/vms/{creds['RAFF_VM_ID']}/backups/reset-chain")
    return _create_increment(api, creds["RAFF_SECOND_VM_ID"])


def _second_reset(api: Api, creds: dict[str, str]) -> object:
    path = f"/api/v1/vms/{creds['RAFF_VM_ID']}/backups/reset-chain"
    _create_increment(api, creds["RAFF_VM_ID"])
    return api.http.post(path).status_code, api.http.post(path).status_code


def _listing(api: Api, creds: dict[str, str]) -> object:
    listing = api.http.get("/api/v1/backups", params={"vm_id": creds["RAFF_SECOND_VM_ID"]}).json()
    return listing["total"], [type(b["storage_size"]).__name__ for b in listing["data"]]


def _paged_total(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_SECOND_VM_ID"]  # seeded with backups
    return api.http.get("/api/v1/backups", params={"vm_id": vm, "limit": 1}).json()["total"]


def _ready_then_reset(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    _await_ready(api, api.create(vm)["id"])
    api.reset(vm)
    return api.http.get("/api/v1/backups", params={"vm_id": vm}).json()["total"]


def _hidden(api: Api, creds: dict[str, str]) -> object:
    _create_increment(api, creds["RAFF_VM_ID"])
    api.http.post(f"/api/v1/vms/{creds['RAFF_VM_ID']}/backups/reset-chain")
    return api.http.get("/api/v1/backups", params={"vm_id": creds["RAFF_VM_ID"]}).json()["total"]


def _not_found_type(api: Api, creds: dict[str, str]) -> object:
    return api.http.get(f"/api/v1/backups/{uuid.uuid4()}").headers["content-type"]


def _chain_spill(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    closed = api.http.post("/api/v1/backups", json={"vm_id": vm}).json()["data"]
    api.http.post(f"/api/v1/vms/{vm}/backups/reset-chain")
    _create_increment(api, vm)
    api.http.delete(f"/api/v1/backups/{closed['id']}/chain")
    return api.http.get("/api/v1/backups", params={"vm_id": vm}).json()["total"]


def _delete_dependent(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    base = api.http.post("/api/v1/backups", json={"vm_id": vm}).json()["data"]
    _create_increment(api, vm)
    status = api.http.delete(f"/api/v1/backups/{base['id']}").status_code
    return status, api.http.get("/api/v1/backups", params={"vm_id": vm}).json()["total"]


def _unfiltered_increments(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    _create_increment(api, vm)
    api.http.post(f"/api/v1/vms/{vm}/backups/reset-chain")
    listing = api.http.get("/api/v1/backups", params={"limit": 1000}).json()["data"]
    return sorted(repr(b["increment_id"]) for b in listing if b["product_vm"] == vm)


def _pages(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_SECOND_VM_ID"]  # seeded with backups
    pages = [api.http.get("/api/v1/backups", params={"vm_id": vm, "limit": 1, "offset": n}).json() for n in range(3)]
    return [[b["id"] for b in page["data"]] for page in pages]


def _oldest_series_deleted(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    first = api.create(vm)["id"]
    api.reset(vm)
    second = api.create(vm)["id"]
    api.http.delete(f"/api/v1/backups/{second}/chain")
    listed = {b["id"] for b in api.http.get("/api/v1/backups", params={"vm_id": vm}).json()["data"]}
    return first in listed, second in listed


def _baseline_only_reset_then_create(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    api.reset(vm)
    api.create(vm)
    api.reset(vm)
    return api.create(vm)["increment_id"]


def _open_series_deleted(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    closed = api.create(vm)["id"]
    api.reset(vm)
    open_point = api.create(vm)["id"]
    api.http.delete(f"/api/v1/backups/{open_point}/chain")
    listed = {b["id"] for b in api.http.get("/api/v1/backups", params={"vm_id": vm}).json()["data"]}
    return closed in listed, open_point in listed


def _unscoped_vm_filter(api: Api, creds: dict[str, str]) -> object:
    unscoped = Api(api.http.base_url, creds["RAFF_API_KEY"], None)
    return unscoped.http.get("/api/v1/backups", params={"vm_id": creds["RAFF_VM_ID"]}).json()["total"]


def _other_account_vm_listing(api: Api, creds: dict[str, str]) -> object:
    return api.http.get("/api/v1/backups", params={"vm_id": creds["RAFF_OTHER_ACCOUNT_VM_ID"]}).json()["total"]


def _reset_in_flight(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    _create_increment(api, vm)  # in flight: the probe's mock holds backups for seconds (PROBE_SERVERS)
    api.reset(vm)
    return _create_increment(api, vm)


def _await_ready(api: Api, backup_id: str) -> None:
    for _ in range(100):
        if api.http.get(f"/api/v1/backups/{backup_id}").json()["data"]["status"] == "ready":
            return
        time.sleep(0.02)
    raise AssertionError(f"backup {backup_id} never became ready")


def _pruned_after_baseline(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    _await_ready(api, api.create(vm)["id"])
    api.reset(vm)
    _await_ready(api, api.create(vm)["id"])
    return api.http.get("/api/v1/backups", params={"vm_id": vm}).json()["total"]


def _baseline_only_reset(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    api.create(vm)
    api.reset(vm)
    return api.http.get("/api/v1/backups", params={"vm_id": vm}).json()["total"]


def _undeclared_put(api: Api, creds: dict[str, str]) -> object:
    return api.http.put(f"/api/v1/backups/{uuid.uuid4()}").status_code


def _allow_header(api: Api, creds: dict[str, str]) -> object:
    return api.http.options("/api/v1/backups").headers.get("allow")


def _read_after_delete(api: Api, creds: dict[str, str]) -> object:
    backup = api.create(creds["RAFF_VM_ID"])["id"]
    api.http.delete(f"/api/v1/backups/{backup}")
    return api.http.get(f"/api/v1/backups/{backup}").status_code


def _default_named_reads(api: Api, creds: dict[str, str]) -> object:
    named = api.create(creds["RAFF_VM_ID"], name="probe")["id"]
    unnamed = api.create(creds["RAFF_VM_ID"])["id"]
    listed = {backup["id"] for backup in api.backups(creds["RAFF_VM_ID"])} >= {named, unnamed}
    return listed, [api.http.get(f"/api/v1/backups/{backup}").status_code for backup in (named, unnamed)]


def _restore_default_named(api: Api, creds: dict[str, str]) -> object:
    backup = api.create(creds["RAFF_VM_ID"])["id"]
    _await_ready(api, backup)
    return api.call("restoreBackup", id=backup, check=False).status_code


def _name_lengths(api: Api, creds: dict[str, str]) -> object:
    limit = CONTRACT.merged["components"]["schemas"]["CreateBackupRequest"]["properties"]["name"]["maxLength"]
    return [
        api.call("createBackup", json={"vm_id": creds["RAFF_VM_ID"], "name": "n" * length}).status_code
        for length in (limit - 1, limit, limit + 1)
    ]


def _restore_closed_status(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    backup = api.create(vm)["id"]
    _await_ready(api, backup)
    api.reset(vm)
    return api.call("restoreBackup", id=backup, check=False).status_code


def _closed_point_read(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    backup = api.create(vm)["id"]
    api.reset(vm)
    listed = backup in {b["id"] for b in api.backups(vm)}
    return listed, api.call("getBackup", id=backup, check=False).status_code


def _baseline_after_reset(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    _await_ready(api, api.create(vm)["id"])
    api.reset(vm)
    created = api.create(vm)
    _await_ready_or_failed(api, created["id"])
    shown = api.call("getBackup", id=created["id"]).json()["data"]
    return created["increment_id"], shown["increment_id"], shown["status"]


def _await_ready_or_failed(api: Api, backup_id: str) -> None:
    for _ in range(100):
        if api.http.get(f"/api/v1/backups/{backup_id}").json()["data"]["status"] in ("ready", "failed"):
            return
        time.sleep(0.02)


def _status_after_a_while(api: Api, creds: dict[str, str]) -> object:
    backup = api.create(creds["RAFF_VM_ID"])["id"]
    time.sleep(0.2)  # four times the probe mock's backup delay
    return api.call("getBackup", id=backup).json()["data"]["status"]


def _odd_name(api: Api, creds: dict[str, str]) -> object:
    return api.create(creds["RAFF_VM_ID"], name="snapshot-é漢字🙂")["name"]


def _listed_account(api: Api, creds: dict[str, str]) -> object:
    created = api.create(creds["RAFF_VM_ID"])
    listed = next(b for b in api.backups(creds["RAFF_VM_ID"]) if b["id"] == created["id"])
    return created["account_id"] == listed["account_id"]


def _delete_answer_type(api: Api, creds: dict[str, str]) -> object:
    backup = api.create(creds["RAFF_VM_ID"])["id"]
    return api.call("deleteBackup", id=backup, check=False).headers.get("content-type", "").split(";")[0]


def _created_at_vs_date(api: Api, creds: dict[str, str]) -> object:
    response = api.call("createBackup", json={"vm_id": creds["RAFF_VM_ID"]})
    created_at = datetime.fromisoformat(response.json()["data"]["created_at"].replace("Z", "+00:00"))
    return abs((created_at - parsedate_to_datetime(response.headers["date"])).total_seconds()) < 600


def _upper_case_vm_filter(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_SECOND_VM_ID"]  # seeded with backups
    return len(api.backups(vm)) == len(api.backups(vm.upper()))


def _reset_then_unfiltered_listing(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    api.create(vm)
    api.reset(vm)
    api.backups()
    return api.create(vm)["increment_id"]


def _restore_in_other_project(api: Api, creds: dict[str, str]) -> object:
    backup = api.create(creds["RAFF_VM_ID"])["id"]
    _await_ready(api, backup)
    other = Api(api.http.base_url, creds["RAFF_API_KEY"], creds["RAFF_OTHER_PROJECT_ID"])
    return other.call("restoreBackup", id=backup, check=False).status_code


def _create_right_after_reset(api: Api, creds: dict[str, str]) -> object:
    vm = creds["RAFF_VM_ID"]
    api.create(vm)
    api.reset(vm)
    return api.create(vm)["increment_id"]


def _other_account_listing(api: Api, creds: dict[str, str]) -> object:
    api.create(creds["RAFF_VM_ID"])
    other = Api(api.http.base_url, creds["RAFF_OTHER_ACCOUNT_API_KEY"], None)
    return sorted({b["account_id"] for b in other.backups()})


def _vm_success(api: Api, creds: dict[str, str]) -> object:
    return api.call("getVM", id=creds["RAFF_VM_ID"]).json()["success"]


def _restore_in_flight(api: Api, creds: dict[str, str]) -> object:
    backup = api.create(creds["RAFF_VM_ID"])["id"]
    return api.call("restoreBackup", id=backup, check=False).status_code


PROBES: dict[str, Probe] = {
    "reset_returns_200": _reset_status(),
    "reset_success_false": _scenario(
        lambda api, creds: api.http.post(f"/api/v1/vms/{creds['RAFF_VM_ID']}/backups/reset-chain").json()["success"]
    ),
    "reset_unknown_vm_accepted": _reset_status(vm_id="6f1c2b0e-0000-4000-8000-00000000dead"),
    "reset_ignores_missing_project": _reset_status(project_id=None),
    "reset_accepts_non_uuid_project": _reset_status(project_id="not-a-uuid"),
    "reset_non_uuid_id_crashes": _reset_status(vm_id="not-a-uuid"),
    "closed_points_renumbered": _scenario(_renumber),
    "closed_points_hidden": _scenario(_hidden),
    "list_total_ignores_filter": _scenario(_listing),
    "list_total_is_page_size": _scenario(_paged_total),
    "reset_deletes_closed_points": _scenario(_ready_then_reset),
    "reset_answers_html": _reset_status(),
    "reset_wrong_key_accepted": _reset_status(api_key=WRONG_KEY),
    "closed_points_not_restorable": _scenario(_restore_closed),
    "numbering_continues_after_reset": _scenario(_numbering),
    "reset_spills_to_other_vm": _scenario(_spill),
    "second_reset_rejected": _scenario(_second_reset),
    "reset_ignores_project_scope": _reset_status("RAFF_OTHER_PROJECT_VM_ID"),
    "reset_ignores_account": _reset_status("RAFF_OTHER_ACCOUNT_VM_ID"),
    "reset_ignores_auth": _reset_status(api_key=None),
    "backup_storage_size_string": _scenario(_listing),
    "error_body_not_json": _scenario(_not_found_type),
    "chain_delete_spills_into_open_series": _scenario(_chain_spill),
    "delete_with_dependents_cascades": _scenario(_delete_dependent),
    "delete_with_dependents_deletes_point": _scenario(_delete_dependent),
    "unfiltered_listing_drops_increment": _scenario(_unfiltered_increments),
    "listing_offset_off_by_one": _scenario(_pages),
    "reset_accepts_unknown_project": _reset_status(project_id=str(uuid.uuid4())),
    "chain_delete_removes_oldest_series": _scenario(_oldest_series_deleted),
    "unscoped_listing_ignores_vm_filter": _scenario(_unscoped_vm_filter),
    "vm_filter_crosses_accounts": _scenario(_other_account_vm_listing),
    "reset_in_flight_ignored": _scenario(_reset_in_flight),
    "closed_series_pruned_after_baseline": _scenario(_pruned_after_baseline),
    "reset_drops_baseline_only_series": _scenario(_baseline_only_reset),
    "reset_skips_baseline_only_series": _scenario(_baseline_only_reset_then_create),
    "open_chain_delete_spills_into_closed_series": _scenario(_open_series_deleted),
    "undeclared_method_accepted": _scenario(_undeclared_put),
    "allow_header_lists_undeclared_method": _scenario(_allow_header),
    "deleted_backup_still_readable": _scenario(_read_after_delete),
    "default_named_backup_not_found": _scenario(_default_named_reads),
    "restore_default_named_crashes": _scenario(_restore_default_named),
    "unissued_backup_id_crashes": _scenario(
        lambda api, creds: [
            api.http.get(f"/api/v1/backups/{never_issued}").status_code
            for never_issued in ("f0000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000000")
        ]
    ),
    "offset_past_end_crashes": _scenario(
        lambda api, creds: api.http.get("/api/v1/backups", params={"offset": 1000}).status_code
    ),
    "name_at_max_length_rejected": _scenario(_name_lengths),
    "malformed_vm_filter_ignored": _scenario(
        lambda api, creds: api.http.get("/api/v1/backups", params={"vm_id": "not-a-uuid"}).status_code
    ),
    "closed_point_restore_refused": _scenario(_restore_closed_status),
    "closed_point_get_not_found": _scenario(_closed_point_read),
    "series_reopens_after_reset": _scenario(_baseline_after_reset),
    "backups_never_ready": _scenario(_status_after_a_while),
    "non_ascii_name_mangled": _scenario(_odd_name),
    "listing_account_id_is_project_id": _scenario(_listed_account),
    "delete_answers_plain_text": _scenario(_delete_answer_type),
    "created_at_an_hour_ahead": _scenario(_created_at_vs_date),
    "vm_filter_case_sensitive": _scenario(_upper_case_vm_filter),
    "unfiltered_listing_cancels_reset": _scenario(_reset_then_unfiltered_listing),
    "restore_ignores_project_scope": _scenario(_restore_in_other_project),
    "reset_takes_effect_late": _scenario(_create_right_after_reset),
    "listing_shows_lower_accounts": _scenario(_other_account_listing),
    "get_vm_success_false": _scenario(_vm_success),
    "restore_in_flight_408": _scenario(_restore_in_flight),
    # The variant matrix's defects (conformance/matrix.py), one per kind of input on a write.
    "reset_upper_case_id_not_found": _scenario(
        lambda api, creds: api.call("resetBackupChain", id=creds["RAFF_VM_ID"].upper(), check=False).status_code
    ),
    "reset_takes_backup_id": _scenario(
        lambda api, creds: api.call(
            "resetBackupChain", id=api.create(creds["RAFF_VM_ID"])["id"], check=False
        ).status_code
    ),
    "delete_repeated_project_header_crashes": _scenario(
        lambda api, creds: api.call(
            "deleteBackup", id=str(uuid.uuid4()), check=False,
            headers=[("X-Project-ID", creds["RAFF_PROJECT_ID"]), ("X-Project-ID", creds["RAFF_PROJECT_ID"])],
        ).status_code
    ),
    "reset_unparsed_body_crashes": _scenario(
        lambda api, creds: api.call(
            "resetBackupChain", id=creds["RAFF_VM_ID"], check=False, content=b"{not json",
            headers={"Content-Type": "application/json"},
        ).status_code
    ),
    "reset_at_once_crashes": _scenario(_two_resets_at_once),
    "restore_takes_vm_id": _scenario(
        lambda api, creds: (
            api.create(creds["RAFF_VM_ID"]),
            api.http.post(f"/api/v1/backups/{creds['RAFF_VM_ID']}/restore").status_code,
        )[1]
    ),
    "reset_project_case_sensitive": _scenario(
        lambda api, creds: api.call(
            "resetBackupChain", id=creds["RAFF_VM_ID"], check=False,
            headers={"X-Project-ID": creds["RAFF_PROJECT_ID"].upper()},
        ).status_code
    ),
    "create_coerces_wrong_typed_name": _scenario(
        lambda api, creds: api.http.post(
            "/api/v1/backups", json={"vm_id": creds["RAFF_VM_ID"], "name": 42}
        ).status_code
    ),
}
# Mock options a probe needs beyond make_server's: a backup that stays in flight while it acts.
PROBE_SERVERS: dict[str, dict[str, Any]] = {"reset_in_flight_ignored": {"backup_delay": 10.0}}


def test_mock_defects__every_defect_has_a_probe() -> None:
    assert set(PROBES) == set(DEFECTS)


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_mock_defect__observable(make_server: Callable[..., MockServer], name: str) -> None:
    """The same scenario observes something different on the clean mock and on the defective one."""
    options = PROBE_SERVERS.get(name, {})
    clean, defective = make_server(**options), make_server(defects=[name], **options)
    probe = PROBES[name]
    assert probe(clean.base_url, clean.credentials()) != probe(defective.base_url, defective.credentials())


# ---- faults and rate limit ------------------------------------------------------------------


def test_mock_faults__catalogue() -> None:
    assert set(FAULTS) == {"slow", "rate_limit_storm", "drop_connections", "server_errors", "hang"}


def _first_api(server: MockServer) -> Api:
    creds = server.credentials()
    return Api(server.base_url, creds["RAFF_API_KEY"], creds["RAFF_PROJECT_ID"])


def test_mock_fault__rate_limit_storm(make_server: Callable[..., MockServer]) -> None:
    api = _first_api(make_server(faults=["rate_limit_storm"]))
    response = api.call("listBackups")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.json() == {
        "error": "Rate limit exceeded",
        "message": "Maximum 30 requests per second allowed for your tier",
    }


def test_mock_fault__server_errors(make_server: Callable[..., MockServer]) -> None:
    api = _first_api(make_server(faults=["server_errors"]))
    statuses = [api.call("listBackups", check=False) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 503, 200, 503]
    assert statuses[1].json()["error"] == "Service Unavailable"


def test_mock_fault__drop_connections(make_server: Callable[..., MockServer]) -> None:
    server = make_server(faults=["drop_connections"])
    api = _first_api(server)
    outcomes = []
    for _ in range(6):
        try:
            outcomes.append(api.call("listBackups").status_code)
        except httpx.RemoteProtocolError:
            outcomes.append("dropped")
    assert outcomes == [200, 200, "dropped", 200, 200, "dropped"]


def test_mock_fault__slow(make_server: Callable[..., MockServer]) -> None:
    api = _first_api(make_server(faults=["slow"]))
    started = time.monotonic()
    assert api.call("listBackups").status_code == 200
    assert time.monotonic() - started >= 1.4


def test_mock_fault__hang_until_stopped(make_server: Callable[..., MockServer]) -> None:
    server = make_server(faults=["hang"])
    api = _first_api(server)
    with pytest.raises(httpx.ReadTimeout):
        api.http.get("/api/v1/backups", timeout=0.3)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3


def test_mock_rate_limit__per_key_with_burst(make_server: Callable[..., MockServer]) -> None:
    server = make_server(rate_limit=3)
    api = _first_api(server)
    statuses = [api.call("listBackups").status_code for _ in range(7)]
    assert statuses == [200] * 6 + [429]  # 3 per second plus a burst of 3
    limited = api.call("listBackups")
    assert limited.headers["x-ratelimit-limit"] == "3"
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["message"] == "Maximum 3 requests per second allowed for your tier"
    creds = server.credentials()
    other = Api(server.base_url, creds["RAFF_OTHER_ACCOUNT_API_KEY"], None)
    assert other.call("listBackups").status_code == 200  # another key has its own budget
    time.sleep(1.05)
    assert api.call("listBackups").status_code == 200


# ---- real-stack mode ---------------------------------------------------------------------------


def raw_exchange(
    base_url: str, method: str, target: str, headers: dict[str, str] | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request over a bare socket, the target sent byte for byte (httpx would clean dot segments
    and re-case header names): the status, the header lines as they were on the wire, the body."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close", "Content-Length: 0"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    pairs = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
    return int(status_line.split()[1]), pairs, body  # type: ignore[return-value]


def wire_header(pairs: list[tuple[str, str]], name: str) -> tuple[str, str]:
    """The (name as spelled, value) of the one header called ``name`` in any case."""
    found = [pair for pair in pairs if pair[0].lower() == name.lower()]
    assert len(found) == 1, pairs
    return found[0]


@pytest.fixture(scope="module")
def real() -> Iterator[MockServer]:
    """A real-stack mock shared by tests that only read or send requests it must reject."""
    app = create_app(real_stack=True)
    seeded = set(app.state.world.backups)
    with MockServer(app) as server:
        yield server
    assert set(app.state.world.backups) == seeded


def _auth(server: MockServer) -> dict[str, str]:
    creds = server.credentials()
    return {"X-API-Key": creds["RAFF_API_KEY"], "X-Project-ID": creds["RAFF_PROJECT_ID"]}


# Each form leaves the route templates: encoded slash, raw and encoded dot segments, empty segments,
# an id holding %2F (decoded, "x%2Fchain" would even read as deleteBackupChain), and no template at all.
UNROUTABLE = [
    ("POST", "/api/v1/vms/..%2f..%2fbackups/backups/reset-chain"),
    ("POST", "/api/v1/vms/../backups/reset-chain"),
    ("POST", "/api/v1/vms/./backups/reset-chain"),
    ("POST", "/api/v1/vms/%2e%2e/backups/reset-chain"),
    ("POST", "/api/v1/vms//backups/reset-chain"),
    ("GET", "/api/v1/backups/a%2Fb"),
    ("DELETE", "/api/v1/backups/x%2Fchain"),
    ("GET", "/api/v1/backups/"),
    ("GET", "/health"),
    ("GET", "/"),
]


@pytest.mark.parametrize(("method", "target"), UNROUTABLE)
def test_mock_real_stack__unroutable_path_router_404(real: MockServer, method: str, target: str) -> None:
    status, headers, body = raw_exchange(real.base_url, method, target, _auth(real))
    assert (status, body) == (404, b"404 page not found")
    assert wire_header(headers, "content-type")[1].lower() == "text/plain; charset=utf-8"


@pytest.mark.parametrize(("method", "target"), UNROUTABLE[:7])
def test_mock_real_stack__default_mode_unchanged(shared: MockServer, method: str, target: str) -> None:
    """Without real_stack the same paths keep the mock's JSON Error, spelled as Starlette spells it."""
    status, headers, body = raw_exchange(shared.base_url, method, target, _auth(shared))
    assert status in (400, 404)
    assert wire_header(headers, "content-type") == ("content-type", "application/json")
    assert json.loads(body)["error"] in ("Bad Request", "Not Found")


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "%20", "%00", "00000000-0000-4000-8000-00000000000"])
def test_mock_real_stack__routable_malformed_id_json_error(real: MockServer, bad_id: str) -> None:
    """A well-formed single segment routes to the operation, which answers with its own JSON Error."""
    creds = real.credentials()
    api = Api(real.base_url, creds["RAFF_API_KEY"], creds["RAFF_PROJECT_ID"])
    for operation_id, status in [
        ("getBackup", 404),
        ("getVM", 404),
        ("deleteBackupChain", 404),
        ("restoreBackup", 404),
        ("resetBackupChain", 400),
    ]:
        response = api.call(operation_id, id=bad_id)  # checked: < 500, JSON, schema of its status
        assert response.status_code == status, (operation_id, response.text)


def test_mock_real_stack__header_spellings_on_the_wire(make_server: Callable[..., MockServer]) -> None:
    server = make_server(real_stack=True)
    path = f"/api/v1/vms/{server.credentials()['RAFF_VM_ID']}"
    answers = [raw_exchange(server.base_url, "GET", path, _auth(server)) for _ in range(3)]
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert [wire_header(headers, "content-type") for _, headers, _ in answers] == [
        ("CONTENT-TYPE", "Application/JSON"),  # requests 1, 2, 3 of this server
        ("Content-type", "application/json; charset=utf-8"),
        ("CONTENT-TYPE", "Application/JSON"),
    ]
    assert len({body for _, _, body in answers}) == 1  # the body is the same whatever the spelling
    stormy = make_server(real_stack=True, faults=["rate_limit_storm"])
    statuses = []
    for _ in range(2):
        status, headers, body = raw_exchange(stormy.base_url, "GET", "/api/v1/backups", _auth(stormy))
        statuses.append(status)
        assert wire_header(headers, "retry-after") == ("retry-after", "1")
        assert json.loads(body)["error"] == "Rate limit exceeded"
    assert statuses == [429, 429]


def test_mock_real_stack__same_answers_as_default(make_server: Callable[..., MockServer]) -> None:
    """Status codes and bodies are those of the default mock, request for request."""
    plain, real_stack = make_server(), make_server(real_stack=True)

    def answers(server: MockServer) -> list[tuple[int, Any]]:
        creds = server.credentials()
        api, vm = Api(server.base_url, creds["RAFF_API_KEY"], creds["RAFF_PROJECT_ID"]), creds["RAFF_VM_ID"]
        seen = [api.call("getVM", id=vm), api.call("listBackups", params={"vm_id": creds["RAFF_SECOND_VM_ID"]})]
        seen += [api.reset(vm), api.call("getBackup", id=str(uuid.UUID(int=1)))]
        seen += [Api(server.base_url, None, None).call("getVM", id=vm), api.http.request("PUT", "/api/v1/backups")]
        seen.append(api.call("createBackup", content=b"{", headers={"Content-Type": "application/json"}))
        assert api.create(vm)["increment_id"] == 0
        return [(response.status_code, response.json()) for response in seen]

    assert answers(real_stack) == answers(plain)


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_mock_real_stack__defect_still_observable(make_server: Callable[..., MockServer], name: str) -> None:
    options = PROBE_SERVERS.get(name, {})
    clean = make_server(real_stack=True, **options)
    defective = make_server(real_stack=True, defects=[name], **options)
    probe = PROBES[name]
    assert probe(clean.base_url, clean.credentials()) != probe(defective.base_url, defective.credentials())


def test_mock_real_stack__faults_still_work(make_server: Callable[..., MockServer]) -> None:
    api = _first_api(make_server(real_stack=True, faults=["server_errors"]))
    responses = [api.call("listBackups", check=False) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 503, 200, 503]
    assert responses[1].json()["error"] == "Service Unavailable"
    api = _first_api(make_server(real_stack=True, faults=["drop_connections"]))
    outcomes: list[object] = []
    for _ in range(3):
        try:
            outcomes.append(api.call("listBackups").status_code)
        except httpx.RemoteProtocolError:
            outcomes.append("dropped")
    assert outcomes == [200, 200, "dropped"]


# ---- command line ----------------------------------------------------------------------------


def test_mock_cli__list_defects(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-defects"]) == 0
    rows = [line.split(None, 2) for line in capsys.readouterr().out.splitlines()]
    assert {row[0]: row[1] for row in rows} == {name: d.requirement for name, d in DEFECTS.items()}


def test_mock_cli__unknown_defect(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--defect", "nope"])
    assert exit_info.value.code == 2
    assert "valid defects" in capsys.readouterr().err


def test_mock_cli__serves_and_prints_exports(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.yaml"
    seed_file.write_text(yaml.safe_dump(default_seed()), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance.mock", "--port", "0", "--seed", str(seed_file), "--backup-delay", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(9)]
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert lines[0].startswith("export RAFF_BASE_URL=http://127.0.0.1:")
        assert lines[-1].startswith("export RAFF_OTHER_ACCOUNT_VM_ID=")  # readers may stop at this line
        assert not exports["RAFF_BASE_URL"].endswith(":0")
        assert {"RAFF_API_KEY", "RAFF_PROJECT_ID", "RAFF_VM_ID", "RAFF_OTHER_PROJECT_VM_ID"} <= exports.keys()
        assert {"RAFF_OTHER_ACCOUNT_VM_ID", "RAFF_SECOND_VM_ID", "RAFF_OTHER_ACCOUNT_API_KEY"} <= exports.keys()
        api = Api(exports["RAFF_BASE_URL"], exports["RAFF_API_KEY"], exports["RAFF_PROJECT_ID"])
        assert api.call("getVM", id=exports["RAFF_VM_ID"]).status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_mock_cli__real_stack_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--real-stack" in capsys.readouterr().out
    with mock_process("--backup-delay", "0", real_stack=True) as exports:
        base_url = exports["RAFF_BASE_URL"]
        headers = {"X-API-Key": exports["RAFF_API_KEY"], "X-Project-ID": exports["RAFF_PROJECT_ID"]}
        status, pairs, body = raw_exchange(base_url, "POST", "/api/v1/vms//backups/reset-chain", headers)
        assert (status, body) == (404, b"404 page not found")
        status, pairs, _ = raw_exchange(base_url, "GET", f"/api/v1/vms/{exports['RAFF_VM_ID']}", headers)
        assert status == 200
        assert wire_header(pairs, "content-type")[0] in ("Content-type", "CONTENT-TYPE")
