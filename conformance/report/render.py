"""results.json -> report.html, junit.xml and the redacted results.json itself.

The HTML comes from ``templates/report.html.j2``; this module only prepares a view of the
data (counts, groupings, sort keys) so that the template stays declarative and no markup is
written in Python.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from conformance.report.junit import junit_from_redacted
from conformance.report.model import VERDICTS, classify_test, finding_key, validate_results
from conformance.report.redact import redact

TEMPLATES = Path(__file__).resolve().parent / "templates"

VERDICT_LABELS = {
    "pass": "pass",
    "violation": "violation",
    "inconclusive": "inconclusive",
    "spec_gap": "spec gap",
    "skipped": "skipped",
    "not_covered": "not covered",
    "not_selected": "not selected",
    "known": "known issue",
}
# Sort order of the matrix's verdict column: what needs a reviewer first.
VERDICT_RANK = {
    "violation": 0,
    "inconclusive": 1,
    "known": 2,
    "spec_gap": 3,
    "not_covered": 4,
    "skipped": 5,
    "not_selected": 6,
    "pass": 7,
}
# Findings under a requirement: what judges the server first, what judges nothing last.
CLASSIFICATION_RANK = {"violation": 0, "inconclusive": 1, "spec_gap": 2, "note": 3}
OPEN_VIOLATIONS = 1  # per requirement, shown unfolded (the others keep their title and message open)
PHASE_ORDER = ("examples", "coverage", "fuzzing", "stateful")
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
_URL = re.compile(r"(https?://[^\s;,)]+)")


def render_html(results: Mapping[str, Any], secrets: Iterable[str] = ()) -> str:
    """The self-contained HTML report for ``results`` (redacted before rendering)."""
    return _html_from_redacted(redact(dict(results), secrets))


def _html_from_redacted(clean: Mapping[str, Any]) -> str:
    template = _environment().get_template("report.html.j2")
    return template.render(r=clean, v=build_view(clean))


def write_reports(results: Mapping[str, Any], out_dir: Path, secrets: Iterable[str] = ()) -> dict[str, Path]:
    """Write results.json, report.html and junit.xml into ``out_dir``; returns their paths by kind."""
    secrets = tuple(secrets)
    clean = redact(dict(results), secrets)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "results.json",
        "html": out_dir / "report.html",
        "junit": out_dir / "junit.xml",
    }
    paths["json"].write_text(json.dumps(clean, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["html"].write_text(_html_from_redacted(clean), encoding="utf-8")
    paths["junit"].write_text(junit_from_redacted(clean), encoding="utf-8")
    return paths


# --- Jinja environment and filters (text in, text out: escaping stays with Jinja) ---


def _template_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs: compiling report.html.j2 took 0.25 s of every run's end.

    Jinja's per-user directory under the system's temporary one, each entry keyed by the template's
    source. Where that directory cannot be made (a read-only or shared /tmp), templates compile per run.
    """
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


@functools.cache  # compiling the template is most of a render's cost; the environment holds no run state
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        bytecode_cache=_template_cache(),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the render instead of vanishing
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pretty=pretty_body,
        duration=format_duration,
        short_hash=lambda value: (value or "")[:12],
        url_parts=url_parts,
        safe_url=safe_url,
        test_name=test_name,
        wordbreaks=wordbreaks,
        url_path=url_path,
        doc_label=doc_label,
    )
    return env


def pretty_body(body: Any) -> str:
    """A body as indented JSON when it is JSON (even JSON inside a string), else as given."""
    if body is None:
        return ""
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return body
        if not isinstance(parsed, dict | list):
            return body
        body = parsed
    return json.dumps(body, indent=2, ensure_ascii=False)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def url_parts(text: str) -> list[tuple[str, bool]]:
    """``text`` split into (piece, is_url) so the template can link the URLs inside prose."""
    return [(part, bool(_URL.fullmatch(part))) for part in _URL.split(text or "") if part]


