"""results.json -> JUnit XML for CI dashboards.

CI shows only failures, so only what fails the run is a <failure>: spec gaps and baselined
(known) findings are reported as <system-out> text and properties instead. The failure
message is the finding's plain-words message, the same text the HTML report shows.

A test whose evidence could not be gathered (inconclusive) is a <skipped message="inconclusive:
…"> with the property raff.verdict=inconclusive: it is not the server's fault, so it is no
failure, and no error of the suite either. Notes are a property and a <system-out> line only.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

from conformance.report.model import classify_test
from conformance.report.redact import redact

BODY_LIMIT = 2000  # CI log viewers choke on huge bodies; the HTML report has them in full


def render_junit(results: Mapping[str, Any], secrets: Iterable[str] = ()) -> str:
    """JUnit XML for ``results`` (redacted before rendering)."""
    return junit_from_redacted(redact(dict(results), secrets))


def junit_from_redacted(clean: Mapping[str, Any]) -> str:
    """JUnit XML for results that ``redact`` has already cleaned (``write_reports`` cleans once for all three)."""
    run = clean.get("run") or {}
    strict = bool(run.get("strict_spec"))
    findings_by_id = {f["id"]: f for f in clean.get("findings") or []}
    tests = clean.get("tests") or []

    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name="raff-conformance")
    counts = {"tests": len(tests), "failures": 0, "errors": 0, "skipped": 0}
    suite_props = ET.SubElement(suite, "properties")
    for name, value in (
        ("base_url", (clean.get("target") or {}).get("base_url")),
        ("target_kind", (clean.get("target") or {}).get("kind")),
        ("contract_version", (clean.get("contract") or {}).get("version")),
        ("hypothesis_seed", run.get("hypothesis_seed")),
        ("command", run.get("command")),
        ("verdict", run.get("verdict")),
    ):
        if value is not None:
            ET.SubElement(suite_props, "property", name=name, value=str(value))

    for test in tests:
        module, _, name = test["nodeid"].partition("::")
        classname = module.removesuffix(".py").replace("/", ".")
        if "::" in name:  # a test class: pytest's own junitxml puts it in the classname too
            klass, _, name = name.rpartition("::")
            classname = f"{classname}.{klass.replace('::', '.')}"
        case = ET.SubElement(
            suite, "testcase", classname=classname, name=name, time=f"{float(test.get('duration_s') or 0):.3f}"
        )
        findings = [findings_by_id[fid] for fid in test["findings"] if fid in findings_by_id]
        gaps = [f for f in findings if f["classification"] == "spec_gap"]
        known = [f for f in findings if f.get("known")]
        blocked = _unique_blocked(findings)
        notes = [f for f in findings if f["classification"] == "note"]
        status = classify_test(test, findings_by_id, strict)

        props = ET.SubElement(case, "properties")
        for rid in test["requirements"]:
            ET.SubElement(props, "property", name="requirement", value=rid)
        for finding in gaps:
            ET.SubElement(props, "property", name="spec_gap", value=f"{finding['id']}: {finding['title']}")
        for finding in known:
            ET.SubElement(props, "property", name="known", value=f"{finding['id']}: {finding['known']['ticket']}")
        for finding in notes:
            ET.SubElement(props, "property", name="note", value=f"{finding['id']}: {finding['title']}")
        if status == "inconclusive":
            ET.SubElement(props, "property", name="raff.verdict", value="inconclusive")
            for finding in blocked:
                ET.SubElement(props, "property", name="blocked_by", value=finding.get("blocked_by") or finding["title"])

        if status == "skipped":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=test.get("message") or "skipped")
        elif status == "error":
            counts["errors"] += 1
            error = ET.SubElement(case, "error", message=test.get("message") or "error")
            error.text = _details(findings) or test.get("message") or ""
        elif status == "failure":
            counts["failures"] += 1
            failing = [f for f in findings if f["classification"] == "violation" and not f.get("known")]
            if not failing and strict:
                failing = gaps  # --strict-spec: the spec gaps are what failed the run
            message = "; ".join(f["message"] for f in failing) or test.get("message") or "failed"
            failure = ET.SubElement(
                case, "failure", message=message, type=", ".join(sorted({f["check"] for f in failing})) or "failure"
            )
            failure.text = _details(failing) or test.get("message") or ""
        elif status == "inconclusive":
            counts["skipped"] += 1
            reason = "; ".join(_blocked_line(f) for f in blocked) or test.get("message") or "evidence not gathered"
            skipped = ET.SubElement(case, "skipped", message=f"inconclusive: {reason}")
            skipped.text = _details(blocked) or test.get("message") or ""

        out = [f"SPEC GAP: {f['title']}. {f['message']}" for f in gaps if not (strict and status == "failure")]
        out += [
            f"KNOWN ISSUE ({f['known']['ticket']}, until {f['known']['expires']}): {f['title']}. {f['message']}"
            for f in known
        ]
        if status != "inconclusive":  # an inconclusive case has it in <skipped> already
            out += [f"COULD NOT BE PROVEN: {_blocked_line(f)}" for f in blocked]
        out += [f"NOTE (judges nothing): {f['title']}. {f['message']}" for f in notes]
        if out:
            ET.SubElement(case, "system-out").text = "\n".join(out)

    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{float(run.get('duration_s') or 0):.3f}")
    if run.get("started_at"):
        suite.set("timestamp", str(run["started_at"]))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _details(findings: list[Mapping[str, Any]]) -> str:
    """Failure text: the same facts as the HTML evidence block, as plain lines."""
    blocks = []
    for finding in findings:
        lines = [f"{finding['id']} [{finding['severity']}] {finding['check']}: {finding['title']}", finding["message"]]
        if finding.get("blocked_by"):
            lines.append(f"blocked by: {finding['blocked_by']}")
        statuses = (finding.get("expected") or {}).get("statuses") or {}
        if statuses and finding["classification"] != "inconclusive":  # it judged no status
            lines.append("expected: " + ", ".join(f"{code} ({origin})" for code, origin in statuses.items()))
        for step, exchange in enumerate(finding.get("exchanges") or [], start=1):
            request = exchange["request"]
            response = exchange.get("response")
            lines.append(f"[{step}] > {request['method']} {request['url']}")
            if response is None:
                lines.append(f"[{step}] < no response: {exchange.get('error') or 'unknown error'}")
            else:
                lines.append(f"[{step}] < {response['status']} {_short(response.get('body'))}")
            lines.append(f"[{step}] $ {exchange['curl']}")
        replay = finding.get("replay")
        if replay and replay.get("command"):
            lines.append(f"replay: {replay['command']}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _unique_blocked(findings: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The inconclusive findings, one per blocked step: one step can block several requirements."""
    first: dict[str, Mapping[str, Any]] = {}
    for finding in findings:
        if finding["classification"] == "inconclusive":
            first.setdefault(_blocked_line(finding), finding)
    return list(first.values())


def _blocked_line(finding: Mapping[str, Any]) -> str:
    """The step and what happened ("step — message"); the message alone when no step is named."""
    step = finding.get("blocked_by")
    return f"{step} — {finding['message']}" if step else finding["message"]


def _short(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + " …(truncated)"
