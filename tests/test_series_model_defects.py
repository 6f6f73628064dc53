"""Proof that the model-based machine (conformance/tests/test_series_model.py) is worth running.

1. Against the clean bundled mock it passes, within its ~15 s budget.
2. Against each planted defect of a requirement it checks, it fails on its own, names that
   requirement, and Hypothesis prints a shrunk program of at most a handful of steps.

Each run is a real ``python -m pytest`` subprocess, as a user would start it. The defect runs
get a dedicated budget (PROOF_BUDGET: 100 examples, fixed seed) so that even the rarest
sequence is found; they stop at the first failure, then shrink. Shrinking dominates: every
replay waits for its mock backups again, and Hypothesis keeps trying for 200 replays after its
last improvement. On the mock's request time those waits are a few requests, not seconds.
The runs go one per core.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.mock import DEFECTS

ROOT = Path(__file__).resolve().parents[1]
MACHINE = "conformance/tests/test_series_model.py"
NODEID = f"{MACHINE}::test_backup_series_follow_model"
# What the machine checks: its own requirements, and the refused resets it sends (RC-02 unknown
# VM, RC-03 no X-Project-ID, RC-11 another project's VM).
CHECKED = {"RC-06", "RC-07", "RC-08", "RC-09", "RC-10", "RC-15", "RC-16", "RC-02", "RC-03", "RC-11"}
# The machine also checks RC-17 and RC-18 after every step; their defects are proven by the
# default run (tests/test_defects.py). Run them here too with MODEL_PROOF_ALL=1 (~40 s more).
if os.environ.get("MODEL_PROOF_ALL"):
    CHECKED |= {"RC-17", "RC-18"}
# The machine resets while a backup is in flight too (RC-21), but a baseline missing after such a
# reset it blames on RC-08, as after any reset: RC-21's defects are the default run's to name.
# The machine catches this one too, but cannot shrink it: the defect's deletes depend on which
# series are the VM's oldest, which includes what an earlier example's cleanup (itself a series
# delete, as defective) left behind, so Hypothesis' replays take other paths. The default run names it.
NOT_SHRINKABLE = {"chain_delete_removes_oldest_series"}
# The slowest rows (~30-50 s each on 2 cores). The default run proves these defects too
# (tests/test_defects.py); MODEL_PROOF_ALL=1 (CI's separate step) runs them here, which keeps the
# self-test command under 5 minutes on 2 cores.
SLOW_ROWS = {
    "closed_points_renumbered",
    "delete_with_dependents_deletes_point",
    "chain_delete_spills_into_open_series",
    "delete_with_dependents_cascades",
}
# Defects planted for the default run's verdict rules and properties (a blocked step judged, a
# backup that never gets ready, a read or a late reset undoing a reset): the default run names
# them (tests/test_defects.py); the machine is no better judge of them, and backups_never_ready
# would only make it wait.
DEFAULT_RUN_ONLY = {
    "closed_point_restore_refused",
    "series_reopens_after_reset",
    "backups_never_ready",
    "unfiltered_listing_cancels_reset",
    "reset_takes_effect_late",
    # An id of another kind in the reset's path (the variant matrix, conformance/matrix.py): the
    # machine resets only VMs, so this is the default run's to name.
    "reset_takes_backup_id",
}
LEFT_OUT = NOT_SHRINKABLE | DEFAULT_RUN_ONLY | (set() if os.environ.get("MODEL_PROOF_ALL") else SLOW_ROWS)
SERIES_DEFECTS = sorted(
    name for name, defect in DEFECTS.items() if defect.requirement in CHECKED and name not in LEFT_OUT
)
MAX_SHRUNK_STEPS = 8  # Hypothesis sometimes stops one or two steps above the minimum
CLEAN_BUDGET_S = 25.0  # the machine aims at ~15 s; the margin absorbs a loaded CI machine
RUN_TIMEOUT_S = 900.0
# The defect runs' dedicated budget: Hypothesis' "default" profile (100 examples) and a fixed
# seed. The seed makes the proof reproducible: the same sequences and the same shrunk
# programs on every run. With a random seed, Hypothesis' swarm testing now and then leaves a
# few no-op steps in front of the shrunk program, which would make the step bound flaky.
#
# The mock counts its delays in requests (``--mock-time=requests``, mock/clock.py): each
# backup still goes pending -> creating -> ready, but without wall time, so shrinking, which
# replays every wait, costs CPU rather than minutes of sleeping.
PROOF_BUDGET = ("--hypothesis-profile=default", "--hypothesis-seed=1", "--mock-time=requests")
# On request time the runs are CPU-bound: one per core, or they only crowd each other out.
PARALLEL_RUNS = max(1, min(4, os.cpu_count() or 1))
# Longest first, so the pool ends sooner: these need two backups in one series, and every
# replay while shrinking waits for them again.
SLOW_FIRST = frozenset(
    {
        "closed_points_not_restorable",  # the rarest sequence (create, reset, restore): ~90 s
        "closed_points_hidden",
        "chain_delete_spills_into_open_series",
        "reset_spills_to_other_vm",
        "numbering_continues_after_reset",
        "delete_with_dependents_cascades",
        "delete_with_dependents_deletes_point",
    }
)
# A step of Hypothesis' printed program: "state.rule(...)", "points_0 = state.rule(...)" or
# "(points_1,) = state.rule(...)"; invariant checks and the teardown are not steps.
STEP = re.compile(r"^(?:[\w, ()]+ = )?state\.(\w+)\(")
NOT_STEPS = {"listings_match_model", "teardown"}


@dataclass
class Run:
    args: list[str]
    returncode: int
    output: str
    seconds: float
    results: dict[str, Any]

    def test(self) -> dict[str, Any]:
        """The machine's record in results.json ({} if the run wrote none)."""
        return next((t for t in self.results.get("tests", []) if t["nodeid"] == NODEID), {})

    def program(self) -> list[str]:
        """The shrunk program Hypothesis printed, one line per statement (from the machine's finding,
        which keeps it whole; the terminal shows it as a numbered list of steps)."""
        messages = [f["message"] for f in self.results.get("findings", []) if f["test"] == NODEID]
        lines = [line.strip() for message in messages for line in message.splitlines()]
        start = next((i for i, line in enumerate(lines) if line.startswith("state = SeriesMachine(")), None)
        if start is None:
            return []
        end = next((i for i in range(start, len(lines)) if lines[i] == "state.teardown()"), len(lines) - 1)
        return lines[start : end + 1]

    def steps(self) -> list[str]:
        return [line for line in self.program() if (m := STEP.match(line)) and m.group(1) not in NOT_STEPS]

    def describe(self) -> str:
        return f"`{' '.join(self.args)}` exited {self.returncode} after {self.seconds:.0f} s:\n{self.output[-4000:]}"