def safe_url(value: str | None) -> str | None:
    """The URL if it is an http(s) link, else None: data never becomes a javascript: link."""
    return value if value and re.match(r"https?://", value) else None


def test_name(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]


def wordbreaks(name: str) -> markupsafe.Markup:
    """A test name that may wrap after each underscore (and nowhere else) in a narrow column."""
    return markupsafe.Markup("_<wbr>").join(markupsafe.escape(part) for part in name.split("_"))


def url_path(url: str) -> str:
    """The path and query of a URL: the host is in the header once, not on every line."""
    return re.sub(r"^[a-z]+://[^/]+", "", url) or url


def doc_label(url: str) -> str:
    """A short name for a docs link: the page's last path segment ("reset-backup-chain")."""
    path = re.sub(r"^[a-z]+://[^/]+", "", url).split("#")[0].rstrip("/")
    return path.rsplit("/", 1)[-1] or "docs"


# --- the view: everything the template shows that is not a field of results.json ---


def build_view(results: Mapping[str, Any]) -> dict[str, Any]:
    problems = validate_results(results)
    findings: list[dict[str, Any]] = list(results.get("findings") or [])
    tests: list[dict[str, Any]] = list(results.get("tests") or [])
    requirements: list[dict[str, Any]] = list(results.get("requirements") or [])
    strict = bool((results.get("run") or {}).get("strict_spec"))
    findings_by_id = {f["id"]: f for f in findings}
    tests_by_id = {t["nodeid"]: t for t in tests}
    counts_as = {t["nodeid"]: classify_test(t, findings_by_id, strict) for t in tests}

    req_ids = {r["id"] for r in requirements}
    rows = []
    for req in requirements:
        req_findings = sorted(
            (f for f in findings if f.get("requirement") == req["id"]),
            key=lambda f: (
                CLASSIFICATION_RANK.get(f["classification"], 9),
                bool(f.get("known")),
                _finding_order(f),
            ),
        )
        blocked = [f for f in req_findings if f["classification"] == "inconclusive"]
        judging = _group_findings([f for f in req_findings if f["classification"] in ("violation", "spec_gap")])
        # The first few violations open; past them (a foreign server failing a check on every
        # operation) each card folds its details, so the page stays navigable.
        judging = [{**f, "fold": i >= OPEN_VIOLATIONS} if f["classification"] == "violation" else f
                   for i, f in enumerate(judging)]
        rows.append(
            {
                "req": req,
                "label": VERDICT_LABELS.get(req["verdict"], req["verdict"]),
                "rank": VERDICT_RANK.get(req["verdict"], 9),
                "order": _id_order(req["id"]),
                # findings: those that judge the server (violations, spec gaps); blocked: the
                # inconclusive ones; notes: judge nothing. listed: all three, for the matrix.
                "findings": judging,
                "blocked": blocked,
                "steps": _blocked_steps(req, blocked),
                "notes": [f for f in req_findings if f["classification"] == "note"],
                "listed": [*judging, *blocked, *(f for f in req_findings if f["classification"] == "note")],
                "tests": [
                    _test_row(tests_by_id[n], counts_as, _status_for(tests_by_id[n], req["id"], findings_by_id, strict))
                    for n in req["tests"]
                    if n in tests_by_id
                ],
            }
        )
        rows[-1]["matrix_tests"] = _fold_parameters(rows[-1]["tests"])
    orphans = [f for f in findings if f.get("requirement") not in req_ids and f["classification"] != "note"]
    orphan_notes = [f for f in findings if f.get("requirement") not in req_ids and f["classification"] == "note"]
    orphan_kinds = {f["classification"] for f in orphans}

    open_violations = [f for f in findings if f["classification"] == "violation" and not f.get("known")]
    known = [f for f in findings if f.get("known")]
    gaps = [f for f in findings if f["classification"] == "spec_gap"]
    inconclusive = [f for f in findings if f["classification"] == "inconclusive"]
    notes = [f for f in findings if f["classification"] == "note"]
    verdicts = Counter(r["verdict"] for r in requirements)
    outcomes = Counter(t["outcome"] for t in tests)
    failing_tests = [t for t in tests if counts_as[t["nodeid"]] in ("failure", "error")]
    blocked_rows = [row for row in rows if row["req"]["verdict"] == "inconclusive"]
    run = results.get("run") or {}
    verdict = run.get("verdict") or _derived_verdict(tests, open_violations, failing_tests, gaps, verdicts)

    return {
        "problems": problems,
        "verdict": verdict,
        "banner": _banner(verdict, tests, open_violations, gaps, verdicts, strict, blocked_rows),
        "blocked_rows": blocked_rows,
        "verdict_counts": [(v, VERDICT_LABELS[v], verdicts.get(v, 0)) for v in _verdict_display_order()],
        "outcome_parts": [
            f"{outcomes[o]} {o}" for o in ("passed", "failed", "error", "inconclusive", "skipped") if outcomes.get(o)
        ],
        "attention": _group_findings(sorted(open_violations, key=_finding_order)),
        "attention_blocked": _attention_blocked(rows, orphans),
        "unexplained": [t for t in failing_tests if not any(fid in findings_by_id for fid in t["findings"])],
        "known_findings": known,
        "gap_findings": gaps,
        "inconclusive_findings": inconclusive,
        "note_findings": notes,
        "rows": rows,
        "orphans": orphans,
        "orphan_class": next((k for k in ("violation", "inconclusive", "spec_gap") if k in orphan_kinds), "note"),
        "orphan_notes": orphan_notes,
        "operations": sorted({op for r in requirements for op in r.get("operations", [])}),
        "kinds": sorted({r.get("kind", "") for r in requirements}),
        "verdicts_present": [v for v in _verdict_display_order() if verdicts.get(v)],
        "tests": [_test_row(t, counts_as) for t in tests],
        "coverage": _coverage(results.get("coverage") or {}),
        "fuzz": _fuzz(results.get("property_based") or {}),
        "comparison": _comparison(results.get("comparison"), findings),
        "timeline": _timeline((results.get("live") or {}).get("timeline")),
        "key_of": {f["id"]: finding_key(f) for f in findings},
    }


