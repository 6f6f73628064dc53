"""The plugin's promises about bad input: one clear line and no test run, never a hundred failures."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VM = "2b1f8a4e-6f0d-4d3e-9a51-0c9d7b6e5a41"
PROJECT = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
CANARY = "raff_pub_CANARY_plugin_0123456789abcdef"


def run_pytest(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "conformance/tests/test_reset_chain_negative.py", "-p", "no:cacheprovider",
         "--report-dir", str(tmp_path / "reports"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RAFF_BASE_URL": "http://127.0.0.1:9", "RAFF_PROJECT_ID": PROJECT, "RAFF_VM_ID": VM}, "RAFF_API_KEY"),
        ({"RAFF_VM_ID": "vm-1"}, "RAFF_VM_ID"),
        ({"RAFF_RATE_LIMIT": "100"}, "RAFF_RATE_LIMIT"),
        ({"RAFF_BASE_URL": "localhost:8080", "RAFF_API_KEY": CANARY, "RAFF_PROJECT_ID": PROJECT, "RAFF_VM_ID": VM},
         "RAFF_BASE_URL"),
    ],
    ids=["key-missing", "id-not-uuid", "rate-too-high", "url-without-scheme"],
)
def test_plugin__wrong_settings_stop_before_any_test(tmp_path: Path, env: dict[str, str], named: str) -> None:
    completed = run_pytest(tmp_path, env)
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR, completed.stdout + completed.stderr
    error_lines = [line for line in completed.stderr.splitlines() if "raff-conformance" in line]
    assert len(error_lines) == 1 and named in error_lines[0], completed.stderr
    assert "passed" not in completed.stdout and "failed" not in completed.stdout
    assert CANARY not in completed.stdout + completed.stderr


def test_plugin__unreachable_server_is_one_error(tmp_path: Path) -> None:
    env = {"RAFF_BASE_URL": f"http://127.0.0.1:{free_port()}", "RAFF_API_KEY": CANARY,
           "RAFF_PROJECT_ID": PROJECT, "RAFF_VM_ID": VM}
    completed = run_pytest(tmp_path, env)
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR
    assert "cannot be reached" in completed.stderr
    assert completed.stderr.count("raff-conformance") == 1
    assert CANARY not in completed.stdout + completed.stderr


def test_plugin__header_shows_target_with_key_redacted(tmp_path: Path) -> None:
    completed = run_pytest(tmp_path, {"RAFF_API_KEY": CANARY}, "--collect-only", "-q")
    # With no base URL the key setting is unused, and still never printed.
    assert CANARY not in completed.stdout + completed.stderr


def test_plugin__unknown_requirement_id_fails_collection(tmp_path: Path) -> None:
    test_file = ROOT / "conformance" / "tests" / "test_zz_selftest_unknown_req.py"
    test_file.write_text("import pytest\n\n@pytest.mark.req('RC-99')\ndef test_x():\n    pass\n")
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", str(test_file), "-p", "no:cacheprovider"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
    finally:
        test_file.unlink()
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown requirement ID RC-99" in completed.stderr


def test_plugin__key_never_printed_or_written(tmp_path: Path) -> None:
    """A failing live-style run with locals shown: the key is in no terminal line and no report file."""
    from tests.mockproc import mock_process

    with mock_process("--defect", "reset_ignores_auth", "--defect", "error_body_not_json") as credentials:
        env = {key: value for key, value in credentials.items() if key.startswith("RAFF_")}
        completed = run_pytest(tmp_path, env | {"RAFF_ALLOW_WRITES": "1"}, "-l", "-vv", "--tb=long")
    assert completed.returncode == pytest.ExitCode.TESTS_FAILED, completed.stdout[-2000:]
    # The run's key, and the other account's that the suite reads too (RAFF_OTHER_ACCOUNT_API_KEY).
    for key in (credentials["RAFF_API_KEY"], credentials["RAFF_OTHER_ACCOUNT_API_KEY"]):
        assert key not in completed.stdout + completed.stderr
        for path in (tmp_path / "reports").iterdir():
            assert key not in path.read_text(encoding="utf-8"), path.name


def test_plugin__xdist_gives_serial_verdicts(tmp_path: Path) -> None:
    """Tests sharing the VM's series are grouped, so two workers reach the serial run's verdicts."""
    import json

    def verdicts(*args: str) -> dict[str, str]:
        out = tmp_path / ("x" if args else "s")
        subprocess.run(
            [sys.executable, "-m", "pytest", "conformance/tests/test_reset_chain.py",
             "conformance/tests/test_reset_chain_negative.py", "conformance/tests/test_backups.py",
             "conformance/tests/test_backups_views.py", "conformance/tests/test_reset_chain_shapes.py",
             "conformance/tests/test_backups_negative.py",
             "-q", "-p", "no:cacheprovider", "--report-dir", str(out), *args],
            cwd=ROOT, capture_output=True, text=True, timeout=240,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        results = json.loads((out / "results.json").read_text())
        return {req["id"]: req["verdict"] for req in results["requirements"]}

    serial = verdicts()
    assert serial == verdicts("-n", "2")
    # RC-23, RC-24 and RC-25 are judged by the generated traffic only, which these files leave out.
    generated_only = ("RC-23", "RC-24", "RC-25")
    assert {verdict for req, verdict in serial.items() if req not in generated_only} <= {"pass", "spec_gap"}


def test_plugin__environment_proxy_is_not_used_for_the_bundled_mock(tmp_path: Path) -> None:
    """Behind a company proxy (HTTP_PROXY set, no NO_PROXY for loopback) plain ``pytest`` still reaches
    the mock it started: the suite's client, the preflight and Schemathesis' generated requests."""
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    completed = run_pytest(
        tmp_path, {"HTTP_PROXY": dead_proxy, "http_proxy": dead_proxy},
        "conformance/tests/test_fuzz_backups.py", "-k", "negative or reset_chain__free",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert " passed" in completed.stdout


def test_plugin__freezes_the_heap_only_in_its_own_process(tmp_path: Path) -> None:
    """``gc.freeze()`` (conformance/heap.py) in a run that pytest's command started, never inside a
    program that calls ``pytest.main()`` and lives on (what is frozen stays in its memory for good)."""
    (tmp_path / "freezecount.py").write_text(
        "import gc\n\ndef pytest_sessionfinish(session):\n    print('frozen:', gc.get_freeze_count())\n"
    )
    args = ["conformance/tests/test_reset_chain_negative.py", "--collect-only", "-q", "-s", "-p", "freezecount",
            "-p", "no:cacheprovider"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(tmp_path)}

    def frozen(command: list[str]) -> int:
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
        counts = [line.split()[-1] for line in completed.stdout.splitlines() if line.startswith("frozen:")]
        assert completed.returncode == 0 and counts, completed.stdout[-2000:] + completed.stderr[-2000:]
        return int(counts[-1])

    assert frozen([sys.executable, "-m", "pytest", *args]) > 10_000
    assert frozen([sys.executable, "-c", f"import pytest; pytest.main({args!r})"]) == 0
