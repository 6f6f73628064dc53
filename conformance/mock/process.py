"""The bundled mock in a process of its own, as a real server would be (self-tests, benchmark)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAST_EXPORT = "RAFF_OTHER_ACCOUNT_VM_ID"  # the CLI prints this credential last


@contextlib.contextmanager
def mock_process(
    *args: str, env: Mapping[str, str] | None = None, real_stack: bool = False
) -> Iterator[dict[str, str]]:
    """Start ``python -m conformance.mock --port 0 ARGS`` (``--real-stack`` if asked); yield the RAFF_*
    credentials it printed."""
    flags = ["--real-stack"] if real_stack else []
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance.mock", "--port", "0", *flags, *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(env) if env else None,
    )
    try:
        credentials: dict[str, str] = {}
        assert process.stdout is not None
        while LAST_EXPORT not in credentials:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the mock exited early: {process.stderr.read() if process.stderr else ''}")
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                credentials[name] = value.strip("'\"")
        yield credentials
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[str], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
