"""Sharing a VM: two runs of the suite at once, or another client writing to the run's VM.

The runs are real `pytest` processes against the mock serving as a live target (RAFF_BASE_URL,
writes and restores allowed), as a user would start them. The mock runs in this process, in a
thread (the same server `python -m conformance.mock` starts, on wall time with a small backup
delay, closer to a real server than request time), so that what is left is read from its state
itself, not only through the API. Then unit tests of the foreign-write rule, both ways.

A live target is paced (RAFF_RATE_LIMIT below 30/s), so each run takes 15-25 s however fast the
server: the sharing cases take about 2 minutes (2 min 5 s measured), too much to add to
`pytest tests -n auto` (2 min 41 s) under its 5 minutes on 2 cores. They run in CI's own step
(`.ci/run`): SHARING_PROOF=1 pytest tests/test_sharing.py.
The unit tests of the rule always run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.mock import MockServer, create_app
from conformance.preflight import other_runs, parse_time
from conformance.results import excuse_foreign_writes, touching
from conformance.settings import run_token_of
from tests.mockproc import ROOT

SUITE_KEYS = (
    "RAFF_BASE_URL",
    "RAFF_API_KEY",
    "RAFF_PROJECT_ID",
    "RAFF_VM_ID",
    "RAFF_SECOND_VM_ID",
    "RAFF_OTHER_PROJECT_VM_ID",
    "RAFF_OTHER_ACCOUNT_VM_ID",
    "RAFF_OTHER_ACCOUNT_API_KEY",
)
VM = "00007b00-0000-4000-8000-000000000001"
OTHER_VM = "00007b00-0000-4000-8000-000000000002"


sharing_proof = pytest.mark.skipif(
    not os.environ.get("SHARING_PROOF"),
    reason="two suite runs against a paced live target (~2 min): CI's own step, SHARING_PROOF=1 (see .ci/run)",
)


@pytest.fixture
def server() -> Iterator[tuple[dict[str, str], Any]]:
    """The mock on a free loopback port (wall time, backups ready after 0.3 s) and its world."""
    app = create_app(backup_delay=0.3, restore_delay=0.2, time_mode="wall")
    with MockServer(app) as running:
        yield running.credentials(), app.state.world


def start_run(tmp_path: Path, name: str, credentials: dict[str, str], **env: str) -> subprocess.Popen[str]:
    settings = {key: credentials[key] for key in SUITE_KEYS if key in credentials}
    settings.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--report-dir", str(tmp_path / name)],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "RAFF_ALLOW_WRITES": "1",
            "RAFF_ALLOW_RESTORE": "1",
            "RAFF_RATE_LIMIT": "29",  # the documented limit is 30/s; most of a live run's time is its pace
            **{k: v for k, v in settings.items() if v},
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(run: subprocess.Popen[str], tmp_path: Path, name: str) -> tuple[int, str, dict[str, Any] | None]:
    output, _ = run.communicate(timeout=240)
    path = tmp_path / name / "results.json"
    return run.returncode, output, json.loads(path.read_text()) if path.exists() else None


def violations(results: dict[str, Any] | None) -> list[str]:
    if results is None:
        return []
    return [f"{f['requirement']}: {f['title']}" for f in results["findings"] if f["classification"] == "violation"]


def left_by(world: Any, initial: set[str], *, keep: set[str] = frozenset()) -> list[str]:
    """Backups in the mock's own state that neither were there at the start nor are ``keep``."""
    return sorted(
        f"{b.id} {b.name!r}" for b in list(world.backups.values()) if b.id not in initial and b.id not in keep
    )


@sharing_proof
@pytest.mark.parametrize("apart", [0.0, 2.0], ids=["same-instant", "2s-apart"])
def test_sharing__two_runs_on_one_vm(tmp_path: Path, server: tuple[dict[str, str], Any], apart: float) -> None:
    """Two default runs on the same VMs: no violation in either, each ends 0, 4 or 6, nothing left."""
    credentials, world = server
    initial = set(world.backups)
    first = start_run(tmp_path, "first", credentials)
    time.sleep(apart)
    second = start_run(tmp_path, "second", credentials)
    outcomes = {name: finish(run, tmp_path, name) for name, run in (("first", first), ("second", second))}
    for name, (code, output, results) in outcomes.items():
        assert code in (0, 4, 6), f"{name} run ended {code}:\n{output[-3000:]}"
        assert not violations(results), f"{name} run: {violations(results)}\n{output[-3000:]}"
        if code == 4:
            assert "is writing to RAFF_" in output and "RAFF_WAIT_FOR_OTHER_RUN" in output, output[-2000:]
    assert left_by(world, initial) == []
    assert any(code == 0 for code, _, _ in outcomes.values()) or all(
        code in (4, 6) for code, _, _ in outcomes.values()
    )