def run_machine(tmp: Path, *extra: str) -> Run:
    """One pytest run of the machine alone, with its own report dir and Hypothesis database."""
    tmp.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "pytest", MACHINE, "-m", "model", "-q", "-p", "no:cacheprovider"]
    args += ["--report-dir", str(tmp / "report"), *extra]
    # A private example database: no run replays another run's failures.
    env = {**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp / "hypothesis")}
    env.pop("RAFF_BASE_URL", None)  # always the bundled mock, whatever the caller's shell says
    started = time.monotonic()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    seconds = time.monotonic() - started
    results_file = tmp / "report" / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    return Run(args[2:], done.returncode, done.stdout + done.stderr, seconds, results)


@pytest.fixture(scope="module")
def defect_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Run]]]:
    """The machine against each selected defect, started together, a few at a time."""
    wanted = [
        item.callspec.params["defect"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_series_model_catches_defect" and hasattr(item, "callspec")
    ]
    wanted.sort(key=lambda name: (name not in SLOW_FIRST, name != "closed_points_not_restorable"))
    with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
        yield {
            name: pool.submit(run_machine, tmp_path_factory.mktemp(name), "--mock-defect", name, *PROOF_BUDGET)
            for name in wanted
        }


@pytest.mark.slow
def test_series_model_passes_clean_mock(tmp_path: Path) -> None:
    run = run_machine(tmp_path)
    assert run.returncode == 0, run.describe()
    test = run.test()
    assert test.get("outcome") == "passed", run.describe()
    print(f"clean mock: passed in {test['duration_s']:.1f} s")
    assert test["duration_s"] < CLEAN_BUDGET_S, f"the machine took {test['duration_s']:.1f} s on the clean mock"


@pytest.mark.slow
@pytest.mark.parametrize("defect", SERIES_DEFECTS)
def test_series_model_catches_defect(defect: str, defect_runs: dict[str, Future[Run]]) -> None:
    run = defect_runs[defect].result()
    assert run.returncode == 1, run.describe()
    test = run.test()
    assert test.get("outcome") == "failed", run.describe()
    requirement = DEFECTS[defect].requirement
    named = [f["requirement"] for f in run.results["findings"] if f["test"] == NODEID]
    assert named == [requirement], f"{defect} breaks {requirement}; the machine's finding names {named}"
    program, steps = run.program(), run.steps()
    assert program, f"no shrunk program in the output:\n{run.describe()}"
    print(f"{defect}: {requirement} after {run.seconds:.0f} s, shrunk to {len(steps)} steps:", *program, sep="\n")
    assert len(steps) <= MAX_SHRUNK_STEPS, "\n".join(program)
