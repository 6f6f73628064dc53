"""Safe and steady against an unfriendly server: the mock's fault modes drive each promise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conformance.checks import Finding, fail
from conformance.client import RaffClient, RateLimiter
from conformance.exchange import Exchange
from conformance.mock import MockServer, create_app
from conformance.plugin import replay_confirms
from tests.mockproc import ROOT, mock_process

SUITE_ENV_KEYS = ("RAFF_BASE_URL", "RAFF_API_KEY", "RAFF_PROJECT_ID", "RAFF_VM_ID", "RAFF_SECOND_VM_ID",
                  "RAFF_OTHER_PROJECT_VM_ID", "RAFF_OTHER_ACCOUNT_VM_ID")


def _client(server: MockServer, **kw) -> RaffClient:
    creds = server.credentials()
    return RaffClient(creds["RAFF_BASE_URL"], creds["RAFF_API_KEY"], creds["RAFF_PROJECT_ID"], **kw)


def test_steadiness__hanging_server_fails_in_bounded_time() -> None:
    with MockServer(create_app(faults=["hang"])) as server, _client(server, timeout=0.5, get_retries=1) as api:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            api.show_vm(server.credentials()["RAFF_VM_ID"])
        assert time.monotonic() - started < 4  # two attempts of 0.5 s and one backoff of 1 s


def test_steadiness__own_pace_draws_no_429() -> None:
    with MockServer(create_app(rate_limit=30)) as server, _client(server, limiter=RateLimiter(20)) as api:
        vm = server.credentials()["RAFF_VM_ID"]
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: api.show_vm(vm).status_code, range(120)))
    assert statuses.count(429) == 0 and set(statuses) == {200}


def test_steadiness__without_pace_the_limit_bites() -> None:
    """The counter-proof of the test above: the mock's limit is real, so the pace is what avoids it."""
    with MockServer(create_app(rate_limit=30)) as server, _client(server, max_429_retries=0) as api:
        vm = server.credentials()["RAFF_VM_ID"]
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: api.show_vm(vm).status_code, range(150)))
    assert 429 in statuses


def test_steadiness__429_storm_gives_up_after_bounded_retries() -> None:
    with MockServer(create_app(faults=["rate_limit_storm"])) as server, _client(server, max_429_retries=2) as api:
        started = time.monotonic()
        response = api.list_backups()
        assert response.status_code == 429
        assert 1.5 < time.monotonic() - started < 5  # Retry-After: 1, honoured twice


def test_steadiness__dropped_connection_retried_on_get_only() -> None:
    with MockServer(create_app(faults=["drop_connections"])) as server, _client(server) as api:
        vm = server.credentials()["RAFF_VM_ID"]
        assert all(api.show_vm(vm).status_code == 200 for _ in range(6))
        outcomes = []
        for _ in range(6):
            try:
                outcomes.append(api.reset_backup_chain(vm).status_code)
            except httpx.TransportError:
                outcomes.append("dropped")
        assert "dropped" in outcomes  # a POST is never resent blindly


def _own_backups(credentials: dict[str, str], prefix: str) -> list[dict]:
    with RaffClient(credentials["RAFF_BASE_URL"], credentials["RAFF_API_KEY"], None) as api:
        data = api.list_backups(limit=1000).json()["data"]
    return [b for b in data if str(b.get("name", "")).startswith(prefix)]


def _interrupted_run(tmp_path: Path, credentials: dict[str, str], prefix: str, *args: str) -> subprocess.Popen:
    # A mock in a process of its own is a real server to the suite: writes need the opt-in.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "RAFF_NAME_PREFIX": prefix,
           "RAFF_ALLOW_WRITES": "1", **{key: credentials[key] for key in SUITE_ENV_KEYS}}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-q",
         "--report-dir", str(tmp_path / "reports")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=0,
        # A child inherits an ignored SIGINT (pytest-xdist workers and shell background jobs
        # ignore it), and Python then never raises KeyboardInterrupt: give it the default back,
        # as an interactive terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _assert_interrupted(tmp_path: Path, run: subprocess.Popen, output: str) -> None:
    """Exit 2 (pytest's "interrupted"), no finding judged from what was cut short."""
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
    results = json.loads((tmp_path / "reports" / "results.json").read_text(encoding="utf-8"))
    assert results["run"]["verdict"] == "interrupted" and results["run"]["interrupted"] is True
    assert [f for f in results["findings"] if f["classification"] in ("violation", "inconclusive")] == [], output
    assert "INTERRUPTED" in output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_safety__interrupted_run_leaves_nothing(tmp_path: Path, signum: int) -> None:
    """Interrupted while it waits for a backup to become ready."""
    prefix = f"interrupted{signum}"
    with mock_process("--backup-delay", "1.5") as credentials:
        run = _interrupted_run(tmp_path, credentials, prefix, "conformance/tests/test_reset_chain.py")
        deadline = time.monotonic() + 60
        while not _own_backups(credentials, prefix) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _own_backups(credentials, prefix), "the run created no backup to interrupt"
        run.send_signal(signum)
        output, _ = run.communicate(timeout=60)
        _assert_interrupted(tmp_path, run, output)
        assert _own_backups(credentials, prefix) == [], output[-3000:]


