"""Self-tests of the reviewer report: data model, HTML, JUnit, redaction, comparison, baseline.

The inputs are recorded results.json files in tests/fixtures/results/. The HTML is checked by
parsing it with the standard library, never through a browser.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from conformance.report import (
    BaselineError,
    apply_baseline,
    compare,
    finding_key,
    load_baseline,
    redact,
    render_html,
    render_junit,
    validate_results,
    write_reports,
)

FIXTURES = Path(__file__).parent / "fixtures" / "results"
CANARY = "raff_pub_CANARY0123456789abcdef"
ALL_FIXTURES = ["passing", "failing", "empty", "inconclusive", "timeline"]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Elements whose src/href the browser fetches by itself (an <a href> is only followed on a click).
FETCHING = {"script", "link", "img", "iframe", "frame", "source", "video", "audio", "embed", "object", "track", "input"}


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict[str, str | None]
    ancestors: tuple[Element, ...]
    chunks: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())


class Page(HTMLParser):
    """A flat list of elements, each knowing its ancestors and its text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), tuple(self._open))
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, dict(attrs), tuple(self._open)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.chunks.append(data)

    def by_id(self, element_id: str) -> Element:
        matches = [e for e in self.elements if e.attrs.get("id") == element_id]
        assert len(matches) == 1, f"{len(matches)} elements with id {element_id!r}"
        return matches[0]

    def within(self, parent: Element, cls: str) -> list[Element]:
        return [e for e in self.elements if parent in e.ancestors and cls in e.classes]


# --- data model ---


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_matches_the_data_model(name: str) -> None:
    assert validate_results(load(name)) == []


def test_validate_results__names_each_problem() -> None:
    results = load("failing")
    results["requirements"][0]["verdict"] = "passed"
    del results["tests"][0]["duration_s"]
    results["findings"][0]["requirment"] = "RC-02"
    results["target"]["api_key"] = CANARY

    problems = validate_results(results)

    assert any(p.startswith("requirements[0].verdict: 'passed' is not one of") for p in problems)
    assert "tests[0]: missing field 'duration_s'" in problems
    assert "findings[0]: unknown field 'requirment'" in problems
    # Shape problems come first; the leak check runs once the shape is right.
    fixed = load("failing")
    fixed["target"]["api_key"] = CANARY
    assert validate_results(fixed) == ["target.api_key: must be '[REDACTED]', never the key itself"]


def test_validate_results__catches_dangling_references() -> None:
    results = load("failing")
    results["tests"][0]["findings"].append("F99")
    results["findings"][0]["requirement"] = "RC-99"

    problems = validate_results(results)

    assert any("unknown finding 'F99'" in p for p in problems)
    assert any("unknown requirement 'RC-99'" in p for p in problems)


def test_finding_key() -> None:
    assert finding_key({"requirement": None, "operation": None, "check": "c", "title": "t"}) == "-|-|c|t"
    assert finding_key(load("failing")["findings"][0]) == "RC-02|resetBackupChain|status_code|expected 404, got 500"


# --- HTML ---


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_report_html__one_row_per_requirement_with_its_verdict(name: str) -> None:
    results = load(name)
    page = Page(render_html(results))

    rows = {e.attrs["data-req"]: e for e in page.elements if e.tag == "tr" and "data-req" in e.attrs}

    assert list(rows) == [r["id"] for r in results["requirements"]]
    for requirement in results["requirements"]:
        row = rows[requirement["id"]]
        assert row.attrs["data-verdict"] == requirement["verdict"]
        badges = page.within(row, f"v-{requirement['verdict']}")
        assert badges, f"{requirement['id']}: no verdict badge"
        page.by_id(f"req-{requirement['id']}")  # the details section the row links to


@pytest.mark.parametrize(
    ("name", "banner"),
    [("passing", "PASS"), ("failing", "FAIL"), ("empty", "NO TESTS RAN"), ("inconclusive", "INCONCLUSIVE")],
)
def test_report_html__verdict_banner(name: str, banner: str) -> None:
    page = Page(render_html(load(name)))
    verdict = [e for e in page.elements if "banner-verdict" in e.classes]
    assert [e.text for e in verdict] == [banner]


def test_report_html__spec_gaps_alone_pass_with_a_warning() -> None:
    results = load("failing")
    results["findings"] = [f for f in results["findings"] if f["classification"] == "spec_gap"]
    kept = {f["id"] for f in results["findings"]}
    for test in results["tests"]:
        test["findings"] = [fid for fid in test["findings"] if fid in kept]
        test["outcome"] = "skipped" if test["outcome"] == "skipped" else "passed"
    for requirement in results["requirements"]:
        if requirement["verdict"] == "violation":
            requirement["verdict"] = "pass"

    page = Page(render_html(results))

    assert [e.text for e in page.elements if "banner-verdict" in e.classes] == ["PASS with spec gaps"]


