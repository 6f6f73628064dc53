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
from conformance.exchange import STOP


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
        """Delete every recorded backup, newest first; return what could not be deleted this time
        (``leftovers`` keeps what every call could not).

        No read decides what is gone: every backup gets its DELETE, and only a 404 answered to a
        DELETE confirms it gone (a getBackup that wrongly answers 404 must not leave it behind).
        A delete refused with 409 (a newer point still depends on it) is tried again once the rest
        is gone. Runs also after Ctrl-C or SIGTERM (``STOP.cleaning`` lets its requests through).
        """
        leftovers: list[str] = []
        doomed = [b for b in reversed(list(self.created)) if b not in self.preexisting]
        if doomed and self.announce:
            self.client.notify(
                f"cleanup: deleting the {len(doomed)} backup(s) this run created, newest first, each confirmed "
                f"by a 404 to its DELETE (up to {confirm_timeout:.0f}s each)"
            )
        STOP.cleaning.set()
        try:
            refused: list[str] = []
            gone: list[str] = []
            for attempt in (doomed, refused):
                for backup_id in list(attempt):
                    try:
                        outcome = self._delete_confirmed(backup_id, confirm_timeout)
                    except Exception as error:  # a broken server must not stop the rest of the cleanup
                        leftovers.append(f"{backup_id} ({type(error).__name__})")
                        continue
                    if outcome == "gone":
                        self.forget(backup_id)
                        gone.append(backup_id)
                    elif outcome == "refused" and attempt is doomed:
                        refused.append(backup_id)
                    else:
                        leftovers.append(backup_id if outcome != "refused" else f"{backup_id} (delete refused 409)")
            leftovers += self._still_listed(gone)
        finally:
            STOP.cleaning.clear()
        self.leftovers += leftovers
        return leftovers

    def _still_listed(self, gone: list[str]) -> list[str]:
        """Backups whose DELETE answered 404 but that one listing afterwards still shows: a server
        whose deletes lie keeps them, and the run must say so rather than count them gone."""
        if not gone:
            return []
        try:
            answer = self.client.list_backups(limit=1000)
            data = answer.json().get("data") if answer.status_code == 200 else None
        except Exception:  # a listing the cleanup cannot read proves nothing either way
            return []
        listed = {str(b.get("id")).lower() for b in data or [] if isinstance(b, dict)}
        return [f"{b} (its DELETE answered 404, yet the listing still shows it)" for b in gone if b.lower() in listed]

    def _delete_confirmed(self, backup_id: str, timeout: float) -> str:
        """'gone' once a DELETE answers 404, 'refused' on 409, else 'stuck' at the deadline."""
        started = time.monotonic()
        deadline = started + timeout
        noticed = False
        pause = 0.0  # the first resend goes at once (a synchronous delete answers it 404), then backs off
        while True:
            answer = self.client.delete_backup(backup_id)
            if answer.status_code == 404:
                return "gone"
            if answer.status_code == 409:
                return "refused"
            if time.monotonic() >= deadline:
                return "stuck"
            if not noticed and time.monotonic() - started >= NOTICE_AFTER_S:
                noticed = True
                self.client.notify(
                    f"cleanup: DELETE of {backup_id} still answers {answer.status_code}, not 404; "
                    f"trying again for up to {timeout:.0f}s"
                )
            # A DELETE is idempotent (RFC 9110 §9.2.2): sent again, a 404 says the first one took.
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(max(pause * 2, 0.2), 5.0)
