"""The suite against a server this project did not write: Stoplight Prism mocking the merged contract.

Prism is stateless: it answers every valid request with the contract's example, whatever the id,
and checks only that a key is present. So the verdicts a correct suite must reach are known:
what Prism can show passes (or is a spec gap), what needs state is inconclusive (a backup never
becomes ready: its example status is "string"), and what Prism really gets wrong is a violation
with evidence: 202 for an unknown VM (RC-02), any key accepted (RC-13), 202 for a project of no
account (RC-19), its own 422 validation answer (RC-14, undocumented). Nothing else may be a
violation, and no JSON answer may be called "not JSON" (Prism spells the header ``Content-type``).

``.ci/install-prism`` installs the pinned Prism into ``.tools/prism``; without it this is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conformance.mock.process import stop_process
from tests.mockproc import ROOT

PRISM = ROOT / ".tools" / "prism" / "node_modules" / ".bin" / "prism"
STATEFUL = {"RC-06", "RC-08", "RC-10", "RC-15", "RC-16"}
# Prism knows no VMs, keys or projects: it accepts a reset of an unknown VM (RC-02), without a
# valid key (RC-13) and in a project of no account (RC-19), and answers its own 422 (RC-14).
# Prism answers every call from the contract's examples, whatever it names: any VM is reset (RC-02,
# RC-19), any key accepted (RC-13), and a listing shows the example backup under any filter (RC-20);
# its 405 for an undeclared method carries no Allow header, which RFC 9110 requires (RC-23).
# Held to the properties every exchange keeps (conformance/judge.py), it also shows that it stores
# nothing: a create answers the example's name, product_vm and project_id, not what was sent (RC-26),
# a listing's one example backup comes with the example total 0 (RC-18), and getVM (like getBackup)
# answers its example resource whatever id the path names (RC-17, P-IDENTITY).
PRISM_GETS_WRONG = {"RC-02", "RC-13", "RC-14", "RC-17", "RC-18", "RC-19", "RC-20", "RC-23", "RC-26"}
# Requirements only the generated traffic judges: a run with -m "not fuzz" leaves them not covered.
GENERATED_ONLY = {"RC-23", "RC-24", "RC-25"}


def prism_binary() -> str | None:
    return str(PRISM) if PRISM.exists() else shutil.which("prism")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def prism_server(contract: Path, log: Path) -> Iterator[str]:
    """Prism mocking ``contract`` on a free loopback port (static examples); stopped on exit."""
    binary = prism_binary()
    assert binary is not None
    port = _free_port()
    with log.open("w") as out:
        process = subprocess.Popen([binary, "mock", "-h", "127.0.0.1", "-p", str(port), str(contract)],
                                   stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/v1/backups", timeout=2)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Prism did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield url
    finally:
        stop_process(process)


@pytest.mark.skipif(prism_binary() is None, reason="Prism is not installed: run .ci/install-prism (CI does)")
def test_foreign_server__prism_verdicts_are_true(tmp_path: Path) -> None:
    contract = tmp_path / "merged.yaml"
    subprocess.run([sys.executable, "-m", "conformance.cli", "contract", "--merged", "-o", str(contract)],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    with prism_server(contract, tmp_path / "prism.log") as url:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "RAFF_BASE_URL": url, "RAFF_API_KEY": "prism-does-not-check-keys",
            "RAFF_PROJECT_ID": "6f1a9b3e-1111-4222-8333-444455556666",
            "RAFF_VM_ID": "0b9d7a52-2222-4333-8444-555566667777",
            "RAFF_ALLOW_WRITES": "1",  # the default RAFF_READY_TIMEOUT (900 s): no wait may need it
        }
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--report-dir={tmp_path / 'r'}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
    output = completed.stdout[-4000:] + completed.stderr[-2000:]
    results = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    verdicts = {req["id"]: req["verdict"] for req in results["requirements"]}
    # Given what Prism is, each verdict is known (see the module docstring).
    assert verdicts["RC-01"] in ("pass", "spec_gap"), output
    assert verdicts["RC-05"] in ("pass", "spec_gap"), output
    assert verdicts["RC-02"] == "violation" and verdicts["RC-13"] == "violation", verdicts
    for req in STATEFUL:
        assert verdicts[req] == "inconclusive", (req, verdicts)
    violations = [f for f in results["findings"] if f["classification"] == "violation"]
    blamed = [(f["requirement"], f["title"]) for f in violations]
    assert {f["requirement"] for f in violations} <= PRISM_GETS_WRONG, blamed
    for finding in violations:
        if finding["requirement"] == "RC-14":  # Prism's own 422 for a request it could not validate
            assert (finding["exchanges"][-1]["response"] or {}).get("status") == 422, finding["message"]
    assert all(f["requirement"] for f in results["findings"]), "every finding names a requirement"
    not_json = [f for f in results["findings"] if f["title"] == "response is not JSON"]
    assert not [f for f in not_json if "json" in json.dumps(f["exchanges"][-1]["response"]["headers"]).lower()]
    assert results["run"]["verdict"] == "violation" and completed.returncode == 1, output


# What a static example server breaks in one plain client session's capture, each true of Prism: its
# answers describe its example backup, not the one asked for (RC-17, RC-26), list it under any filter
# (RC-20) with total 0 (RC-18), and find it after its delete (RC-24).
PRISM_CAPTURE_GETS_WRONG = {"RC-17", "RC-18", "RC-20", "RC-24", "RC-26"}


@pytest.mark.skipif(prism_binary() is None, reason="Prism is not installed: run .ci/install-prism (CI does)")
def test_foreign_server__prism_capture_verdicts_are_true(tmp_path: Path) -> None:
    """The capture judge on traffic recorded against a server this project did not write."""
    from conformance.traffic import judge_capture
    from tests.captures import record_session_at

    contract = tmp_path / "merged.yaml"
    subprocess.run([sys.executable, "-m", "conformance.cli", "contract", "--merged", "-o", str(contract)],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    ids = {"RAFF_PROJECT_ID": "6f1a9b3e-1111-4222-8333-444455556666",
           "RAFF_VM_ID": "0b9d7a52-2222-4333-8444-555566667777",
           "RAFF_SECOND_VM_ID": "0b9d7a52-2222-4333-8444-555566668888"}
    with prism_server(contract, tmp_path / "prism.log") as url:
        record_session_at(tmp_path / "prism.har", url, ids)
    results = judge_capture(tmp_path / "prism.har")
    verdicts = {req["id"]: req["verdict"] for req in results["requirements"]}
    blamed = sorted({(f["requirement"], f["title"]) for f in results["findings"] if f["classification"] == "violation"})
    assert {req for req, verdict in verdicts.items() if verdict == "violation"} == PRISM_CAPTURE_GETS_WRONG, blamed
    # Prism answers every reset 202 with success true, and every answer with its documented schema.
    assert verdicts["RC-01"] == verdicts["RC-14"] == "pass", blamed
    # Every create answers the same example id: no series to number, so RC-08 and RC-09 claim nothing.
    assert verdicts["RC-08"] != "violation" and verdicts["RC-09"] != "violation", blamed


def test_foreign_server__mock_with_real_stack_habits_passes(tmp_path: Path) -> None:
    """The bundled mock with a router's plain-text 404 for unroutable paths and other header spellings
    (``Content-type``, ``CONTENT-TYPE``, ``Application/JSON``) is still a conforming server."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "not fuzz", "--mock-real-stack",
         f"--report-dir={tmp_path / 'r'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
    )
    results = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    assert completed.returncode == 0, completed.stdout[-3000:]
    judged = [req for req in results["requirements"] if req["id"] not in GENERATED_ONLY]
    assert {req["verdict"] for req in judged} <= {"pass", "spec_gap"}
    notes = [f for f in results["findings"] if f["classification"] == "note"]
    assert notes and {f["requirement"] for f in notes} == {"RC-05"}, notes
    assert all(f["check"] == "unroutable_path" for f in notes)


