"""The proof behind the generated traffic: it passes on the clean mock, catches planted defects and
names the right requirement, never sends unsafe requests to a live target, and turns Schemathesis
failures into findings with a replay.

The end-to-end rows run ``conformance/tests/test_fuzz_backups.py`` (and the lifecycle module) in
a subprocess against the bundled mock with a fixed seed, so a row fails the same way every time.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.core.failures import AcceptedNegativeData, FailureGroup, ServerError
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.openapi.checks import (
    AuthScenario,
    IgnoredAuth,
    MissingHeaderNotRejected,
    RejectedPositiveData,
    UndefinedStatusCode,
)

from conformance.checks import exchange_from_schemathesis
from conformance.contract import load_contract
from conformance.fuzz_checks import CHECK_NAMES, check_functions, findings_from_failures
from conformance.fuzzing import Targets, excluded_operations, schemathesis_config
from conformance.report.model import validate_results
from conformance.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FUZZ_MODULE = "conformance/tests/test_fuzz_backups.py"
LIFECYCLE_MODULE = "conformance/tests/test_backups_lifecycle.py"
SEED = "--hypothesis-seed=20260514"
VM = "2b1f8a4e-6f0d-4d3e-9a51-0c9d7b6e5a41"
PROJECT = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
BACKUP = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
MUTATING = {"createBackup", "deleteBackup", "restoreBackup", "deleteBackupChain", "resetBackupChain"}


def run_modules(
    tmp_path: Path, *modules: str, args: tuple[str, ...] = (), profile: str = "smoke"
) -> tuple[int, dict[str, Any], str]:
    report_dir = tmp_path / "reports"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *modules,
            "-q",
            "-p",
            "no:cacheprovider",
            "--raff-profile",
            profile,
            SEED,
            f"--report-dir={report_dir}",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    results_path = report_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    return completed.returncode, results, completed.stdout + completed.stderr


def violations(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in results.get("findings", []) if f["classification"] == "violation"]


def verdicts(results: dict[str, Any]) -> dict[str, str]:
    return {req["id"]: req["verdict"] for req in results.get("requirements", [])}


# -- end to end against the mock -------------------------------------------------------------------


def test_fuzzing__clean_mock_passes(tmp_path: Path) -> None:
    code, results, output = run_modules(tmp_path, FUZZ_MODULE, LIFECYCLE_MODULE)
    assert code == 0, output[-3000:]
    assert not violations(results), output[-3000:]
    stats = results["property_based"]["operations"]
    assert {op.operation_id for op in load_contract().operations()} <= stats.keys(), "an operation was never fuzzed"
    assert {"examples", "coverage", "fuzzing", "stateful"} <= {p for s in stats.values() for p in s["phases"]}
    assert results["property_based"]["checks"] == list(CHECK_NAMES)
    assert results["live"]["leftovers"] == []
    assert validate_results(results) == []  # generated traffic's fields are in the report's data model


@pytest.mark.parametrize(
    ("defect", "requirement", "operation", "checks"),
    [
        ("reset_returns_200", "RC-14", "resetBackupChain", {"status_code_conformance"}),
        ("backup_storage_size_string", "RC-14", "getBackup", {"response_schema_conformance"}),
        ("reset_non_uuid_id_crashes", "RC-05", "resetBackupChain", {"not_a_server_error"}),
        # The coverage phase's "no key" case usually fails first; the ignored_auth probes otherwise.
        ("reset_ignores_auth", "RC-13", "resetBackupChain", {"missing_required_header", "ignored_auth"}),
        (
            "reset_ignores_missing_project",
            "RC-03",
            "resetBackupChain",
            {"missing_required_header", "negative_data_rejection"},
        ),
        ("reset_accepts_non_uuid_project", "RC-04", "resetBackupChain", {"negative_data_rejection"}),
    ],
)
def test_fuzzing__planted_defect_fails_and_names_requirement(
    tmp_path: Path, defect: str, requirement: str, operation: str, checks: set[str]
) -> None:
    code, results, output = run_modules(tmp_path, FUZZ_MODULE, args=("--mock-defect", defect))
    assert code == 1, f"{defect}: the fuzz tests passed\n{output[-3000:]}"
    matching = [
        f
        for f in violations(results)
        if (f["requirement"], f["operation"]) == (requirement, operation) and f["check"] in checks
    ]
    assert matching, f"{defect}: no {requirement}/{operation}/{checks} finding in {violations(results)}"
    finding = matching[0]
    assert finding["exchanges"] and finding["exchanges"][0]["operation_id"] == operation
    assert finding["replay"]["seed"] == 20260514
    assert finding["replay"]["case_id"]
    assert f"--mock-defect {defect}" in finding["replay"]["command"]
    assert finding["test"].split("::")[-1] in finding["replay"]["command"]
    assert verdicts(results)[requirement] == "violation"


def test_lifecycle__planted_defect_fails(tmp_path: Path) -> None:
    # The smoke profile's three short scenarios need not reach a reset; the default profile's twenty do.
    code, results, output = run_modules(
        tmp_path, LIFECYCLE_MODULE, args=("--mock-defect", "reset_returns_200"), profile="thorough"
    )
    assert code == 1, output[-3000:]
    assert any(f["operation"] == "resetBackupChain" and f["requirement"] == "RC-14" for f in violations(results))
    assert results["live"]["leftovers"] == []


# -- live safety: what the config lets Schemathesis send -------------------------------------------


def live(**overrides: Any) -> Settings:
    return Settings(base_url="https://staging.example.test", api_key="k", project_id=PROJECT, vm_id=VM, **overrides)


@pytest.mark.parametrize("variant", ["free", "pinned"])
def test_live_read_only__no_mutating_operation_is_generated(variant: str) -> None:
    contract = load_contract()
    excluded = excluded_operations(live(), contract, variant, Targets(PROJECT, VM))  # type: ignore[arg-type]
    assert excluded.keys() >= MUTATING


@pytest.mark.parametrize("variant", ["free", "pinned"])
def test_live_writes__creates_never_generated_and_deletes_only_on_own_backups(variant: str) -> None:
    contract = load_contract()
    excluded = excluded_operations(live(allow_writes=True), contract, variant, Targets(PROJECT, VM))  # type: ignore[arg-type]
    assert "createBackup" in excluded
    assert "restoreBackup" in excluded  # no --allow-restore
    if variant == "pinned":  # no backup of this run to pin them to
        assert {"getBackup", "deleteBackup", "deleteBackupChain"} <= excluded.keys()


@pytest.mark.parametrize("variant", ["free", "pinned", "lifecycle"])
def test_live_config__no_reuse_of_seen_ids_only_safe_undeclared_methods_key_as_auth(variant: str) -> None:
    config = schemathesis_config(live(allow_writes=True), load_contract(), variant, targets=Targets(PROJECT, VM))  # type: ignore[arg-type]
    for phase in ("examples", "coverage", "fuzzing"):
        assert config["phases"][phase]["extra-data-sources"] == {"responses": False}
    # Undeclared methods on a live target: safe ones only (an undeclared DELETE could act).
    assert config["phases"]["coverage"]["unexpected-methods"] == ["GET", "OPTIONS", "TRACE", "QUERY"]
    assert config["phases"]["stateful"]["inference"]["algorithms"] == []
    assert config["auth"]["openapi"]["ApiKeyAuth"]["api_key"] == "k"
    assert "headers" not in config
    schemathesis.Config.from_dict(config)  # Schemathesis accepts it


def test_pinned_config__pins_own_backups_and_skips_fuzzing_when_nothing_varies() -> None:
    targets = Targets(PROJECT, VM, {"read": BACKUP, "delete": BACKUP, "series": BACKUP})
    config = schemathesis_config(
        Settings(base_url="http://127.0.0.1:1", embedded_mock=True),
        load_contract(),
        "pinned",
        targets=targets,
        max_examples=7,
    )
    entries = {entry["include-operation-id"]: entry for entry in config["operations"]}
    assert entries["deleteBackup"]["parameters"] == {"header.X-Project-ID": PROJECT, "path.id": BACKUP}
    assert entries["deleteBackup"]["phases"] == {"fuzzing": {"enabled": False}}
    assert "phases" not in entries["listBackups"]  # limit and offset still vary
    assert config["generation"] == {"mode": "positive", "database": "none", "max-examples": 7}


# -- failures into findings ------------------------------------------------------------------------


def missing_header(name: str) -> MissingHeaderNotRejected:
    return MissingHeaderNotRejected(
        operation="POST /r", header_name=name, status_code=202, expected_statuses=[400], message="accepted"
    )


def reset_failure_findings(failure: Exception, path_id: str, headers: dict[str, str] | None = None) -> list[Any]:
    return findings_from_failures(
        FailureGroup([failure]),  # type: ignore[list-item]
        operation_id="resetBackupChain",
        path_parameters={"id": path_id},
        headers={"X-Project-ID": PROJECT} if headers is None else headers,
        exchanges=[],
        replay={"seed": 1, "case_id": "abc", "command": "python -m pytest x"},
    )


@pytest.mark.parametrize(
    ("headers", "requirement"),
    # With a valid header the negative part is elsewhere in the request: a request schema carried out, RC-25.
    [({}, "RC-03"), ({"x-project-id": "not-a-uuid"}, "RC-04"), ({"X-Project-ID": PROJECT}, "RC-25")],
    ids=["missing", "malformed", "valid"],
)
def test_findings_from_failures__accepted_negative_reset_by_project_header(
    headers: dict[str, str], requirement: str
) -> None:
    accepted = AcceptedNegativeData(operation="POST /r", message="accepted", status_code=202, expected_statuses=["400"])
    (finding,) = reset_failure_findings(accepted, VM, headers)
    assert finding.requirement == requirement


@pytest.mark.parametrize(
    ("failure", "path_id", "requirement"),
    [
        (
            UndefinedStatusCode(
                operation="POST /r",
                status_code=200,
                defined_status_codes=["202"],
                allowed_status_codes=[202],
                message="Received: 200",
            ),
            VM,
            "RC-14",
        ),
        (
            UndefinedStatusCode(
                operation="POST /r",
                status_code=200,
                defined_status_codes=["202"],
                allowed_status_codes=[202],
                message="Received: 200",
            ),
            "not-a-uuid",
            "RC-05",
        ),
        # RC-05 names "never a 5xx" for a path id that is not a UUID; for the VM's own id a 5xx is an
        # answer the contract does not document (RC-14).
        (ServerError(operation="POST /r", status_code=500), VM, "RC-14"),
        (ServerError(operation="POST /r", status_code=500), "not-a-uuid", "RC-05"),
        # A valid reset of the run's VM refused: RC-01 names its 202.
        (
            RejectedPositiveData(operation="POST /r", message="rejected", status_code=400, allowed_statuses=["2xx"]),
            VM,
            "RC-01",
        ),
        (IgnoredAuth(operation="POST /r", message="no key", scenario=AuthScenario.NO_AUTH), VM, "RC-13"),
        (missing_header("X-API-Key"), VM, "RC-13"),
        (missing_header("X-Project-ID"), VM, "RC-03"),
    ],
    ids=[
        "undocumented-status",
        "non-uuid-path",
        "server-error",
        "server-error-non-uuid-path",
        "valid-reset-rejected",
        "ignored-auth",
        "no-key",
        "no-project",
    ],
)
def test_findings_from_failures__requirement(failure: Exception, path_id: str, requirement: str) -> None:
    (finding,) = reset_failure_findings(failure, path_id)
    assert finding.classification == "violation"
    assert finding.requirement == requirement
    assert finding.operation == "resetBackupChain"
    assert finding.message.startswith(f"[{type(failure).code}]")  # type: ignore[attr-defined]
    assert finding.replay == {"seed": 1, "case_id": "abc", "command": "python -m pytest x"}


def test_exchange_from_schemathesis__real_response_type() -> None:
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(load_contract().merged)))
    case = schema["/api/v1/vms/{id}/backups/reset-chain"]["POST"].Case(path_parameters={"id": VM})
    request = requests.Request(
        "POST",
        f"http://127.0.0.1:1/api/v1/vms/{VM}/backups/reset-chain",
        headers={"X-API-Key": "secret", "X-Project-ID": PROJECT, "X-Schemathesis-TestCaseId": case.id},
        json={"ignored": True},
    ).prepare()
    response = Response(
        status_code=202,
        headers={"Content-Type": ["application/json"], "X-Trace": ["a", "b"]},
        content=b'{"success": true, "message": "queued"}',
        request=request,
        elapsed=0.0123,
        verify=True,
    )
    exchange = exchange_from_schemathesis(case, response)
    assert exchange.operation_id == "resetBackupChain"
    assert (exchange.method, exchange.status) == ("POST", 202)
    assert exchange.url.endswith(f"/vms/{VM}/backups/reset-chain")
    assert exchange.response_body == {"success": True, "message": "queued"}
    assert exchange.request_body == {"ignored": True}
    assert exchange.request_headers["X-API-Key"] == "[REDACTED]"
    assert exchange.request_headers["X-Schemathesis-TestCaseId"] == case.id
    assert exchange.response_headers["x-trace"] == "a, b"
    assert exchange.is_json and exchange.elapsed_s == 0.0123


# -- authentication probes: once per operation per run, as in schemathesis run ---------------------


@contextlib.contextmanager
def key_checking_server(*, enforce: bool) -> Iterator[tuple[str, list[str | None]]]:
    """A server that answers every GET 200 with the key "k" (any key at all unless ``enforce``), else
    401; yields its URL and the X-API-Key of every request it got."""
    keys: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            keys.append(self.headers.get("X-API-Key"))
            accepted = self.headers.get("X-API-Key") == "k" or not enforce
            body = b"{}" if accepted else b'{"error": "Unauthorized"}'
            self.send_response(200 if accepted else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", keys
    finally:
        server.shutdown()
        server.server_close()


KEY = {"X-API-Key": "k"}


def get_vm_case(url: str) -> Case:
    config = schemathesis.Config.from_dict({"base-url": url})
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(load_contract().merged)), config=config)
    return schema["/api/v1/vms/{id}"]["GET"].Case(path_parameters={"id": VM})


def test_ignored_auth__probes_an_operation_until_confirmed_once_per_run() -> None:
    enforced: set[str] = set()
    (check,) = check_functions(("ignored_auth",), auth_enforced=enforced)
    assert check.__name__ == "ignored_auth"  # failures keep the check's name (RC-13)
    with key_checking_server(enforce=True) as (url, keys):
        get_vm_case(url).call_and_validate(checks=[check], headers=KEY)
        assert keys[0] == "k" and keys[1] is None and keys[2] not in (None, "k") and len(keys) == 3
        assert enforced == {"GET /api/v1/vms/{id}"}
        get_vm_case(url).call_and_validate(checks=[check], headers=KEY)
        assert len(keys) == 4, "an operation confirmed in this run was probed again"
        # Another run (another set) probes again.
        (fresh,) = check_functions(("ignored_auth",), auth_enforced=set())
        get_vm_case(url).call_and_validate(checks=[fresh], headers=KEY)
        assert len(keys) == 7


def test_ignored_auth__an_operation_that_ignores_the_key_fails_every_time() -> None:
    enforced: set[str] = set()
    (check,) = check_functions(("ignored_auth",), auth_enforced=enforced)
    with key_checking_server(enforce=False) as (url, keys):
        for _ in range(2):
            with pytest.raises(FailureGroup) as failed:
                get_vm_case(url).call_and_validate(checks=[check], headers=KEY)
            assert any(isinstance(failure, IgnoredAuth) for failure in failed.value.exceptions)
    assert not enforced, "an operation that accepted a request without the key was recorded as enforcing it"
    assert len(keys) == 4  # each time: the request and the probe without the key that was accepted
