"""Creating backups for tests: create, record in the cleanup ledger, and only then wait.

The budget (RAFF_MAX_BACKUPS on every server but the bundled mock this run started) is checked
before each create; a create it would exceed is not sent, and the caller learns why.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from conformance.client import RaffClient, WaitTimeout
from conformance.contract import load_contract
from conformance.exchange import Exchange, data_id, json_body
from conformance.ledger import Ledger
from conformance.preflight import OTHER_RUN_POLL_S, other_runs, parse_time, vm_env
from conformance.settings import OPTIONS, Settings, run_token_of


class BudgetSpent(Exception):
    """The run's backup budget is spent: the create was not sent."""


class OtherRunOnVm(Exception):
    """Another run of the suite is writing to the VM: this run writes nothing more to its VMs.

    Not a BudgetSpent: the recorded scenario stops at once (its later resets would reach the other
    run's series without a backup of this run for it to see), and its requirements end inconclusive.
    """


# The same-instant tie (BackupFactory._claim_after): how long the VM is watched for another run's
# first backup, and how long the run that lost keeps its own first backup visible before deleting it.
SETTLE_S = 2.0
HOLD_S = 3.0
# Runs (tokens) whose claim before their first write passed: their first create on a VM is then
# the tie-break's, never refused before it is sent (their first resets are out already).
_STARTED: set[str] = set()
# Per run token and VM: "ours" once the run's first create there stood; otherwise why the run
# leaves that VM to another run of the suite. Shared by every factory of the process.
_CLAIMS: dict[tuple[str, str], str] = {}


@dataclass
class Ready:
    """How waiting for a backup ended: ``final`` when it became ready, else why not."""

    final: Exchange | None
    problem: str | None = None  # what actually happened, in plain words
    last: Exchange | None = None  # the last answer seen while waiting (evidence)
    timed_out: bool = False  # still not ready at RAFF_READY_TIMEOUT
    undocumented: bool = False  # a status no documentation names: nothing says it would ever move


def _place(backup: dict[str, Any], unknown: datetime, token: str) -> tuple[datetime, int, str]:
    """Where a run's first backup stands on the VM: created_at (whole seconds on many servers), then
    its increment_id (in one series the later point has the higher), then the run token. The run
    whose first backup stands later loses the tie: its backup is the one nothing depends on yet."""
    increment = backup.get("increment_id")
    return (parse_time(backup.get("created_at")) or unknown, increment if isinstance(increment, int) else 0, token)


def left_to_other_run(settings: Settings, vm_id: str) -> str | None:
    """Why this run creates nothing more on the VM (another run of the suite has it), or None."""
    reason = _CLAIMS.get((settings.run_token, vm_id))
    return None if reason in (None, "ours") else reason


