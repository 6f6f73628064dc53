"""The recorded scenario: one run of reset-chain's story on the VM, shared by many tests.

A real backup takes minutes and costs money, so the requirement tests do not each create
their own. The scenario runs once per session, on the VM and on a second VM when one is set,
in the order the series semantics force and waiting only where a later step needs a backup ready
(a live run's length is its waits; conformance/timeline.py records them):

    reset A, reset B -> create A1, B1, reset B, create A2    | wait: A1, A2, B1
    -> reset A -> reset A again -> create A3, restore B1, create A4 -> rejected resets of A (no project,
    bad project, no key, wrong key) -> create A5 and, while it is in flight, reset A -> create A6
                                                             | wait: A3..A6, B1 restored
    -> listings, pages, equivalents, scope probes -> delete A3 (A4 depends on it) -> delete series 2
    through A4 -> delete series 1 through A2 -> reset A (series 3 holds only its baseline A6)
    -> create A7                                             | wait: A7
    -> delete the open series through A7 (series 3 stands beside it)

Creates go out while others of the VM are in flight: the docs neither allow nor forbid it, and a
server that takes one at a time refuses with a documented answer (409 in the overlay, or the
create's 400); the run then waits for the VM's backups, sends the create again and goes on one at
a time. Listings in between (after the reset also the project's and the key's whole listing, RC-17;
once A6 is ready the VM's listing with and without X-Project-ID, a VM the key cannot see, and the
VM's listing again in pages, RC-18 and RC-20: reads only, no extra backup) are recorded under a
step name. Each requirement test then asserts on the record, so a failure still names its own
requirement and shows its evidence. A step that cannot run (an earlier one failed) is recorded as
missing with the reason.

Why each backup: A1, A2 make a series of two to close (RC-06, RC-15) and, with B's reset between
them, show that a reset of one VM leaves another's series alone (RC-09); A3, A4 the numbering
after a reset (RC-08, RC-10) and a point with a dependent (RC-16); A5 shows that the refused resets
reset nothing and is the backup in flight during a reset (RC-21); A6 is the first backup asked for
after that reset, then a series of only a baseline (RC-21, RC-22); A7 the backup after the reset of
that one-point series (RC-22), then the open series deleted while a closed one stands (RC-31); B1,
closed by B's reset, is the closed point restored (RC-07; A1 without a second VM). At most eight
backups are created (seven on A, one on B); all go through the cleanup ledger.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance.checks import inconclusive
from conformance.client import RaffClient
from conformance.contract import load_contract
from conformance.exchange import Exchange, data_id, json_body
from conformance.factory import BackupFactory, BudgetSpent
from conformance.settings import WRONG_KEY, Settings
from conformance.state import seen_at
from conformance.timeline import Timeline

NOT_A_UUID = "not-a-uuid"
# Answers to a create sent while another backup of the VM is in flight that may mean "one at a time":
# 409 is the docs' code for a resource-state mismatch (the overlay's entry on createBackup), 400 the
# create's documented refusal. The create is sent again once the VM's backups are ready; if the same
# request is refused again, the refusal was not about the backup in flight.
BUSY_REFUSALS = (400, 409)
PAGES = 6  # at most this many pages (plus one) re-read the VM's listing for RC-18
# Resets the server must refuse, each with the request change that makes it wrong.
REJECTED_RESETS: dict[str, dict[str, Any]] = {
    "reset_A_no_project": {"project_id": None},
    "reset_A_bad_project": {"project_id": NOT_A_UUID},
    "reset_A_no_key": {"api_key": None},
    "reset_A_wrong_key": {"api_key": WRONG_KEY},
}


# Scripts a name of the contract's maxLength is filled with (P-ROUND-TRIP): it must read back as sent.
NAME_FILLER = "é漢字Ωж🙂ß "


def long_name(prefix: str) -> str:
    """A backup name of exactly CreateBackupRequest.name's maxLength, in several scripts."""
    limit = load_contract().merged["components"]["schemas"]["CreateBackupRequest"]["properties"]["name"]["maxLength"]
    head = f"{prefix}-{uuid.uuid4().hex[:8]}-"
    return (head + NAME_FILLER * limit)[:limit]


