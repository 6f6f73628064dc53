"""What a person reads in the terminal: a failed requirement prints a short block, not a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What pytest's default traceback shows and a reader does not need: fixture reprs, test source.
FIXTURE_REPR = re.compile(r"^(scenario|contract|settings|client|ledger|raff_state|evidence) = ")


def _suite(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--mock-time=requests",
         f"--report-dir={tmp_path / 'r'}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "80"},
    )


def test_terminal__one_defect_prints_a_short_block(tmp_path: Path) -> None:
    completed = _suite(tmp_path, "-q", "--mock-defect", "reset_returns_200")
    output = completed.stdout
    lines = output.splitlines()
    assert completed.returncode == 1, output[-3000:]
    assert len(lines) <= 80, f"{len(lines)} lines:\n{output}"
    assert not [line for line in lines if FIXTURE_REPR.match(line)], output
    assert "Traceback" not in output and "def test_" not in output, output
    block = output[output.index("test_reset_chain_owned_vm_accepted _") :]
    assert block.splitlines()[1].startswith("RC-01  Resetting the series"), block[:600]
    assert "expected 202, got 200" in block
    assert "/reset-chain -> 200 {" in block and '-H "X-API-Key: $RAFF_API_KEY"' in block
    assert f"{tmp_path / 'r' / 'report.html'}#req-RC-01" in block
    # The table comes after pytest's progress line, whole: no requirement row cut by the progress.
    table = output[output.index("raff-conformance: requirements") :]
    assert "RC-01  violation" in table and "verdict: FAIL" in table
    # Schemathesis counts its subtests into the collected total; the progress still ends at 100 %.
    assert "[100%]" in output, output[:1500]


def test_terminal__verbose_brings_the_traceback_back(tmp_path: Path) -> None:
    completed = _suite(
        tmp_path, "-q", "--tb=long", "--mock-defect", "reset_returns_200",
        "conformance/tests/test_reset_chain.py", "-k", "owned_vm_accepted",
    )
    assert completed.returncode == 1, completed.stdout[-2000:]
    assert "def test_reset_chain_owned_vm_accepted" in completed.stdout
