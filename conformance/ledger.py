"""The cleanup ledger: every backup the suite creates, recorded the moment it exists.

At the end of a session (and on failure, Ctrl-C or SIGTERM, through pytest's teardown) the
ledger deletes what is still there, newest restore point first because later points depend
on earlier ones, and confirms each deletion with a 404 before the next. Backups that existed
before the run are remembered and never deleted, whatever the ledger was told.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from conformance.client import NOTICE_AFTER_S, RaffClient


@dataclass
class Ledger:
    client: RaffClient
    preexisting: frozenset[str] = frozenset()
    created: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    backups_created: int = 0
    wait_seconds: float = 0.0
    # Say what the cleanup deletes before it starts (a live target: each delete is confirmed and
    # may take long). On the bundled mock it takes milliseconds and would only be noise.
    announce: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, backup_id: str) -> None:
        with self._lock:
            if backup_id not in self.created:
                self.created.append(backup_id)
                self.backups_created += 1

    def forget(self, backup_id: str) -> None:
        """The backup was deleted by a test; nothing left to clean."""
        with self._lock:
            if backup_id in self.created:
                self.created.remove(backup_id)

    def cleanup(self, *, confirm_timeout: float = 30.0) -> list[str]:
        """Delete every recorded backup still present, newest first; return what could not be."""
        leftovers: list[str] = []
        doomed = [b for b in reversed(list(self.created)) if b not in self.preexisting]
        if doomed and self.announce:
            self.client.notify(
                f"cleanup: deleting the {len(doomed)} backup(s) this run created, newest first, each confirmed "
                f"by a 404 (up to {confirm_timeout:.0f}s each)"
            )
        for backup_id in doomed:
            try:
                if not self._delete_confirmed(backup_id, confirm_timeout):
                    leftovers.append(backup_id)
                    continue
            except Exception as error:  # a broken server must not stop the rest of the cleanup
                leftovers.append(f"{backup_id} ({type(error).__name__})")
                continue
            self.forget(backup_id)
        self.leftovers = leftovers
        return leftovers

    def _delete_confirmed(self, backup_id: str, timeout: float) -> bool:
        shown = self.client.show_backup(backup_id)
        if shown.status_code == 404:
            return True
        answer = self.client.delete_backup(backup_id)
        if answer.status_code == 409:
            # Something newer (not ours, or a failed earlier delete) still depends on it.
            return False
        started = time.monotonic()
        deadline = started + timeout
        noticed = False
        while time.monotonic() < deadline:
            if self.client.show_backup(backup_id).status_code == 404:
                return True
            if not noticed and time.monotonic() - started >= NOTICE_AFTER_S:
                noticed = True
                self.client.notify(
                    f"cleanup: deleteBackup of {backup_id} answered {answer.status_code}, but getBackup still "
                    f"finds it; waiting up to {timeout:.0f}s for it to go"
                )
            time.sleep(0.2)
        return False
