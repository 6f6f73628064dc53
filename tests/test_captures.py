"""Recorded captures of a plain client session: the recorder, the per-exchange baseline, and the
capture judge on every planted defect (issue 29).

Each capture is recorded, judged and validated once per module, so the file stays well under a minute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conformance.mock import DEFECTS
from conformance.traffic import judge_capture
from tests.captures import (
    CANARY_KEY,
    har_entries,
    operation_of,
    record_overlapping_session,
    record_session,
    synthetic_capture,
    validate_per_exchange,
)

CLEAN = "(clean)"
# The exact set of requirements the capture judge must call violated on one plain session's capture
# against the mock with each defect. Read against the capture's evidence and the mock's code:
# an extra requirement is a false blame (a bug of the judge, never a row); a missing one a hole.
# An empty set: the session's traffic does not reach the defect (said per row, or per group).
CAPTURE_CAUGHT: dict[str, frozenset[str]] = {
    # RC-01: the session's one reset, sent as any client sends it.
    "reset_returns_200": frozenset({"RC-01", "RC-14"}),  # RC-14: 200 is no documented status of the reset
    "reset_success_false": frozenset({"RC-01", "RC-30"}),  # RC-30: a 202 whose success is false (P-SUCCESS)
    "reset_answers_html": frozenset({"RC-01", "RC-14"}),  # RC-14: the 202's body is not JSON (P-CONTRACT)
    # Malformed, foreign, unauthenticated or repeated requests: a plain client sends none.
    "reset_unknown_vm_accepted": frozenset(),
    "reset_ignores_missing_project": frozenset(),
    "reset_accepts_non_uuid_project": frozenset(),
    "reset_non_uuid_id_crashes": frozenset(),
    "second_reset_rejected": frozenset(),  # one reset, no second before a backup
    "reset_ignores_project_scope": frozenset(),
    "reset_ignores_account": frozenset(),
    "reset_ignores_auth": frozenset(),
    "reset_wrong_key_accepted": frozenset(),
    "reset_accepts_unknown_project": frozenset(),
    "reset_upper_case_id_not_found": frozenset(),
    "reset_takes_backup_id": frozenset(),
    "reset_unparsed_body_crashes": frozenset(),
    "reset_at_once_crashes": frozenset(),
    "reset_project_case_sensitive": frozenset(),
    "restore_takes_vm_id": frozenset(),
    "restore_ignores_project_scope": frozenset(),
    "delete_repeated_project_header_crashes": frozenset(),
    "create_coerces_wrong_typed_name": frozenset(),
    "name_at_max_length_rejected": frozenset(),
    "malformed_vm_filter_ignored": frozenset(),
    "vm_filter_case_sensitive": frozenset(),
    "vm_filter_crosses_accounts": frozenset(),
    "unissued_backup_id_crashes": frozenset(),
    "offset_past_end_crashes": frozenset(),  # its one page (offset 1 of 2) is not past the end
    "undeclared_method_accepted": frozenset(),
    "allow_header_lists_undeclared_method": frozenset(),
    # RC-06: a1 and a2, listed before the reset, and the listing right after it.
    "closed_points_renumbered": frozenset(
        {"RC-06", "RC-17"}  # RC-17: a1 is 0 in its create answer, 1 in the listing after the reset (P-STABLE)
    ),
    "closed_points_hidden": frozenset({"RC-06"}),
    # Not RC-07: a1's restore answers 404 after creates (a3, a4) that may prune by the server's own
    # retention, and no view showed a1 since: its 404 proves nothing (the reset's deletion is RC-06's).
    "reset_deletes_closed_points": frozenset({"RC-06"}),
    # RC-07: the restore of a1, a point of the closed series.
    "closed_points_not_restorable": frozenset({"RC-07"}),
    "closed_point_restore_refused": frozenset({"RC-07"}),
    # RC-08: a3 and a4, the two backups after the reset.
    "numbering_continues_after_reset": frozenset({"RC-08"}),
    "reset_takes_effect_late": frozenset({"RC-08"}),  # a3 is 2 right after the reset's 202
    "series_reopens_after_reset": frozenset({"RC-08", "RC-17"}),  # RC-17: a3 announced 0, then read as 2
    "unfiltered_listing_cancels_reset": frozenset(),  # its listing without vm_id comes after a3, not before
    "backups_never_ready": frozenset(),  # slow is no breach: the polls run out, nothing is called violated
    # RC-09: b1 before the reset of the first VM, b2 after it.
    "reset_spills_to_other_vm": frozenset({"RC-09"}),
    # RC-14: the contract on every answer.
    "backup_storage_size_string": frozenset({"RC-14"}),
    "error_body_not_json": frozenset({"RC-14"}),  # getBackup of a1 once deleted: 404 text/plain
    "delete_answers_plain_text": frozenset({"RC-14"}),
    "restore_in_flight_408": frozenset(),  # the session restores a ready point
    "restore_default_named_crashes": frozenset(),  # every backup of the session is named
    # RC-15: the listing right before and right after the chain delete of a1's series; a3 (0) is gone too.
    "chain_delete_spills_into_open_series": frozenset({"RC-15"}),
    "chain_delete_removes_oldest_series": frozenset(),  # the series deleted is the VM's oldest: nothing differs
    # RC-16, RC-31: the session deletes only points nothing depends on, and no open series beside a closed one.
    "delete_with_dependents_cascades": frozenset(),
    "delete_with_dependents_deletes_point": frozenset(),
    "open_chain_delete_spills_into_closed_series": frozenset(),
    # RC-17: every view of one backup.
    "unfiltered_listing_drops_increment": frozenset({"RC-17"}),  # a1: 0 by getBackup, null in the whole listing
    "closed_point_get_not_found": frozenset({"RC-17"}),  # a1: 404 by getBackup between two views showing it
    "listing_account_id_is_project_id": frozenset({"RC-17"}),
    # RC-18: the VM's listing and its page (limit 1, offset 1).
    "listing_offset_off_by_one": frozenset({"RC-18"}),
    "list_total_ignores_filter": frozenset({"RC-18"}),
    "list_total_is_page_size": frozenset({"RC-18"}),
    # RC-20: every listing is sent with X-Project-ID, and the key's account sorts first.
    "unscoped_listing_ignores_vm_filter": frozenset(),
    "listing_shows_lower_accounts": frozenset(),
    # RC-21, RC-22: the reset is sent with nothing in flight, on a series of two points.
    "reset_in_flight_ignored": frozenset(),
    # The pruning deletes a1 and a2 once a3 is ready. Creates may prune (the docs' free tier), so neither
    # the listings nor a1's restore (404) after them prove a breach; RC-21's shape (a reset while a backup
    # is in flight) is not in the capture.
    "closed_series_pruned_after_baseline": frozenset(),
    "reset_drops_baseline_only_series": frozenset(),
    "reset_skips_baseline_only_series": frozenset(),
    # RC-24: a1 read right after its series' delete.
    "deleted_backup_still_readable": frozenset({"RC-24"}),
    "default_named_backup_not_found": frozenset(),  # every backup of the session is named
    "non_ascii_name_mangled": frozenset(),  # the session's names are ASCII
    "created_at_an_hour_ahead": frozenset({"RC-27"}),
    "get_vm_success_false": frozenset({"RC-30"}),
}
@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The capture of one plain session against the mock with one defect (or CLEAN), recorded once."""
    directory = tmp_path_factory.mktemp("captures")
    paths: dict[str, Path] = {}

    def capture(defect: str) -> Path:
        if defect not in paths:
            path = directory / f"{defect}.har"
            record_session(path, defects=() if defect == CLEAN else (defect,))
            paths[defect] = path
        return paths[defect]

    return capture


