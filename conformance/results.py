"""Builds the run's ``results.json`` data model from the per-test records.

The model (documented in ``conformance/report/model.py``) is what report.html and
junit.xml are rendered from, and what ``--compare`` and ``--baseline`` work on.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conformance import __version__
from conformance.contract import Contract
from conformance.state import RaffState, run_command, utc_iso

OUTCOME_ORDER = {"error": 0, "failed": 1, "inconclusive": 2, "passed": 3, "skipped": 4}


def build_results(
    state: RaffState, outputs: list[dict[str, Any]], exitstatus: int, *, interrupted: bool = False
) -> dict[str, Any]:
    contract = state.contract
    config = state.config
    tests, findings = fold_records([*state.records, *_judge_records(state, outputs)])
    foreign = [w for o in outputs for w in (o.get("foreign") or {}).get("writes", [])]
    backup_vms = {b: vm for o in outputs for b, vm in (o.get("foreign") or {}).get("backup_vms", {}).items()}
    excuse_foreign_writes(tests, findings, foreign, backup_vms)
    target = next((o["target"] for o in outputs if o["target"].get("base_url")), outputs[-1]["target"])
    observed: Counter[tuple[str, int]] = Counter()
    for output in outputs:
        for operation_id, status, count in output["observed"]:
            observed[(operation_id, int(status))] += count
    results: dict[str, Any] = {
        "schema_version": 1,
        "suite": {"name": "raff-conformance", "version": __version__},
        "target": target,
        "contract": contract_info(contract),
        "run": {
            "started_at": utc_iso(state.started_at),
            "duration_s": round(time.time() - state.started_at, 3),
            "hypothesis_seed": next(
                (r.get("hypothesis_seed") for r in state.records if r.get("hypothesis_seed")), None
            ),
            "hypothesis_profile": state.settings.effective_profile,
            "strict_spec": state.settings.strict_spec,
            "command": run_command(config),
            "exit_status": int(exitstatus),
            "interrupted": interrupted,
        },
        "requirements": requirement_rows(contract, tests, findings, set(config.getoption("req", None) or ())),
        "tests": tests,
        "findings": findings,
        "coverage": coverage(contract, observed),
        "property_based": _property_based(outputs, state.settings),
        "properties": _properties(state, outputs),
        "matrix": _matrix(outputs),
        "live": _live(state, outputs),
        "sharing": {
            "run_token": state.settings.run_token,
            "foreign_writes": list({(w["backup_id"], w["kind"]): w for w in foreign}.values()),
        },
        "comparison": None,
        "baseline": None,
    }
    _apply_baseline_and_compare(config, results)
    results["run"]["verdict"] = run_verdict(results)
    return results


def contract_info(contract: Any) -> dict[str, str]:
    """Which contract the verdicts were judged against (its title, version and the files' hashes)."""
    return {
        "title": contract.title,
        "version": contract.version,
        "published_sha256": contract.published_sha256,
        "overlay_sha256": contract.overlay_sha256,
    }


def run_verdict(results: dict[str, Any]) -> str:
    """The run's verdict, which decides its exit code (see conformance.plugin.exit_status).

    violation: an open violation (not accepted in a baseline, not unreproduced on replay);
    inconclusive: none, but some requirement could not be proven, a violation was not reproduced
    by a replay in the same state (shown, never excused into a pass), or a requirement test failed
    without a violation the run could count; interrupted: the run was stopped (Ctrl-C, SIGTERM)
    and proves nothing; spec_gap: only answers the overlay allows; empty: nothing ran.
    """
    if results["run"].get("interrupted"):
        return "interrupted"
    violations = [f for f in results["findings"] if f["classification"] == "violation"]
    if any(not f.get("known") and f.get("confirmed") is not False for f in violations):
        return "violation"
    verdicts = {r["verdict"] for r in results["requirements"]}
    unreproduced = any(not f.get("known") and f.get("confirmed") is False for f in violations)
    known = {f["test"] for f in violations if f.get("known")}
    failed = any(t["outcome"] in ("failed", "error") and t["nodeid"] not in known for t in results["tests"])
    if "inconclusive" in verdicts or unreproduced or failed:
        return "inconclusive"
    if not results["tests"]:
        return "empty"
    return "spec_gap" if "spec_gap" in verdicts else "pass"


# -- writes by anyone else (see state.ForeignWatch): the verdicts they touch are inconclusive --------

UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
VM_IN_PATH = re.compile(rf"/vms/({UUID})")
BACKUP_IN_PATH = re.compile(rf"/backups/({UUID})")


def exchange_vms(exchange: dict[str, Any], backup_vms: dict[str, str]) -> set[str]:
    """The VMs an exchange is about: in its path, its vm_id (query or body), the backups it names or
    answers with (their product_vm, or where the run saw them)."""
    request = exchange.get("request") or {}
    url = str(request.get("url") or "")
    path = urlsplit(url).path
    vms = {m.lower() for m in VM_IN_PATH.findall(path)}
    vms |= {v.lower() for v in parse_qs(urlsplit(url).query).get("vm_id", [])}
    body = request.get("body")
    if isinstance(body, dict) and isinstance(body.get("vm_id"), str):
        vms.add(body["vm_id"].lower())
    vms |= {backup_vms[b.lower()] for b in BACKUP_IN_PATH.findall(path) if b.lower() in backup_vms}
    answer = ((exchange.get("response") or {}).get("body")) if isinstance(exchange.get("response"), dict) else None
    data = answer.get("data") if isinstance(answer, dict) else None
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict) and isinstance(item.get("product_vm"), str):
            vms.add(item["product_vm"].lower())
    return vms