def _group_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings that say the same thing as one card: the first as the sample, with the count.

    Spec gaps group by (operation, status): thirty generated requests that each got a 401 the
    published spec omits are one gap of the spec, not thirty. Violations group only when they are
    the same failure (check, operation, title, status) seen by several tests, as Schemathesis' own
    checks are on a server that breaks them everywhere. The others keep their anchors
    (``group.ids``), so links to them still land on the card.
    """
    grouped: list[dict[str, Any]] = []
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for finding in findings:
        if finding["classification"] not in ("spec_gap", "violation") or finding.get("known"):
            grouped.append(finding)
            continue
        last = (finding.get("exchanges") or [{}])[-1]
        status = (last.get("response") or {}).get("status")
        if finding["classification"] == "spec_gap":
            key: tuple[Any, ...] = ("spec_gap", finding.get("operation"), status)
        else:
            key = ("violation", finding.get("check"), finding.get("operation"), finding.get("title"), status)
        card = by_key.get(key)
        if card is None:
            card = by_key[key] = {**finding, "group": {"count": 0, "ids": [], "tests": []}}
            grouped.append(card)
        group = card["group"]
        group["count"] += 1
        group["ids"].append(finding["id"])
        if finding.get("test") and finding["test"] not in group["tests"]:
            group["tests"].append(finding["test"])
    return grouped


def _verdict_display_order() -> list[str]:
    return sorted(VERDICTS, key=lambda v: VERDICT_RANK.get(v, 9))


def _id_order(identifier: str) -> str:
    # "RC-2" and "RC-10" sort numerically: zero-pad the digits.
    return re.sub(r"\d+", lambda m: m.group(0).zfill(6), identifier)


def _finding_order(finding: Mapping[str, Any]) -> tuple[int, str]:
    return (SEVERITY_RANK.get(finding.get("severity", "low"), 9), _id_order(finding["id"]))


# Which of a parametrized test's cases speaks for all of them in the matrix: the worst.
_COUNTS_RANK = {"failure": 0, "error": 1, "inconclusive": 2, "known": 3, "skipped": 4, "ok": 5}


def _fold_parameters(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The matrix's test list: the cases of one parametrized test as one line, "name ×4", worst first."""
    folded: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        folded.setdefault(row["name"].split("[", 1)[0], []).append(row)
    result = []
    for base, cases in folded.items():
        if len(cases) == 1:
            result.append(cases[0])
            continue
        worst = min(cases, key=lambda c: _COUNTS_RANK.get(c["counts_as"], 9))
        notes = sorted({c["note"] for c in cases if c["note"]})
        result.append({**worst, "name": f"{base} ×{len(cases)}", "note": "; ".join(notes) or None})
    return result


