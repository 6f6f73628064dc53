"""A default live run measured in backup latencies (issue 28's figure).

On staging a backup takes minutes, so a live run's wall time is set by how many backup latencies
stand one after another. This starts the bundled mock as a process of its own with wall time,
``--backup-delay L --restore-delay L/2``, runs the default suite against it as a live target
(writes and restores allowed, every setting the mock prints), and prints the run's wall time and
the time it waited for backups, each divided by L::

    python benchmarks/live_latency.py                 # L = 5 s, 10 s and 30 s
    python benchmarks/live_latency.py --latency 10    # one latency

Only loopback is touched; each run is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.mock.process import mock_process  # noqa: E402


def measure(latency: float, timeout: float) -> dict[str, float | int]:
    """One default live run against the mock at this backup latency: what it cost, in seconds and counts."""
    args = ("--backup-delay", f"{latency:g}", "--restore-delay", f"{latency / 2:g}")
    with mock_process(*args) as credentials, tempfile.TemporaryDirectory() as reports:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": reports,
            **credentials,
            "RAFF_ALLOW_WRITES": "1",
            "RAFF_ALLOW_RESTORE": "1",
        }
        started = time.monotonic()
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--report-dir={reports}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        )
        wall = time.monotonic() - started
        results = json.loads((Path(reports) / "results.json").read_text(encoding="utf-8"))
    live = results["live"]
    return {
        "latency_s": latency,
        "exit": completed.returncode,
        "wall_s": round(wall, 1),
        "waited_s": live["wait_seconds"],
        "backups": live["backups_created"],
        "requests": live.get("requests_sent", 0),
        "left": len(live.get("leftovers") or []),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, action="append", help="backup latency in seconds (repeatable)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="bound on one run, seconds")
    options = parser.parse_args()
    print("latency  exit  wall      waited    wall/latency  waited/latency  backups  requests  left")
    for latency in options.latency or [5.0, 10.0, 30.0]:
        row = measure(latency, options.timeout)
        print(
            f"{row['latency_s']:>5g} s  {row['exit']:>4}  {row['wall_s']:>6.1f} s  {row['waited_s']:>6.1f} s  "
            f"{row['wall_s'] / latency:>12.1f}  {row['waited_s'] / latency:>14.1f}  {row['backups']:>7}  "
            f"{row['requests']:>8}  {row['left']:>4}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
