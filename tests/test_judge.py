"""The judge (conformance/judge.py): each property holds on a conforming exchange and breaks on a
crafted one; what it must not judge (an unroutable path, another scope, reads far apart) it leaves."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conformance.contract import load_contract
from conformance.exchange import WRITES, Exchange
from conformance.judge import Judge

BASE = "https://staging.example.test"
KEY, OTHER_KEY = "raff_pub_the-run", "raff_pub_another-account"
PROJECT = "6f1a9b3e-1111-4222-8333-444455556666"
VM = "2b1f8a4e-6f0d-4d3e-9a51-0c9d7b6e5a41"
BACKUP = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
DATE = "Sun, 06 Dec 2026 02:44:27 GMT"


def record(**fields: Any) -> dict[str, Any]:
    return {
        "id": BACKUP, "account_id": "0000acc0-0000-4000-8000-000000000001", "project_id": PROJECT,
        "product_vm": VM, "name": "raffconf-1", "storage_size": 20480, "status": "pending",
        "increment_id": 0, "created_at": "2026-12-06T02:44:27Z", "region": "us-east", **fields,
    }


def sent(operation_id: str, method: str, path: str, status: int, body: Any = None, *, key: str = KEY,
         headers: dict[str, str] | None = None, json: Any = None, params: Any = None) -> Exchange:
    request = httpx.Request(method, f"{BASE}{path}", params=params, json=json,
                            headers={"X-API-Key": key, "X-Project-ID": PROJECT, **(headers or {})})
    WRITES.sent(method)
    response = httpx.Response(status, json=body, headers={"Date": DATE}, request=request)
    return Exchange.from_httpx(response, operation_id)


def create(judge: Judge, **fields: Any) -> None:
    judge.see(sent("createBackup", "POST", "/api/v1/backups", 202, {"success": True, "data": record(**fields)},
                   json={"vm_id": VM, "name": "raffconf-1"}))


def get(judge: Judge, code: int = 200, *, key: str = KEY, path_id: str = BACKUP, **fields: Any) -> None:
    body = {"success": True, "data": record(**fields)} if code == 200 else {"error": "Not Found", "message": "x"}
    judge.see(sent("getBackup", "GET", f"/api/v1/backups/{path_id}", code, body, key=key))


def listing(judge: Judge, records: list[dict[str, Any]], total: int | None = None, *, key: str = KEY,
            params: Any = None) -> None:
    body = {"success": True, "data": records, "total": len(records) if total is None else total}
    judge.see(sent("listBackups", "GET", "/api/v1/backups", 200, body, key=key, params=params or {"vm_id": VM}))


def breaches(judge: Judge) -> list[str]:
    return sorted({finding.check for finding in judge.findings})


@pytest.fixture
def judge() -> Judge:
    return Judge(load_contract())


def test_judge__conforming_history_breaks_nothing(judge: Judge) -> None:
    create(judge)
    get(judge, status="creating")
    get(judge, status="ready")
    listing(judge, [record(status="ready")])
    judge.see(sent("resetBackupChain", "POST", f"/api/v1/vms/{VM}/backups/reset-chain", 202,
                   {"success": True, "message": "queued"}))
    listing(judge, [record(status="ready")])
    get(judge, status="ready")
    assert judge.findings == []
    assert all(judge.judged[p] for p in ("P-CONTRACT", "P-ROUND-TRIP", "P-STABLE", "P-FOUND", "P-TOTALS"))


def test_judge__contract_on_every_answer(judge: Judge) -> None:
    get(judge, created_at="2026-12-06T02:44:27")  # no offset: not an RFC 3339 date-time
    assert breaches(judge) == ["P-CONTRACT"]


def test_judge__unroutable_path_is_not_judged(judge: Judge) -> None:
    judge.see(sent("resetBackupChain", "POST", "/api/v1/vms/%2e%2e/backups/reset-chain", 405, {"detail": "no"}))
    assert judge.findings == [] and judge.judged["P-CONTRACT"] == 0


def test_judge__round_trip_and_stable_fields(judge: Judge) -> None:
    create(judge)
    get(judge, name="raffconf-")  # truncated
    get(judge, status="ready", storage_size=20480)
    listing(judge, [record(status="ready", storage_size=20)])  # another unit in one view
    assert breaches(judge) == ["P-ROUND-TRIP", "P-STABLE"]


def test_judge__status_never_goes_back(judge: Judge) -> None:
    create(judge)
    get(judge, status="ready")
    get(judge, status="creating")
    assert breaches(judge) == ["P-STABLE"]


def test_judge__listed_backup_is_found_unless_something_could_remove_it(judge: Judge) -> None:
    create(judge)
    listing(judge, [record()])
    get(judge, 404, key=OTHER_KEY)  # another key: a 404 is right
    assert judge.findings == []
    get(judge, 404)
    assert breaches(judge) == ["P-FOUND"]


def test_judge__a_loss_at_a_reset_is_the_resets_not_a_later_read(judge: Judge) -> None:
    """Judged by the state the server showed right before: after an accepted reset, the listing before
    it says nothing of what getBackup must find (a reset that removed the point breaks RC-06/RC-22)."""
    create(judge)
    listing(judge, [record()])
    judge.see(sent("resetBackupChain", "POST", f"/api/v1/vms/{VM}/backups/reset-chain", 202, {"success": True}))
    get(judge, 404)
    assert judge.findings == []
    listing(judge, [record()])  # listed again after the reset: now getBackup must find it
    get(judge, 404)
    assert breaches(judge) == ["P-FOUND"]


def test_judge__a_series_delete_that_leaves_its_named_point_is_rc24(judge: Judge) -> None:
    create(judge)
    judge.see(sent("deleteBackupChain", "DELETE", f"/api/v1/backups/{BACKUP}/chain", 200, {"success": True}))
    get(judge, 200, status="ready")
    assert [(f.check, f.requirement) for f in judge.findings] == [("P-FOUND", "RC-24")]


def test_judge__first_backup_after_reset_is_a_baseline(judge: Judge) -> None:
    judge.see(sent("resetBackupChain", "POST", f"/api/v1/vms/{VM}/backups/reset-chain", 202, {"success": True}))
    create(judge, increment_id=None)
    get(judge, increment_id=2)
    assert breaches(judge) == ["P-BASELINE"]


RESET = f"/api/v1/vms/{VM}/backups/reset-chain"
SECOND, THIRD, FOURTH = (f"{n}c90c3cc-0d44-4b50-8888-8dd25736052a" for n in (4, 5, 6))


def _series(judge: Judge, *points: tuple[str, int]) -> None:
    """An accepted reset, then these creates (id, increment_id shown), each ready."""
    judge.see(sent("resetBackupChain", "POST", RESET, 202, {"success": True}))
    for backup_id, increment in points:
        create(judge, id=backup_id, increment_id=increment)
        get(judge, path_id=backup_id, id=backup_id, increment_id=increment, status="ready")


@pytest.mark.parametrize(
    ("multi_point_baseline", "requirement"),
    [(0, "RC-22"), (1, "RC-08")],  # the VM's other resets work: the one-point shape's; else the numbering's
)
def test_judge__baseline_after_reset_of_a_one_point_series(judge: Judge, multi_point_baseline, requirement) -> None:
    _series(judge, (BACKUP, multi_point_baseline), (SECOND, multi_point_baseline + 1))  # a series of two
    _series(judge, (THIRD, 0 if requirement == "RC-22" else 1))  # after its reset: a series of only a baseline
    _series(judge, (FOURTH, 1))  # after the reset of that one-point series: numbered on
    baselines = [f for f in judge.findings if f.check == "P-BASELINE"]
    assert baselines and baselines[-1].requirement == requirement, [(f.requirement, f.message) for f in baselines]
    if requirement == "RC-22":
        assert [f.requirement for f in baselines] == ["RC-22"]


def test_judge__pages_and_totals(judge: Judge) -> None:
    listing(judge, [record()], total=0)
    listing(judge, [record(), record(id="11111111-0d44-4b50-8888-8dd25736052a")], params={"limit": 1})
    listing(judge, [], total=9, params={"limit": 0})  # an empty page by request says nothing
    assert breaches(judge) == ["P-TOTALS"] and len(judge.findings) == 2


def test_judge__equivalent_reads_answer_alike_only_back_to_back(judge: Judge) -> None:
    get(judge)
    get(judge, 404, path_id=BACKUP.upper())
    assert breaches(judge) == ["P-EQUIVALENT"]
    judge = Judge(load_contract())
    get(judge)
    judge.see(sent("getVM", "GET", f"/api/v1/vms/{VM}", 200, {"success": True, "data": {"id": VM}}))
    get(judge, 404, path_id=BACKUP.upper())  # not right after its plain twin: not compared
    assert "P-EQUIVALENT" not in breaches(judge)


def test_judge__success_flag_and_other_key(judge: Judge) -> None:
    create(judge)
    judge.see(sent("getVM", "GET", f"/api/v1/vms/{VM}", 200, {"success": False, "data": {"id": VM}}))
    listing(judge, [record()], key=OTHER_KEY)
    assert {"P-SCOPE", "P-SUCCESS"} <= set(breaches(judge))  # (the bare VM body breaks P-CONTRACT too)


def test_judge__created_at_by_the_servers_clock(judge: Judge) -> None:
    create(judge, created_at="2026-12-06T03:44:27Z")  # an hour after the Date of its own answer
    get(judge, status="ready", created_at="2026-12-06T03:44:27Z")
    assert breaches(judge) == ["P-TIMESTAMPS"]


def test_judge__a_page_is_its_slice_of_the_whole_listing(judge: Judge) -> None:
    second = record(id="11111111-0d44-4b50-8888-8dd25736052a")
    listing(judge, [record(), second], params={"vm_id": VM, "limit": 1000})
    listing(judge, [second], total=2, params={"vm_id": VM, "limit": 1, "offset": 1})  # the right slice
    assert judge.findings == []
    listing(judge, [record()], total=2, params={"vm_id": VM, "limit": 1, "offset": 1})  # ties reordered
    assert breaches(judge) == ["P-TOTALS"]


def reset(judge: Judge, code: int, path_id: str = VM, **kwargs: Any) -> None:
    body = {"success": True, "message": "queued"} if code == 202 else {"error": "Not Found", "message": "no VM"}
    judge.see(sent("resetBackupChain", "POST", f"/api/v1/vms/{path_id}/backups/reset-chain", code, body, **kwargs))


def test_judge__a_write_in_another_spelling_finds_what_the_plain_one_found(judge: Judge) -> None:
    reset(judge, 202)
    reset(judge, 404, path_id="%" + f"{ord(VM[0]):02X}" + VM[1:])  # percent-encoded: not judged (RFC 3986 §2.3)
    reset(judge, 404, headers={"x-project-id": PROJECT.upper()})  # a repeated field line: not judged
    assert judge.findings == []
    reset(judge, 404, path_id=VM.upper())
    assert breaches(judge) == ["P-EQUIVALENT"]
    assert judge.findings[0].requirement == "RC-28"


def test_judge__a_spelled_delete_after_a_removal_is_not_judged(judge: Judge) -> None:
    get(judge)
    judge.see(sent("deleteBackup", "DELETE", f"/api/v1/backups/{BACKUP}", 200, {"success": True, "message": "ok"}))
    judge.see(sent("deleteBackup", "DELETE", f"/api/v1/backups/{BACKUP.upper()}", 404,
                   {"error": "Not Found", "message": "x"}))  # the first delete removed it: 404 is right
    assert "P-EQUIVALENT" not in breaches(judge)
    reset(judge, 202)
    reset(judge, 404, path_id=VM.upper(), key=OTHER_KEY)  # another key: another scope
    assert "P-EQUIVALENT" not in breaches(judge)


def test_judge__a_reset_of_a_backups_id_is_never_accepted(judge: Judge) -> None:
    create(judge)
    reset(judge, 404, path_id=BACKUP)
    assert judge.findings == [] and judge.judged["P-KIND"] == 1
    reset(judge, 202, path_id=BACKUP.upper())
    assert breaches(judge) == ["P-KIND"] and judge.findings[0].requirement == "RC-02"


def test_judge__a_percent_encoded_id_describes_that_id_and_is_not_compared(judge: Judge) -> None:
    create(judge)
    encoded = "%" + f"{ord(BACKUP[0]):02X}" + BACKUP[1:]
    get(judge, path_id=BACKUP)
    get(judge, path_id=encoded)  # P-IDENTITY: the record of BACKUP is the one its path names
    get(judge, 404, path_id=encoded)  # RFC 3986 §2.3: producers should not make it; no equality judged
    assert judge.findings == [] and judge.judged["P-IDENTITY"] == 2


def test_judge__another_operation_in_the_same_spelling_is_not_a_spelling(judge: Judge) -> None:
    get(judge)  # found (wrongly, say: the server deleted it) ...
    judge.see(sent("deleteBackupChain", "DELETE", f"/api/v1/backups/{BACKUP}/chain", 404,
                   {"error": "Not Found", "message": "x"}))  # ... the same id, as spelled: P-FOUND's, not this
    assert "P-EQUIVALENT" not in breaches(judge)


def test_judge__an_http_refusal_of_the_content_is_a_note_not_a_violation(judge: Judge) -> None:
    """413/415 are not in the contract, but RFC 9110 gives them to exactly such content: a note."""
    error = {"error": "Unsupported Media Type", "message": "x"}
    judge.see(sent("createBackup", "POST", "/api/v1/backups", 415, error, headers={"Content-Type": "text/plain"},
                   json={"vm_id": VM}))
    judge.see(sent("createBackup", "POST", "/api/v1/backups", 413, error, json={"vm_id": VM, "name": "x" * 9000}))
    assert [f.classification for f in judge.findings] == ["note", "note"]
    judge.see(sent("createBackup", "POST", "/api/v1/backups", 415, error, json={"vm_id": VM}))  # JSON it was
    assert breaches(judge) == ["P-CONTRACT"]


def test_judge__a_write_the_contract_refuses_is_never_carried_out(judge: Judge) -> None:
    """P-REQUEST: a body breaking the request schema, a missing X-Project-ID, a path id that is no UUID or
    a made-up key answered 2xx is a violation, under the requirement stating that refusal."""
    accepted = {"success": True, "data": record()}
    judge.see(sent("createBackup", "POST", "/api/v1/backups", 202, accepted, json={"vm_id": VM, "name": 42}))
    judge.see(sent("resetBackupChain", "POST", f"/api/v1/vms/{VM}/backups/reset-chain", 202, {"success": True},
                   headers={"X-Project-ID": "not-a-uuid"}))
    judge.see(sent("resetBackupChain", "POST", "/api/v1/vms/not-a-uuid/backups/reset-chain", 202, {"success": True}))
    judge.see(sent("deleteBackup", "DELETE", f"/api/v1/backups/{BACKUP}", 200, {"success": True},
                   key="conformance-fake-key-never-issued"))
    got = [(f.check, f.requirement) for f in judge.findings if f.check == "P-REQUEST"]
    assert got == [("P-REQUEST", "RC-25"), ("P-REQUEST", "RC-04"), ("P-REQUEST", "RC-05"), ("P-REQUEST", "RC-13")]


def test_judge__a_write_the_contract_allows_is_not_p_request(judge: Judge) -> None:
    """Refused ones, valid ones, and what a server may read either way (a repeated header, a body not
    labelled JSON, an unknown member the schema allows) are no breach."""
    accepted = {"success": True, "data": record()}
    judge.see(sent("createBackup", "POST", "/api/v1/backups", 400, {"error": "Bad Request", "message": "x"},
                   json={"vm_id": VM, "name": 42}))
    judge.see(sent("createBackup", "POST", "/api/v1/backups", 202, accepted,
                   json={"vm_id": VM.upper(), "name": "ok", "x_unknown": 1}))
    judge.see(sent("createBackup", "POST", "/api/v1/backups", 202, accepted, json={"vm_id": VM, "name": 42},
                   headers={"Content-Type": "text/plain"}))
    judge.see(sent("resetBackupChain", "POST", f"/api/v1/vms/{VM}/backups/reset-chain", 202, {"success": True},
                   headers={"X-Project-ID": f"{PROJECT}, {PROJECT}"}))
    assert [f for f in judge.findings if f.check == "P-REQUEST"] == [] and judge.judged["P-REQUEST"] == 3


def test_judge__a_write_taking_an_id_of_another_kind_is_p_kind(judge: Judge) -> None:
    create(judge)
    not_found = {"error": "Not Found", "message": "x"}
    judge.see(sent("restoreBackup", "POST", f"/api/v1/backups/{VM}/restore", 404, not_found))
    assert judge.findings == [] and judge.judged["P-KIND"] == 1
    judge.see(sent("deleteBackup", "DELETE", f"/api/v1/backups/{VM.upper()}", 200, {"success": True}))
    judge.see(sent("createBackup", "POST", "/api/v1/backups", 202, {"success": True, "data": record(id=VM)},
                   json={"vm_id": BACKUP, "name": "x"}))
    kinds = [(f.check, f.requirement) for f in judge.findings if f.check == "P-KIND"]
    assert kinds == [("P-KIND", "RC-17"), ("P-KIND", "RC-17")]


def test_judge__a_write_in_another_spelling_is_not_refused_as_malformed(judge: Judge) -> None:
    reset(judge, 202)
    reset(judge, 400, headers={"X-Project-ID": PROJECT.upper()})  # after a reset: may be the second reset's 400
    assert judge.findings == []
    reset(judge, 202)  # the plain one, right after the refused one (which changed nothing), is taken
    assert breaches(judge) == ["P-EQUIVALENT"] and "is refused (400)" in judge.findings[0].title
    assert judge.findings[0].requirement == "RC-28"