def test_foreign_server__one_backup_at_a_time_is_met_one_create_at_a_time(tmp_path: Path) -> None:
    """A server that refuses a create while another backup of the VM is in flight (409, the overlay's
    inferred createBackup answer): the recorded scenario sends its creates side by side until the first
    refusal, then waits for the VM's backups, sends that create again and goes on one at a time. Every
    requirement the scenario judges still passes, the refusal is a spec gap, and nothing is left."""
    from tests.mockproc import mock_process

    with mock_process("--backup-delay", "1", "--restore-delay", "0.5", "--one-backup-at-a-time") as credentials:
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--report-dir={tmp_path / 'r'}",
             "conformance/tests/test_reset_chain.py", "conformance/tests/test_reset_chain_shapes.py",
             "conformance/tests/test_backups.py"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **credentials,
                 "RAFF_ALLOW_WRITES": "1", "RAFF_ALLOW_RESTORE": "1"},
        )
    output = completed.stdout[-3000:]
    results = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    assert completed.returncode == 0, output
    assert {req["verdict"] for req in results["requirements"]} <= {"pass", "spec_gap", "not_covered", "skipped"}, output
    busy = [f for f in results["findings"] if f["title"] == "createBackup answered 409, which the published spec omits"]
    assert busy and {f["classification"] for f in busy} == {"spec_gap"}, output
    live = results["live"]
    assert live["backups_created"] == 8 and not live["leftovers"], live
    # After the first refusal each create waited for the VM's backups: more, shorter blocks than three.
    assert len(live["timeline"]["blocks"]) > 3, live["timeline"]