@sharing_proof
def test_sharing__second_run_waits_for_the_first(tmp_path: Path, server: tuple[dict[str, str], Any]) -> None:
    """With RAFF_WAIT_FOR_OTHER_RUN the second run says what it waits for, then runs alone: both pass."""
    credentials, world = server
    initial = set(world.backups)
    first = start_run(tmp_path, "first", credentials)
    deadline = time.monotonic() + 60
    while not any(run_token_of(b.name) for b in list(world.backups.values())) and time.monotonic() < deadline:
        time.sleep(0.05)  # the first run has marked the VM with its first backup
    second = start_run(tmp_path, "second", credentials, RAFF_WAIT_FOR_OTHER_RUN="240")
    first_code, first_out, _ = finish(first, tmp_path, "first")
    second_code, second_out, _ = finish(second, tmp_path, "second")
    assert first_code == 0, first_out[-3000:]
    assert second_code == 0, second_out[-3000:]
    assert "waiting for it to end until" in second_out
    assert left_by(world, initial) == []


@sharing_proof
def test_sharing__another_client_writes_every_second(tmp_path: Path, server: tuple[dict[str, str], Any]) -> None:
    """A client creating a backup on the run's VM every second (a schedule): no violation, and none of
    the run's backups left but those the schedule's backups depend on, each reported as kept naming
    one (the run never deletes what it did not create)."""
    credentials, world = server
    initial = set(world.backups)
    schedule: set[str] = set()
    stop = threading.Event()

    def every_second() -> None:
        headers = {"X-API-Key": credentials["RAFF_API_KEY"], "X-Project-ID": credentials["RAFF_PROJECT_ID"]}
        with httpx.Client(base_url=credentials["RAFF_BASE_URL"], headers=headers, trust_env=False) as api:
            while not stop.wait(1.0):
                answer = api.post("/api/v1/backups", json={"vm_id": credentials["RAFF_VM_ID"], "name": "schedule"})
                if answer.status_code == 202:
                    schedule.add(answer.json()["data"]["id"])

    writer = threading.Thread(target=every_second, daemon=True)
    writer.start()
    try:
        code, output, results = finish(start_run(tmp_path, "run", credentials), tmp_path, "run")
    finally:
        stop.set()
        writer.join(timeout=10)
    assert code in (0, 6), output[-3000:]
    assert results is not None and not violations(results), f"{violations(results)}\n{output[-3000:]}"
    assert schedule, "the other client never wrote: the test proved nothing"
    assert code == 0 or results["sharing"]["foreign_writes"], "inconclusive without a foreign write named"
    # The schedule's backups join the run's open series, and the server refuses to delete a point a
    # later one depends on (409): such a backup of the run is kept, naming the schedule's backup,
    # never a bare leftover; every other backup of the run is gone.
    assert results["live"]["leftovers"] == []
    kept = {k["backup_id"]: k["depends_on_it"] for k in results["live"].get("kept") or []}
    assert all(any(dependent in k for dependent in schedule) for k in kept.values()), kept
    assert left_by(world, initial, keep=schedule | set(kept)) == [], output[-4000:]
    assert all(f"{backup} kept:" in output for backup in kept)


@sharing_proof
def test_sharing__two_runs_on_two_vms(tmp_path: Path, server: tuple[dict[str, str], Any]) -> None:
    """Two runs at once on two VMs of the same project: both pass, nothing left."""
    credentials, world = server
    initial = set(world.backups)
    one = start_run(tmp_path, "one", {**credentials, "RAFF_SECOND_VM_ID": ""})
    other = start_run(tmp_path, "other", {**credentials, "RAFF_VM_ID": OTHER_VM, "RAFF_SECOND_VM_ID": ""})
    for name, run in (("one", one), ("other", other)):
        code, output, results = finish(run, tmp_path, name)
        assert code == 0, f"{name}: {output[-3000:]}"
        assert results is not None and results["sharing"]["foreign_writes"] == []
    assert left_by(world, initial) == []


# -- the rule, as units -----------------------------------------------------------------------------


