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
ALL_FIXTURES = ["passing", "failing", "empty"]
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
    [("passing", "PASS"), ("failing", "FAIL"), ("empty", "NO TESTS RAN")],
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
