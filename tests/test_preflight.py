"""Preflight: each wrong setting stops the run before any test with exit 4 and one line naming the
setting, and nothing is created on the server. The target is the bundled mock in a process of its
own, which the suite treats as a real server (budget and opt-ins apply)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.client import RaffClient
from tests.mockproc import ROOT, mock_process

SUITE_KEYS = ("RAFF_BASE_URL", "RAFF_API_KEY", "RAFF_PROJECT_ID", "RAFF_VM_ID", "RAFF_SECOND_VM_ID")


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, str]]:
    # Request time: backups go pending -> creating -> ready within a few requests, so the scenario's
    # reset while a backup is in flight (RC-21) meets one, without seconds of waiting.
    with mock_process("--time", "requests") as credentials:
        yield credentials


def _backup_ids(credentials: dict[str, str]) -> set[str]:
    with RaffClient(credentials["RAFF_BASE_URL"], credentials["RAFF_API_KEY"], None) as api:
        return {b["id"] for b in api.list_backups(limit=1000).json()["data"]}


def _run(tmp_path: Path, credentials: dict[str, str], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {key: credentials[key] for key in SUITE_KEYS} | {"RAFF_ALLOW_WRITES": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--report-dir={tmp_path / 'r'}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **base, **env},
    )


def _usage_line(completed: subprocess.CompletedProcess[str]) -> str:
    """The one raff-conformance line of a run stopped before any test."""
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR, completed.stdout[-1500:] + completed.stderr[-1500:]
    lines = [line for line in (completed.stdout + completed.stderr).splitlines() if "raff-conformance:" in line]
    assert len(lines) == 1, completed.stdout + completed.stderr
    assert " passed" not in completed.stdout and " failed" not in completed.stdout
    return lines[0]


@pytest.mark.parametrize(
    ("case", "names"),
    [
        ("wrong-key", "RAFF_API_KEY was rejected"),
        ("unknown-vm", "RAFF_VM_ID"),
        ("vm-of-other-project", "RAFF_VM_ID"),
        ("unknown-second-vm", "RAFF_SECOND_VM_ID"),
        ("budget-zero", "RAFF_MAX_BACKUPS=0"),
        ("budget-too-small", "RAFF_MAX_BACKUPS=7"),
        ("report-dir-not-writable", "--report-dir"),
        ("malformed-baseline", "--baseline"),
        ("compare-not-json", "--compare"),
        ("unreachable", "cannot be reached"),
    ],
)
def test_preflight__wrong_setting_stops_before_any_test(
    tmp_path: Path, server: dict[str, str], case: str, names: str
) -> None:
    args: list[str] = []
    env: dict[str, str] = {}
    if case == "wrong-key":
        env["RAFF_API_KEY"] = "raff_pub_not_a_key_of_this_server"
    elif case == "unknown-vm":
        env["RAFF_VM_ID"] = str(uuid.uuid4())
    elif case == "vm-of-other-project":
        env["RAFF_VM_ID"] = server["RAFF_OTHER_PROJECT_VM_ID"]
    elif case == "unknown-second-vm":
        env["RAFF_SECOND_VM_ID"] = str(uuid.uuid4())
    elif case == "budget-zero":
        env["RAFF_MAX_BACKUPS"] = "0"
    elif case == "budget-too-small":
        env["RAFF_MAX_BACKUPS"] = "7"  # the scenario needs 8 with a second VM
    elif case == "report-dir-not-writable":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory", encoding="utf-8")
        args.append(f"--report-dir={blocker / 'reports'}")
    elif case == "malformed-baseline":
        # Outside the checkout, by an absolute path.
        baseline = tmp_path / "accepted.yaml"
        baseline.write_text("entries: [ {requirement: RC-06, check: x\n", encoding="utf-8")
        args += ["--baseline", str(baseline)]  # separate: pytest must not take it for a test path
    elif case == "compare-not-json":
        previous = tmp_path / "old-results.json"
        previous.write_text("<html>not json</html>", encoding="utf-8")
        args += ["--compare", str(previous)]
    elif case == "unreachable":
        env["RAFF_BASE_URL"] = "http://127.0.0.1:9"
    before = _backup_ids(server)
    line = _usage_line(_run(tmp_path, server, *args, **env))
    assert names in line, line
    assert server["RAFF_API_KEY"] not in line
    assert _backup_ids(server) == before, "preflight created or deleted something"


def test_preflight__right_settings_pass_it(tmp_path: Path, server: dict[str, str]) -> None:
    """The same server with the mock's own settings gets past preflight (the read-only tests run)."""
    completed = _run(tmp_path, server, "conformance/tests/test_reset_chain_negative.py", "-k", "unknown_vm")
    assert completed.returncode == 0, completed.stdout[-2000:]
    results = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    assert results["target"]["kind"] == "live"


def test_preflight__path_option_outside_checkout_keeps_the_suite(tmp_path: Path, server: dict[str, str]) -> None:
    """``--baseline /elsewhere/accepted.yaml`` (a valid file, separate argument) runs this suite
    with its own rootdir and ini, as ``--baseline=…`` does: the path is not taken for a test path."""
    baseline = tmp_path / "elsewhere" / "accepted.yaml"
    baseline.parent.mkdir()
    baseline.write_text("entries: []\n", encoding="utf-8")
    completed = _run(
        # No test path: only the ini's testpaths say where the tests are. -v undoes -q, so that
        # pytest's header names the rootdir.
        tmp_path, server, "-v", "--baseline", str(baseline), "-k", "test_reset_chain__unknown_vm",
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert f"rootdir: {ROOT}" in completed.stdout, completed.stdout[:1500]
    results = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    assert [t["outcome"] for t in results["tests"]] and {t["outcome"] for t in results["tests"]} == {"passed"}


def test_plugin__inert_in_another_project(tmp_path: Path) -> None:
    """The installed entry point adds options to every pytest run, and nothing else outside this suite."""
    (tmp_path / "test_other.py").write_text("def test_other():\n    assert True\n", encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "raff-conformance" not in completed.stdout + completed.stderr
    assert not (tmp_path / "reports").exists()


def test_budget__loopback_server_is_not_the_mock(tmp_path: Path, server: dict[str, str]) -> None:
    """A default run against a loopback server this run did not start (here the bundled mock in its
    own process, with a second VM set) stays within RAFF_MAX_BACKUPS and leaves nothing behind."""
    before = _backup_ids(server)
    completed = _run(tmp_path, server)
    assert completed.returncode == 0, completed.stdout[-3000:]
    results = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    assert 0 < results["live"]["backups_created"] <= 8, results["live"]
    assert results["live"]["leftovers"] == []
    assert _backup_ids(server) == before
    verdicts = {req["id"]: req["verdict"] for req in results["requirements"]}
    assert verdicts["RC-09"] != "skipped", "the second VM was set: the scenario must use it"


def test_preflight__live_target_goes_through_the_environment_proxy(tmp_path: Path, server: dict[str, str]) -> None:
    """A server this run did not start is reached the way the environment says (its proxy), unlike the
    bundled mock: with a proxy that does not answer, the run stops at the preflight."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{sock.getsockname()[1]}"
    line = _usage_line(_run(tmp_path, server, HTTP_PROXY=dead_proxy, http_proxy=dead_proxy))
    assert "cannot be reached" in line
