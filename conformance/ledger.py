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

# Every backup a ledger of this process recorded: the run's own backups, which the watch for
# foreign writes (state.ForeignWatch) never counts as someone else's.
OWN_BACKUPS: set[str] = set()
# The run's backups whose delete another client's backup blocks (409, a later point of the same
# series that is not the run's): id -> what depends on it. Tried once more at the very end (the
# session ledger's cleanup); what still stands is reported as kept, never as a bare leftover.
KEPT: dict[str, str] = {}


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
            OWN_BACKUPS.add(backup_id.lower())

    def forget(self, backup_id: str) -> None:
        """The backup was deleted by a test; nothing left to clean."""
        with self._lock:
            if backup_id in self.created:
                self.created.remove(backup_id)

    def cleanup(self, *, confirm_timeout: float = 30.0, final: bool = False) -> list[str]:
        """Delete every recorded backup, newest first; return what could not be deleted this time
        (``leftovers`` keeps what every call could not).

        No read decides what is gone: every backup gets its DELETE, and only a 404 answered to a
        DELETE confirms it gone (a getBackup that wrongly answers 404 must not leave it behind).
        A delete refused with 409 (a newer point still depends on it) is tried again once the rest
        is gone. One still refused because a backup that is not the run's depends on it (another
        client's) is kept (``KEPT``) rather than left over; ``final`` (the session's cleanup, the
        last of the run) tries every kept one once more. Runs also after Ctrl-C or SIGTERM
        (``STOP.cleaning`` lets its requests through).
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
            accepted: list[str] = []  # DELETE answered 2xx, its resend never 404: the listing decides
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
                    elif outcome == "accepted":
                        accepted.append(backup_id)
                    elif outcome == "refused" and attempt is doomed:
                        refused.append(backup_id)
                    elif outcome == "refused" and (dependent := self._foreign_dependent(backup_id)):
                        KEPT[backup_id] = dependent
                    else:
                        leftovers.append(backup_id if outcome != "refused" else f"{backup_id} (delete refused 409)")
            if final:
                for backup_id in list(KEPT):  # once more at the very end: the other client may be done
                    try:
                        outcome = self._delete_confirmed(backup_id, confirm_timeout)
                    except Exception:
                        continue
                    if outcome == "gone":
                        del KEPT[backup_id]
                        self.forget(backup_id)
                        gone.append(backup_id)
            leftovers += self._still_listed(gone)
            leftovers += self._accepted_but_listed(accepted)
        finally:
            STOP.cleaning.clear()
        self.leftovers += leftovers
        return leftovers

    def delete_now(self, backup_id: str, timeout: float = 30.0) -> str:
        """Delete one recorded backup now (confirmed by a 404): 'gone', 'refused' or 'stuck'."""
        outcome = self._delete_confirmed(backup_id, timeout)
        if outcome == "gone":
            self.forget(backup_id)
        return outcome

    def _foreign_dependent(self, backup_id: str) -> str | None:
        """The backup that is not the run's and depends on this one (a later point on its VM), in
        words, or None when the listing shows none (then the 409 is the server's alone)."""
        try:
            shown = self.client.show_backup(backup_id)
            mine = shown.json().get("data") if shown.status_code == 200 else None
            if not isinstance(mine, dict) or not mine.get("product_vm"):
                return None
            listing = self.client.list_backups(vm_id=mine["product_vm"], limit=1000)
            data = listing.json().get("data") if listing.status_code == 200 else None
        except Exception:  # what cannot be read names nothing
            return None
        position = mine.get("increment_id")
        for other in data or []:
            if not isinstance(other, dict) or str(other.get("id", "")).lower() in OWN_BACKUPS:
                continue
            later = other.get("increment_id")
            if isinstance(position, int) and isinstance(later, int) and later > position:
                name, created = other.get("name"), other.get("created_at")
                return f"backup {other.get('id')} ({name!r}, created {created}, not this run's)"
        return None

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

    def _accepted_but_listed(self, accepted: list[str]) -> list[str]:
        """Backups whose DELETE answered 2xx but whose resent DELETE never answered 404 (a server that
        errs on the repeat): two answers decide, the DELETE's and one listing afterwards. Gone from it,
        they are gone; still listed, or no listing to read, they are left over."""
        if not accepted:
            return []
        try:
            answer = self.client.list_backups(limit=1000)
            data = answer.json().get("data") if answer.status_code == 200 else None
        except Exception:
            data = None
        if not isinstance(data, list):
            why = "its DELETE answered 2xx, its resend never 404, and no listing could confirm"
            return [f"{b} ({why})" for b in accepted]
        listed = {str(b.get("id")).lower() for b in data if isinstance(b, dict)}
        for backup_id in accepted:
            if backup_id.lower() not in listed:
                self.forget(backup_id)
        still = [b for b in accepted if b.lower() in listed]
        return [f"{b} (its DELETE answered 2xx, yet the listing still shows it)" for b in still]

    def _delete_confirmed(self, backup_id: str, timeout: float) -> str:
        """'gone' once a DELETE answers 404, 'refused' on 409; at the deadline 'accepted' if one DELETE
        answered 2xx (the listing decides, see cleanup), else 'stuck'. After a 2xx, three 5xx answers to
        the resend end the wait early: the server errs on the repeat, waiting longer shows nothing."""
        started = time.monotonic()
        deadline = started + timeout
        noticed = False
        took = False  # a DELETE answered 2xx
        errors_after = 0  # 5xx answers to the resend after that
        pause = 0.0  # the first resend goes at once (a synchronous delete answers it 404), then backs off
        while True:
            answer = self.client.delete_backup(backup_id)
            if answer.status_code == 404:
                return "gone"
            if answer.status_code == 409:
                return "refused"
            took = took or 200 <= answer.status_code < 300
            errors_after += int(took and answer.status_code >= 500)
            if errors_after >= 3:
                return "accepted"
            if time.monotonic() >= deadline:
                return "accepted" if took else "stuck"
            if not noticed and time.monotonic() - started >= NOTICE_AFTER_S:
                noticed = True
                self.client.notify(
                    f"cleanup: DELETE of {backup_id} still answers {answer.status_code}, not 404; "
                    f"trying again for up to {timeout:.0f}s"
                )
            # A DELETE is idempotent (RFC 9110 §9.2.2): sent again, a 404 says the first one took.
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(max(pause * 2, 0.2), 5.0)
