"""The proof that every check can fail, and blames only what broke: the suite against the mock with
each planted defect.

One row per defect of the bundled mock; each row runs the requirement tests (the scenario
and the negative tests, not the generated traffic, which has its own proof) and expects the
run to fail and the report to call violated exactly the requirements ``VIOLATED`` names for it:
a requirement missing is a hole, one more is a false blame (precision as a self-test).
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


# The exact set of requirements each defect's run must call violated. Most rows hold the defect's own
# requirement alone. A row with more says, per extra requirement, why it is a TRUE consequence: the
# server broke that requirement's own statement too, at another step, judged against what it had
# shown right before that step. Every violation of every row was read against its evidence (the
# findings' exchanges) and the mock's code; where one was not true, the check was fixed, not this table.
VIOLATED: dict[str, frozenset[str]] = {
    "reset_returns_200": frozenset({"RC-01", "RC-14"}),  # RC-14: 200 is no documented status of resetBackupChain
    "reset_success_false": frozenset({"RC-01", "RC-30"}),  # RC-30: a 202 whose success is false (P-SUCCESS)
    "reset_answers_html": frozenset({"RC-01", "RC-14"}),  # RC-14: the 202's body is not JSON (P-CONTRACT)
    "reset_unknown_vm_accepted": frozenset({"RC-02"}),
    "reset_ignores_missing_project": frozenset({"RC-03"}),
    "reset_accepts_non_uuid_project": frozenset({"RC-04"}),
    "reset_non_uuid_id_crashes": frozenset({"RC-05", "RC-14"}),  # RC-14: 500 is no documented status
    "closed_points_renumbered": frozenset(
        {
            "RC-06",
            "RC-17",  # its statement names increment_id in every view "before and after a reset": A1 0, then 1
            "RC-22",  # the final reset renumbers A6 (0 right before it) to 1; RC-22 names "with increment_id 0"
        }
    ),
    "closed_points_hidden": frozenset(
        {
            "RC-06",
            "RC-21",  # A3, listed right before the in-flight reset, is not listed once A6 is ready
            "RC-22",  # A6, listed right before the final reset, is not listed after it
        }
    ),
    # Not RC-21: A3 and A4 are still in flight when the in-flight reset closes them, so it deletes nothing.
    "reset_deletes_closed_points": frozenset({"RC-06"}),
    "closed_points_not_restorable": frozenset({"RC-07"}),
    "numbering_continues_after_reset": frozenset({"RC-08"}),
    "reset_spills_to_other_vm": frozenset({"RC-09"}),
    "second_reset_rejected": frozenset({"RC-10"}),
    "reset_ignores_project_scope": frozenset(
        {
            "RC-11",
            "RC-19",  # the same mock shortcut accepts a reset whose X-Project-ID is of no project of the account
        }
    ),
    "reset_ignores_account": frozenset({"RC-12"}),
    "reset_ignores_auth": frozenset({"RC-13"}),
    "reset_wrong_key_accepted": frozenset({"RC-13"}),
    "backup_storage_size_string": frozenset({"RC-14"}),
    "error_body_not_json": frozenset({"RC-14"}),
    "chain_delete_spills_into_open_series": frozenset({"RC-15"}),
    "chain_delete_removes_oldest_series": frozenset(
        {
            "RC-15",
            "RC-31",  # the open series' delete through A7 removes A6's series, then the VM's oldest
        }
    ),
    "delete_with_dependents_cascades": frozenset({"RC-16"}),
    "delete_with_dependents_deletes_point": frozenset({"RC-16"}),
    "unfiltered_listing_drops_increment": frozenset({"RC-17"}),
    "listing_offset_off_by_one": frozenset({"RC-18"}),
    "list_total_ignores_filter": frozenset({"RC-18"}),
    "list_total_is_page_size": frozenset({"RC-18"}),
    "offset_past_end_crashes": frozenset({"RC-14"}),
    "reset_accepts_unknown_project": frozenset({"RC-19"}),
    "unscoped_listing_ignores_vm_filter": frozenset({"RC-20"}),
    "vm_filter_crosses_accounts": frozenset({"RC-20"}),
    "reset_in_flight_ignored": frozenset({"RC-21"}),
    "closed_series_pruned_after_baseline": frozenset(
        {
            "RC-21",
            "RC-06",  # A1 and A2, listed after the resets, are pruned once A3 (a baseline) is ready
        }
    ),
    "reset_drops_baseline_only_series": frozenset({"RC-22"}),
    "reset_skips_baseline_only_series": frozenset({"RC-22"}),
    "open_chain_delete_spills_into_closed_series": frozenset({"RC-31"}),
    "undeclared_method_accepted": frozenset({"RC-23"}),
    "allow_header_lists_undeclared_method": frozenset({"RC-23"}),
    "deleted_backup_still_readable": frozenset({"RC-24"}),
    "restore_default_named_crashes": frozenset({"RC-14"}),
    "unissued_backup_id_crashes": frozenset({"RC-14"}),
    "name_at_max_length_rejected": frozenset({"RC-25"}),
    "malformed_vm_filter_ignored": frozenset({"RC-25"}),
    "default_named_backup_not_found": frozenset({"RC-24"}),
    "closed_point_restore_refused": frozenset({"RC-07"}),
    "closed_point_get_not_found": frozenset({"RC-17"}),
    "series_reopens_after_reset": frozenset(
        {
            "RC-08",
            "RC-17",  # the backup announced with increment_id 0 is listed with 2 before any other reset
        }
    ),
    "backups_never_ready": frozenset(),  # breaks no documented rule: inconclusive (INCONCLUSIVE_DEFECTS)
    "non_ascii_name_mangled": frozenset({"RC-26"}),
    "listing_account_id_is_project_id": frozenset({"RC-17"}),
    "delete_answers_plain_text": frozenset({"RC-14"}),
    "created_at_an_hour_ahead": frozenset({"RC-27"}),
    "vm_filter_case_sensitive": frozenset({"RC-28"}),
    "unfiltered_listing_cancels_reset": frozenset({"RC-08"}),
    "restore_ignores_project_scope": frozenset({"RC-29"}),
    "listing_shows_lower_accounts": frozenset({"RC-20"}),
    "get_vm_success_false": frozenset({"RC-30"}),
    "restore_in_flight_408": frozenset({"RC-14"}),
    # Not RC-10: A6, the one backup after a single reset, now follows that reset at once and is no baseline
    # either, so the double reset cannot be told apart from a single one.
    "reset_takes_effect_late": frozenset({"RC-08"}),
    # One per kind of input on a write (the variant matrix, conformance/matrix.py).
    "reset_upper_case_id_not_found": frozenset({"RC-28"}),
    "reset_takes_backup_id": frozenset({"RC-02"}),
    "delete_repeated_project_header_crashes": frozenset({"RC-14"}),
    "reset_unparsed_body_crashes": frozenset({"RC-14"}),
    "reset_at_once_crashes": frozenset({"RC-14"}),
    "restore_takes_vm_id": frozenset({"RC-17"}),  # the judge's P-KIND on a restore
    "reset_project_case_sensitive": frozenset({"RC-28"}),  # the judge's P-EQUIVALENT: a spelled write refused (400)
    "create_coerces_wrong_typed_name": frozenset({"RC-25"}),  # the judge's P-REQUEST alone
}


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


def violated(results: dict) -> frozenset[str]:
    return frozenset(req for req, verdict in verdicts(results).items() if verdict == "violation")


def blamed(results: dict, requirements: frozenset[str]) -> str:
    """The violations reported under these requirements, one line each: what a reader checks first."""
    return "\n".join(
        f"  {f['requirement']} {f['test'].split('::')[-1]}: {f['title']}: {f['message'][:300]}"
        for f in results.get("findings", [])
        if f["classification"] == "violation" and f["requirement"] in requirements
    )


def test_precision_table_names_every_defect() -> None:
    """Every planted defect has its exact set, and each set holds the defect's own requirement."""
    assert VIOLATED.keys() == DEFECTS.keys(), sorted(VIOLATED.keys() ^ DEFECTS.keys())
    for name, defect in DEFECTS.items():
        if name not in INCONCLUSIVE_DEFECTS:
            assert defect.requirement in VIOLATED[name], f"{name}: {defect.requirement} not in {set(VIOLATED[name])}"


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
    got, expected = violated(results), VIOLATED[defect]
    assert got == expected, (
        f"{defect}: violated {sorted(got)}, expected exactly {sorted(expected)}\n"
        f"false blame? (a requirement not in the table)\n{blamed(results, got - expected)}\n"
        f"missing: {sorted(expected - got)}"
    )
