"""The reviewer report: results.json (the data model) -> report.html, junit.xml.

The pytest plugin builds the results dict; this package validates, redacts, compares and
renders it. Nothing here talks to the API under test.
"""

from conformance.report.compare import BaselineError, apply_baseline, compare, load_baseline
from conformance.report.junit import render_junit
from conformance.report.model import finding_key, validate_results
from conformance.report.redact import redact
from conformance.report.render import render_html, write_reports

__all__ = [
    "BaselineError",
    "apply_baseline",
    "compare",
    "finding_key",
    "load_baseline",
    "redact",
    "render_html",
    "render_junit",
    "validate_results",
    "write_reports",
]