@pytest.fixture(scope="module")
def validated(captured: Callable[[str], Path]) -> Callable[[str], set[tuple[str, str]]]:
    """Per-exchange validation failures of a capture, as (operation, check), computed once."""
    cache: dict[str, set[tuple[str, str]]] = {}

    def failures(defect: str) -> set[tuple[str, str]]:
        if defect not in cache:
            cache[defect] = {(f["operation"], f["check"]) for f in validate_per_exchange(captured(defect))}
        return cache[defect]

    return failures


def _bodies(entries: list[dict[str, Any]], operation: str) -> list[dict[str, Any]]:
    return [json.loads(e["response"]["content"]["text"]) for e in entries if operation_of(e)[0] == operation]


def _interval(entry: dict[str, Any]) -> tuple[datetime, datetime]:
    started = datetime.fromisoformat(entry["startedDateTime"])
    return started, started + timedelta(milliseconds=entry["time"])


# ---- the recorder ------------------------------------------------------------------------------


def test_capture__is_har_1_2_with_full_exchanges(captured: Callable[[str], Path]) -> None:
    log = json.loads(captured(CLEAN).read_text())["log"]
    assert log["version"] == "1.2"
    assert log["creator"]["name"]
    for entry in log["entries"]:
        started = datetime.fromisoformat(entry["startedDateTime"])
        assert started.tzinfo is not None
        assert entry["time"] > 0
        sent = {h["name"].lower(): h["value"] for h in entry["request"]["headers"]}
        assert sent["x-api-key"] == CANARY_KEY  # as sent: the judge must keep it out of its output
        got = {h["name"].lower(): h["value"] for h in entry["response"]["headers"]}
        assert "date" in got
        content = entry["response"]["content"]
        assert content["size"] == len(content["text"].encode())
        assert content["mimeType"] == got["content-type"]
        if entry["request"]["method"] == "POST" and entry["request"]["url"].endswith("/api/v1/backups"):
            assert json.loads(entry["request"]["postData"]["text"])["name"].startswith("capture-")