def test_safety__ctrl_c_in_generated_traffic_is_no_finding(tmp_path: Path) -> None:
    """Ctrl-C while Schemathesis runs (it and Hypothesis catch much): the run stops at once, exit 2."""
    prefix = "interruptedfuzz"
    with mock_process("--backup-delay", "0.3") as credentials:
        run = _interrupted_run(tmp_path, credentials, prefix, "conformance/tests/test_fuzz_backups.py")
        seen = ""
        deadline = time.monotonic() + 120
        assert run.stdout is not None
        while "u" not in seen.split("\n")[-1] and time.monotonic() < deadline:  # a subtest passed: fuzzing runs
            char = run.stdout.read(1)
            if not char:
                break
            seen += char
        assert "u" in seen, seen[-3000:]
        run.send_signal(signal.SIGINT)
        started = time.monotonic()
        rest, _ = run.communicate(timeout=60)
        assert time.monotonic() - started < 30, "the run went on after Ctrl-C"
        _assert_interrupted(tmp_path, run, seen + rest)
        assert _own_backups(credentials, prefix) == [], (seen + rest)[-3000:]


def test_safety__sweep_removes_only_prefixed(tmp_path: Path) -> None:
    with mock_process("--backup-delay", "0") as credentials:
        base, key, project = credentials["RAFF_BASE_URL"], credentials["RAFF_API_KEY"], credentials["RAFF_PROJECT_ID"]
        vm = credentials["RAFF_VM_ID"]
        with RaffClient(base, key, project) as api:
            # keep-me in a series of its own: the swept points must not be ones it depends on.
            ids = {"keep-me": api.create_backup(vm, name="keep-me").json()["data"]["id"]}
            api.reset_backup_chain(vm)
            ids |= {name: api.create_backup(vm, name=name).json()["data"]["id"] for name in ("oldrun-1", "oldrun-2")}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
               **{k: credentials[k] for k in SUITE_ENV_KEYS}}
        sweep = [sys.executable, "-m", "conformance.cli", "sweep", "--prefix", "oldrun"]
        dry = subprocess.run([*sweep, "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0 and dry.stdout.count("would delete") == 2, dry.stdout + dry.stderr
        assert len(_own_backups(credentials, "oldrun")) == 2
        real = subprocess.run(sweep, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert real.returncode == 0, real.stdout + real.stderr
        assert key not in real.stdout + real.stderr
        assert _own_backups(credentials, "oldrun") == []
        assert [b["id"] for b in _own_backups(credentials, "keep-me")] == [ids["keep-me"]]


def _finding_for(api: RaffClient, response: httpx.Response) -> Finding:
    return fail("RC-14", Exchange.from_httpx(response, "getVM"), "t", "m").finding


def test_replay__passing_glitch_is_not_reproduced() -> None:
    with MockServer(create_app(faults=["server_errors"])) as server, _client(server) as api:
        vm = server.credentials()["RAFF_VM_ID"]
        responses = [api.show_vm(vm) for _ in range(2)]
        glitch = next(r for r in responses if r.status_code == 503)
        assert replay_confirms(_finding_for(api, glitch)) is False


def test_replay__steady_violation_is_confirmed() -> None:
    with MockServer(create_app(defects=["error_body_not_json"])) as server, _client(server) as api:
        response = api.show_vm("00000000-0000-4000-8000-00000000dead")
        assert response.status_code == 404
        assert replay_confirms(_finding_for(api, response)) is True


def test_replay__state_changing_request_is_not_replayed() -> None:
    with MockServer(create_app()) as server, _client(server) as api:
        response = api.reset_backup_chain(server.credentials()["RAFF_VM_ID"])
        assert response.status_code == 202
        finding = fail("RC-01", Exchange.from_httpx(response, "resetBackupChain"), "t", "m").finding
        assert replay_confirms(finding) is None


def test_replay__not_in_the_same_state_is_not_replayed() -> None:
    """A step judged after later writes moved the state on is "not replayed", never "not reproduced"."""
    with MockServer(create_app(faults=["server_errors"])) as server, _client(server) as api:
        vm = server.credentials()["RAFF_VM_ID"]
        glitch = next(r for r in (api.show_vm(vm) for _ in range(2)) if r.status_code == 503)
        finding = _finding_for(api, glitch)
        api.reset_backup_chain(vm)  # the state moved on since the answer being judged
        assert replay_confirms(finding) is None


def test_verdict__unreproduced_or_unexplained_failure_is_never_green() -> None:
    from conformance.results import run_verdict

    def results(findings: list[dict], outcome: str = "failed") -> dict:
        return {"run": {}, "findings": findings, "requirements": [{"verdict": "violation"}],
                "tests": [{"nodeid": "t", "outcome": outcome}]}

    unreproduced = {"classification": "violation", "test": "t", "known": None, "confirmed": False}
    assert run_verdict(results([unreproduced])) == "inconclusive"
    assert run_verdict(results([{**unreproduced, "confirmed": None}])) == "violation"
    assert run_verdict(results([])) == "inconclusive"  # a failed test with no finding the run could count
    assert run_verdict({**results([unreproduced]), "run": {"interrupted": True}}) == "interrupted"
