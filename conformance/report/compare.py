"""Run-to-run comparison and the baseline of known issues.

Both work on ``finding_key``, the identity of a finding that survives between runs (finding
ids such as F1 are renumbered every run). Notes judge nothing and are left out of the
comparison; inconclusive findings are compared like the others (a precondition that failed
in this run and not in the last is worth knowing) but never count as violations. A baseline
accepts violations only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from conformance.report.model import BaselineEntry, BaselineMatch, Comparison, finding_key

REQUIRED = ("check", "title", "reason", "ticket", "expires")


class BaselineError(ValueError):
    """The baseline file is malformed; the message names every bad entry."""


def compare(current: Mapping[str, Any], previous: Mapping[str, Any], previous_path: str) -> Comparison:
    """The ``comparison`` block: findings new in ``current``, fixed since ``previous``, unchanged.

    Notes are not compared: one appearing or going away says nothing about the server.
    """
    now = {finding_key(f) for f in _compared(current)}
    before = {finding_key(f) for f in _compared(previous)}
    return {
        "previous": {"started_at": str((previous.get("run") or {}).get("started_at", "")), "path": previous_path},
        "new": sorted(now - before),
        "fixed": sorted(before - now),
        "unchanged": sorted(now & before),
    }


def _compared(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [f for f in results.get("findings") or [] if f.get("classification") != "note"]


def load_baseline(path: str | Path) -> list[BaselineEntry]:
    """Entries of a YAML or JSON baseline: a list, or a mapping with an ``entries`` list."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML, one loader reads both
    raw = data.get("entries") if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise BaselineError(f"{path}: expected a list of entries (or a mapping with 'entries')")
    entries: list[BaselineEntry] = []
    problems: list[str] = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            problems.append(f"entry {index}: expected a mapping, got {type(item).__name__}")
            continue
        name = f"entry {index} ({_describe(item)})"
        missing = [field for field in REQUIRED if item.get(field) in (None, "")]
        if missing:
            problems.append(f"{name}: missing {', '.join(missing)}")
            continue
        expires = item["expires"]
        if not isinstance(expires, date):  # YAML already turns an unquoted 2026-06-30 into a date
            try:
                expires = date.fromisoformat(str(expires))
            except ValueError:
                problems.append(f"{name}: expires {item['expires']!r} is not YYYY-MM-DD")
                continue
        entries.append(
            {
                "requirement": _opt(item.get("requirement")),
                "operation": _opt(item.get("operation")),
                "check": str(item["check"]),
                "title": str(item["title"]),
                "reason": str(item["reason"]),
                "ticket": str(item["ticket"]),
                "expires": expires.isoformat(),
            }
        )
    if problems:
        raise BaselineError(f"{path}: " + "; ".join(problems))
    return entries


def apply_baseline(
    results: Mapping[str, Any], entries: Iterable[BaselineEntry], today: date, path: str = ""
) -> dict[str, Any]:
    """A copy of ``results`` with baselined findings marked known and the ``baseline`` block filled.

    An expired entry suppresses nothing: its findings count as violations again, so that a
    baseline cannot quietly turn into a permanent waiver. Only violations are matched: a spec
    gap, an inconclusive finding or a note fails nothing, so there is nothing to accept.
    """
    out = copy.deepcopy(dict(results))
    findings = out.get("findings") or []
    known: list[BaselineMatch] = []
    expired: list[BaselineMatch] = []
    fixed: list[BaselineMatch] = []
    for entry in entries:
        key = finding_key(entry)
        matches = [f for f in findings if f["classification"] == "violation" and finding_key(f) == key]
        match: BaselineMatch = {**entry, "key": key, "findings": [f["id"] for f in matches]}
        if not matches:
            fixed.append(match)
        elif date.fromisoformat(entry["expires"]) < today:
            expired.append(match)
        else:
            known.append(match)
            for finding in matches:
                finding["known"] = {"reason": entry["reason"], "ticket": entry["ticket"], "expires": entry["expires"]}

    findings_by_id = {f["id"]: f for f in findings}
    tests_by_id = {t["nodeid"]: t for t in out.get("tests") or []}
    for requirement in out.get("requirements") or []:
        if requirement["verdict"] != "violation":
            continue
        violations = [
            f for f in findings if f.get("requirement") == requirement["id"] and f["classification"] == "violation"
        ]
        # A failure without a finding (a crash, a bare assert) is not covered by any entry.
        unexplained = any(
            tests_by_id[n]["outcome"] == "error"
            or (
                tests_by_id[n]["outcome"] == "failed"
                and not any(f in findings_by_id for f in tests_by_id[n]["findings"])
            )
            for n in requirement["tests"]
            if n in tests_by_id
        )
        if violations and all(f.get("known") for f in violations) and not unexplained:
            requirement["verdict"] = "known"
    out["baseline"] = {"path": path, "known": known, "expired": expired, "fixed": fixed}
    # A run verdict decided before the baseline is stale now; without it the report derives the
    # verdict from the requirements (the plugin applies the baseline first, then decides).
    (out.get("run") or {}).pop("verdict", None)
    return out


def _opt(value: Any) -> str | None:
    return None if value in (None, "", "-") else str(value)


def _describe(item: Mapping[str, Any]) -> str:
    """How an entry is named in errors: its key parts, so the author can find it in the file."""
    return "|".join(str(item.get(part) or "-") for part in ("requirement", "operation", "check", "title"))