def test_capture__touches_every_operation_of_the_contract(captured: Callable[[str], Path]) -> None:
    from conformance.contract import load_contract

    declared = {
        spec["operationId"]
        for item in load_contract().merged["paths"].values()
        for method, spec in item.items()
        if isinstance(spec, dict) and "operationId" in spec
    }
    assert {operation_of(entry)[0] for entry in har_entries(captured(CLEAN))} == declared


def test_capture__tells_the_story_of_a_reset(captured: Callable[[str], Path]) -> None:
    """On the clean mock: two points, a reset, then a baseline (0) and 1; the closed series deleted
    reads 404; and the session leaves nothing of its own behind."""
    entries = har_entries(captured(CLEAN))
    created = [body["data"] for body in _bodies(entries, "createBackup")]
    assert [(b["name"], b["increment_id"]) for b in created] == [
        ("capture-a1", 0), ("capture-a2", 1), ("capture-b1", 0), ("capture-a3", 0), ("capture-a4", 1),
        ("capture-b2", 1),
    ]
    statuses = [e["response"]["status"] for e in entries]
    assert statuses.count(404) == 1 and all(s < 300 or s == 404 for s in statuses)
    last_listing = _bodies(entries, "listBackups")[-1]["data"]
    assert not [b for b in last_listing if b["name"].startswith("capture-")]


def test_capture__sequential_unless_asked(captured: Callable[[str], Path], tmp_path: Path) -> None:
    def overlapping(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
        spans = [(_interval(e), operation_of(e)[0]) for e in entries]
        return [
            (a[1], b[1])
            for i, a in enumerate(spans)
            for b in spans[i + 1 :]
            if a[0][0] < b[0][1] and b[0][0] < a[0][1]
        ]

    assert overlapping(har_entries(captured(CLEAN))) == []
    record_overlapping_session(tmp_path / "overlap.har")
    assert sorted(overlapping(har_entries(tmp_path / "overlap.har"))[0]) == ["createBackup", "listBackups"]
    assert len(overlapping(har_entries(tmp_path / "overlap.har"))) == 1


def test_capture__recorded_in_well_under_two_seconds(tmp_path: Path) -> None:
    started = time.perf_counter()
    record_session(tmp_path / "timed.har", defects=("backups_never_ready",))  # the longest: polls run out
    assert time.perf_counter() - started < 2.0


def test_synthetic_capture__copies_follow_one_another_with_fresh_ids(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.har"
    synthetic_capture(path, 100)
    entries = har_entries(path)
    assert len(entries) == 100
    starts = [datetime.fromisoformat(e["startedDateTime"]) for e in entries]
    assert starts == sorted(starts)
    created = [body["data"]["id"] for body in _bodies(entries, "createBackup")]
    assert len(created) == len(set(created)) > 6  # two copies, no id reused
    # The server's Date moves with the copy, so created_at stays truthful against it.
    for entry in entries:
        date = next(h["value"] for h in entry["response"]["headers"] if h["name"].lower() == "date")
        assert abs((datetime.strptime(date, "%a, %d %b %Y %H:%M:%S GMT") - starts[entries.index(entry)]
                    .replace(tzinfo=None)).total_seconds()) < 2


# ---- per-exchange validation (the baseline) -----------------------------------------------------


def test_per_exchange_validation__clean_capture_reports_nothing(captured: Callable[[str], Path]) -> None:
    assert validate_per_exchange(captured(CLEAN)) == []


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        ("backup_storage_size_string", ("POST /api/v1/backups", "JsonSchemaError")),
        ("reset_returns_200", ("POST /api/v1/vms/{id}/backups/reset-chain", "UndefinedStatusCode")),
        ("error_body_not_json", ("GET /api/v1/backups/{id}", "UndefinedContentType")),
    ],
)
def test_per_exchange_validation__sees_a_broken_answer(
    validated: Callable[[str], set[tuple[str, str]]], defect: str, expected: tuple[str, str]
) -> None:
    assert expected in validated(defect)


def test_per_exchange_validation__blind_to_a_broken_story(validated: Callable[[str], set[tuple[str, str]]]) -> None:
    """A renumbered closed series is well-formed on every exchange: one at a time, nothing shows it."""
    assert validated("closed_points_renumbered") == set()


