"""The proof that every check can fail: the suite against the mock with each planted defect.

One row per defect of the bundled mock; each row runs the requirement tests (the scenario
and the negative tests, not the generated traffic, which has its own proof) and expects the
run to fail and the report to name the defect's requirement as violated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.mock import DEFECTS
from conformance.report.model import validate_results

ROOT = Path(__file__).resolve().parents[1]
SEMANTIC_TESTS = [
    "conformance/tests/test_reset_chain.py",
    "conformance/tests/test_reset_chain_negative.py",
    "conformance/tests/test_backups.py",
    "conformance/tests/test_backups_views.py",
    "conformance/tests/test_reset_chain_shapes.py",
    "conformance/tests/test_backups_negative.py",
    "conformance/tests/test_variants.py",  # the variant matrix, after the scenario
]


# Requirements that only the generated traffic judges (Schemathesis' checks with no scenario
# step behind them): their defects' rows run that module too.
GENERATED_ONLY = {
    "RC-23": "conformance/tests/test_fuzz_backups.py",  # unsupported_method, allow_header_conformance
    "RC-24": "conformance/tests/test_backups_lifecycle.py",  # use_after_free, created_backup_found
    "RC-25": "conformance/tests/test_fuzz_backups.py",  # negative_data_rejection, positive_data_acceptance
}
# Defects of a requirement the scenario judges too, but that only generated traffic reaches.
GENERATED_DEFECTS = {
    "restore_default_named_crashes": "conformance/tests/test_backups_lifecycle.py",  # a generated create, then restore
    "offset_past_end_crashes": "conformance/tests/test_fuzz_backups.py",
    "unissued_backup_id_crashes": "conformance/tests/test_fuzz_backups.py",
}


# Defects that break no documented rule (a backup may take long): the run must end inconclusive
# (exit 6) with no violation, whatever it waited for. The extra arguments keep the row short.
INCONCLUSIVE_DEFECTS = {"backups_never_ready": ("--ready-timeout=2",)}


# Defects under which no request can delete one of the run's backups (both deletes answer 404 for
# it): the run cannot clean it up, and must list it as left behind instead of counting it gone.
UNDELETABLE_DEFECTS = {"default_named_backup_not_found"}


# Generated traffic is random; a row that runs it uses this seed so that CI is never red by luck.
# How often the default run's random seeds catch these defects is measured, not assumed:
# `python benchmarks/run.py --catch-rate N --defects ...`.
GENERATED_SEED = "20260514"


def run_suite(tmp_path: Path, *args: str, extra: tuple[str, ...] = ()) -> tuple[int, dict, str]:
    report_dir = tmp_path / "reports"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *SEMANTIC_TESTS, *extra, "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--report-dir", str(report_dir), "--mock-time=requests", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    results_path = report_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    return completed.returncode, results, completed.stdout + completed.stderr


def verdicts(results: dict) -> dict[str, str]:
    return {req["id"]: req["verdict"] for req in results.get("requirements", [])}


def test_suite_passes_on_clean_mock(tmp_path: Path) -> None:
    code, results, output = run_suite(tmp_path)
    assert code == 0, output[-3000:]
    assert "violation" not in verdicts(results).values()
    # What the plugin writes is what the report reads: a field one adds and the other does not
    # know puts a "does not match the data model" banner at the top of the report.
    assert validate_results(results) == []


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_suite_catches_planted_defect(tmp_path: Path, defect: str) -> None:
    requirement = DEFECTS[defect].requirement
    module = GENERATED_DEFECTS.get(defect) or GENERATED_ONLY.get(requirement)
    extra = (module, f"--hypothesis-seed={GENERATED_SEED}") if module else ()
    arguments = ("--mock-defect", defect, *INCONCLUSIVE_DEFECTS.get(defect, ()))
    code, results, output = run_suite(tmp_path, *arguments, extra=extra)
    # Whatever the defect does to the answers, the run deletes everything it created, or says what it
    # could not (read from the mock's own state, not through the API whose answers the defect falsifies).
    live = results.get("live", {})
    expected_left = len(live.get("leftovers", [])) if defect in UNDELETABLE_DEFECTS else 0
    assert live.get("left_in_mock") == expected_left, f"{defect}: backups left: {live}\n{output[-2000:]}"
    if defect in UNDELETABLE_DEFECTS:
        assert expected_left > 0, f"{defect}: the run left a backup it could not delete and did not say so"
    if defect in INCONCLUSIVE_DEFECTS:
        assert code == 6, f"{defect}: expected an inconclusive run (exit 6), got {code}\n{output[-3000:]}"
        assert "violation" not in verdicts(results).values(), output[-3000:]
        return
    assert code == 1, f"{defect}: the suite passed\n{output[-3000:]}"
    assert verdicts(results).get(requirement) == "violation", (
        f"{defect} breaks {requirement}, but the report says {verdicts(results).get(requirement)}\n{output[-2000:]}"
    )