@dataclass
class ScenarioRecord:
    vm_id: str
    second_vm_id: str | None
    steps: dict[str, Exchange] = field(default_factory=dict)
    # Steps that did not run or did not give what later steps need: what actually happened, and
    # the exchange that shows it (the refused create, the last poll of a backup never ready).
    missing: dict[str, str] = field(default_factory=dict)
    blocking: dict[str, Exchange] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    pages: list[str] = field(default_factory=list)  # the page_A_<n> steps sent, in order
    invisible_vm_id: str | None = None  # the VM of list_invisible_vm: another account's, or made up
    restored: str | None = None  # the closed point the scenario restored (RC-07): "B1" beside A's series, else "A1"

    def step(self, name: str) -> Exchange:
        """The recorded exchange of a step; the calling test is inconclusive if it is missing."""
        __tracebackhide__ = True
        if name not in self.steps:
            raise inconclusive(name, self.why_missing(name), self.blocking.get(name))
        return self.steps[name]

    def trail(self, *names: str) -> list[Exchange]:
        """The recorded exchanges of these steps, in the order given, skipping any not reached.

        A violation's evidence: the exchanges that set up the expectation (the listing before the
        reset, the reset itself) and, last, the one that broke it.
        """
        return [self.steps[name] for name in names if name in self.steps]

    def why_missing(self, name: str) -> str:
        return self.missing.get(name, f"the scenario never reached step {name!r}")

    def has(self, name: str) -> bool:
        return name in self.steps

    def require(self, *labels: str) -> list[str]:
        """The ids of these backups; inconclusive, naming what happened, if one is not ready."""
        __tracebackhide__ = True
        for label in labels:
            if label not in self.ids:
                step = f"ready_{label}"
                raise inconclusive(step, self.why_missing(step), self.blocking.get(step))
        return [self.ids[label] for label in labels]

    def listed(self, name: str) -> dict[str, dict[str, Any]]:
        """The backups of a listing step, by id; inconclusive unless the listing answered 200 JSON."""
        __tracebackhide__ = True
        exchange = self.step(name)
        body = exchange.response_body
        data = body.get("data") if isinstance(body, dict) else None
        if exchange.status != 200 or not isinstance(data, list):
            raise inconclusive(
                name,
                f"the listing answered {exchange.error or exchange.status} without a list of backups, "
                "so what it holds cannot be compared",
                exchange,
            )
        return {b["id"]: b for b in data if isinstance(b, dict) and "id" in b}

    def increment(self, label: str) -> object:
        """Backup <label>'s increment_id as the server gave it when it took the create: the create's answer
        (a later reset may close the series while the backup is still in flight; a number that changes
        after the create is a view that disagrees, RC-06's and RC-17's), else as its wait for ready saw it."""
        at_create = self.data(f"create_{label}").get("increment_id") if self.has(f"create_{label}") else None
        if isinstance(at_create, int) and not isinstance(at_create, bool):
            return at_create
        return self.data(f"ready_{label}").get("increment_id", at_create) if self.has(f"ready_{label}") else at_create

    def data(self, name: str) -> dict[str, Any]:
        body = self.step(name).response_body
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}