# ---- the capture judge -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def judged(captured: Callable[[str], Path]) -> Callable[[str], dict[str, Any]]:
    """The capture judge's results for a capture, computed once."""
    cache: dict[str, dict[str, Any]] = {}

    def results(defect: str) -> dict[str, Any]:
        if defect not in cache:
            cache[defect] = judge_capture(captured(defect))
        return cache[defect]

    return results


def violated(results: dict[str, Any]) -> set[str]:
    return {row["id"] for row in results["requirements"] if row["verdict"] == "violation"}


def test_capture_judge__clean_capture_has_no_violation(judged: Callable[[str], dict[str, Any]]) -> None:
    results = judged(CLEAN)
    assert violated(results) == set()
    assert [f for f in results["findings"] if f["classification"] == "violation"] == []


def test_capture_judge__clean_overlapping_capture_has_no_violation(tmp_path: Path) -> None:
    record_overlapping_session(tmp_path / "overlap.har")
    assert violated(judge_capture(tmp_path / "overlap.har")) == set()


def test_capture_judge__an_overlap_leaves_inconclusive_what_depends_on_it(tmp_path: Path) -> None:
    """The listing right after the reset goes out with a3's create: whether it shows the state before or
    after that create is unknown, so what it shows of the closed points is inconclusive (never a
    violation, never "not covered"); a3's own answer is in order with everything else, so RC-08 stands."""
    record_overlapping_session(tmp_path / "hidden.har", defects=("closed_points_hidden",))
    results = judge_capture(tmp_path / "hidden.har")
    verdicts = {row["id"]: row["verdict"] for row in results["requirements"]}
    assert verdicts["RC-06"] == "inconclusive"
    assert any("overlaps" in f["message"] for f in results["findings"] if f["requirement"] == "RC-06")
    record_overlapping_session(tmp_path / "numbering.har", defects=("numbering_continues_after_reset",))
    assert violated(judge_capture(tmp_path / "numbering.har")) == {"RC-08"}


def test_capture_judge__the_key_sent_never_reaches_the_results(judged: Callable[[str], dict[str, Any]]) -> None:
    for capture in (CLEAN, "backup_storage_size_string", "reset_returns_200"):
        assert CANARY_KEY not in json.dumps(judged(capture))


def test_capture_caught__one_row_per_defect() -> None:
    assert CAPTURE_CAUGHT.keys() == DEFECTS.keys()


@pytest.mark.parametrize("defect", sorted(CAPTURE_CAUGHT))
def test_capture_judge__calls_violated_exactly(judged: Callable[[str], dict[str, Any]], defect: str) -> None:
    assert violated(judged(defect)) == CAPTURE_CAUGHT[defect]


def test_capture_judge__catches_every_defect_per_exchange_validation_catches(
    judged: Callable[[str], dict[str, Any]], validated: Callable[[str], set[tuple[str, str]]]
) -> None:
    clean = validated(CLEAN)
    missed = [name for name in sorted(DEFECTS) if validated(name) - clean and not violated(judged(name))]
    assert missed == []


# The other sitting (``script="tidy-up"``): a double-clicked reset, a delete of a point later points depend
# on, and a series delete of the open series beside a closed one. The exact set each defect it reaches
# must be blamed for, read against the evidence; the rest of the table is the plain session's.
TIDY_UP_CAUGHT: dict[str, frozenset[str]] = {
    CLEAN: frozenset(),
    "second_reset_rejected": frozenset({"RC-10"}),  # the second reset, with no backup between, answers 400
    "delete_with_dependents_cascades": frozenset({"RC-16"}),  # a3's delete answers 200 though a4 depends on it
    "delete_with_dependents_deletes_point": frozenset({"RC-16"}),
    "open_chain_delete_spills_into_closed_series": frozenset({"RC-31"}),  # a1 and a2 go with the open series
    # The series delete through a4 (the open series a3, a4) removes a1, a2 (the VM's oldest) instead.
    "chain_delete_removes_oldest_series": frozenset({"RC-31"}),
}


@pytest.mark.parametrize("defect", sorted(TIDY_UP_CAUGHT))
def test_capture_judge__tidy_up_session_calls_violated_exactly(tmp_path: Path, defect: str) -> None:
    record_session(tmp_path / "tidy.har", defects=() if defect == CLEAN else (defect,), script="tidy-up")
    results = judge_capture(tmp_path / "tidy.har")
    assert violated(results) == TIDY_UP_CAUGHT[defect]
    if defect == CLEAN:  # each check the session is for judged something, and found it kept
        verdicts = {row["id"]: row["verdict"] for row in results["requirements"]}
        assert verdicts["RC-10"] == verdicts["RC-16"] == verdicts["RC-31"] == "pass", verdicts
