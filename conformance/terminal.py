"""The short block a failed requirement test prints in pytest's failure section.

A reviewer needs five things from a failure: the requirement, what was expected, what came back,
a command that sends the same request, and where the full evidence is. pytest's default
traceback gives fixture reprs and test source instead; Schemathesis prints its own failures as a
short block for the same reason. ``-v`` or ``--tb=long``/``--tb=short`` bring the traceback back.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import Any

from conformance.checks import Finding
from conformance.exchange import Exchange

MAX_FINDINGS = 3  # the rest are counted, the report lists them all
BODY_CHARS = 160
WIDTH = 100
PROGRAM_MARK = "Shrunk failing sequence (Hypothesis):"


@dataclass(frozen=True)
class Crash:
    """What pytest's ``-ra`` summary line reads from a failure (``reprcrash``)."""

    path: str
    lineno: int
    message: str


class FailureBlock:
    """A failure's ``longrepr``: lines written as they are, with a one-line ``reprcrash``."""

    def __init__(self, lines: list[str], crash: Crash) -> None:
        self.lines = lines
        self.reprcrash = crash

    def toterminal(self, tw: Any) -> None:
        for line in self.lines:
            tw.line(line)

    def __str__(self) -> str:
        return "\n".join(self.lines)


def failure_block(
    *,
    requirements: dict[str, str],
    findings: list[Finding],
    message: str,
    report_html: str,
    location: tuple[str, int],
) -> FailureBlock:
    """The block for one failed test (or subtest).

    ``requirements`` maps the test's requirement IDs to their statements; ``findings`` are the
    violations it raised (none for a plain assertion, whose ``message`` is then shown).
    """
    lines: list[str] = []
    shown = findings[:MAX_FINDINGS]
    for finding in shown:
        lines += _finding_lines(finding, requirements)
    if not shown:
        for req_id, statement in requirements.items():
            lines.append(_clip(f"{req_id}  {statement}", WIDTH))
        lines += ["  " + line for line in _wrap(message.strip() or "the test failed", 12)]
    if len(findings) > len(shown):
        lines.append(f"… and {len(findings) - len(shown)} more finding(s) of this test in the report")
    anchor = next((f.requirement for f in shown if f.requirement), next(iter(requirements), None))
    where = f"{report_html}#req-{anchor}" if anchor else report_html
    lines.append(f"report: {where}   (-v or --tb=long: the traceback)")
    first = shown[0] if shown else None
    summary = f"[{first.requirement}] {first.title}" if first else message.strip().splitlines()[0][:160]
    return FailureBlock(lines, Crash(location[0], location[1], summary))


def _finding_lines(finding: Finding, requirements: dict[str, str]) -> list[str]:
    req_id = finding.requirement or "?"
    statement = requirements.get(req_id, "")
    lines = [_clip(f"{req_id}  {statement}".rstrip(), WIDTH)]
    text, program = _split_program(finding.message)
    # The exchange lines below say what was sent and what came back; the message gets two lines.
    exchange = finding.exchanges[-1] if finding.exchanges else None
    if exchange is not None and exchange.url in text:
        text = ""  # the message retells the exchange, which has its own line
    said = f"{finding.title}: {text}" if text else finding.title
    lines += ["  " + line for line in _wrap(said, 2 if exchange else 4)]
    if program:
        lines.append("  shrunk to these steps (Hypothesis):")
        lines += [f"    {n}. {step}" for n, step in enumerate(program, 1)]
    if exchange is not None:
        lines += _exchange_lines(exchange)
    return lines


def _exchange_lines(exchange: Exchange) -> list[str]:
    if exchange.error:
        answer = f"no response ({_clip(exchange.error, WIDTH - 20)})"
    else:
        answer = f"{exchange.status} {_body(exchange.response_body)}"
    return [f"  {exchange.method} {exchange.url} -> {answer}", f"  curl: {exchange.curl()}"]


def _split_program(message: str) -> tuple[str, list[str]]:
    """A model failure's message and its shrunk program as steps (invariant checks left out)."""
    if PROGRAM_MARK not in message:
        return message, []
    text, _, program = message.partition(PROGRAM_MARK)
    steps = []
    for line in program.strip().splitlines():
        line = line.strip()
        if "state." not in line or line.startswith("state = ") or "listings_match_model()" in line:
            continue  # Hypothesis' headings, the machine's creation and its invariant checks
        if line != "state.teardown()":
            steps.append(line.replace("state.", "", 1))
    return text.strip(), steps


def _body(body: Any) -> str:
    if body is None:
        return "(no body)"
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, separators=(", ", ": "))
    return _clip(text.replace("\n", " "), BODY_CHARS)


def _wrap(text: str, max_lines: int) -> list[str]:
    wrapped = [w for paragraph in text.splitlines() for w in (textwrap.wrap(paragraph, WIDTH - 2) or [""])]
    wrapped = [line for line in wrapped if line.strip()]
    if len(wrapped) > max_lines:
        wrapped = [*wrapped[:max_lines], "…"]
    return wrapped


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
