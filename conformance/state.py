"""The run's state in one process: the running test's record, evidence, counts of what was sent.

The plugin fills it; fixtures, fuzzing, the model and the results builder read it. It sits below
all of them, so none has to import the plugin.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from conformance.checks import Finding
from conformance.contract import Contract
from conformance.exchange import Exchange
from conformance.judge import Judge
from conformance.settings import OPTIONS, Settings

MAX_EXCHANGES_PER_TEST = 25


@dataclass
class TestRecord:
    nodeid: str
    requirements: list[str]
    exchanges: list[Exchange] = field(default_factory=list)
    attached: list[Exchange] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    failed_subtests: int = 0
    subtest_messages: list[str] = field(default_factory=list)
    emitted: int = 0  # findings already sent in an earlier record of this test (setup/call/teardown)
    gaps_emitted: bool = False
    inconclusive: bool = False
    interrupted: bool = False  # cut short by Ctrl-C or SIGTERM: judges nothing
    shown: int = 0  # violations already printed in a failure block (a subtest's, or the test's)


class Evidence:
    """What a test hands to the report: exchanges and findings (spec gaps, extra violations)."""

    def __init__(self, state: RaffState) -> None:
        self._state = state

    def attach(self, *exchanges: Exchange | None) -> None:
        record = self._state.current
        if record is not None:
            record.attached.extend(e for e in exchanges if e is not None)

    def finding(self, finding: Finding) -> None:
        record = self._state.current
        if record is not None:
            record.findings.append(finding)


@dataclass
class RaffState:
    """Per-process state of the plugin."""

    config: pytest.Config
    settings: Settings
    contract: Contract
    started_at: float = field(default_factory=time.time)
    current: TestRecord | None = None
    in_call: bool = False
    observed: Counter[tuple[str, int]] = field(default_factory=Counter)
    records: list[dict[str, Any]] = field(default_factory=list)
    worker_outputs: list[dict[str, Any]] = field(default_factory=list)
    mock: Any = None
    mock_initial: frozenset[str] = frozenset()  # the bundled mock's backups before any test
    left_in_mock: int | None = None  # the bundled mock's backups the run created and left behind
    target_ready: bool = False
    backups_created: int = 0
    wait_seconds: float = 0.0
    leftovers: list[str] = field(default_factory=list)
    property_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests_sent: int = 0
    # Operations whose authentication generated traffic has confirmed (fuzz_checks.check_functions).
    auth_enforced: set[str] = field(default_factory=set)
    preflight_notes: list[str] = field(default_factory=list)
    matrix: list[dict[str, Any]] = field(default_factory=list)  # the variant matrix's cells (matrix.Outcome)
    judge: Judge = field(init=False)

    def __post_init__(self) -> None:
        self.judge = Judge(self.contract)

    def observe(self, exchange: Exchange, *, generated: bool = False) -> None:
        """Every exchange of this process: the judge's properties, coverage counts, and evidence of
        the running test. ``generated``: Schemathesis sent it (its checks judge the contract)."""
        self.requests_sent += 1
        self.judge.see(exchange, generated=generated)
        if exchange.operation_id and exchange.status is not None:
            self.observed[(exchange.operation_id, exchange.status)] += 1
        if self.in_call and self.current is not None and len(self.current.exchanges) < MAX_EXCHANGES_PER_TEST:
            self.current.exchanges.append(exchange)

    def say(self, line: str) -> None:
        """One line on the terminal now, even in the middle of a test (what a long wait waits for)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or hasattr(self.config, "workerinput"):
            return
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.ensure_newline()
            reporter.write_line(f"raff-conformance: {line}")

    def count_cases(self, operation_id: str, phase: str) -> None:
        stats = self.property_stats.setdefault(operation_id, {"cases": 0, "phases": {}})
        stats["cases"] += 1
        stats["phases"][phase] = stats["phases"].get(phase, 0) + 1


def get_state(config: pytest.Config) -> RaffState:
    return config.stash[STATE_KEY]


STATE_KEY = pytest.StashKey[RaffState]()


def run_command(config: pytest.Config) -> str:
    """How to reproduce this run: the same pytest arguments, the key read from the environment."""
    args = list(config.invocation_params.args)
    secret_flags = {option.flag: f"${option.env}" for name, option in OPTIONS.items() if name.endswith("api_key")}
    for index, arg in enumerate(args):
        flag = arg.split("=", 1)[0]
        if flag in secret_flags and "=" in arg:
            args[index] = f"{flag}={secret_flags[flag]}"
        elif index and args[index - 1] in secret_flags:
            args[index] = secret_flags[args[index - 1]]
    env = [
        f"{option.env}={shlex.quote(os.environ[option.env])}"
        for name, option in OPTIONS.items()
        if not name.endswith("api_key") and os.environ.get(option.env)
    ]
    return " ".join([*env, "python -m pytest", *args])


def utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