def _exchange(url: str, at: float | None, body: Any = None) -> dict[str, Any]:
    return {
        "operation_id": "listBackups",
        "request": {"method": "GET", "url": url, "headers": {}, "body": None},
        "response": {"status": 200, "headers": {}, "body": body, "elapsed_s": 0.0},
        "curl": "",
        "at": at,
    }


def _write(vm: str, window_from: float) -> dict[str, Any]:
    return {
        "backup_id": "0000bac0-0000-4000-8000-0000000000ff",
        "vm_id": vm,
        "kind": "appeared",
        "description": "backup 0000bac0-…ff ('schedule') on VM …, written by another client",
        "window_from": window_from,
    }


def _violation(exchanges: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    test = {"nodeid": "t", "outcome": "failed", "findings": ["F1"], "exchanges": []}
    finding = {
        "id": "F1",
        "test": "t",
        "classification": "violation",
        "requirement": "RC-08",
        "title": "increment_id is not 0",
        "message": "expected 0, got 3",
        "exchanges": exchanges,
        "blocked_by": None,
    }
    return [test], [finding]


LISTING = f"http://127.0.0.1:1/api/v1/backups?vm_id={VM}&limit=1000"


def test_foreign_write__touching_the_evidence_makes_it_inconclusive() -> None:
    tests, findings = _violation([_exchange(LISTING, at=20.0)])
    excuse_foreign_writes(tests, findings, [_write(VM, window_from=10.0)], {})
    assert findings[0]["classification"] == "inconclusive"
    assert findings[0]["blocked_by"] == "foreign write"
    assert "0000bac0-…ff" in findings[0]["message"] and "expected 0, got 3" in findings[0]["message"]
    assert tests[0]["outcome"] == "inconclusive"


def test_foreign_write__none_seen_the_violation_stands() -> None:
    tests, findings = _violation([_exchange(LISTING, at=20.0)])
    excuse_foreign_writes(tests, findings, [], {})
    assert findings[0]["classification"] == "violation"
    assert tests[0]["outcome"] == "failed"


def test_foreign_write__on_another_vm_or_before_its_window_the_violation_stands() -> None:
    other_vm = _write(OTHER_VM, window_from=10.0)
    later = _write(VM, window_from=30.0)
    tests, findings = _violation([_exchange(LISTING, at=20.0)])
    excuse_foreign_writes(tests, findings, [other_vm, later], {})
    assert findings[0]["classification"] == "violation"


def test_foreign_write__evidence_of_unknown_time_or_vm_is_touched() -> None:
    """What cannot be placed is not held against the server while a foreign write was seen."""
    assert touching([_exchange(LISTING, at=None)], [_write(VM, 10.0)], {})
    assert touching([_exchange("http://127.0.0.1:1/api/v1/backups", at=5.0)], [_write(VM, 10.0)], {}) == []
    assert touching([], [_write(VM, 10.0)], {})
    backup = "0000bac0-0000-4000-8000-000000000007"
    by_backup = _exchange(f"http://127.0.0.1:1/api/v1/backups/{backup}", at=20.0)
    assert touching([by_backup], [_write(VM, 10.0)], {backup: VM})
    assert touching([by_backup], [_write(VM, 10.0)], {backup: OTHER_VM}) == []


def test_other_runs__fresh_backups_of_another_run_only() -> None:
    now = parse_time("2026-12-06T12:00:00Z")
    assert now is not None
    backups = [
        {"id": "a", "name": "raffconf-run0123abcd-1f2e3d4c", "status": "ready", "created_at": "2026-12-06T11:59:00Z"},
        {"id": "b", "name": "raffconf-runffffffff-1", "status": "ready", "created_at": "2026-12-06T09:00:00Z"},
        {"id": "c", "name": "raffconf-runeeeeeeee-1", "status": "pending", "created_at": "2026-12-06T09:00:00Z"},
        {"id": "d", "name": "raffconf-run11111111-x", "status": "ready", "created_at": "2026-12-06T11:59:59Z"},
        {"id": "e", "name": "manual-backup-2026-12-06", "status": "ready", "created_at": "2026-12-06T11:59:59Z"},
    ]
    found = other_runs(backups, "run11111111", VM, now, stale_after=600)
    assert [(run.token, run.backup_id) for run in found] == [("run0123abcd", "a"), ("runeeeeeeee", "c")]
    assert found[0].age_s == 60


def test_report__kept_backups_and_foreign_writes_are_shown() -> None:
    """results.json carries kept backups and foreign writes; the model accepts them and the report
    names each (the backup that depends on a kept one, with the sweep command; the foreign backup)."""
    results = json.loads((ROOT / "tests" / "fixtures" / "results" / "inconclusive.json").read_text(encoding="utf-8"))
    sweep = "raff-conformance sweep --prefix raffconf-run0123abcd"
    results["live"]["kept"] = [
        {
            "backup_id": "0000bac0-0000-4000-8000-0000000000aa",
            "depends_on_it": "backup 0000bac0-0000-4000-8000-0000000000bb ('schedule', not this run's)",
            "sweep_command": sweep,
            "message": "0000bac0-…aa kept: …",
        }
    ]
    results["sharing"] = {
        "run_token": "run0123abcd",
        "foreign_writes": [
            {
                "backup_id": "0000bac0-0000-4000-8000-0000000000bb",
                "vm_id": VM,
                "kind": "appeared",
                "name": "schedule",
                "created_at": "2026-12-06T12:00:00Z",
                "shown_by": "GET http://127.0.0.1:1/api/v1/backups?vm_id=… -> 200",
                "seen_at": 1.0,
                "window_from": 0.5,
                "other_run": None,
                "description": "backup 0000bac0-0000-4000-8000-0000000000bb ('schedule') written by another client",
            }
        ],
    }
    from conformance.report import render_html, validate_results

    assert validate_results(results) == []
    html = render_html(results)
    assert "0000bac0-0000-4000-8000-0000000000aa" in html and sweep in html
    assert "written by another client" in html and "run0123abcd" in html
    results["sharing"]["foreign_writes"][0]["kind"] = "moved"
    assert validate_results(results)


def _listed(backups: list[dict[str, Any]], *, key: str = "key", vm: str = VM) -> Any:
    from conformance.exchange import Exchange

    request = httpx.Request(
        "GET",
        "http://127.0.0.1:1/api/v1/backups",
        params={"vm_id": vm, "limit": 1000},
        headers={"X-API-Key": key, "X-Project-ID": "p"},
    )
    body = {"success": True, "data": backups, "total": len(backups)}
    return Exchange.from_httpx(httpx.Response(200, json=body, request=request), "listBackups")


def _backup(backup_id: str, name: str) -> dict[str, Any]:
    return {"id": backup_id, "name": name, "product_vm": VM, "status": "ready", "created_at": "2026-12-06T12:00:00Z"}


def test_foreign_watch__sees_what_the_run_did_not_write() -> None:
    from conformance.ledger import OWN_BACKUPS
    from conformance.state import ForeignWatch

    old, own, stranger = (f"0000bac0-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))
    watch = ForeignWatch((VM, None), "run0123abcd", 0.0, active=True, scope=("key", "p"))
    watch.start(VM, {old}, 1.0)
    OWN_BACKUPS.add(own)
    try:
        watch.see(_listed([_backup(old, "legacy"), _backup(own, "raffconf-x")]), 2.0)
        assert watch.found == {}  # what was there at the start, and the run's own
        watch.see(_listed([], key="other-account"), 2.5)  # another scope rightly lists none of them
        assert watch.found == {}
        watch.see(_listed([_backup(old, "legacy"), _backup(stranger, "schedule")]), 3.0)
        appeared = watch.found[(stranger, "appeared")]
        assert (appeared.window_from, appeared.seen_at, appeared.other_run) == (2.0, 3.0, None)
        watch.see(_listed([_backup(stranger, "raffconf-runffffffff-1")]), 4.0)
        vanished = watch.found[(old, "vanished")]
        assert vanished.kind == "vanished" and vanished.window_from == 3.0
        other = "0000bac0-0000-4000-8000-000000000009"
        watch.see(_listed([_backup(stranger, "schedule"), _backup(other, "raffconf-runffffffff-2")]), 5.0)
        assert watch.found[(other, "appeared")].other_run == "runffffffff"
        assert watch.found[(other, "appeared")].window_from == 1.0  # another run: from the run's start
    finally:
        OWN_BACKUPS.discard(own)


def test_foreign_watch__off_on_the_bundled_mock() -> None:
    from conformance.state import ForeignWatch

    watch = ForeignWatch((VM, None), "run0123abcd", 0.0, active=False)
    watch.see(_listed([_backup("0000bac0-0000-4000-8000-000000000003", "schedule")]), 3.0)
    assert watch.found == {}
