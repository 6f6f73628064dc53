"""Model-based testing of backup series: random sequences of backups, resets, restores and
deletes on two VMs, each answer and every listing checked against ``conformance.series_model``.

Hypothesis generates the sequences and, on a failure, shrinks them to a short program. Against
the mock with the planted defect chain_delete_spills_into_open_series it prints::

    state = SeriesMachine()
    state.listings_match_model()
    points_0 = state.create_backup(vm='A')
    state.listings_match_model()
    (closed_0,) = state.reset_series(vm='A')
    state.listings_match_model()
    points_1 = state.create_backup(vm='A')
    state.listings_match_model()
    state.delete_series(point=closed_0)
    state.listings_match_model()
    state.teardown()

    ConformanceFailure: [RC-15] listBackups?vm_id=<A>: A2.0 is missing: A2.0(29956432) of open
    series A2[0] is not listed. Last step: delete series A. Model: SeriesModel(A: A2[0] ...)

Every failure names the most specific requirement (the rule, or the step that caused it) and
carries the exchange as evidence; the report shows the shrunk program with it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
)

from conformance.checks import ConformanceFailure, error_body, fail, inconclusive
from conformance.client import RaffClient
from conformance.contract import Contract
from conformance.exchange import Exchange
from conformance.ledger import Ledger
from conformance.series_model import Event, Preexisting, RestorePoint, SeriesModel, Step
from conformance.settings import Settings

VM_LABELS = ("A", "B")  # A is RAFF_VM_ID, B is RAFF_SECOND_VM_ID
RESETS = (Step.RESET, Step.START_RESET, Step.RESET_IN_FLIGHT)  # the accepted ones
LIST_LIMIT = 1000
PAGES = 2  # the machine re-reads VM A's listing in this many pages after every step (RC-18)
# Every defect shows within a few backups and restores; more only make an example slower (each
# is waited for), and when Hypothesis' swarm testing leaves create as the only rule they pile up.
MAX_CREATES_PER_EXAMPLE = 4
MAX_RESTORES_PER_EXAMPLE = 1
UNKNOWN_VM = "an unknown VM"
OTHER_PROJECT_VM = "another project's VM"
# Resets that must be refused: 404 (RC-02), 400 without X-Project-ID (RC-03), 404 for a VM of
# another project named with this project's header (RC-11).
REFUSED_RESETS = (UNKNOWN_VM, "A without X-Project-ID", "B without X-Project-ID", OTHER_PROJECT_VM)
# The mock makes a backup ready in ~0.3 s: poll it tightly, or the waits dominate the run.
FAST_POLL_S = 0.03


@dataclass(frozen=True)
class Budget:
    examples: int
    steps: int


# Per raff profile (settings.effective_profile): the profiles' own max_examples are sized for
# cheap property tests, while each example here is a sequence with real backups to wait for.
# "thorough", the loopback default, keeps the run at 5-13 s on the mock; short examples also
# keep shrinking affordable, since every replay waits for its backups again. A live target
# never gets more than LIVE_BUDGET: every example resets two real VMs and every create is
# billed (creates also stop at RAFF_MAX_BACKUPS). It has three examples, not one, because
# Hypothesis' first example is its simplest, which here sends only refused resets.
BUDGETS = {"thorough": Budget(examples=14, steps=12), "smoke": Budget(examples=3, steps=8)}
LIVE_BUDGET = Budget(examples=3, steps=6)


def machine_settings(settings: Settings, *, examples: int | None = None) -> hypothesis_settings:
    """Hypothesis settings of the machine; ``examples`` (an explicit --hypothesis-profile's) wins on loopback."""
    budget = BUDGETS.get(settings.effective_profile, LIVE_BUDGET)
    if settings.is_mock:
        budget = Budget(examples or budget.examples, budget.steps)
        # "explain" replays the failure many more times only to annotate it; the shrunk program
        # is explanation enough, and every replay waits for real backups.
        phases = tuple(p for p in Phase if p is not Phase.explain)
    else:
        # No replays of stored failures and no shrinking on a live target: each replay would
        # create real backups beyond the run's budget. Six steps are short enough to read.
        # An explicit --hypothesis-profile does not raise this budget either.
        budget = Budget(min(budget.examples, LIVE_BUDGET.examples), min(budget.steps, LIVE_BUDGET.steps))
        phases = (Phase.explicit, Phase.generate)
    return hypothesis_settings(
        hypothesis_settings.default,
        max_examples=budget.examples,
        stateful_step_count=budget.steps,
        deadline=None,
        phases=phases,
        # Steps wait for real backups; slowness is expected, not a health problem.
        suppress_health_check=list(HealthCheck),
        # One failure with one finding: a second bug would show up as an ExceptionGroup the
        # report cannot name a requirement for.
        report_multiple_bugs=False,
    )


@dataclass
class Harness:
    """Everything the machine talks to, shared by all examples of one test run."""

    settings: Settings
    client: RaffClient
    contract: Contract
    book: Ledger  # records every create before any wait; forgets every confirmed delete
    vms: dict[str, str]
    unknown_vm_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # The server state outlives an example: True while a VM's last change was our accepted
    # reset, so the next example need not reset it again (a second reset is a case of its own).
    reset_pending: dict[str, bool] = field(default_factory=dict)
    # True while a VM's last change was a reset that closed points: the server owes a baseline.
    owes_baseline: dict[str, bool] = field(default_factory=dict)
    creates_cap: int | None = None  # most creates the book may record (live targets only)
    cap_noticed: bool = False
    wait_seconds: float = 0.0

    def may_create(self) -> bool:
        if self.creates_cap is None or self.book.backups_created < self.creates_cap:
            return True
        if not self.cap_noticed:
            self.cap_noticed = True
            self.client.notify(f"model run: RAFF_MAX_BACKUPS={self.creates_cap} reached; it creates no more backups")
        return False

    def settle(self, vm: str) -> None:
        """Take and delete one throwaway backup, so the next example meets no owed baseline.

        A correct server starts the next series at 0 whatever came before, but a defective one
        may carry numbering across examples (numbering_continues_after_reset); Hypothesis
        cannot replay such a failure and reports it as flaky instead of shrinking it.
        """
        name = f"{self.settings.run_prefix}-model-settle-{uuid.uuid4().hex[:8]}"
        backup_id = _data(self.client.create_backup(self.vms[vm], name=name)).get("id")
        if not isinstance(backup_id, str):
            return
        self.book.record(backup_id)
        status = self.client.delete_backup(backup_id).status_code
        if status not in (200, 404):  # a server may refuse to delete a backup still being taken
            self.wait_settled(backup_id)
            status = self.client.delete_backup(backup_id).status_code
        if status in (200, 404):
            self.book.forget(backup_id)
        self.owes_baseline[vm] = self.reset_pending[vm] = False

    def wait_settled(self, backup_id: str) -> httpx.Response:
        """getBackup once the backup is no longer pending, creating or restoring."""
        started = time.monotonic()
        try:
            if not self.settings.is_mock:
                response, _ = self.client.wait_for_backup(backup_id, timeout=self.settings.effective_ready_timeout)
                return response
            deadline = started + self.settings.effective_ready_timeout
            while True:
                response = self.client.show_backup(backup_id)
                status = _data(response).get("status")
                if response.status_code != 200 or status not in ("pending", "creating", "restoring"):
                    return response
                if time.monotonic() > deadline:
                    return response
                time.sleep(min(FAST_POLL_S, self.settings.poll_interval))
        finally:
            self.wait_seconds += time.monotonic() - started


def _data(response: httpx.Response | Exchange) -> dict[str, Any]:
    try:
        body = response.json() if isinstance(response, httpx.Response) else response.response_body
    except ValueError:
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _blame_numbering(since: list[Event], vm: str, expected: int, got: object) -> str:
    """The requirement a wrong increment_id breaks, judged by the steps since the VM's previous backup."""
    resets = [e for e in since if e.step in RESETS and e.vm == vm]
    if expected == 0:  # after any accepted reset, in flight or not (the default run tells them apart, RC-21)
        return "RC-10" if len(resets) >= 2 else "RC-08"
    if got == 0:  # the open series was closed by a step that must not close it
        # Most likely first: a reset of the other VM (RC-09), a series delete (RC-15); then the
        # refused resets, which already answered as they must but may still have reset.
        if any(e.step in RESETS and e.step is not Step.START_RESET and e.vm != vm for e in since):
            return "RC-09"
        steps = {e.step for e in since if e.vm in (vm, None)}
        for step, requirement in (
            (Step.DELETE_SERIES, "RC-15"),
            (Step.RESET_REFUSED_NO_PROJECT, "RC-03"),
            (Step.RESET_REFUSED_OTHER_PROJECT, "RC-11"),
            (Step.RESET_REFUSED_UNKNOWN_VM, "RC-02"),
        ):
            if step in steps:
                return requirement
    return "RC-08"


def _blame_listing(model: SeriesModel, vm: str) -> str:
    """The requirement a wrong listing breaks, judged by the step just taken."""
    last = model.last
    if last is None:
        return "RC-06"
    if last.step in (Step.RESET, Step.RESET_IN_FLIGHT) and last.vm != vm:
        return "RC-09"
    return {
        Step.DELETE_SERIES: "RC-15",
        Step.DELETE_POINT: "RC-16",
        Step.DELETE_POINT_REFUSED: "RC-16",
        Step.RESET_REFUSED_NO_PROJECT: "RC-03",
        Step.RESET_REFUSED_OTHER_PROJECT: "RC-11",
        Step.RESET_REFUSED_UNKNOWN_VM: "RC-02",
    }.get(last.step, "RC-06")


@dataclass(frozen=True, eq=False)
class PointRef:
    """A bundle entry: a backup the machine created, with a view of the model to draw by."""

    id: str
    model: SeriesModel

    @property
    def alive(self) -> bool:
        return self.id in self.model.points

    @property
    def label(self) -> str:
        return self.model.point(self.id).label

    @property
    def beside_open(self) -> bool:
        """A point of a closed series whose VM has an open series with points."""
        return self.model.closed_beside_open(self.id)

    def __repr__(self) -> str:
        return f"PointRef({self.model.point(self.id)!r})"


class SeriesMachine(RuleBasedStateMachine):
    """Rules mirror the operations; the model says what each must answer and what must be listed."""

    harness: ClassVar[Harness]
    points: Bundle[PointRef] = Bundle("points")  # the backups this machine created
    closed: Bundle[PointRef] = Bundle("closed")  # points whose series a reset closed (RC-06, RC-07, RC-15)

    def __init__(self) -> None:
        super().__init__()
        h = self.harness
        self.model = SeriesModel(h.vms)
        # Each example starts from a closed series on both VMs, like the recorded scenario does
        # (no second reset when our own last one still stands: that is RC-10's case, drawn as a
        # rule), and remembers what is already listed: those backups must never change.
        for label, vm_id in h.vms.items():
            if not h.reset_pending.get(label):
                exchange = Exchange.from_httpx(h.client.reset_backup_chain(vm_id), "resetBackupChain")
                if exchange.status != 202:
                    raise fail("RC-01", exchange, "reset refused", f"reset of VM {label} answered {exchange.status}")
                h.reset_pending[label] = True
            exchange = self._list(label)
            self.model.start(label, [_preexisting(item) for item in _items(exchange)])

    def __repr__(self) -> str:
        return f"SeriesMachine({self.model!r})"

    # -- helpers -------------------------------------------------------------------------------

    def _list(self, label: str) -> Exchange:
        response = self.harness.client.list_backups(vm_id=self.harness.vms[label], limit=LIST_LIMIT)
        exchange = Exchange.from_httpx(response, "listBackups")
        if exchange.status != 200 or not isinstance(exchange.response_body, dict):
            raise fail("RC-06", exchange, "listing failed", f"listBackups?vm_id=<{label}> answered {exchange.status}")
        return exchange

    def _expect(self, exchange: Exchange, expected: int, requirement: str, what: str) -> None:
        __tracebackhide__ = True
        if exchange.status != expected:
            raise fail(
                requirement,
                exchange,
                f"expected {expected}, got {exchange.error or exchange.status}",
                f"{what}: the model expects {expected}, the API answered {exchange.error or exchange.status} "
                f"{exchange.response_body}. Model: {self.model!r}",
                check="series_model",
            )

    # -- rules ---------------------------------------------------------------------------------

    @precondition(lambda self: self.harness.may_create() and len(self.model.created) < MAX_CREATES_PER_EXAMPLE)
    @rule(target=points, vm=st.sampled_from(VM_LABELS))
    def create_backup(self, vm: str) -> PointRef:
        created, point = self._submit(vm)
        self._settle(created, point)
        return PointRef(point.id, self.model)

    @precondition(lambda self: self.harness.may_create() and len(self.model.created) < MAX_CREATES_PER_EXAMPLE)
    @rule(target=closed, vm=st.sampled_from(VM_LABELS))
    def reset_while_backup_in_flight(self, vm: str) -> MultipleResults[PointRef]:
        """Create a backup and reset the VM's series at once, before the backup is ready (RC-21).

        The backup stays a point of the series it was asked for in; the next one is a baseline.
        """
        h = self.harness
        created, point = self._submit(vm)
        exchange = Exchange.from_httpx(h.client.reset_backup_chain(h.vms[vm]), "resetBackupChain")
        self._expect(exchange, 202, "RC-21", f"reset of VM {vm} while {point.label} was in flight")
        closing = self.model.open_points(vm)
        self.model.reset(vm, in_flight=True)
        h.reset_pending[vm], h.owes_baseline[vm] = True, True  # the in-flight point closed a series
        # Its numbering changed by the reset is a point changed by a reset: RC-06's.
        self._settle(created, point, "RC-06")
        return multiple(*(PointRef(p.id, self.model) for p in closing))

    def _submit(self, vm: str) -> tuple[Exchange, RestorePoint]:
        """Send createBackup and check its answer; the exchange and the model's new point."""
        h = self.harness
        expected = self.model.next_increment(vm)
        name = f"{h.settings.run_prefix}-model-{uuid.uuid4().hex[:8]}"
        created = Exchange.from_httpx(h.client.create_backup(h.vms[vm], name=name), "createBackup")
        backup_id = _data(created).get("id")
        if isinstance(backup_id, str):
            h.book.record(backup_id)  # before any wait or check, so cleanup always knows it
        if created.status != 202 or not isinstance(backup_id, str):
            raise fail("RC-08", created, "backup not accepted", f"createBackup of VM {vm} answered {created.status}")
        h.reset_pending[vm] = h.owes_baseline[vm] = False
        suspects = self.model.since_last_create(vm)
        point = self.model.create(vm, backup_id)  # in the model before any check: teardown deletes it
        got = _data(created).get("increment_id")
        if got != expected:
            raise fail(
                _blame_numbering(suspects, vm, expected, got),
                created,
                f"increment_id {got!r}, expected {expected}",
                f"the backup {point.label} of VM {vm} has increment_id {got!r}; "
                + ("a new series starts at 0" if expected == 0 else f"its open series continues at {expected}")
                + f". Steps since VM {vm}'s previous backup: {suspects or 'none'}. Model: {self.model!r}",
                check="series_model",
            )
        return created, point

    def _settle(self, created: Exchange, point: RestorePoint, requirement: str = "RC-08") -> None:
        """Wait until the point is ready and check it became ready as it was created."""
        h, backup_id, expected = self.harness, point.id, point.increment_id
        ready = Exchange.from_httpx(h.wait_settled(backup_id), "getBackup")
        data = _data(ready)
        if ready.status == 200 and data.get("status") in ("pending", "creating", "failed"):
            # Never ready within RAFF_READY_TIMEOUT, or failed: no evidence either way.
            raise inconclusive(
                f"ready {point.label}",
                f"{point.label} ({backup_id}) was accepted, then getBackup still showed status "
                f"{data.get('status')!r} after waiting up to {h.settings.effective_ready_timeout:g}s",
                [created, ready],
            )
        if ready.status != 200 or data.get("status") != "ready" or data.get("increment_id") != expected:
            raise fail(
                requirement,
                [created, ready],
                "backup did not become ready as created",
                f"{point.label}: getBackup answered {ready.status} with status {data.get('status')!r} and "
                f"increment_id {data.get('increment_id')!r} (created with {expected})",
                check="series_model",
            )

    @rule(target=closed, vm=st.sampled_from(VM_LABELS))
    def reset_series(self, vm: str) -> MultipleResults[PointRef]:
        """Close the VM's open series; its points go to the ``closed`` bundle."""
        h = self.harness
        exchange = Exchange.from_httpx(h.client.reset_backup_chain(h.vms[vm]), "resetBackupChain")
        again = any(e.step in RESETS and e.vm == vm for e in self.model.since_last_create(vm))
        # A reset with no backup since the last one is RC-10's case; any other is RC-01's.
        self._expect(exchange, 202, "RC-10" if again else "RC-01", f"reset of VM {vm}")
        closing = self.model.open_points(vm)
        self.model.reset(vm)
        h.reset_pending[vm] = True
        h.owes_baseline[vm] = h.owes_baseline.get(vm, False) or bool(closing)
        return multiple(*(PointRef(p.id, self.model) for p in closing))

    @precondition(
        lambda self: (
            self.harness.settings.restores_allowed
            and self.model.restores < MAX_RESTORES_PER_EXAMPLE
            and self.model.has_closed_points()
        )
    )
    @rule(point=closed.filter(lambda p: p.alive))
    def restore_point(self, point: PointRef) -> None:
        """Restore a point of a closed series and wait until it is ready again (RC-07)."""
        h = self.harness
        label = point.label
        exchange = Exchange.from_httpx(h.client.restore_backup(point.id), "restoreBackup")
        self._expect(exchange, 202, "RC-07", f"restore of {label}")
        final = Exchange.from_httpx(h.wait_settled(point.id), "getBackup")
        if final.status != 200 or _data(final).get("status") != "ready":
            raise fail(
                "RC-07",
                [exchange, final],
                "restore did not complete",
                f"{label}: after the restore getBackup answered {final.status} {final.response_body}",
                check="series_model",
            )
        self.model.restored(point.id)

    @precondition(lambda self: bool(self.model.points))
    @rule(target=points, point=consumes(points.filter(lambda p: p.alive)))
    def delete_point(self, point: PointRef) -> MultipleResults[PointRef]:
        """Delete one point: 409 while later points of its series depend on it, else 200 (RC-16)."""
        h = self.harness
        expected = self.model.delete_outcome(point.id)
        label = point.label
        exchange = Exchange.from_httpx(h.client.delete_backup(point.id), "deleteBackup")
        self._expect(exchange, expected, "RC-16", f"delete of {label}")
        self.model.delete_point(point.id)
        if expected == 200:
            h.book.forget(point.id)
            return multiple()
        error_body(h.contract, exchange, "RC-16")
        message = " ".join(str(v) for v in exchange.response_body.values()).lower()
        if "chain" not in message and "series" not in message:
            raise fail(
                "RC-16",
                exchange,
                "refusal does not point to the series delete",
                f"the 409 for {label} says {exchange.response_body}; the docs promise a clear error "
                "pointing to DELETE /api/v1/backups/{id}/chain",
                check="series_model",
            )
        return multiple(point)  # refused: the point lives on and may be drawn again

    # A series delete is drawn when it can show all of RC-15: its VM also has an open series with
    # points, which must stay (other VMs' points are checked by the same listing).
    @precondition(lambda self: self.model.has_closed_points(beside_open=True))
    @rule(point=consumes(closed.filter(lambda p: p.alive and p.beside_open)))
    def delete_series(self, point: PointRef) -> None:
        """Delete a closed series through one of its points (RC-15)."""
        h = self.harness
        exchange = Exchange.from_httpx(h.client.delete_backup_chain(point.id), "deleteBackupChain")
        self._expect(exchange, 200, "RC-15", f"delete of the series of {point.label}")
        for removed in self.model.delete_series(point.id):
            h.book.forget(removed.id)

    @rule(case=st.sampled_from(REFUSED_RESETS))
    def reset_refused(self, case: str) -> None:
        """A reset that must be refused and change nothing (the next backups show it did not)."""
        h = self.harness
        vm: str | None = None
        if case == UNKNOWN_VM:
            response = h.client.reset_backup_chain(h.unknown_vm_id)
            expected, requirement, step = 404, "RC-02", Step.RESET_REFUSED_UNKNOWN_VM
        elif case == OTHER_PROJECT_VM:
            if not h.settings.other_project_vm_id:
                return  # not configured: nothing to send (shrinking drops such a step)
            response = h.client.reset_backup_chain(h.settings.other_project_vm_id)
            expected, requirement, step = 404, "RC-11", Step.RESET_REFUSED_OTHER_PROJECT
        else:
            vm = case[0]  # "A without X-Project-ID"
            response = h.client.reset_backup_chain(h.vms[vm], project_id=None)
            expected, requirement, step = 400, "RC-03", Step.RESET_REFUSED_NO_PROJECT
        exchange = Exchange.from_httpx(response, "resetBackupChain")
        self._expect(exchange, expected, requirement, f"reset of {case}")
        error_body(h.contract, exchange, requirement)
        self.model.refused(step, vm)

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def listings_match_model(self) -> None:
        self.model.check()
        own = self.model.own_ids()
        listings: dict[str, Exchange] = {}
        for vm in VM_LABELS:
            exchange = listings[vm] = self._list(vm)
            items = _items(exchange)
            listed = {item["id"]: item for item in items}
            blame = _blame_listing(self.model, vm)
            total = exchange.response_body.get("total")
            if total != len(items):
                raise self._listing_failure(
                    blame,
                    exchange,
                    vm,
                    "total disagrees with the filtered listing",
                    f"total is {total!r} but {len(items)} backups are listed for the VM (limit {LIST_LIMIT})",
                )
            self._check_preexisting(vm, exchange, listed, blame)
            expected = self.model.listing(vm)
            for backup_id, point in expected.items():
                if backup_id not in listed:
                    series = self.model.series_of(backup_id)
                    # A closed point that vanished breaks RC-06 unless a delete step is to blame.
                    requirement = "RC-06" if series.closed and blame not in ("RC-15", "RC-16", "RC-09") else blame
                    raise self._listing_failure(
                        requirement,
                        exchange,
                        vm,
                        f"{point.label} is missing",
                        f"{point!r} of {'closed' if series.closed else 'open'} series {series!r} is not listed",
                    )
            for backup_id in own & listed.keys():
                if backup_id not in expected:
                    point = self.model.point(backup_id)
                    where = "deleted" if backup_id in self.model.gone else f"a backup of VM {point.vm}"
                    raise self._listing_failure(
                        blame,
                        exchange,
                        vm,
                        f"{point.label} is listed",
                        f"{point!r} is {where}, yet listBackups?vm_id=<{vm}> lists it",
                    )
            for series in self.model.vms[vm].series:
                numbering = [listed[p.id].get("increment_id") for p in series.points]
                if numbering != [p.increment_id for p in series.points]:
                    raise self._listing_failure(
                        "RC-06" if series.closed and blame == "RC-06" else blame,
                        exchange,
                        vm,
                        f"series {series.label} renumbered",
                        f"series {series!r} is listed with increment_ids {numbering}; "
                        "a series numbers its points 0, 1, 2, … and keeps them",
                    )
                statuses = {p.label: listed[p.id].get("status") for p in series.points}
                if any(status != "ready" for status in statuses.values()):
                    raise self._listing_failure(
                        blame,
                        exchange,
                        vm,
                        f"series {series.label} not ready",
                        f"statuses {statuses}; every point was ready after its last step",
                    )

        self._other_views_agree(listings["A"])

    def _other_views_agree(self, full: Exchange) -> None:
        """RC-17 and RC-18 after every step: the key's whole listing shows the model's points with
        the model's numbering, and VM A's listing read in pages of two is the full listing again."""
        expected = {**self.model.listing("A"), **self.model.listing("B")}
        response = self.harness.client.list_backups(limit=LIST_LIMIT)
        wide = Exchange.from_httpx(response, "listBackups")
        items = {item["id"]: item for item in _items(wide)}
        complete = isinstance(wide.response_body, dict) and wide.response_body.get("total") == len(items)
        for backup_id, point in expected.items():
            item = items.get(backup_id)
            if item is None and not complete:
                continue  # not on the first page of a big account: says nothing
            shown = None if item is None else item.get("increment_id")
            if shown != point.increment_id:
                raise fail(
                    "RC-17",
                    wide,
                    "listBackups (no vm_id filter) disagrees with the VM's listing",
                    f"{point!r}: the unfiltered listing shows "
                    f"{'nothing' if item is None else f'increment_id {shown!r}'}; "
                    f"the VM's listing and the model say {point.increment_id}. Last step: {self.model.last!r}",
                    check="series_model",
                )
        whole = [item["id"] for item in _items(full)]
        paged: list[str] = []
        pages: list[Exchange] = []
        size = max(1, -(-len(whole) // PAGES))  # PAGES pages cover the listing, one has an offset
        for offset in range(0, max(len(whole), 1), size):
            response = self.harness.client.list_backups(vm_id=self.harness.vms["A"], limit=size, offset=offset)
            pages.append(Exchange.from_httpx(response, "listBackups"))
            paged += [item["id"] for item in _items(pages[-1])]
        if sorted(paged) != sorted(whole):
            raise fail(
                "RC-18",
                [full, *pages],
                "pages of the VM's listing do not make the listing",
                f"{len(pages)} pages of {size} hold {len(paged)} ids ({len(set(paged))} distinct); "
                f"the full listing holds {len(whole)}. Last step: {self.model.last!r}",
                check="series_model",
            )

    def _check_preexisting(self, vm: str, exchange: Exchange, listed: dict[str, dict[str, Any]], blame: str) -> None:
        for before in self.model.vms[vm].preexisting.values():
            now = listed.get(before.id)
            after = None if now is None else (now.get("increment_id"), now.get("status"))
            if after != (before.increment_id, before.status):
                raise self._listing_failure(
                    blame,
                    exchange,
                    vm,
                    "a backup that existed before the example changed",
                    f"{before.id} was listed with (increment_id, status) = {(before.increment_id, before.status)}"
                    f" at the start; now {'missing' if now is None else after}",
                )

    def _listing_failure(
        self, requirement: str, exchange: Exchange, vm: str, title: str, message: str
    ) -> ConformanceFailure:
        last = self.model.last
        return fail(
            requirement,
            exchange,
            f"listBackups?vm_id=<{vm}>: {title}",
            f"{message}. Last step: {last!r}. Model: {self.model!r}",
            check="series_model",
        )

    # -- teardown ------------------------------------------------------------------------------

    def teardown(self) -> None:
        """Delete what this example created, newest first; what fails stays in the ledger."""
        h = self.harness
        done: set[str] = set()
        for point in self.model.alive_newest_first():
            if point.id in done:
                continue
            try:
                status = h.client.delete_backup(point.id).status_code
                if status == 409:  # the server has a dependent the model does not: drop the series
                    status = h.client.delete_backup_chain(point.id).status_code
                    if status in (200, 404):
                        done |= {p.id for p in self.model.series_of(point.id).points}
            except httpx.HTTPError:
                continue  # the ledger tries again at the end of the run
            if status in (200, 404):
                done.add(point.id)
        for backup_id in done:
            h.book.forget(backup_id)
        if h.settings.is_mock:  # on a live target a settle backup costs more than it saves
            for vm in VM_LABELS:
                if h.owes_baseline.get(vm):
                    with contextlib.suppress(httpx.HTTPError):
                        h.settle(vm)


def _items(exchange: Exchange) -> list[dict[str, Any]]:
    data = exchange.response_body.get("data") if isinstance(exchange.response_body, dict) else None
    return [item for item in data or [] if isinstance(item, dict) and isinstance(item.get("id"), str)]


def _preexisting(item: dict[str, Any]) -> Preexisting:
    return Preexisting(item["id"], item.get("increment_id"), item.get("status"))


def bind(harness: Harness) -> type[SeriesMachine]:
    """The machine class bound to this run's target (Hypothesis builds machines with no arguments)."""
    return type("SeriesMachine", (SeriesMachine,), {"harness": harness})