def touching(
    evidence: Iterable[dict[str, Any]], writes: list[dict[str, Any]], backup_vms: dict[str, str]
) -> list[dict[str, Any]]:
    """The foreign writes a verdict's evidence is touched by.

    A write touches a verdict whose evidence is about the write's VM and reaches the write's window
    (the last moment the run had seen the VM without it) or later. Evidence about no VM the run
    could tell, or seen at no known moment, is touched by every write: a false violation is the
    worse mistake, and this only happens where a write by someone else was seen at all.
    """
    evidence = list(evidence)
    vms = set().union(*(exchange_vms(e, backup_vms) for e in evidence)) if evidence else set()
    times = [e.get("at") for e in evidence]
    last = None if not times or any(t is None for t in times) else max(times)
    return [
        w
        for w in writes
        if (not vms or w["vm_id"].lower() in vms) and (last is None or last >= w["window_from"])
    ]


def excuse_foreign_writes(
    tests: list[dict[str, Any]],
    findings: list[dict[str, Any]],
    writes: list[dict[str, Any]],
    backup_vms: dict[str, str],
) -> None:
    """Every violation a foreign write touches becomes inconclusive, naming the write (never a violation).

    The evidence of a verdict is its finding's exchanges, or every exchange of its test when the
    finding carries none. A test left with no violation after this is inconclusive, not failed.
    """
    if not writes:
        return
    by_test = {t["nodeid"]: t for t in tests}
    for finding in findings:
        if finding["classification"] != "violation":
            continue
        # A finding's own exchanges are its evidence (what set the expectation and what broke it);
        # one that carries none is judged by every exchange of its test.
        evidence = finding.get("exchanges") or (by_test.get(finding["test"]) or {}).get("exchanges", [])
        touched = touching(evidence, writes, backup_vms)
        if not touched:
            continue
        names = "; ".join(w["description"] for w in touched[:3]) + (
            f"; and {len(touched) - 3} more" if len(touched) > 3 else ""
        )
        finding["classification"] = "inconclusive"
        finding["blocked_by"] = "foreign write"
        finding["title"] = f"not judged, a write by someone else touched it: {finding['title']}"
        finding["message"] = (
            f"a write this run did not make touched the evidence: {names}. "
            f"What the check would have said: {finding['message']}"
        )
    for test in tests:
        if test["outcome"] in ("failed", "error") and test["findings"]:
            own = [f for f in findings if f["id"] in test["findings"]]
            if own and not any(f["classification"] == "violation" for f in own):
                test["outcome"] = "inconclusive"
                # What blocked it, as a reader sees it first: the foreign write, not the titles it excused.
                test["message"] = "foreign write: a write this run did not make touched its evidence"


