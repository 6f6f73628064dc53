"""The reviewer's report in a real browser: headless Chromium at 1280×800 (Debian's ``chromium``,
driven by Playwright without a browser download). Parsed HTML cannot tell whether a table
scrolls sideways or a column is a letter wide; a browser can.

Two real runs against the bundled mock: a clean one and one with a planted defect.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.report import render_html

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (.[test])")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium is absent: apt-get install chromium (CI's .ci/run does)"
)
VIEWPORT = {"width": 1280, "height": 800}
MIN_TESTS_COLUMN_PX = 180
# 30 requirements, each with its row and box, the properties every exchange is held to and the
# variant matrix; one defect (closed_points_hidden) measured 25.6k px before passes, spec gaps past
# two, violations past one and a clean property table folded (issue 27): 14.5k px. Issue 28 added a
# requirement (RC-31), two tests and the timeline of waits: 16.1k px.
MAX_HEIGHT_ONE_DEFECT_PX = 16_500


def _report(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "r"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--mock-time=requests",
         f"--report-dir={out}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    report = out / "report.html"
    assert report.exists(), "the run wrote no report"
    return report


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page(viewport=VIEWPORT)
    yield page
    page.close()


def _layout(page: Any) -> dict[str, float]:
    return page.evaluate(
        """() => {
          const root = document.documentElement;
          const heads = [...document.querySelectorAll('#matrix-table thead th')];
          const tests = heads.find(th => th.textContent.includes('Tests'));
          return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, height: root.scrollHeight,
                  testsColumn: tests ? tests.getBoundingClientRect().width : 0};
        }"""
    )


def test_report_browser__passing_run_fits_the_window(tmp_path: Path, page: Any) -> None:
    page.goto(_report(tmp_path).as_uri())
    layout = _layout(page)
    assert layout["scrollWidth"] <= layout["clientWidth"], f"scrolls sideways: {layout}"
    assert layout["testsColumn"] >= MIN_TESTS_COLUMN_PX, layout
    assert "PASS" in page.inner_text("#top")
    page.screenshot(path=str(tmp_path / "passing.png"))


def test_report_browser__failing_run_leads_to_its_evidence(tmp_path: Path, page: Any) -> None:
    page.goto(_report(tmp_path, "--mock-defect", "closed_points_hidden").as_uri())
    layout = _layout(page)
    assert layout["scrollWidth"] <= layout["clientWidth"], f"scrolls sideways: {layout}"
    assert layout["testsColumn"] >= MIN_TESTS_COLUMN_PX, layout
    assert layout["height"] < MAX_HEIGHT_ONE_DEFECT_PX, f"a one-defect report {layout['height']:.0f} px tall"
    first = page.locator("#attention ul.attention li a.fid").first
    finding_id = first.inner_text()
    first.click()
    finding = page.locator(f"#finding-{finding_id}")
    assert finding.is_visible()
    evidence = finding.locator(".evidence").first
    evidence.scroll_into_view_if_needed()
    assert evidence.is_visible(), "the finding's evidence is not shown"
    assert "curl" in finding.inner_text()
    # The violation shows what set up the expectation too: the listing before the reset.
    assert finding.locator("details.step").count() >= 1, "only the breaking exchange is shown"
    page.screenshot(path=str(tmp_path / "failing.png"))


# Nine spans and six blocks (tests/fixtures/results/timeline.json) measured 494 px.
MAX_TIMELINE_HEIGHT_PX = 700


def test_report_browser__timeline_reads_in_the_window(tmp_path: Path, page: Any) -> None:
    fixture = ROOT / "tests" / "fixtures" / "results" / "timeline.json"
    report = tmp_path / "report.html"
    report.write_text(render_html(json.loads(fixture.read_text(encoding="utf-8"))), encoding="utf-8")
    page.goto(report.as_uri())
    layout = page.evaluate(
        """() => {
          const rows = [...document.querySelectorAll('#timeline .wt-span')].map(row => {
            const track = row.querySelector('.wt-track').getBoundingClientRect();
            const bar = row.querySelector('.wt-bar').getBoundingClientRect();
            const who = row.querySelector('.wt-who');
            return {inside: bar.left >= track.left - 1 && bar.right <= track.right + 1 && bar.width >= 2,
                    labelWhole: who.scrollWidth <= who.clientWidth};
          });
          const root = document.documentElement;
          return {rows, scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
                  height: document.getElementById('timeline').getBoundingClientRect().height};
        }"""
    )
    assert layout["scrollWidth"] <= layout["clientWidth"], f"scrolls sideways: {layout}"
    assert len(layout["rows"]) == 9
    assert all(row["inside"] for row in layout["rows"]), layout["rows"]
    assert all(row["labelWhole"] for row in layout["rows"]), "a span's label is cut"
    assert layout["height"] < MAX_TIMELINE_HEIGHT_PX, layout["height"]
    page.locator("#timeline").screenshot(path=str(tmp_path / "timeline.png"))
