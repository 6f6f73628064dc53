"""Checks and finding classification: what is a violation, what is a spec gap, and the verdicts."""

from __future__ import annotations

import httpx
import pytest

from conformance.checks import ConformanceFailure, conforms, error_body, spec_gap, status_code_is
from conformance.contract import load_contract
from conformance.exchange import Exchange
from conformance.results import fold_records, requirement_rows

BASE = "https://staging.example.test"
VM = "2b1f8a4e-6f0d-4d3e-9a51-0c9d7b6e5a41"
BACKUP = {"id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "name": "b", "storage_size": 10, "status": "ready",
          "increment_id": None}


def exchange(operation_id: str, method: str, path: str, status: int, body=None, text: str | None = None) -> Exchange:
    request = httpx.Request(method, f"{BASE}{path}", headers={"X-API-Key": "secret"})
    response = (httpx.Response(status, text=text, headers={"content-type": "text/plain"}, request=request)
                if text is not None else httpx.Response(status, json=body, request=request))
    return Exchange.from_httpx(response, operation_id)


@pytest.fixture(scope="module")
def contract():
    return load_contract()


def test_conforms_accepts_documented_answer(contract) -> None:
    conforms(contract, exchange("getBackup", "GET", "/api/v1/backups/x", 200, {"success": True, "data": BACKUP}))


def test_conforms__nullable_increment_id_is_allowed(contract) -> None:
    conforms(contract, exchange("getBackup", "GET", "/api/v1/backups/x", 200, {"data": BACKUP | {"increment_id": 3}}))


def test_conforms__wrong_type_is_violation(contract) -> None:
    bad = exchange("getBackup", "GET", "/api/v1/backups/x", 200, {"data": BACKUP | {"storage_size": "10"}})
    with pytest.raises(ConformanceFailure) as caught:
        conforms(contract, bad)
    finding = caught.value.finding
    assert (finding.classification, finding.requirement, finding.check) == (
        "violation", "RC-14", "response_schema_conformance")
    assert "data/storage_size" in finding.message


def test_conforms__undocumented_status_is_violation(contract) -> None:
    with pytest.raises(ConformanceFailure, match="undocumented status 500"):
        conforms(contract, exchange("resetBackupChain", "POST", f"/api/v1/vms/{VM}/backups/reset-chain", 500, {}))


def test_conforms__text_error_is_violation(contract) -> None:
    with pytest.raises(ConformanceFailure, match="not JSON"):
        conforms(contract, exchange("getVM", "GET", f"/api/v1/vms/{VM}", 404, text="Not Found"))


def test_error_body__empty_object_is_violation(contract) -> None:
    with pytest.raises(ConformanceFailure, match="without an Error body"):
        error_body(contract, exchange("getVM", "GET", f"/api/v1/vms/{VM}", 404, {}), "RC-02")


def test_status_code_is__names_requirement() -> None:
    with pytest.raises(ConformanceFailure) as caught:
        status_code_is(exchange("resetBackupChain", "POST", "/x", 200, {}), 202, "RC-01")
    assert caught.value.finding.requirement == "RC-01"
    assert "expected 202, got 200" in str(caught.value)


def test_spec_gap__overlay_only_status(contract) -> None:
    gap = spec_gap(contract, exchange("resetBackupChain", "POST", "/x", 401, {"error": "Unauthorized"}), "RC-13")
    assert gap is not None and gap.classification == "spec_gap" and gap.requirement == "RC-13"
    assert "Authentication" in gap.message
    assert spec_gap(contract, exchange("resetBackupChain", "POST", "/x", 404, {}), "RC-02") is None


def test_exchange__secret_never_serialized() -> None:
    data = exchange("getVM", "GET", f"/api/v1/vms/{VM}", 200, {}).to_dict()
    assert "secret" not in repr(data)


def _record(nodeid: str, reqs: list[str], outcome: str, findings: list[dict] | None = None) -> dict:
    return {"nodeid": nodeid, "requirements": reqs, "when": "call", "outcome": outcome, "duration_s": 0.1,
            "message": None, "findings": findings or [], "exchanges": []}


def _finding(classification: str, requirement: str | None) -> dict:
    return {"classification": classification, "requirement": requirement, "operation": "resetBackupChain",
            "check": "c", "title": "t", "message": "m", "severity": "high", "exchanges": [], "replay": None}


def test_verdicts_from_records(contract) -> None:
    records = [
        _record("t::pass", ["RC-01"], "passed"),
        _record("t::gap", ["RC-13"], "passed", [_finding("spec_gap", "RC-13")]),
        _record("t::broken", ["RC-02"], "failed", [_finding("violation", "RC-02")]),
        _record("t::skip", ["RC-12"], "skipped"),
        # A shared test failing on one requirement does not fail its other requirement.
        _record("t::shared", ["RC-04", "RC-05"], "failed", [_finding("violation", "RC-04")]),
        _record("t::crash", ["RC-06"], "error"),
    ]
    tests, findings = fold_records(records)
    rows = {r["id"]: r["verdict"] for r in requirement_rows(contract, tests, findings)}
    assert rows["RC-01"] == "pass"
    assert rows["RC-13"] == "spec_gap"
    assert rows["RC-02"] == "violation"
    assert rows["RC-12"] == "skipped"
    assert rows["RC-04"] == "violation" and rows["RC-05"] == "pass"
    assert rows["RC-06"] == "violation"  # an error without a structured finding still is one
    assert rows["RC-16"] == "not_covered"


def test_verdicts__req_selection_claims_nothing_for_the_rest(contract) -> None:
    """With --req RC-04, a shared test that also covers RC-05 ran, but RC-05 is "not selected", not "pass"."""
    tests, findings = fold_records([_record("t::shared", ["RC-04", "RC-05"], "passed")])
    rows = {r["id"]: r for r in requirement_rows(contract, tests, findings, {"RC-04"})}
    assert rows["RC-04"]["verdict"] == "pass"
    assert rows["RC-05"]["verdict"] == "not_selected" and "--req RC-04" in rows["RC-05"]["reason"]
    assert rows["RC-16"]["verdict"] == "not_selected"