def _test_row(
    test: Mapping[str, Any], counts_as: Mapping[str, str], for_requirement: tuple[str, str | None] | None = None
) -> dict[str, Any]:
    status, note = for_requirement or (counts_as[test["nodeid"]], None)
    module, _, name = test["nodeid"].rpartition("::")
    return {"test": test, "name": name or module, "module": module, "counts_as": status, "note": note}


def _status_for(
    test: Mapping[str, Any], requirement_id: str, findings_by_id: Mapping[str, Mapping[str, Any]], strict: bool
) -> tuple[str, str | None]:
    """How a test counts for one requirement, and why when that differs from the test's outcome.

    A fuzz test covers several requirements; its failure on RC-04 must not paint RC-05's
    row red, or a reviewer reads a pass next to a failed test and trusts neither.
    """
    overall = classify_test(test, findings_by_id, strict)
    relevant = [findings_by_id[fid] for fid in test["findings"] if fid in findings_by_id]
    if overall not in ("failure", "known") or not relevant:
        return overall, None  # an unexplained failure counts against every requirement of the test
    mine = [f for f in relevant if f.get("requirement") in (requirement_id, None)]
    others = [f for f in relevant if f not in mine]
    note = "failed on " + ", ".join(f"{f.get('requirement')} ({f['id']})" for f in others) if others else None
    if any(f["classification"] == "violation" and not f.get("known") for f in mine):
        return "failure", None
    if strict and any(f["classification"] == "spec_gap" for f in mine):
        return "failure", None
    if any(f.get("known") for f in mine):
        return "known", note
    if any(f["classification"] == "inconclusive" for f in mine):
        return "inconclusive", note
    return "ok", note


