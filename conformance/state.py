"""The run's state in one process: the running test's record, evidence, counts of what was sent.

The plugin fills it; fixtures, fuzzing, the model and the results builder read it. It sits below
all of them, so none has to import the plugin.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conformance.checks import Finding
from conformance.contract import Contract
from conformance.exchange import Exchange
from conformance.judge import Judge
from conformance.ledger import OWN_BACKUPS
from conformance.settings import OPTIONS, REDACTED, Settings, run_token_of
from conformance.timeline import Timeline

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
    matrix_early: list[Any] = field(default_factory=list)  # matrix.Outcome of the creates sent before the scenario
    judge: Judge = field(init=False)
    foreign: ForeignWatch = field(init=False)
    timeline: Timeline = field(init=False)  # the run's waits for backups and restores (timeline.py)
    progress_open: bool = field(default=False, init=False)  # a wait's line is on the terminal, unfinished

    def __post_init__(self) -> None:
        self.judge = Judge(self.contract)
        self.timeline = Timeline(show=self.progress)
        self.watch_foreign_writes(active=False)

    def watch_foreign_writes(self, *, active: bool) -> None:
        """(Re)start the watch for foreign writes on the run's VMs (once the target is known)."""
        s = self.settings
        self.foreign = ForeignWatch(
            (s.vm_id, s.second_vm_id), s.run_token, time.time(), active=active, scope=(s.api_key, s.project_id)
        )

    def observe(self, exchange: Exchange, *, generated: bool = False) -> None:
        """Every exchange of this process: the judge's properties, coverage counts, and evidence of
        the running test. ``generated``: Schemathesis sent it (its checks judge the contract)."""
        self.requests_sent += 1
        at = time.time()
        exchange.seen_at = at  # type: ignore[attr-defined]
        if exchange.raw_request is not None:
            exchange.raw_request.extensions["raff_seen_at"] = at
        self.foreign.see(exchange, at)
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
            if self.progress_open:  # the wait's line stays, finished, above this one
                reporter.write("\n")
                self.progress_open = False
            reporter.ensure_newline()
            reporter.write_line(f"raff-conformance: {line}")

    def progress(self, line: str, final: bool) -> None:
        """The current wait on one terminal line, rewritten in place as it goes (a terminal only); where
        the output is a file (CI), one line when the wait ends, so a log holds each wait once."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or hasattr(self.config, "workerinput") or not line:
            return
        line = f"raff-conformance: {line}"
        # The line holds labels and statuses; a server that echoes a key into a status gets nothing out.
        for secret in sorted(self.settings.secrets(), key=len, reverse=True):
            line = line.replace(secret, REDACTED)
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            if reporter.isatty():
                writer = self.config.get_terminal_writer()
                if not self.progress_open:  # a fresh line: the rewrite must not eat a line of test results
                    reporter.ensure_newline()
                    if writer.width_of_current_line:
                        reporter.write("\n")
                    self.progress_open = True
                # One physical line: a wrapped one would leave its first part behind on each rewrite.
                width = writer.fullwidth - 1
                reporter.rewrite(line if len(line) <= width else line[: width - 1] + "…", erase=True)
                if final:
                    reporter.write("\n")
                    self.progress_open = False
            elif final:
                reporter.ensure_newline()
                reporter.write_line(line)

    def count_cases(self, operation_id: str, phase: str) -> None:
        stats = self.property_stats.setdefault(operation_id, {"cases": 0, "phases": {}})
        stats["cases"] += 1
        stats["phases"][phase] = stats["phases"].get(phase, 0) + 1


# -- writes by anyone else ------------------------------------------------------------------------

BACKUP_PATH = re.compile(r"/backups/([0-9a-fA-F-]{36})(?:/|$)")
VM_PATH = re.compile(r"/vms/([0-9a-fA-F-]{36})(?:/|$)")


def seen_at(exchange: Exchange) -> float | None:
    """When the run saw this exchange (stamped by RaffState.observe), or None if it never did."""
    stamped = getattr(exchange, "seen_at", None)
    if stamped is None and exchange.raw_request is not None:
        # The scenario's copy of an exchange the client handed to observe: the same request object.
        stamped = exchange.raw_request.extensions.get("raff_seen_at")
    return stamped


def exchange_dict(exchange: Exchange) -> dict[str, Any]:
    """An exchange as evidence in results.json, with when the run saw it (the foreign-write rule's clock)."""
    return {**exchange.to_dict(), "at": seen_at(exchange)}


def finding_dict(finding: Finding) -> dict[str, Any]:
    """A finding as results.json holds it (its exchanges as evidence)."""
    return {
        "classification": finding.classification,
        "requirement": finding.requirement,
        "operation": finding.operation,
        "check": finding.check,
        "title": finding.title,
        "message": finding.message,
        "severity": finding.severity,
        "exchanges": [exchange_dict(e) for e in finding.exchanges],
        "replay": finding.replay,
        "confirmed": finding.confirmed,
        "blocked_by": finding.blocked_by,
    }


@dataclass
class ForeignWrite:
    """A write on one of the run's VMs that the run did not make, as the run first saw it."""

    backup_id: str
    vm_id: str
    kind: str  # "appeared": a backup the run did not create and that was not there at the start; "vanished"
    name: str | None
    created_at: str | None
    shown_by: str  # the exchange that first showed it (method, URL, status)
    seen_at: float
    # Every verdict about the VM whose evidence reaches this moment or later is touched: the last
    # moment the run had seen the VM without the write (the run's start for another run of the
    # suite, which also resets the series, invisibly).
    window_from: float
    other_run: str | None = None  # the run token, when another run of the suite made it

    def describe(self) -> str:
        who = f"run {self.other_run} of this suite" if self.other_run else "another client"
        if self.kind == "vanished":
            return (
                f"backup {self.backup_id} ({self.name!r}) on VM {self.vm_id} vanished without a delete of this run "
                f"(first missing in {self.shown_by} at {utc_iso(self.seen_at)})"
            )
        return (
            f"backup {self.backup_id} ({self.name!r}, created_at {self.created_at}) on VM {self.vm_id}, "
            f"written by {who}, not this run (first shown by {self.shown_by} at {utc_iso(self.seen_at)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "description": self.describe()}


class ForeignWatch:
    """Watches every answer of the run for writes on its VMs that it did not make.

    Known: the backups each VM held when the run started (``start``, the preflight's listing), the
    run's own (the cleanup ledgers' ``OWN_BACKUPS``, and any name with this run's token). Any other
    backup of the VM in an answer appeared through someone else; a known backup that is not the
    run's and that a complete listing of its VM no longer holds, with no DELETE of the run sent
    for it, vanished through someone else. Off on the bundled mock this run started: nobody else
    can reach it, and a planted defect that loses a backup must stay a violation.
    """

    def __init__(
        self,
        vm_ids: tuple[str | None, ...],
        run_token: str,
        started_at: float,
        *,
        active: bool,
        scope: tuple[str | None, str | None] = (None, None),
    ) -> None:
        self.vms = {vm.lower() for vm in vm_ids if vm}
        # The run's key and project: only a listing in that scope can show that a backup is gone
        # (another account's or project's listing rightly shows none of them).
        self.api_key, self.project_id = scope
        self.run_token = run_token
        self.started_at = started_at
        self.active = active
        self.initial: dict[str, set[str]] = {}
        self.started: dict[str, float] = {}
        self.last_clean: dict[str, float] = {}
        self.present: dict[str, dict[str, tuple[float, str | None]]] = {}
        self.backup_vms: dict[str, str] = {}
        self.deleted: set[str] = set()
        self.found: dict[tuple[str, str], ForeignWrite] = {}

    def start(self, vm_id: str, backup_ids: set[str], at: float) -> None:
        vm = vm_id.lower()
        self.initial[vm] = {b.lower() for b in backup_ids}
        self.started[vm] = at
        self.last_clean[vm] = at
        self.present[vm] = {b.lower(): (at, None) for b in backup_ids}

    def _own(self, backup_id: str, name: Any) -> bool:
        return backup_id in OWN_BACKUPS or run_token_of(name) == self.run_token

    def see(self, exchange: Exchange, at: float) -> None:
        if not self.active or not self.vms:
            return
        path = urlsplit(exchange.url).path
        if exchange.method == "DELETE" and (match := BACKUP_PATH.search(path)):
            self.deleted.add(match.group(1).lower())
        body = exchange.response_body
        if exchange.status != 200 or not isinstance(body, dict):
            return
        data = body.get("data")
        items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            backup_id, vm = item["id"].lower(), str(item.get("product_vm") or "").lower()
            if vm not in self.vms:
                continue
            self.backup_vms[backup_id] = vm
            if self._own(backup_id, item.get("name")):
                continue
            self.present.setdefault(vm, {})[backup_id] = (at, item.get("name"))
            if backup_id in self.initial.get(vm, ()) or (backup_id, "appeared") in self.found:
                continue
            other_run = run_token_of(item.get("name"))
            since = self.started.get(vm, self.started_at)
            self.found[(backup_id, "appeared")] = ForeignWrite(
                backup_id,
                vm,
                "appeared",
                item.get("name"),
                item.get("created_at"),
                exchange.summary(),
                at,
                since if other_run else self.last_clean.get(vm, since),
                other_run,
            )
        if exchange.operation_id == "listBackups" and isinstance(data, list):
            self._complete_listing(exchange, body, data, at)

    def _complete_listing(self, exchange: Exchange, body: dict[str, Any], data: list[Any], at: float) -> None:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(exchange.url).query).items()}
        if query.get("offset", "0") != "0" or exchange.raw_request is None:
            return
        sent = exchange.raw_request.headers
        project = sent.get("x-project-id")
        if sent.get("x-api-key") != self.api_key or (project is not None and project != self.project_id):
            return  # another scope: its listing rightly holds none of the run's VMs' backups
        total, limit = body.get("total"), query.get("limit")
        if not (isinstance(total, int) and total <= len(data)) and not (
            limit and limit.isdigit() and len(data) < int(limit)
        ):
            return  # a page, not the whole listing: absence proves nothing
        wanted = (query.get("vm_id") or "").lower()
        covered = {wanted} & self.vms if wanted else self.vms
        listed = {str(b.get("id")).lower() for b in data if isinstance(b, dict)}
        for vm in covered:
            for backup_id, (last, name) in list(self.present.get(vm, {}).items()):
                if backup_id in listed or backup_id in self.deleted:
                    continue
                del self.present[vm][backup_id]
                self.found.setdefault(
                    (backup_id, "vanished"),
                    ForeignWrite(backup_id, vm, "vanished", name, None, exchange.summary(), at, last),
                )
            self.last_clean[vm] = at

    def output(self) -> dict[str, Any]:
        return {
            "writes": [write.to_dict() for write in self.found.values()],
            "backup_vms": self.backup_vms,
        }


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