class BackupFactory:
    """Creates backups through the ledger: create, record, then wait (cleanup before any wait)."""

    def __init__(self, settings: Settings, client: RaffClient, ledger: Ledger) -> None:
        self.settings = settings
        self.client = client
        self.ledger = ledger

    def remaining(self) -> int | None:
        """How many more backups the run may create; None on the bundled mock (unbounded)."""
        budget = self.settings.backup_budget
        return None if budget is None else max(budget - self.ledger.backups_created, 0)

    def submit(self, vm_id: str, *, name: str | None = None, **spelling: Any) -> tuple[Exchange, str | None]:
        """Send createBackup for ``vm_id``; return its exchange and the new backup's id (if accepted).

        ``spelling``: how the request is written (``headers``, ``project_id``, ``api_key`` of the
        client's request), never what it asks for. Raises BudgetSpent instead of sending when the
        run may create no more.
        """
        if self.remaining() == 0:
            raise BudgetSpent(f"RAFF_MAX_BACKUPS={self.settings.max_backups} is spent; the create was not sent")
        self._claim_before(vm_id)
        name = name or f"{self.settings.run_prefix}-{uuid.uuid4().hex[:8]}"
        response = self.client.create_backup(vm_id, name=name, **spelling)
        backup_id = data_id(json_body(response))
        if backup_id:
            self.ledger.record(backup_id)  # before any wait or assert, so cleanup always knows it
        exchange = Exchange.from_httpx(response, "createBackup")
        accepted = backup_id if 200 <= response.status_code < 300 else None
        if accepted:
            self._claim_after(vm_id, accepted)
        return exchange, accepted

    # -- one run per VM (see preflight.py: sharing a VM with another run of the suite) -------------

    def _listing(self, vm_id: str) -> tuple[list[Any], datetime]:
        try:
            answer = self.client.list_backups(vm_id=vm_id, limit=1000)
        except httpx.HTTPError:
            return [], datetime.now(UTC)
        body = json_body(answer)
        data = body.get("data") if isinstance(body, dict) and answer.status_code == 200 else None
        now = parse_time(answer.headers.get("date")) or datetime.now(UTC)
        return (data if isinstance(data, list) else []), now

    def _claim_before(self, vm_id: str) -> None:
        """Right before the run's first create on the VM: no other run of the suite is active there,
        or it ends within RAFF_WAIT_FOR_OTHER_RUN; else OtherRunOnVm (nothing is sent)."""
        key = (self.settings.run_token, vm_id)
        if self.settings.is_mock or _CLAIMS.get(key) == "ours":
            return
        if key in _CLAIMS:
            raise OtherRunOnVm(_CLAIMS[key])
        if self.settings.run_token in _STARTED:
            return  # the run has written already: its first create is its mark, and _claim_after decides
        deadline = time.monotonic() + self.settings.wait_for_other_run
        said = False
        while True:
            data, now = self._listing(vm_id)
            active = other_runs(data, self.settings.run_token, vm_id, now, self.settings.other_run_stale_after)
            if not active:
                return
            described = active[0].describe(vm_env(self.settings, vm_id))
            if time.monotonic() >= deadline:
                self._leave_all(
                    f"{described}, seen right before this run's first write there; the run wrote nothing to "
                    f"its VMs (set {OPTIONS['wait_for_other_run'].env} to wait for it)"
                )
                raise OtherRunOnVm(_CLAIMS[key])
            if not said:
                said = True
                until = datetime.fromtimestamp(time.time() + deadline - time.monotonic(), UTC)
                self.client.notify(f"{described}; waiting for it to end until {until:%H:%M:%S} UTC")
            time.sleep(min(OTHER_RUN_POLL_S, max(0.0, deadline - time.monotonic())))

    def claim_vms(self) -> None:
        """Before the run's first write to its VMs (the scenario's first reset): each VM is free of
        other runs of the suite, or they end within RAFF_WAIT_FOR_OTHER_RUN; else the run leaves
        all of them (the scenario uses them together) and OtherRunOnVm says why."""
        for vm_id in filter(None, (self.settings.vm_id, self.settings.second_vm_id)):
            try:
                self._claim_before(vm_id)
            except OtherRunOnVm as refusal:
                self._leave_all(str(refusal))
                raise
        _STARTED.add(self.settings.run_token)

    def _leave_all(self, reason: str) -> None:
        for vm_id in filter(None, (self.settings.vm_id, self.settings.second_vm_id)):
            _CLAIMS[(self.settings.run_token, vm_id)] = reason

    def _claim_after(self, vm_id: str, backup_id: str) -> None:
        """Right after the run's first create on the VM: two runs that checked at the same instant
        both created. For SETTLE_S the VM is listed again: the run whose first backup came later
        (created_at, then run token) leaves all its VMs to the other. It keeps that backup for
        HOLD_S (longer than SETTLE_S, so that the other run sees it and judges nothing of the VM
        before it), then deletes it and creates nothing more. The other run waits until it is gone
        (nothing of its own may come to depend on it) and goes on."""
        key = (self.settings.run_token, vm_id)
        if self.settings.is_mock or key in _CLAIMS:
            return
        created = time.monotonic()
        stale = self.settings.other_run_stale_after
        first = None
        later: set[str] = set()
        while True:
            data, now = self._listing(vm_id)
            rivals = {run.token for run in other_runs(data, self.settings.run_token, vm_id, now, stale)}
            mine = next((b for b in data if isinstance(b, dict) and str(b.get("id")) == backup_id), {})
            my_place = _place(mine, now, self.settings.run_token)
            for backup in data:
                token = run_token_of(backup.get("name")) if isinstance(backup, dict) else None
                if token not in rivals:
                    continue
                place = _place(backup, datetime.min.replace(tzinfo=UTC), str(token))
                if place < my_place:
                    if first is None or place < first[0]:
                        first = (place, backup)
                else:
                    later.add(str(token))
            if first is not None or time.monotonic() - created >= SETTLE_S:
                break
            time.sleep(0.25)
        if first is None:
            _CLAIMS[key] = "ours"
            if later:
                self._wait_gone(vm_id, later)
            return
        other, winner = first[1], first[0][2]
        time.sleep(max(0.0, created + HOLD_S - time.monotonic()))
        outcome = self.ledger.delete_now(backup_id)
        self._leave_all(
            f"run {winner} began writing to {vm_env(self.settings, vm_id)} {vm_id} at the same moment and "
            f"created its first backup first ({other.get('id')} at {other.get('created_at')}); this run left "
            f"its VMs to it ({'deleted' if outcome == 'gone' else 'could not yet delete'} its own first backup "
            f"{backup_id}; set {OPTIONS['wait_for_other_run'].env} to wait instead)"
        )
        raise OtherRunOnVm(_CLAIMS[key])

    def _wait_gone(self, vm_id: str, tokens: set[str]) -> None:
        """Until the first backups of runs that lost the tie are gone (they delete them after HOLD_S)."""
        deadline = time.monotonic() + HOLD_S + 30.0
        while time.monotonic() < deadline:
            data, _ = self._listing(vm_id)
            if not any(isinstance(b, dict) and run_token_of(b.get("name")) in tokens for b in data):
                return
            time.sleep(0.25)

    def wait_ready(self, backup_id: str, on_status: Callable[[str | None], None] | None = None) -> Ready:
        """Wait until the backup is ready; never raises for what the server does. ``on_status`` hears
        each in-progress status seen on the way (the run's timeline)."""
        try:
            final, waited = self.client.wait_for_backup(
                backup_id, timeout=self.settings.effective_ready_timeout, on_status=on_status
            )
        except WaitTimeout as error:
            self.ledger.wait_seconds += self.settings.effective_ready_timeout
            last = Exchange.from_httpx(error.last, "getBackup") if error.last is not None else None
            return Ready(None, str(error), last, timed_out=True)
        except httpx.HTTPError as error:
            return Ready(None, f"getBackup of {backup_id} got no answer ({type(error).__name__}: {error})")
        self.ledger.wait_seconds += waited
        exchange = Exchange.from_httpx(final, "getBackup")
        status = _status(final)
        if final.status_code != 200:
            return Ready(None, f"getBackup of backup {backup_id} answered {final.status_code} while waiting", exchange)
        if status not in load_contract().backup_statuses("settled"):
            return Ready(
                None,
                f"getBackup of {backup_id} answered status {status!r}, which the contract names neither in "
                "progress nor settled, so there was nothing to wait for",
                exchange,
                undocumented=True,
            )
        if status != "ready":
            return Ready(None, f"backup {backup_id} ended {status!r}, not 'ready'", exchange)
        return Ready(exchange)


def _status(response: httpx.Response) -> str | None:
    try:
        data = response.json().get("data") or {}
        return data.get("status") if isinstance(data, dict) else None
    except (ValueError, AttributeError):
        return None
