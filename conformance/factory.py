"""Creating backups for tests: create, record in the cleanup ledger, and only then wait.

The budget (RAFF_MAX_BACKUPS on every server but the bundled mock this run started) is checked
before each create; a create it would exceed is not sent, and the caller learns why.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from conformance.client import RaffClient, WaitTimeout
from conformance.contract import load_contract
from conformance.exchange import Exchange, data_id, json_body
from conformance.ledger import Ledger
from conformance.settings import Settings


class BudgetSpent(Exception):
    """The run's backup budget is spent: the create was not sent."""


@dataclass
class Ready:
    """How waiting for a backup ended: ``final`` when it became ready, else why not."""

    final: Exchange | None
    problem: str | None = None  # what actually happened, in plain words
    last: Exchange | None = None  # the last answer seen while waiting (evidence)
    timed_out: bool = False  # still not ready at RAFF_READY_TIMEOUT
    undocumented: bool = False  # a status no documentation names: nothing says it would ever move


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
        name = name or f"{self.settings.name_prefix}-{uuid.uuid4().hex[:8]}"
        response = self.client.create_backup(vm_id, name=name, **spelling)
        backup_id = data_id(json_body(response))
        if backup_id:
            self.ledger.record(backup_id)  # before any wait or assert, so cleanup always knows it
        exchange = Exchange.from_httpx(response, "createBackup")
        return exchange, backup_id if 200 <= response.status_code < 300 else None

    def wait_ready(self, backup_id: str) -> Ready:
        """Wait until the backup is ready; never raises for what the server does."""
        try:
            final, waited = self.client.wait_for_backup(backup_id, timeout=self.settings.effective_ready_timeout)
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