def _blocked_steps(req: Mapping[str, Any], blocked: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What kept an inconclusive requirement from being proven, one entry per distinct step."""
    steps: dict[str, dict[str, Any]] = {}
    for finding in blocked:
        step = finding.get("blocked_by") or finding["title"]
        steps.setdefault(step, {"step": step, "ids": []})["ids"].append(finding["id"])
    if not steps and req["verdict"] == "inconclusive":
        return [{"step": req.get("reason") or "no blocking step was recorded", "ids": []}]
    return list(steps.values())


def _attention_blocked(rows: list[dict[str, Any]], orphans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The second part of "Needs attention": what could not be proven, per requirement, then the rest."""
    entries = []
    for row in rows:
        if row["blocked"]:
            entries += [
                {"finding": f, "req": row["req"], "step": f.get("blocked_by") or f["title"]} for f in row["blocked"]
            ]
        elif row["req"]["verdict"] == "inconclusive":
            entries.append({"finding": None, "req": row["req"], "step": row["steps"][0]["step"]})
    entries += [
        {"finding": f, "req": None, "step": f.get("blocked_by") or f["title"]}
        for f in orphans
        if f["classification"] == "inconclusive"
    ]
    return entries


def _derived_verdict(
    tests: list[dict[str, Any]],
    open_violations: list[dict[str, Any]],
    failing_tests: list[dict[str, Any]],
    gaps: list[dict[str, Any]],
    verdicts: Counter[str],
) -> str:
    """The run verdict of a results.json written before ``run.verdict`` existed."""
    if not tests:
        return "empty"
    if open_violations or failing_tests or verdicts.get("violation", 0):
        return "violation"
    if verdicts.get("inconclusive", 0):
        return "inconclusive"
    if gaps or verdicts.get("spec_gap", 0):
        return "spec_gap"
    return "pass"


def _banner(
    verdict: str,
    tests: list[dict[str, Any]],
    open_violations: list[dict[str, Any]],
    gaps: list[dict[str, Any]],
    verdicts: Counter[str],
    strict: bool,
    blocked_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """The banner follows the run's verdict, the one that decided the exit code."""
    blocked = len(blocked_rows)
    proven = f"{blocked} requirement{'' if blocked == 1 else 's'} could not be proven"
    banner: dict[str, Any] = {"extra": [], "blocked": []}
    if not tests or verdict == "empty":
        # An empty run proves nothing; calling it PASS would be the "green run" trap.
        return {
            **banner,
            "status": "empty",
            "label": "NO TESTS RAN",
            "detail": "Nothing was tested, so no requirement was checked.",
        }
    if verdict == "interrupted":
        # Ctrl-C or SIGTERM: whatever ran was cut short, so nothing here is a verdict on the server.
        return {
            **banner,
            "status": "inconclusive",
            "label": "INTERRUPTED",
            "detail": "The run was stopped (Ctrl-C or SIGTERM) before it ended; it judges nothing. "
            "What it created was cleaned up (see Live run).",
        }
    has_gaps = bool(gaps) or verdicts.get("spec_gap", 0) > 0
    if verdict == "violation" or (verdict == "spec_gap" and strict):
        detail = "The API does not meet at least one requirement."
        if strict and has_gaps and not open_violations:
            detail = "Spec gaps fail this run (--strict-spec)."
        if blocked:
            banner["extra"].append(f"Besides, {proven} (see Needs attention).")
        return {**banner, "status": "fail", "label": "FAIL", "detail": detail}
    if open_violations:
        # Only violations a live re-check did not reproduce can be open without failing the run.
        n = len(open_violations)
        banner["extra"].append(
            f"{n} violation{'' if n == 1 else 's'} not reproduced by a replay in the same state: shown below; "
            "the run is inconclusive, not green."
        )
    if verdict == "inconclusive":
        return {
            **banner,
            "status": "inconclusive",
            "label": "INCONCLUSIVE",
            "detail": (
                f"{proven}; nothing here shows the server broke the contract."
                if blocked
                else "Some evidence could not be gathered; nothing here shows the server broke the contract."
            ),
            "blocked": blocked_rows,
        }
    if verdict == "spec_gap" or has_gaps:
        return {
            **banner,
            "status": "gaps",
            "label": "PASS with spec gaps",
            "detail": "The API meets the requirements, but some answers are allowed only by the overlay, "
            "not by the published spec.",
        }
    return {**banner, "status": "pass", "label": "PASS", "detail": "Every covered requirement is met."}


def _coverage(coverage: Mapping[str, Any]) -> dict[str, Any]:
    operations = coverage.get("operations") or []
    statuses = sorted(
        {s for op in operations for s in (*op["documented"], *op["observed"], *op["undocumented_observed"])},
        key=lambda s: (not s.isdigit(), s),
    )
    rows = []
    for op in operations:
        cells = []
        for status in statuses:
            origin = op["documented"].get(status)
            count = op["observed"].get(status, 0)
            if origin:
                state = "hit" if count else "never"
            elif count or status in op["undocumented_observed"]:
                state = "undocumented"
            else:
                state = "none"
            cells.append({"status": status, "origin": origin, "count": count, "state": state})
        documented = len(op["documented"])
        hit = sum(1 for s in op["documented"] if op["observed"].get(s))
        rows.append({"op": op, "cells": cells, "documented": documented, "hit": hit})
    return {"statuses": statuses, "rows": rows, "gaps": coverage.get("spec_gaps_relied_on") or []}


def _fuzz(property_based: Mapping[str, Any]) -> dict[str, Any]:
    operations = property_based.get("operations") or {}
    # Schemathesis' own phase order, so the columns read in the order the phases ran.
    phases = sorted(
        {p for stats in operations.values() for p in stats.get("phases", {})},
        key=lambda p: (PHASE_ORDER.index(p) if p in PHASE_ORDER else len(PHASE_ORDER), p),
    )
    return {
        "phases": phases,
        "operations": sorted(operations.items()),
        "total": sum(stats.get("cases", 0) for stats in operations.values()),
        "checks": property_based.get("checks") or [],
        "limitations": property_based.get("limitations") or [],
    }


# Tick steps of the timeline's axis, in seconds: the first that leaves at most MAX_TICKS intervals.
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
MAX_TICKS = 8
MIN_BAR_PCT = 0.4  # a span that settled within the clock's tenth still shows as a sliver


def _timeline(timeline: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The waits chart: each span and block as a left offset and a width in percent of the run.

    None when the file has no timeline (older files: the section is left out). The run's length is
    ``written_s``, the moment the timeline was read, on the spans' own clock; a span still in
    flight then is drawn up to it.
    """
    if timeline is None:
        return None
    spans = timeline.get("spans") or []
    blocks = timeline.get("blocks") or []
    length = max(
        [timeline.get("written_s") or 0.0]
        + [s["ended_s"] for s in spans if s["ended_s"] is not None]
        + [b["ended_s"] for b in blocks]
    )
    scale = 100.0 / length if length > 0 else 0.0

    def place(start: float, end: float) -> dict[str, float]:
        left = min(start * scale, 100.0)
        return {"left": round(left, 2), "width": round(min(max((end - start) * scale, MIN_BAR_PCT), 100.0 - left), 2)}

    rows = []
    for span in spans:
        end = span["ended_s"] if span["ended_s"] is not None else length
        rows.append({**span, **place(span["started_s"], end), "in_flight": span["ended_s"] is None,
                     "seconds": end - span["started_s"]})
    shaded = [{**block, **place(block["started_s"], block["ended_s"]),
               "seconds": block["ended_s"] - block["started_s"]} for block in blocks]
    step = next((t for t in TICK_STEPS if length / t <= MAX_TICKS), TICK_STEPS[-1])
    ticks = [
        {"left": round(at * scale, 2), "label": _clock_label(at, minutes=length >= 120)}
        for at in range(0, int(length) + 1, step)
    ]
    return {
        "rows": rows,
        "blocks": shaded,
        "ticks": ticks,
        "length": length,
        "blocked_s": timeline.get("blocked_s") or 0.0,
        "blocked_pct": round(100.0 * (timeline.get("blocked_s") or 0.0) / length) if length > 0 else 0,
        "critical": [row for row in rows if row["critical"]],
    }


def _clock_label(seconds: int, *, minutes: bool) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}" if minutes else f"{seconds} s"


def _comparison(comparison: Mapping[str, Any] | None, findings: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not comparison:
        return None
    ids_by_key: dict[str, list[str]] = {}
    for finding in findings:
        ids_by_key.setdefault(finding_key(finding), []).append(finding["id"])

    def entries(keys: list[str]) -> list[dict[str, Any]]:
        return [{"key": key, "parts": key.split("|", 3), "ids": ids_by_key.get(key, [])} for key in keys]

    return {name: entries(comparison.get(name) or []) for name in ("new", "fixed", "unchanged")}
