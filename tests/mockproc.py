"""The bundled mock as a separate process, for self-tests that must outlive a pytest run."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def mock_process(*args: str) -> Iterator[dict[str, str]]:
    """Start ``python -m conformance.mock --port 0 ARGS``; yield the RAFF_* lines it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance.mock", "--port", "0", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        credentials: dict[str, str] = {}
        assert process.stdout is not None
        while "RAFF_OTHER_ACCOUNT_VM_ID" not in credentials:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the mock exited early: {process.stderr.read() if process.stderr else ''}")
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                credentials[name] = value.strip("'\"")
        yield credentials
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
