"""Recorded captures of a plain client session: the recorder, the per-exchange baseline, and the
capture judge on every planted defect (issue 29).

Each capture is recorded once per module (``captured``), so the file stays well under a minute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

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