def test_report_html__every_finding_has_its_evidence() -> None:
    results = load("failing")
    page = Page(render_html(results))

    for finding in results["findings"]:
        article = page.by_id(f"finding-{finding['id']}")
        count = len(finding["exchanges"])
        assert count >= 1
        assert len(page.within(article, "ev-request")) == count, finding["id"]
        assert len(page.within(article, "ev-response")) == count, finding["id"]
        assert len(page.within(article, "ev-curl")) == count, finding["id"]
        curls = [e.text for e in page.within(article, "ev-curl")]
        assert all("curl " in text for text in curls)
        message = page.within(article, "message")
        assert [m.text for m in message] == [redact(finding["message"])]


def test_report_html__passes_carry_a_sample_and_skips_their_reason() -> None:
    results = load("failing")
    page = Page(render_html(results))
    by_id = {r["id"]: r for r in results["requirements"]}

    assert page.within(page.by_id("req-RC-01"), "ev-response"), "a pass shows its sample exchange"
    assert by_id["RC-09"]["reason"] in page.by_id("req-RC-09").text
    assert "Not covered" in page.by_id("req-RC-15").text


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_report_html__loads_nothing_from_the_network(name: str) -> None:
    html = render_html(load(name))
    page = Page(html)

    assert not [e for e in page.elements if e.tag == "script" and "src" in e.attrs]
    for element in page.elements:
        if element.tag not in FETCHING:
            continue
        for attr in ("src", "href", "data", "srcset", "poster"):
            value = (element.attrs.get(attr) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "ftp:")), f"<{element.tag} {attr}={value}>"
    styles = "".join(e.text for e in page.elements if e.tag == "style")
    assert "url(" not in styles
    assert "@import" not in styles
    inline = "".join(e.text for e in page.elements if e.tag == "script")
    assert "fetch(" not in inline
    assert "XMLHttpRequest" not in inline


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_report_html__internal_links_resolve(name: str) -> None:
    page = Page(render_html(load(name)))
    ids = {e.attrs["id"] for e in page.elements if e.attrs.get("id")}
    targets = {e.attrs["href"][1:] for e in page.elements if (e.attrs.get("href") or "").startswith("#")}
    assert targets - ids == set()


# --- redaction ---


def test_write_reports__redacts_the_canary_key(tmp_path: Path) -> None:
    results = load("failing")
    assert json.dumps(results).count(CANARY) >= 4  # planted in headers, curl, a message and a body

    paths = write_reports(results, tmp_path / "out", secrets=(CANARY,))

    assert set(paths) == {"json", "html", "junit"}
    for path in paths.values():
        text = path.read_text(encoding="utf-8")
        assert CANARY not in text, path.name
        assert "[REDACTED]" in text, path.name
    assert validate_results(json.loads(paths["json"].read_text(encoding="utf-8"))) == []


def test_write_reports__redacts_a_raff_key_it_was_not_told_about(tmp_path: Path) -> None:
    paths = write_reports(load("failing"), tmp_path, secrets=())
    for path in paths.values():
        assert CANARY not in path.read_text(encoding="utf-8"), path.name


def test_redact__secrets_and_credential_headers_anywhere() -> None:
    data = {
        "headers": {"Authorization": "Bearer abc.def", "COOKIE": "session=1; theme=dark", "Accept": "*/*"},
        "nested": [{"note": "password is hunter2-secret, really"}],
        "curl": "curl -H 'x-api-key: k-123' -H \"X-API-Key: $RAFF_API_KEY\" 'https://h/p?api_key=zzz'",
        "message": "sent {'Authorization': 'Basic dXNlcg=='}",
    }

    out = redact(data, secrets=("hunter2-secret",))

    assert out["headers"] == {"Authorization": "[REDACTED]", "COOKIE": "[REDACTED]", "Accept": "*/*"}
    assert out["nested"][0]["note"] == "password is [REDACTED], really"
    # The shell variable is a placeholder that keeps the command runnable: it stays.
    assert out["curl"] == (
        "curl -H 'x-api-key: [REDACTED]' -H \"X-API-Key: $RAFF_API_KEY\" 'https://h/p?api_key=[REDACTED]'"
    )
    assert out["message"] == "sent {'Authorization': '[REDACTED]'}"
    assert data["headers"]["Authorization"] == "Bearer abc.def", "the input is not modified"
    assert redact(out) == out, "redacting twice changes nothing"


# --- JUnit ---