def _live(state: RaffState, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    # One backup can be in a module's book and in the session ledger: list each leftover once.
    leftovers = list(dict.fromkeys(leftover for o in outputs for leftover in o["leftovers"]))
    sweep = None
    if leftovers and not state.settings.is_mock:
        # This run's prefix and token: a bare RAFF_NAME_PREFIX would also delete another run's backups.
        sweep = f"raff-conformance sweep --prefix {state.settings.run_prefix}"
    return {
        "backups_created": sum(o["backups_created"] for o in outputs),
        "wait_seconds": round(sum(o["wait_seconds"] for o in outputs), 2),
        "leftovers": leftovers,
        "requests_sent": sum(o.get("requests_sent", 0) for o in outputs),
        "sweep_command": sweep,
        "kept": _kept(state, outputs),
        "left_in_mock": _sum_known(o.get("left_in_mock") for o in outputs),
        "timeline": _timeline(state, outputs),
    }


def _timeline(state: RaffState, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The waits of the process that waited: under xdist the scenario runs in a worker, and the
    controller's own timeline is empty. Each process keeps its own clock, so timelines are not merged;
    where several waited, the one that stood still longest is the one that set the run's length."""
    waited = [o["timeline"] for o in outputs if (o.get("timeline") or {}).get("spans")]
    return max(waited, key=lambda t: t["blocked_s"]) if waited else state.timeline.to_dict()


def _kept(state: RaffState, outputs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The run's backups another client's backup depends on (a 409 to every delete): kept, not left over."""
    kept = {backup: dependent for o in outputs for backup, dependent in (o.get("kept") or {}).items()}
    sweep = f"raff-conformance sweep --prefix {state.settings.run_prefix}"
    return [
        {
            "backup_id": backup,
            "depends_on_it": dependent,
            "sweep_command": sweep,
            "message": (
                f"{backup} kept: {dependent} depends on it, so the server refuses its delete (409); once that "
                f"backup is gone, delete it with: {sweep}"
            ),
        }
        for backup, dependent in kept.items()
    ]


JUDGE_NODEID = "raff-conformance::every-exchange"


def _judge_counts(outputs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for output in outputs:
        for pid, stats in (output.get("judge") or {}).get("stats", {}).items():
            merged = counts.setdefault(pid, {"judged": 0, "violations": 0})
            merged["judged"] += stats["judged"]
            merged["violations"] += stats["violations"]
    return counts


def _judge_records(state: RaffState, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The judge as one test of the requirements its properties judged (conformance/judge.py).

    Its findings came from every exchange of the run, whichever test sent it; it counts for a
    requirement only where a property of it judged at least one exchange.
    """
    counts = _judge_counts(outputs)
    judged = {pid for pid, stats in counts.items() if stats["judged"]}
    properties = state.judge.properties
    requirements = sorted({properties[pid].requirement for pid in judged if pid in properties})
    findings = [f for output in outputs for f in (output.get("judge") or {}).get("findings", [])]
    if not requirements and not findings:
        return []
    failed = any(f["classification"] == "violation" for f in findings)
    exchanges = [e for f in findings for e in f["exchanges"]][:25]
    return [
        {
            "nodeid": JUDGE_NODEID,
            "requirements": sorted({*requirements, *(f["requirement"] for f in findings if f["requirement"])}),
            "when": "call",
            "outcome": "failed" if failed else "passed",
            "duration_s": 0.0,
            "message": "; ".join(f["title"] for f in findings) or None,
            "findings": findings,
            "exchanges": exchanges,
            "attached": len(exchanges),
            "hypothesis_seed": None,
        }
    ]


def _properties(state: RaffState, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The property catalogue (specs/properties.yaml) with what each judged in this run."""
    counts = _judge_counts(outputs)
    return [
        {
            "id": prop.id,
            "statement": prop.statement,
            "source": prop.source,
            "requirement": prop.requirement,
            "judged": counts.get(prop.id, {}).get("judged", 0),
            "violations": counts.get(prop.id, {}).get("violations", 0),
        }
        for prop in state.judge.properties.values()
    ]


def _sum_known(values: Any) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def fold_records(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One entry per test (setup/call/teardown records merged, worst outcome wins)."""
    by_test: dict[str, dict[str, Any]] = {}
    findings: list[dict[str, Any]] = []
    for record in records:
        test = by_test.setdefault(
            record["nodeid"],
            {
                "nodeid": record["nodeid"],
                "requirements": record["requirements"],
                "outcome": record["outcome"],
                "duration_s": 0.0,
                "message": None,
                "findings": [],
                "exchanges": [],
            },
        )
        test["duration_s"] = round(test["duration_s"] + record["duration_s"], 4)
        # Records exist for the call and for a setup or teardown that did not pass: the worst wins.
        test["outcome"] = min(test["outcome"], record["outcome"], key=OUTCOME_ORDER.__getitem__)
        test["message"] = test["message"] or record["message"]
        test["exchanges"] += record["exchanges"]
        test.setdefault("evidence", []).extend(record["exchanges"][: record.get("attached", 0)])
        for finding in record["findings"]:
            finding = {
                "id": f"F{len(findings) + 1}",
                **finding,
                "test": record["nodeid"],
                "expected": None,
                "confirmed": finding.get("confirmed"),
                "known": None,
            }
            findings.append(finding)
            test["findings"].append(finding["id"])
    # A failed test with no structured finding still is a violation: of each of its requirements
    # (every finding names one). Tests that could not judge were made inconclusive by the plugin.
    for test in by_test.values():
        if test["outcome"] in ("failed", "error") and not any(
            f["classification"] == "violation" for f in findings if f["id"] in test["findings"]
        ):
            for requirement in test["requirements"] or [None]:
                finding = {
                    "id": f"F{len(findings) + 1}",
                    "classification": "violation",
                    "requirement": requirement,
                    "operation": None,
                    "check": "test_error" if test["outcome"] == "error" else "assertion",
                    "title": "test " + ("could not run" if test["outcome"] == "error" else "failed"),
                    "message": test["message"] or "",
                    "severity": "high",
                    "exchanges": test["exchanges"][-3:],
                    "replay": None,
                    "test": test["nodeid"],
                    "expected": None,
                    "confirmed": None,
                    "known": None,
                    "blocked_by": None,
                }
                findings.append(finding)
                test["findings"].append(finding["id"])
    return list(by_test.values()), findings


def requirement_rows(
    contract: Contract, tests: list[dict[str, Any]], findings: list[dict[str, Any]], selected: set[str] | None = None
) -> list[dict[str, Any]]:
    """One verdict per requirement from the tests that name it and their findings (``selected``: the
    requirements ``--req`` asked for; the others are "not selected")."""
    for finding in findings:
        operation = finding.get("operation")
        if operation and operation in {op.operation_id for op in contract.operations()}:
            status = ((finding.get("exchanges") or [{}])[-1].get("response") or {}).get("status")
            schema = contract.response_schema(operation, status) if status else None
            finding["expected"] = {
                "statuses": contract.documented_statuses(operation),
                "schema_excerpt": _schema_excerpt(schema),
            }
    rows = []
    selected = selected or set()
    for requirement in contract.requirements.values():
        own = [t for t in tests if requirement.id in t["requirements"]]
        own_ids = {t["nodeid"] for t in own}
        # A shared test (e.g. a fuzz test marked with several IDs) fails only the requirement its
        # finding names; a finding that names none counts against every requirement of the test.
        own_findings = [f for f in findings if f["test"] in own_ids and f["requirement"] in (None, requirement.id)]
        reason = None
        sample = None
        if selected and requirement.id not in selected:
            # A test shared with a selected requirement ran, but this one was not asked for: no
            # verdict is claimed (a shared test's pass is not this requirement's proof).
            verdict = "not_selected"
            reason = f"not selected (--req {' --req '.join(sorted(selected))})"
        elif not own:
            verdict = "not_covered"
        elif any(f["classification"] == "violation" for f in own_findings):
            verdict = "violation"
        elif any(f["classification"] == "inconclusive" for f in own_findings) or any(
            t["outcome"] == "inconclusive" for t in own
        ):
            # A test that stopped before judging proves none of its requirements, whichever it named.
            verdict = "inconclusive"
            reason = next(
                (f["message"] for f in own_findings if f["classification"] == "inconclusive"),
                next((t["message"] for t in own if t["outcome"] == "inconclusive"), None),
            )
        elif all(t["outcome"] == "skipped" for t in own):
            verdict = "skipped"
            reason = next((t["message"] for t in own if t["message"]), None)
        elif any(f["classification"] == "spec_gap" for f in own_findings):
            verdict = "spec_gap"
        else:
            verdict = "pass"
        trail: list[dict[str, Any]] = []
        if verdict in ("pass", "spec_gap"):
            sample = _sample(requirement.operations, own)
            trail = _trail(own)
        rows.append(
            {
                "id": requirement.id,
                "statement": requirement.statement,
                "source": requirement.source,
                "source_url": requirement.source_url,
                "kind": requirement.kind,
                "operations": list(requirement.operations),
                "verdict": verdict,
                "reason": reason,
                "tests": [t["nodeid"] for t in own],
                "sample": sample,
                "evidence_trail": trail,
            }
        )
    return rows


def _sample(operations: tuple[str, ...], tests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The exchange that proves the requirement: of a passing test, preferring the requirement's first operation.

    A test of this requirement alone comes before one shared with others (a generated request of a
    fuzz test proves little about, say, the missing X-Project-ID of RC-03), and within a test the
    exchanges it attached as evidence come first (they lead its list).
    """
    passing = [t for t in tests if t["outcome"] == "passed"]
    passing.sort(key=lambda t: len(t["requirements"]) != 1)
    exchanges = [e for t in passing for e in t["exchanges"] if e.get("response")]
    for operation in operations:
        for exchange in exchanges:
            if exchange["operation_id"] == operation:
                return exchange
    return exchanges[0] if exchanges else None


def _trail(tests: list[dict[str, Any]], most: int = 6) -> list[dict[str, Any]]:
    """What a passing test of this requirement alone judged, in order (the exchanges it attached):
    for a stateful requirement the listing before, the reset, the listing after."""
    for test in tests:
        if test["outcome"] == "passed" and len(test["requirements"]) == 1 and len(test.get("evidence") or []) > 1:
            return test["evidence"][:most]
    return []


def _schema_excerpt(schema: Any) -> str | None:
    if schema is None:
        return None
    import yaml

    text = yaml.safe_dump(schema, sort_keys=False, width=100)
    return text if len(text) < 2500 else text[:2500] + "\n…"


def coverage(contract: Contract, observed: Counter[tuple[str, int]]) -> dict[str, Any]:
    """Per operation of the contract: its documented statuses and the ones observed, and the spec gaps relied on."""
    operations = []
    gaps = []
    for operation in contract.operations():
        documented = contract.documented_statuses(operation.operation_id)
        seen = {str(status): n for (op, status), n in observed.items() if op == operation.operation_id}
        operations.append(
            {
                "operation_id": operation.operation_id,
                "method": operation.method,
                "path": operation.path,
                "documented": documented,
                "observed": seen,
                "undocumented_observed": sorted(
                    status for status in seen if contract.origin(operation.operation_id, status) == "undocumented"
                ),
            }
        )
        for status, count in seen.items():
            entry = contract.overlay_entry(operation.operation_id, status)
            if entry is not None:
                gaps.append(
                    {
                        "operation_id": operation.operation_id,
                        "status": status,
                        "description": entry.description,
                        "source": entry.source,
                        "basis": entry.basis,
                        "count": count,
                    }
                )
    return {"operations": operations, "spec_gaps_relied_on": gaps}


def _property_based(outputs: list[dict[str, Any]], settings: Any) -> dict[str, Any]:
    merged: dict[str, dict[str, Any]] = {}
    for output in outputs:
        for operation_id, stats in output["property_stats"].items():
            target = merged.setdefault(operation_id, {"cases": 0, "phases": {}})
            target["cases"] += stats["cases"]
            for phase, count in stats["phases"].items():
                target["phases"][phase] = target["phases"].get(phase, 0) + count
    try:
        from conformance.fuzz_checks import CHECK_NAMES
        from conformance.fuzzing import limitations
    except ImportError:  # a trimmed install without the property-based part
        return {"operations": merged, "checks": [], "limitations": []}
    return {
        "operations": merged,
        "checks": list(CHECK_NAMES) if merged else [],
        "limitations": limitations(settings) if merged else [],
    }


def _apply_baseline_and_compare(config: Any, results: dict[str, Any]) -> None:
    from conformance.report import apply_baseline, compare, load_baseline

    baseline_path = config.getoption("baseline")
    if baseline_path:
        entries = load_baseline(Path(baseline_path))
        updated = apply_baseline(results, entries, date.today())
        results.clear()
        results.update(updated)
        results["baseline"]["path"] = str(baseline_path)
    compare_path = config.getoption("compare")
    if compare_path:
        import json

        previous = json.loads(Path(compare_path).read_text(encoding="utf-8"))
        results["comparison"] = compare(results, previous, str(compare_path))


# The kinds of input of the variant matrix (conformance/matrix.py KINDS), in the report's order.
MATRIX_KINDS = ("spelling", "ids", "headers", "bodies", "repetition", "listing")


def _matrix(outputs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The variant matrix compactly: per operation and kind of input, cells tried, breached and not
    tried (with why, each reason once with its count); None when the run sent no matrix."""
    rows = [row for output in outputs for row in output.get("matrix") or []]
    if not rows:
        return None
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        cell = table.setdefault(row["operation"], {}).setdefault(
            row["kind"], {"tried": 0, "breached": 0, "not_tried": 0, "reasons": Counter()}
        )
        if row["tried"]:
            cell["tried"] += 1
            cell["breached"] += bool(row["breached"])
        else:
            cell["not_tried"] += 1
            cell["reasons"][row["reason"]] += 1
    operations = [
        {
            "operation": operation,
            "kinds": {
                kind: {
                    "tried": c["tried"],
                    "breached": c["breached"],
                    "not_tried": c["not_tried"],
                    "reasons": [f"{reason} ({n})" if n > 1 else reason for reason, n in c["reasons"].most_common()],
                }
                for kind, c in kinds.items()
            },
        }
        for operation, kinds in table.items()
    ]
    reasons: Counter[str] = Counter(_reason_class(row["reason"]) for row in rows if not row["tried"])
    return {
        "kinds": [kind for kind in MATRIX_KINDS if any(kind in op["kinds"] for op in operations)],
        "operations": operations,
        "tried": sum(1 for row in rows if row["tried"]),
        "breached": sum(1 for row in rows if row["tried"] and row["breached"]),
        "not_tried": sum(1 for row in rows if not row["tried"]),
        "not_tried_by_reason": dict(reasons.most_common()),
        "breaches": [
            {"operation": row["operation"], "kind": row["kind"], "variant": row["variant"],
             "requirements": row["breached"], "requests": row["requests"][-2:]}
            for row in rows if row["tried"] and row["breached"]
        ][:20],
    }


def _reason_class(reason: str) -> str:
    """A not-tried reason in a word, for the one-line summary: budget, settings, restores, ..."""
    if reason.startswith("budget"):
        return "budget"
    if ("RAFF_" in reason and "not set" in reason) or "no other project" in reason:
        return "settings"
    if reason.startswith("restores are off"):
        return "restores off"
    if "does not own" in reason or "not own" in reason:
        return "not the run's VM"
    if reason.startswith("no answer"):
        return "no answer"
    return "no backup of the run to spare"