class ScenarioRunner:
    def __init__(
        self,
        settings: Settings,
        client: RaffClient,
        factory: BackupFactory,
        timeline: Timeline | None = None,
        beside: Callable[[ScenarioRecord], None] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.factory = factory
        self.record = ScenarioRecord(settings.vm_id or "", settings.second_vm_id)
        self.timeline = timeline if timeline is not None else Timeline()
        # Work that needs no backup and may go while A7, the last backup, is in flight (the variant
        # matrix's cells nothing of VM A can change, MatrixRunner.run_beside): its wait is spent on it.
        self.beside = beside
        # Backups created and not yet waited for (label: id): the run waits only where a later step
        # needs them ready, so backups that no step orders go out side by side.
        self.in_flight: dict[str, str] = {}
        # Creates go out while others of the VM are in flight until the server refuses one as busy
        # (BUSY_REFUSALS); from then on each create first waits for the VM's backups.
        self.overlap = True
        self.restoring: dict[str, str] = {}  # "restore <label>": backup id, a restore accepted and not yet awaited
        # Set when a backup never became ready: later creates would most likely wait as long again
        # (on a live server each wait is up to RAFF_READY_TIMEOUT, and each backup costs money).
        self.stalled: str | None = None

    def _do(self, name: str, call: Callable[[], httpx.Response], operation_id: str) -> Exchange | None:
        try:
            response = call()
        except httpx.HTTPError as error:
            self.record.missing[name] = f"{operation_id} got no answer ({type(error).__name__}: {error})"
            return None
        exchange = Exchange.from_httpx(response, operation_id)
        self.record.steps[name] = exchange
        return exchange

    def _create(self, label: str, vm_id: str, *, restore_in_flight: bool = False, **spelling: Any) -> None:
        """Create backup <label> and go on: it is waited for (``_settle``) where a later step needs it."""
        backup_id = self._submit(label, vm_id, **spelling)
        if backup_id is not None:
            if restore_in_flight and self.settings.restores_allowed:
                # A restore of a backup still in flight is refused with a documented code (the judge's
                # P-CONTRACT); only with RAFF_ALLOW_RESTORE, since a server that takes it restores the VM.
                self._probe(lambda: self.client.restore_backup(backup_id))
            # While it is in flight, the VM's older points keep their state (the judge's P-STABLE).
            self._probe(lambda: self.client.list_backups(vm_id=vm_id, limit=1000))

    def _vm_label(self, vm_id: str) -> str:
        return "B" if vm_id == self.record.second_vm_id and vm_id != self.record.vm_id else "A"

    def _in_flight_on(self, vm_id: str) -> list[str]:
        return [label for label in self.in_flight if label[:1] == self._vm_label(vm_id)]

    def _settle(self, *labels: str) -> None:
        """Stand still until these backups (and restores, "restore <label>") are ready, each recorded
        as ready_<label> (restored_<label>) or as missing with what happened. One block on the run's
        timeline: its length is that of the slowest, since the others were in flight beside it."""
        pending = [label for label in labels if label in self.in_flight or label in self.restoring]
        with self.timeline.blocked(*pending):
            for label in pending:
                if label in self.restoring:
                    self._wait_restored(label)
                else:
                    self._await(label, self.in_flight[label])

    def _probe(self, call: Callable[[], httpx.Response]) -> None:
        """A read sent for the judge alone (conformance/judge.py): not a step, no test reads it.
        The judge saw a failed exchange too; the scenario does not depend on any probe."""
        with contextlib.suppress(httpx.HTTPError):
            call()

    def _probe_reads(self, vm_id: str) -> None:
        """Every safe read around a VM, right after a write: reads change nothing (RFC 9110 §9.2.1),
        so the next create must still see the reset (the judge's P-BASELINE) and every record stay."""
        c = self.client
        self._probe(lambda: c.show_vm(vm_id))
        self._probe(lambda: c.list_backups(vm_id=vm_id, limit=1000))
        self._probe(lambda: c.list_backups(limit=1000))
        self._probe(lambda: c.list_backups(limit=1000, project_id=None))
        newest = next(reversed(self.record.ids.values()), None)  # the newest ready backup of the run
        if newest is not None:
            self._probe(lambda: c.show_backup(newest))

    def _submit(self, label: str, vm_id: str, **spelling: Any) -> str | None:
        """Send create_<label>; the new backup's id, or None (recorded as missing) if there is none."""
        create, ready = f"create_{label}", f"ready_{label}"
        if self.stalled:
            self.record.missing[create] = self.record.missing[ready] = f"{create} was not sent: {self.stalled}"
            return None
        if not self.overlap:
            self._settle(*self._in_flight_on(vm_id))
        try:
            created, backup_id = self.factory.submit(vm_id, **spelling)
            busy = self._in_flight_on(vm_id)
            if backup_id is None and created.status in BUSY_REFUSALS and busy and not self.stalled:
                # Refused while the VM had a backup in flight: the docs neither allow nor forbid a second
                # one, and this refusal is a documented answer (the judge holds it to the contract). The
                # run waits for the VM's backups and asks once more; from now on it creates one at a time.
                self.record.steps[f"{create}_while_busy"] = created
                self.overlap = False
                self._settle(*busy)
                if self.stalled:
                    again = f"{create} was not sent again: {self.stalled}"
                    self.record.missing[create] = self.record.missing[ready] = again
                    return None
                created, backup_id = self.factory.submit(vm_id, **spelling)
        except BudgetSpent as error:
            self.record.missing[create] = self.record.missing[ready] = f"{create} was not sent: {error}"
            return None
        except httpx.HTTPError as error:
            reason = f"createBackup got no answer ({type(error).__name__}: {error})"
            self.record.missing[create] = self.record.missing[ready] = reason
            return None
        self.record.steps[create] = created
        if backup_id is not None:
            self.in_flight[label] = backup_id
            # In flight since its create was answered (the first create on a VM is followed by the
            # sharing check's listings before submit returns).
            answered = seen_at(created)
            ago = time.time() - answered if answered is not None else 0.0
            self.timeline.begin(label, "backup", self._vm_label(vm_id), ago)
        if backup_id is None:
            self.record.missing[ready] = (
                f"{create} answered {created.status} with no backup id, so there was no backup to wait for"
            )
            self.record.blocking[ready] = created
        return backup_id

    def _await(self, label: str, backup_id: str) -> None:
        """Wait until backup <label> is ready and record ready_<label>, or why it never was."""
        create, ready = f"create_{label}", f"ready_{label}"
        self.in_flight.pop(label, None)
        outcome = self.factory.wait_ready(backup_id, on_status=functools.partial(self.timeline.seen, label))
        self.timeline.end(label, "ready" if outcome.final is not None else _short(outcome.problem))
        if outcome.final is None:
            self.record.missing[ready] = f"{create} answered {self.record.steps[create].status}, then {outcome.problem}"
            if outcome.last is not None:
                self.record.blocking[ready] = outcome.last
            if outcome.timed_out or outcome.undocumented:
                self.stalled = f"the scenario stopped creating after {label} never became ready ({outcome.problem})"
            return
        self.record.steps[ready] = outcome.final
        self.record.ids[label] = backup_id

    def _needs(self, step: str, *labels: str) -> bool:
        absent = [label for label in labels if label not in self.record.ids]
        if absent:
            first = f"ready_{absent[0]}"
            self.record.missing[step] = f"not sent: backup {absent[0]} was not ready ({self.record.why_missing(first)})"
            if first in self.record.blocking:
                self.record.blocking[step] = self.record.blocking[first]
        return not absent

    def spellings(self) -> dict[str, dict[str, Any]]:
        """How each create of VM A is written, never what it asks for: a conforming server takes them
        all alike (P-EQUIVALENT, RC-28), so the variety costs no backup. A2 carries a name of the
        contract's maxLength in several scripts (P-ROUND-TRIP, RC-26)."""
        key, project = self.settings.api_key or "", self.settings.project_id or ""
        return {
            "A2": {"name": long_name(self.settings.run_prefix)},
            "A3": {"headers": {"Content-Type": "application/json; charset=utf-8"}},
            "A4": {"headers": {"Content-Type": "Application/JSON"}},
            "A6": {"api_key": None, "project_id": None, "headers": {"x-api-key": key, "x-project-id": project}},
        }

    def run(self) -> ScenarioRecord:
        """The steps in the order the series semantics force, waiting only where a later step needs a
        backup ready: three waits on VM A (A1 and A2 before the reset that closes them; A3 to A6 before
        the listings and deletes; A7 before its series is deleted), with B1 and the restore beside them."""
        a, b = self.record.vm_id, self.record.second_vm_id
        c = self.client
        spelled = self.spellings()
        self._do("list_A_before", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
        self._do("reset_A_start", lambda: c.reset_backup_chain(a), "resetBackupChain")
        self._probe_reads(a)
        if b:
            self._do("reset_B_start", lambda: c.reset_backup_chain(b), "resetBackupChain")
        self._create("A1", a)
        if b:
            self._create("B1", b)
            # B's reset between A1 and A2: A2 must still follow A1 (RC-09). B1, in flight, is closed by it.
            self._do("reset_B", lambda: c.reset_backup_chain(b), "resetBackupChain")
        self._create("A2", a, **spelled["A2"])
        # The reset below must close two ready points (RC-06 compares their status before and after).
        self._settle("A1", "A2", "B1")
        if b:
            # B as the server shows it right before A's resets: RC-09 judges B's points against this.
            self._do("list_B_before_reset_A", lambda: c.list_backups(vm_id=b, limit=1000), "listBackups")
        self._do("list_A_before_reset", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
        self._do("reset_A", lambda: c.reset_backup_chain(a), "resetBackupChain")
        self._do("list_A_after_reset", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
        # The same backups in other views (RC-17): the project's whole listing, and the key's (no header).
        self._do("list_all_after_reset", lambda: c.list_backups(limit=1000), "listBackups")
        self._do("list_all_unscoped_after_reset", lambda: c.list_backups(limit=1000, project_id=None), "listBackups")
        self._do("reset_A_again", lambda: c.reset_backup_chain(a), "resetBackupChain")
        self._do("list_A_after_second_reset", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
        self._probe_reads(a)
        if self.settings.restores_allowed and not b and self._needs("restore_A1", "A1"):
            # A closed point restored (RC-07). Without a second VM: A1, before A3 (a restore writes the
            # VM's disk, so no backup of the VM is in flight during it).
            self._restore("A1", a)
            self._settle("restore A1")
        # A3 right after the resets: a reset's effect holds from its answer on (RC-08).
        self._create("A3", a, **spelled["A3"])
        if self.settings.restores_allowed and b and "B1" in self.record.ids:
            self._restore("B1", b)  # a closed point restored (RC-07), beside A's series
        self._create("A4", a, **spelled["A4"])
        # Rejected resets between A4 and A5: if any of them did reset, A5 would restart at 0.
        # They come after A4 so that a defect here cannot disturb the evidence of RC-08 and RC-16.
        for step, kwargs in REJECTED_RESETS.items():
            self._do(step, functools.partial(c.reset_backup_chain, a, **kwargs), "resetBackupChain")
        self._in_flight_reset()
        self._probe_reads(a)
        # A6, the first backup asked for after the in-flight reset, at once (RC-21).
        self._create("A6", a, restore_in_flight=True, **spelled["A6"])
        self._settle("A3", "A4", "A5", "A6", *self.restoring)
        if b:
            self._do("list_B_after", lambda: c.list_backups(vm_id=b, limit=1000), "listBackups")
        # Once the new baseline A6 is ready: every closed point still there (RC-06, RC-21).
        self._do("list_A_before_deletes", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
        self._listings()
        self._pages()
        self._equivalents()
        self._scope_probes()
        self._deletes()
        # Series 3 holds only its baseline, and two series were just deleted: a reset of that shape
        # must keep the baseline (RC-22), and the next backup, A7, is a new baseline.
        if self._needs("reset_A_final", "A6"):
            self._do("reset_A_final", lambda: c.reset_backup_chain(a), "resetBackupChain")
            self._do("list_A_final", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
            self._create("A7", a)
            if self.beside is not None and "A7" in self.in_flight:
                self.beside(self.record)
            self._settle("A7")
        self._open_chain_delete()
        return self.record

    def _deletes(self) -> None:
        """A refused single delete (RC-16), then the two closed series, each through one of its points (RC-15)."""
        a, b, c = self.record.vm_id, self.record.second_vm_id, self.client
        if self._needs("delete_A3", "A3", "A4"):
            # A4 follows A3 in one series (RC-08's evidence), so A3 has a dependent.
            self._do("delete_A3", lambda: c.delete_backup(self.record.ids["A3"]), "deleteBackup")
            self._do("list_A_after_refused_delete", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
            if self.record.steps["delete_A3"].status == 200:
                self.factory.ledger.forget(self.record.ids["A3"])
        # Series 2 first, through a middle point, while the older series 1 and the open series 3 stand
        # beside it: a server that deletes some other series than the named one shows it here (RC-15).
        if self._needs("delete_chain_A4", "A3", "A4", "A5"):
            self._do("delete_chain_A4", lambda: c.delete_backup_chain(self.record.ids["A4"]), "deleteBackupChain")
            self._do("list_A_after_chain_delete_A4", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
        if self._needs("delete_chain_A2", "A1", "A2"):
            self._do("delete_chain_A2", lambda: c.delete_backup_chain(self.record.ids["A2"]), "deleteBackupChain")
            self._do("list_A_after_chain_delete", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
            self._do("show_A1_after_chain_delete", lambda: c.show_backup(self.record.ids["A1"]), "getBackup")
            if b:
                self._do("list_B_after_chain_delete", lambda: c.list_backups(vm_id=b, limit=1000), "listBackups")

    def _open_chain_delete(self) -> None:
        """The open series deleted through its point while a closed series stands beside it (RC-31): A7
        is the open series' only point; A6, closed by the final reset, and the other VM's points stay."""
        a, b, c = self.record.vm_id, self.record.second_vm_id, self.client
        if not self._needs("delete_chain_A7", "A6", "A7"):
            return
        self._do("list_A_before_open_chain_delete", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
        if b:
            self._do("list_B_before_open_chain_delete", lambda: c.list_backups(vm_id=b, limit=1000), "listBackups")
        self._do("delete_chain_A7", lambda: c.delete_backup_chain(self.record.ids["A7"]), "deleteBackupChain")
        self._do("list_A_after_open_chain_delete", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
        if b:
            self._do("list_B_after_open_chain_delete", lambda: c.list_backups(vm_id=b, limit=1000), "listBackups")

    def _equivalents(self) -> None:
        """Reads only, each right after the same read in its plain spelling, nothing written between:
        a UUID in upper case, header names in lower case, X-Project-ID in upper case, query parameters
        in another order. The judge (P-EQUIVALENT, RC-28) compares each pair's answers."""
        if "A1" not in self.record.ids:
            return
        a, c, a1 = self.record.vm_id, self.client, self.record.ids["A1"]
        key, project = self.settings.api_key or "", self.settings.project_id or ""
        pairs: list[tuple[Callable[[], httpx.Response], Callable[[], httpx.Response]]] = [
            (lambda: c.show_backup(a1), lambda: c.show_backup(a1.upper())),
            (lambda: c.show_vm(a), lambda: c.show_vm(a.upper())),
            (
                lambda: c.list_backups(vm_id=a, limit=1000),
                lambda: c.list_backups(vm_id=a.upper(), limit=1000),
            ),
            (
                lambda: c.list_backups(vm_id=a, limit=1000),
                lambda: c.request("listBackups", "GET", "/api/v1/backups", params=[("limit", "1000"), ("vm_id", a)]),
            ),
            (lambda: c.show_backup(a1), lambda: c.show_backup(a1, project_id=project.upper())),
            (
                lambda: c.show_backup(a1),
                lambda: c.show_backup(
                    a1, api_key=None, project_id=None, headers={"x-api-key": key, "x-project-id": project}
                ),
            ),
        ]
        for plain, variant in pairs:
            self._probe(plain)
            self._probe(variant)
        # An id of one kind where another is expected names nothing (P-IDENTITY, P-FILTERS): reads only.
        self._probe(lambda: c.show_backup(a))
        self._probe(lambda: c.show_vm(a1))
        self._probe(lambda: c.list_backups(vm_id=a1, limit=1000))
        # The listing at the edges of limit, and in pages of one (P-TOTALS: at most limit, no repeats).
        self._probe(lambda: c.list_backups(vm_id=a, limit=0))
        full = self.record.steps.get("list_A_before_deletes")
        total = full.response_body.get("total") if full is not None and isinstance(full.response_body, dict) else 0
        for offset in range(min(total if isinstance(total, int) else 0, PAGES * 2) + 1):
            self._probe(lambda offset=offset: c.list_backups(vm_id=a, limit=1, offset=offset))

    def _scope_probes(self) -> None:
        """Every write of a backup of ours, sent with the X-Project-ID of another project of the same
        account (read from getVM of RAFF_OTHER_PROJECT_VM_ID): each must be refused and change nothing
        (RC-29). Ours, so that a server which ignores the scope deletes or restores only what the run
        created; a create is tried only while the budget has room for a wrongly accepted one."""
        other_vm = self.settings.other_project_vm_id
        if not other_vm:
            return
        c = self.client
        found = self._do("scope_other_project_vm", lambda: c.show_vm(other_vm), "getVM")
        data = found.response_body.get("data") if found is not None and isinstance(found.response_body, dict) else None
        other = data.get("project_id") if isinstance(data, dict) else None
        if not isinstance(other, str) or other.lower() == (self.settings.project_id or "").lower():
            self.record.missing["scope_delete_A5"] = (
                f"getVM of RAFF_OTHER_PROJECT_VM_ID {other_vm} named no other project "
                f"({found.summary() if found is not None else 'no answer'})"
            )
            return
        ids = self.record.ids
        if "A5" in ids:  # the newest point of series 2: a wrongful delete of it is not refused for dependents
            self._do("scope_delete_A5", lambda: c.delete_backup(ids["A5"], project_id=other), "deleteBackup")
        if "A2" in ids:
            self._do("scope_chain_A2", lambda: c.delete_backup_chain(ids["A2"], project_id=other), "deleteBackupChain")
        if "A1" in ids and self.settings.restores_allowed:
            self._do("scope_restore_A1", lambda: c.restore_backup(ids["A1"], project_id=other), "restoreBackup")
        if self.factory.remaining() != 0:
            self._do("scope_create_A", lambda: self._scope_create(other), "createBackup")
        a = self.record.vm_id
        self._do("list_A_after_scope_probes", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")

    def _scope_create(self, other_project: str) -> httpx.Response:
        response = self.client.create_backup(
            self.record.vm_id, name=f"{self.settings.run_prefix}-{uuid.uuid4().hex[:8]}", project_id=other_project
        )
        backup_id = data_id(json_body(response))
        if backup_id is not None and 200 <= response.status_code < 300:
            self.factory.ledger.record(backup_id)  # wrongly accepted: ours to clean up
        return response

    def _in_flight_reset(self) -> None:
        """Create A5 and reset the series while A5 is still in flight (RC-21).

        A5 was asked for before the reset, so it belongs to series 2 and, after the refused resets,
        follows A4; A6, the first backup asked for after the accepted reset, must be a baseline.
        Reading A5 right after the reset shows whether it really was in flight: on a live server a
        backup takes minutes, on the bundled mock ``--backup-delay`` sets how long.
        """
        a, c = self.record.vm_id, self.client
        # The closed points as the server shows them right before A5 and the reset (RC-21 judges a change
        # against this view, not against what earlier steps left).
        self._do("list_A_before_in_flight_reset", lambda: c.list_backups(vm_id=a, limit=1000), "listBackups")
        backup_id = self._submit("A5", a)
        if backup_id is None:
            self.record.missing["reset_A_in_flight"] = f"not sent: {self.record.why_missing('ready_A5')}"
            return
        self._do("reset_A_in_flight", lambda: c.reset_backup_chain(a), "resetBackupChain")
        self._do("show_A5_after_in_flight_reset", lambda: c.show_backup(backup_id), "getBackup")

    def _listings(self) -> None:
        """Reads only: the vm_id filter without X-Project-ID, and a VM the key cannot see (RC-20)."""
        a, c = self.record.vm_id, self.client
        self._do(
            "list_A_unscoped_before_deletes",
            lambda: c.list_backups(vm_id=a, limit=1000, project_id=None),
            "listBackups",
        )
        invisible = self.settings.other_account_vm_id or str(uuid.uuid4())
        self.record.invisible_vm_id = invisible
        self._do("list_invisible_vm", lambda: c.list_backups(vm_id=invisible, limit=1000), "listBackups")
        self._do(
            "list_invisible_vm_unscoped",
            lambda: c.list_backups(vm_id=invisible, limit=1000, project_id=None),
            "listBackups",
        )
        # Another account's key sees none of the run's backups (the judge's P-SCOPE, RC-20): reads only.
        other_key, first = self.settings.other_account_api_key, self.record.ids.get("A1")
        if other_key:
            self._probe(lambda: c.list_backups(limit=1000, api_key=other_key, project_id=None))
            self._probe(lambda: c.list_backups(vm_id=a, limit=1000, api_key=other_key, project_id=None))
            if first is not None:
                self._probe(lambda: c.show_backup(first, api_key=other_key))

    def _pages(self) -> None:
        """The VM's listing again in pages (RC-18), right after the full one, before anything changes.

        The page size is chosen so that at most PAGES pages cover every backup of the VM, whatever
        was there before the run: the pages can then be compared with the full listing as a whole.
        """
        full = self.record.steps.get("list_A_before_deletes")
        total = full.response_body.get("total") if full is not None and isinstance(full.response_body, dict) else None
        if not isinstance(total, int) or total < 0:
            self.record.missing["page_A_0"] = "not sent: list_A_before_deletes gave no total to page through"
            return
        size = max(2, -(-total // PAGES))
        for number in range(PAGES + 1):
            name = f"page_A_{number}"
            page = self._do(
                name,
                functools.partial(self.client.list_backups, vm_id=self.record.vm_id, limit=size, offset=number * size),
                "listBackups",
            )
            if page is None:
                return
            self.record.pages.append(name)
            if (number + 1) * size >= total:
                return

    def _restore(self, label: str, vm_id: str) -> None:
        """Restore closed point <label> (RC-07): the listing right before it, the restore, then go on;
        ``_settle("restore <label>")`` waits for it to be ready again."""
        vm = self._vm_label(vm_id)
        backup_id = self.record.ids[label]
        self._do(f"list_{vm}_before_restore", lambda: self.client.list_backups(vm_id=vm_id, limit=1000), "listBackups")
        self.record.restored = label
        exchange = self._do(f"restore_{label}", lambda: self.client.restore_backup(backup_id), "restoreBackup")
        if exchange is None or exchange.status != 202:
            self.record.missing[f"restored_{label}"] = f"not awaited: restore_{label} was not accepted"
            return
        self.restoring[f"restore {label}"] = backup_id
        self.timeline.begin(f"restore {label}", "restore", vm)

    def _wait_restored(self, span: str) -> None:
        label = span.removeprefix("restore ")
        backup_id = self.restoring.pop(span)
        outcome = self.factory.wait_ready(backup_id, on_status=functools.partial(self.timeline.seen, span))
        self.timeline.end(span, "ready" if outcome.final is not None else _short(outcome.problem))
        if outcome.final is None:
            self.record.missing[f"restored_{label}"] = f"restore_{label} answered 202, then {outcome.problem}"
            if outcome.last is not None:
                self.record.blocking[f"restored_{label}"] = outcome.last
            return
        self.record.steps[f"restored_{label}"] = outcome.final


def _short(problem: str | None) -> str:
    """How a wait ended, for the timeline's one line: the first clause of what happened."""
    return (problem or "not ready").split(";")[0].split(" (")[0][:60]