def _cases(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["raff-conformance"]
    return {f"{c.get('classname')}::{c.get('name')}": c for c in suites[0].findall("testcase")}


def _case_for(cases: dict[str, ET.Element], nodeid: str) -> ET.Element:
    module, _, name = nodeid.partition("::")
    return cases[f"{module.removesuffix('.py').replace('/', '.')}::{name}"]


def test_junit__one_testcase_per_test_with_its_requirements() -> None:
    results = load("failing")
    cases = _cases(render_junit(results))

    assert len(cases) == len(results["tests"])
    for test in results["tests"]:
        case = _case_for(cases, test["nodeid"])
        props = [p.get("value") for p in case.iter("property") if p.get("name") == "requirement"]
        assert props == test["requirements"]


def test_junit__spec_gap_is_not_a_failure() -> None:
    results = load("failing")
    xml = render_junit(results)
    case = _case_for(
        _cases(xml), "conformance/tests/test_backups_reset_chain_negative.py::test_backups_reset_chain__without_api_key"
    )

    assert case.find("failure") is None
    assert (case.findtext("system-out") or "").startswith("SPEC GAP: ")
    assert [p.get("name") for p in case.iter("property")] == ["requirement", "spec_gap"]
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None
    # RC-02, RC-06 and the two fuzz tests with violations; the spec-gap-only fuzz test passes.
    assert suite.get("failures") == "4"
    assert suite.get("skipped") == "2"


def test_junit__failure_message_is_the_finding_message_of_the_html() -> None:
    results = load("failing")
    finding = results["findings"][0]
    case = _case_for(_cases(render_junit(results, secrets=(CANARY,))), finding["test"])
    page = Page(render_html(results, secrets=(CANARY,)))
    html_message = page.within(page.by_id(f"finding-{finding['id']}"), "message")

    failure = case.find("failure")

    assert failure is not None
    assert failure.get("message") == redact(finding["message"], (CANARY,))
    assert [m.text for m in html_message] == [failure.get("message")]
    assert "curl " in (failure.text or "")


def test_junit__skipped_carries_its_reason() -> None:
    results = load("failing")
    test = next(t for t in results["tests"] if t["outcome"] == "skipped")
    skipped = _case_for(_cases(render_junit(results)), test["nodeid"]).find("skipped")
    assert skipped is not None
    assert skipped.get("message") == test["message"]


def test_junit__empty_run() -> None:
    assert _cases(render_junit(load("empty"))) == {}


# --- comparison and baseline ---


def test_compare__new_fixed_unchanged() -> None:
    current = load("failing")
    previous = copy.deepcopy(current)
    gone = previous["findings"].pop(0)  # F1 is new in the current run
    previous["findings"].append({**gone, "check": "not_a_server_error", "title": "server error"})  # since fixed

    comparison = compare(current, previous, "reports/old/results.json")

    assert comparison["previous"] == {"started_at": previous["run"]["started_at"], "path": "reports/old/results.json"}
    assert comparison["new"] == [finding_key(current["findings"][0])]
    assert comparison["fixed"] == ["RC-02|resetBackupChain|not_a_server_error|server error"]
    assert len(comparison["unchanged"]) == len(current["findings"]) - 1


BASELINE = """\
- requirement: RC-02
  operation: resetBackupChain
  check: status_code
  title: expected 404, got 500
  reason: unknown VM ids hit a SQL error path
  ticket: API-481
  expires: 2026-07-01
- requirement: RC-06
  operation: listBackups
  check: series_preserved
  title: restore point changed after reset
  reason: reset marks the newest point for deletion
  ticket: API-490
  expires: 2026-05-01
- requirement: RC-08
  operation: getBackup
  check: status_code
  title: expected 0, got 2
  reason: increment counter not reset
  ticket: API-475
  expires: 2026-07-01
"""


def test_apply_baseline__known_expired_fixed(tmp_path: Path) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text(BASELINE, encoding="utf-8")
    results = load("failing")

    out = apply_baseline(results, load_baseline(path), date(2026, 5, 21), path=str(path))

    baseline = out["baseline"]
    assert [e["ticket"] for e in baseline["known"]] == ["API-481"]
    assert [e["ticket"] for e in baseline["expired"]] == ["API-490"]
    assert [e["ticket"] for e in baseline["fixed"]] == ["API-475"]
    findings = {f["id"]: f for f in out["findings"]}
    assert findings["F1"]["known"] == {
        "reason": "unknown VM ids hit a SQL error path",
        "ticket": "API-481",
        "expires": "2026-07-01",
    }
    assert findings["F3"]["known"] is None, "an expired entry suppresses nothing"
    verdicts = {r["id"]: r["verdict"] for r in out["requirements"]}
    assert (verdicts["RC-02"], verdicts["RC-06"]) == ("known", "violation")
    assert results["findings"][0]["known"] is None, "the input is not modified"
    assert validate_results(out) == []
    case = _case_for(_cases(render_junit(out)), findings["F1"]["test"])
    assert case.find("failure") is None
    assert "KNOWN ISSUE (API-481" in (case.findtext("system-out") or "")
    page = Page(render_html(out))
    assert "API-490" in page.by_id("baseline").text


def test_load_baseline__rejects_an_entry_without_ticket(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    entries = [
        {"check": "c", "title": "fine", "reason": "r", "ticket": "API-1", "expires": "2026-07-01"},
        {
            "requirement": "RC-04",
            "operation": "resetBackupChain",
            "check": "negative_data_rejection",
            "title": "API accepted schema-violating request",
            "reason": "r",
            "expires": "2026-07-01",
        },
    ]
    path.write_text(json.dumps(entries), encoding="utf-8")

    with pytest.raises(BaselineError) as excinfo:
        load_baseline(path)

    message = str(excinfo.value)
    assert "entry 2 (RC-04|resetBackupChain|negative_data_rejection|API accepted schema-violating request)" in message
    assert "missing ticket" in message
    assert "entry 1" not in message


# --- inconclusive requirements and notes ---

T06 = "conformance/tests/test_backups_reset_chain_lifecycle.py::test_backups_reset_chain_keeps_restore_points"
T08 = "conformance/tests/test_backups_reset_chain_lifecycle.py::test_backups_reset_chain_next_backup_is_baseline"
T05 = "conformance/tests/test_backups_reset_chain_negative.py::test_backups_reset_chain__path_id_not_uuid"
T02 = "conformance/tests/test_backups_reset_chain_negative.py::test_backups_reset_chain__unknown_vm"


def _banner(page: Page) -> Element:
    (banner,) = [e for e in page.elements if "banner" in e.classes]
    return banner


def _banner_label(results: dict[str, Any]) -> str:
    page = Page(render_html(results))
    return "".join(e.text for e in page.elements if "banner-verdict" in e.classes)


def _with_violation(results: dict[str, Any]) -> dict[str, Any]:
    """The inconclusive run plus one open violation of RC-02 (taken from the failing fixture)."""
    out = copy.deepcopy(results)
    violation = copy.deepcopy(next(f for f in load("failing")["findings"] if f["id"] == "F1"))
    violation["id"] = "F9"
    out["findings"].append(violation)
    test = next(t for t in out["tests"] if t["nodeid"] == T02)
    test.update(outcome="failed", message=violation["message"], findings=["F9"])
    next(r for r in out["requirements"] if r["id"] == "RC-02").update(verdict="violation", sample=None)
    out["run"].update(verdict="violation", exit_status=1)
    return out


def test_inconclusive_fixture__is_what_it_says() -> None:
    results = load("inconclusive")
    verdicts = [r["verdict"] for r in results["requirements"]]
    classes = [f["classification"] for f in results["findings"]]

    assert validate_results(results) == []
    assert (results["run"]["verdict"], results["run"]["exit_status"]) == ("inconclusive", 6)
    assert verdicts.count("inconclusive") == 2
    assert set(verdicts) == {"inconclusive", "pass"}
    assert sorted(classes) == ["inconclusive", "inconclusive", "note"]
    assert all(f.get("blocked_by") for f in results["findings"] if f["classification"] == "inconclusive")
    assert results["live"]["sweep_command"] and results["live"]["leftovers"]


def test_validate_results__accepts_files_without_the_new_optional_fields() -> None:
    results = load("inconclusive")
    del results["run"]["verdict"]
    del results["live"]["requests_sent"]
    del results["live"]["sweep_command"]
    for finding in results["findings"]:
        del finding["blocked_by"]
    assert validate_results(results) == []


def test_validate_results__rejects_malformed_inconclusive_data() -> None:
    results = load("inconclusive")
    results["run"]["verdict"] = "unknown"
    results["live"]["requests_sent"] = "214"
    results["live"]["sweep_command"] = 7
    results["findings"][0]["blocked_by"] = ["ready_A3"]
    results["tests"][0]["outcome"] = "blocked"
    results["findings"][2]["classification"] = "remark"

    problems = validate_results(results)

    assert any(p.startswith("run.verdict: 'unknown' is not one of") for p in problems)
    assert "live.requests_sent: expected int, got str" in problems
    assert any(p.startswith("live.sweep_command:") for p in problems)
    assert any(p.startswith("findings[0].blocked_by:") for p in problems)
    assert any(p.startswith("tests[0].outcome: 'blocked' is not one of") for p in problems)
    assert any(p.startswith("findings[2].classification: 'remark' is not one of") for p in problems)


def test_validate_results__inconclusive_consistency() -> None:
    results = load("inconclusive")
    results["findings"][2]["blocked_by"] = "a step"  # a note blocks nothing
    rc06 = next(r for r in results["requirements"] if r["id"] == "RC-06")
    rc06["tests"] = []
    for test in results["tests"]:
        test["requirements"] = [rid for rid in test["requirements"] if rid != "RC-06"]

    problems = validate_results(results)

    assert "findings[2] (F3).blocked_by: only an inconclusive finding names a blocking step" in problems
    assert any("(RC-06): verdict inconclusive but it lists no tests" in p for p in problems)


def test_report_html__inconclusive_banner_is_neither_pass_nor_fail() -> None:
    results = load("inconclusive")
    page = Page(render_html(results))
    banner = _banner(page)

    assert "banner-inconclusive" in banner.classes
    assert not banner.classes & {"banner-pass", "banner-fail", "banner-gaps"}
    assert "2 requirements could not be proven" in banner.text
    assert "nothing here shows the server broke the contract" in banner.text
    # It names each blocked requirement with the step that blocked it.
    for finding in results["findings"]:
        if finding["classification"] == "inconclusive":
            assert finding["requirement"] in banner.text
            assert finding["blocked_by"] in banner.text
    assert "RC-05" not in banner.text, "a note blocks nothing"


def test_report_html__banner_follows_run_verdict() -> None:
    results = load("inconclusive")
    derived = copy.deepcopy(results)
    del derived["run"]["verdict"]  # an older file: derived from the requirement verdicts
    said_violation = copy.deepcopy(results)
    said_violation["run"]["verdict"] = "violation"

    assert _banner_label(derived) == "INCONCLUSIVE"
    assert _banner_label(said_violation) == "FAIL"
    mixed = _with_violation(results)
    assert _banner_label(mixed) == "FAIL", "a violation outranks inconclusive"
    del mixed["run"]["verdict"]
    assert _banner_label(mixed) == "FAIL"


@pytest.mark.parametrize(("name", "verdict"), [("passing", "pass"), ("failing", "violation"), ("empty", "empty")])
def test_report_html__older_fixtures_keep_their_verdict(name: str, verdict: str) -> None:
    results = load(name)
    assert "verdict" not in results["run"]
    with_verdict = copy.deepcopy(results)
    with_verdict["run"]["verdict"] = verdict

    old = Page(render_html(results))
    new = Page(render_html(with_verdict))

    assert _banner(old).classes == _banner(new).classes
    assert _banner_label(results) == _banner_label(with_verdict)
    assert not [e for e in old.elements if "v-inconclusive" in e.classes and e.text != "0 inconclusive"]


def test_report_html__blocked_step_and_its_exchange_are_shown() -> None:
    results = load("inconclusive")
    page = Page(render_html(results))

    for finding in (f for f in results["findings"] if f["classification"] == "inconclusive"):
        section = page.by_id(f"req-{finding['requirement']}")
        article = page.by_id(f"finding-{finding['id']}")
        assert section in article.ancestors
        assert "Could not be proven" in section.text
        assert [e.text for e in page.within(article, "blocked-by")] == [finding["blocked_by"]]
        assert [m.text for m in page.within(article, "message")] == [finding["message"]]
        exchange = finding["exchanges"][0]
        assert len(page.within(article, "ev-request")) == 1
        assert len(page.within(article, "ev-response")) == 1
        (curl,) = page.within(article, "ev-curl")
        assert exchange["curl"] in curl.text
        assert str(exchange["response"]["status"]) in page.within(article, "ev-response")[0].text
        assert not page.within(article, "sev"), "an inconclusive finding judges no severity"


def test_report_html__needs_attention_lists_violations_then_inconclusive() -> None:
    page = Page(render_html(_with_violation(load("inconclusive"))))
    attention = page.by_id("attention")
    links = [e.attrs["href"] for e in page.elements if attention in e.ancestors and "fid" in e.classes]

    assert links == ["#finding-F9", "#finding-F1", "#finding-F2"]
    heading = page.by_id("attention-inconclusive")
    assert "not the server's fault" in heading.text
    blocked = [e for e in page.elements if "attention-blocked" in e.classes]
    assert len(blocked) == 1
    assert all("v-inconclusive" in e.classes for e in page.within(blocked[0], "badge"))
    assert "#finding-F3" not in links, "a note needs no attention"


def test_report_html__inconclusive_only_run_needs_attention_without_violations() -> None:
    page = Page(render_html(load("inconclusive")))
    attention = page.by_id("attention")

    assert not page.within(attention, "sev"), "no violation is listed"
    assert "could not be proven" in attention.text.lower()


def test_report_html__matrix_filter_offers_inconclusive() -> None:
    page = Page(render_html(load("inconclusive")))
    select = next(e for e in page.elements if e.tag == "select" and e.attrs.get("data-filter") == "verdict")
    options = [e.attrs.get("value") for e in page.elements if e.tag == "option" and select in e.ancestors]

    assert "inconclusive" in options
    rows = [e for e in page.elements if e.tag == "tr" and e.attrs.get("data-verdict") == "inconclusive"]
    assert [r.attrs["data-req"] for r in rows] == ["RC-06", "RC-08"]


def test_report_html__note_is_low_key_and_no_failure() -> None:
    results = load("inconclusive")
    note = next(f for f in results["findings"] if f["classification"] == "note")
    page = Page(render_html(results))
    article = page.by_id(f"finding-{note['id']}")

    assert "c-note" in article.classes
    assert page.by_id(f"req-{note['requirement']}") in article.ancestors
    assert [b.text for b in page.within(article, "badge")] == ["note"]
    assert not page.within(article, "v-violation")
    row = page.by_id(f"row-{note['requirement']}")
    assert row.attrs["data-verdict"] == "pass"
    assert "0 open violations" in _banner(page).text
    assert "1 note" in _banner(page).text
    # Its evidence is there, collapsed.
    assert len(page.within(article, "ev-curl")) == 1


def test_report_html__tests_table_shows_inconclusive_outcome() -> None:
    page = Page(render_html(load("inconclusive")))
    row = page.by_id(f"test-{T06}")
    assert page.within(row, "t-inconclusive")
    assert "inconclusive" in row.text


def test_report_html__leftovers_show_the_sweep_command() -> None:
    results = load("inconclusive")
    page = Page(render_html(results))
    live = page.by_id("live")

    assert results["live"]["sweep_command"] in live.text
    assert "214" in live.text and "requests sent" in live.text
    cleaned = copy.deepcopy(results)
    cleaned["live"]["leftovers"] = []
    cleaned["live"]["sweep_command"] = None
    assert "sweep" not in Page(render_html(cleaned)).by_id("live").text


def test_junit__inconclusive_is_skipped_not_failure() -> None:
    results = load("inconclusive")
    xml = render_junit(results)
    cases = _cases(xml)

    for nodeid in (T06, T08):
        test = next(t for t in results["tests"] if t["nodeid"] == nodeid)
        finding = next(f for f in results["findings"] if f["test"] == nodeid)
        case = _case_for(cases, nodeid)
        assert case.find("failure") is None
        assert case.find("error") is None
        skipped = case.find("skipped")
        assert skipped is not None
        message = skipped.get("message") or ""
        assert message.startswith("inconclusive: ")
        assert finding["blocked_by"] in message
        assert "curl " in (skipped.text or ""), "the blocking exchange is in the details"
        props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
        assert ("raff.verdict", "inconclusive") in props
        assert [v for n, v in props if n == "requirement"] == test["requirements"]
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("0", "0", "2")
    suite_props = {p.get("name"): p.get("value") for p in suite.find("properties") or []}
    assert suite_props["verdict"] == "inconclusive"


def test_junit__note_is_never_a_failure() -> None:
    results = load("inconclusive")
    note = next(f for f in results["findings"] if f["classification"] == "note")
    case = _case_for(_cases(render_junit(results)), note["test"])

    assert case.find("failure") is None
    assert case.find("error") is None
    assert case.find("skipped") is None
    assert ("note", f"{note['id']}: {note['title']}") in [
        (p.get("name"), p.get("value")) for p in case.iter("property")
    ]
    assert note["message"] in (case.findtext("system-out") or "")
    # Not even under --strict-spec, which fails spec gaps.
    strict = copy.deepcopy(results)
    strict["run"]["strict_spec"] = True
    assert _case_for(_cases(render_junit(strict)), note["test"]).find("failure") is None


def test_compare__inconclusive_compared_notes_left_out() -> None:
    current = load("inconclusive")
    keys = {f["id"]: finding_key(f) for f in current["findings"]}

    comparison = compare(current, load("passing"), "reports/old/results.json")

    assert comparison["new"] == sorted([keys["F1"], keys["F2"]])
    assert keys["F3"] not in comparison["new"] + comparison["fixed"] + comparison["unchanged"]
    back = compare(load("passing"), current, "reports/new/results.json")
    assert back["fixed"] == sorted([keys["F1"], keys["F2"]])
    out = copy.deepcopy(current)
    out["comparison"] = comparison
    assert validate_results(out) == []
    page = Page(render_html(out))
    assert "F1" in page.by_id("comparison").text


def test_apply_baseline__accepts_violations_only() -> None:
    results = _with_violation(load("inconclusive"))
    entries = []
    for fid in ("F1", "F3", "F9"):  # inconclusive, note, violation
        finding = next(f for f in results["findings"] if f["id"] == fid)
        entries.append(
            {
                "requirement": finding["requirement"],
                "operation": finding["operation"],
                "check": finding["check"],
                "title": finding["title"],
                "reason": "r",
                "ticket": f"API-{fid}",
                "expires": "2026-07-01",
            }
        )

    out = apply_baseline(results, entries, date(2026, 5, 21), path="baseline.yaml")

    assert [e["ticket"] for e in out["baseline"]["known"]] == ["API-F9"]
    assert [e["ticket"] for e in out["baseline"]["fixed"]] == ["API-F1", "API-F3"]
    findings = {f["id"]: f for f in out["findings"]}
    assert findings["F1"]["known"] is None and findings["F3"]["known"] is None
    verdicts = {r["id"]: r["verdict"] for r in out["requirements"]}
    assert (verdicts["RC-02"], verdicts["RC-06"], verdicts["RC-08"]) == ("known", "inconclusive", "inconclusive")
    assert validate_results(out) == []
    # The verdict decided before the baseline is stale: the report derives it again.
    assert "verdict" not in out["run"]
    assert _banner_label(out) == "INCONCLUSIVE"
    case = _case_for(_cases(render_junit(out)), T02)
    assert case.find("failure") is None


def test_report_html__variant_matrix_per_operation_and_kind() -> None:
    results = load("failing")
    matrix = results["matrix"]
    page = Page(render_html(results))
    section = page.by_id("variants")
    rows = [e for e in page.elements if e.tag == "tr" and section in e.ancestors and e.ancestors[-1].tag == "tbody"]
    assert [" ".join(r.text.split()).split(" ")[0] for r in rows] == [op["operation"] for op in matrix["operations"]]
    assert rows[0].text.split()[0] == "resetBackupChain"  # the operation this suite exists for first
    reset = matrix["operations"][0]["kinds"]["repetition"]
    bad = page.within(section, "mx-bad")
    assert len(bad) == 1 and " ".join(bad[0].text.split()) == f"{reset['tried']} / {reset['breached']} / 0"
    excused = [e for e in page.elements if section in e.ancestors and e.tag == "td" and e.attrs.get("title")]
    assert any("an accepted delete needs a backup of its own" in (e.attrs["title"] or "") for e in excused)
    assert f"{matrix['tried']} cells tried" in " ".join(section.text.split())
    assert "twice at once" in section.text and "RC-14" in section.text  # the breached cell, named


def test_report_html__no_matrix_section_without_a_matrix() -> None:
    page = Page(render_html(load("inconclusive")))
    assert not any(e.attrs.get("id") == "variants" for e in page.elements)


# --- the timeline of the run's waits (live.timeline) ---


def _timeline_rows(page: Page) -> list[Element]:
    return [e for e in page.elements if "wt-span" in e.classes]


def test_report_html__timeline_one_row_per_span_with_its_vm_and_kind() -> None:
    results = load("timeline")
    page = Page(render_html(results))

    rows = _timeline_rows(page)

    assert [(r.attrs["data-label"], r.attrs["data-vm"], r.attrs["data-kind"]) for r in rows] == [
        ("A1", "A", "backup"), ("A2", "A", "backup"), ("B1", "B", "backup"), ("A3", "A", "backup"),
        ("restore B1", "B", "restore"), ("A4", "A", "backup"), ("A5", "A", "backup"),
        ("A6", "A", "backup"), ("A7", "A", "backup"),
    ]
    first = rows[0]
    assert "VM A · backup" in page.within(first, "wt-who")[0].text
    assert page.within(first, "wt-end")[0].text.strip() == "56.3 s · ready"
    # The bar sits where the span was in flight: A1 from 2.1 s to 58.4 s of a 368.9 s run.
    (bar,) = page.within(first, "wt-bar")
    assert bar.attrs["style"] == "left: 0.57%; width: 15.26%"
    # Every row shades the six blocks, so the stretches the run stood still read as columns.
    assert all(len(page.within(row, "wt-shade")) == 6 for row in rows)
    shade = page.within(first, "wt-shade")[1]  # 63.3 s to 126.0 s
    assert shade.attrs["style"] == "left: 17.16%; width: 17.0%"


def test_report_html__timeline_marks_the_critical_path_and_explains_it() -> None:
    page = Page(render_html(load("timeline")))

    critical = [r.attrs["data-label"] for r in _timeline_rows(page) if "is-critical" in r.classes]
    marked = [r.attrs["data-label"] for r in _timeline_rows(page) if page.within(r, "crit")]

    # Each block's last span to settle: A2 (A1 and B1 were ready before it), the restore of B1
    # (after A3), then A4 to A7 each alone.
    assert critical == marked == ["A2", "restore B1", "A4", "A5", "A6", "A7"]
    assert all(page.within(r, "crit-mark") for r in _timeline_rows(page) if "is-critical" in r.classes)
    legend = next(e for e in page.elements if "wt-legend" in e.classes).text
    assert "critical path" in legend and "set the run's length" in legend
    assert "blocked" in legend


def test_report_html__timeline_totals() -> None:
    page = Page(render_html(load("timeline")))

    def stat(element_id: str) -> tuple[str, str]:
        box = page.by_id(element_id)
        (figure,) = [e.text for e in page.elements if e.tag == "b" and box in e.ancestors]
        return figure, box.text.removeprefix(figure)

    assert stat("wt-blocked") == ("5 min 39 s", "blocked (92% of the run)")
    assert stat("wt-length") == ("6 min 09 s", "the run's length")
    assert stat("wt-blocks") == ("6", "blocks (waits the run stood still for)")
    assert stat("wt-spans") == ("9", "backups and restores in flight, 6 on the critical path")
    ticks = [e.text for e in page.elements if "wt-tick" in e.classes]
    assert ticks == ["0:00", "1:00", "2:00", "3:00", "4:00", "5:00", "6:00"]
    (table,) = [e for e in page.elements if "wt-blocks" in e.classes]
    rows = [e for e in page.elements if e.tag == "tr" and table in e.ancestors][1:]
    cells = [[c.text for c in page.elements if c.tag == "td" and row in c.ancestors] for row in rows]
    assert [c[-1] for c in cells] == ["A2", "restore B1", "A4", "A5", "A6", "A7"]  # ended by
    assert cells[0][:4] == ["3.7 s", "61.7 s", "58.0 s", "A1, A2, B1"]


def test_report_html__timeline_span_still_in_flight_and_block_cut_short() -> None:
    # An interrupted run: A7 never became ready, and its block was left without an end.
    results = load("timeline")
    timeline = results["live"]["timeline"]
    a7 = timeline["spans"][-1]
    a7.update(ended_s=None, outcome=None, critical=False)
    timeline["blocks"][-1].update(ended_s=320.0, ended_by=None)
    timeline["blocked_s"] = 303.8
    timeline["written_s"] = 320.4
    assert validate_results(results) == []

    page = Page(render_html(results))

    row = _timeline_rows(page)[-1]
    (bar,) = page.within(row, "wt-bar")
    assert {"open", "crit"} & bar.classes == {"open"}
    assert "still in flight" in page.within(row, "wt-end")[0].text
    assert "nothing: cut short" in page.by_id("timeline").text


def test_report_html__timeline_no_waits_is_one_line() -> None:
    results = load("passing")
    results["live"]["timeline"] = {"spans": [], "blocks": [], "blocked_s": 0.0, "written_s": 3.2}

    page = Page(render_html(results))

    section = page.by_id("timeline")
    assert page.by_id("wt-none").text.startswith("No waits")
    assert not [e for e in page.elements if section in e.ancestors and {"waits", "stats"} & e.classes]
    assert not [e for e in page.elements if e.tag == "a" and e.attrs.get("href") == "#timeline"]


def test_report_html__no_timeline_section_in_older_files() -> None:
    page = Page(render_html(load("passing")))  # written before live.timeline existed

    assert not [e for e in page.elements if e.attrs.get("id") == "timeline"]


def test_validate_results__timeline_references() -> None:
    results = load("timeline")
    timeline = results["live"]["timeline"]
    timeline["blocks"][0]["ended_by"] = "A3"
    timeline["blocks"][1]["waiting_for"].append("A9")
    timeline["spans"][0]["ended_s"] = 1.0
    del timeline["spans"][1]["critical"]

    problems = validate_results(results)

    assert "live.timeline.spans[1]: missing field 'critical'" in problems
    results["live"]["timeline"]["spans"][1]["critical"] = True
    assert validate_results(results) == [
        "live.timeline.spans[0] (A1): ends before it starts",
        "live.timeline.blocks[0].ended_by: 'A3' is not a span it waited for",
        "live.timeline.blocks[1].waiting_for: unknown span 'A9'",
    ]
