"""The mock's in-memory state: accounts, projects, VMs, backups and their hidden series.

Seed structure (a dict, or a YAML/JSON file given to ``--seed``)::

    accounts:                       # at least two
      - id: <uuid>
        name: <str>                 # optional
        user_id: <uuid>             # optional; shown as created_by on backups
        api_key: <str>              # optional; generated with `secrets` when absent
        projects:
          - id: <uuid>
            name: <str>             # optional
            vms:
              - id: <uuid>
                name: <str>         # optional; any other VM field given here is shown as is
                backups:            # optional; legacy standalone backups (increment_id null)
                  - id: <uuid>
                    name: <str>         # optional
                    storage_size: <int> # optional, MB
                    status: <str>       # optional, default "ready"; other values stay fixed
                    created_at: <date-time>  # optional

The credentials are taken by position: the first account's first project holds
``RAFF_VM_ID`` (its first VM) and ``RAFF_SECOND_VM_ID`` (its second VM); the first account's
second project holds ``RAFF_OTHER_PROJECT_VM_ID``; the second account's first project holds
``RAFF_OTHER_ACCOUNT_VM_ID``.

Series are kept as a hidden ``series`` id on each restore point, since the API exposes only
``increment_id``. Every mutation and every read that derives state runs under one lock.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from conformance.mock.validation import FORMAT_CHECKER

REGION = "us-east"
# $0.05 per GB-month for backup storage (enable-backups guide), over 730 hours a month.
PRICE_PER_GB_HOUR = 0.05 / 730
RETENTION = timedelta(days=30)
RESET_MESSAGE = "New baseline queued — the next backup will start a fresh series."
DEPENDENTS_MESSAGE = (
    "Later restore points of this series depend on this backup; "
    "delete the whole series with DELETE /api/v1/backups/{id}/chain"
)


def _id(n: int, kind: int) -> str:
    """A fixed, readable UUID so that seeded ids (and curl commands using them) are reproducible."""
    return f"{kind:08x}-0000-4000-8000-{n:012x}"


def default_seed() -> dict[str, Any]:
    """Two accounts; the first with two projects (two VMs, then one), the second with one VM."""
    account, project, vm, backup, user = 0xACC0, 0x9E00, 0x7B00, 0xBAC0, 0x5E00

    def legacy(n: int, size: int, day: int) -> dict[str, Any]:
        return {
            "id": _id(n, backup),
            "name": f"legacy-backup-2026-05-0{day}",
            "storage_size": size,
            "status": "ready",
            "created_at": f"2026-05-0{day}T08:00:00Z",
        }

    return {
        "accounts": [
            {
                "id": _id(1, account),
                "name": "conformance-primary",
                "user_id": _id(1, user),
                "projects": [
                    {
                        "id": _id(1, project),
                        "name": "default",
                        "vms": [
                            {"id": _id(1, vm), "name": "conformance-vm"},
                            {
                                "id": _id(2, vm),
                                "name": "conformance-second-vm",
                                "backups": [legacy(1, 20480, 1), legacy(2, 20992, 2)],
                            },
                        ],
                    },
                    {
                        "id": _id(2, project),
                        "name": "other-project",
                        "vms": [{"id": _id(3, vm), "name": "other-project-vm", "backups": [legacy(3, 30720, 3)]}],
                    },
                ],
            },
            {
                "id": _id(2, account),
                "name": "conformance-other-account",
                "user_id": _id(2, user),
                "projects": [
                    {
                        "id": _id(3, project),
                        "name": "default",
                        "vms": [{"id": _id(4, vm), "name": "other-account-vm", "backups": [legacy(4, 10240, 4)]}],
                    }
                ],
            },
        ]
    }


def new_api_key() -> str:
    return "raff_pub_" + secrets.token_urlsafe(24)


class ApiError(Exception):
    """An answer other than success: the handler turns it into a JSON Error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


@dataclass
class Account:
    id: str
    name: str
    user_id: str
    api_key: str
    project_ids: list[str] = field(default_factory=list)


@dataclass
class VM:
    id: str
    account_id: str
    project_id: str
    body: dict[str, Any]
    open_series: str | None = None
    # increment_id of the next series' first point: 0, except under numbering_continues_after_reset.
    series_start: int = 0
    # A reset happened and no backup since (only second_reset_rejected looks at it).
    reset_pending: bool = False
    closed_last: str | None = None  # the series the last reset closed (unfiltered_listing_cancels_reset)
    reset_due: float | None = None  # reset_takes_effect_late: when the accepted reset will close the series


@dataclass
class Backup:
    id: str
    account_id: str
    project_id: str
    vm_id: str
    name: str
    storage_size: int
    created_by: str
    created_at: datetime
    seq: int
    series: str | None
    increment_id: int | None
    created_mono: float
    ready_mono: float
    fixed_status: str | None = None
    restoring_until: float = float("-inf")
    default_name: bool = False  # created without a name (planted defects single these out)
    ends_failed: bool = False  # series_reopens_after_reset: the capture fails instead of ending ready

    def status(self, now: float) -> str:
        if self.fixed_status is not None:
            return self.fixed_status
        if self.ends_failed and now >= self.ready_mono:
            return "failed"
        if now < self.created_mono + (self.ready_mono - self.created_mono) / 2:
            return "pending"
        if now < self.ready_mono:
            return "creating"
        if now < self.restoring_until:
            return "restoring"
        return "ready"


class World:
    """State of one mock instance. Methods take the caller's account and raise :class:`ApiError`."""

    def __init__(
        self,
        seed: dict[str, Any] | None = None,
        *,
        defects: Iterable[str] = (),
        backup_delay: float = 0.3,
        restore_delay: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        one_backup_at_a_time: bool = False,
    ) -> None:
        self.defects = frozenset(defects)
        # A server that takes one backup of a VM at a time: a create while another of it is pending or
        # creating is refused with 409 (the overlay's entry on createBackup; the mock's --one-backup-at-a-time).
        self.one_backup_at_a_time = one_backup_at_a_time
        self.backup_delay = backup_delay
        self.restore_delay = restore_delay
        self._clock = clock
        self.clock = clock  # the app ticks a RequestClock once per request
        self._lock = threading.Lock()
        self._seq = 0
        self._issued: set[str] = set()  # every backup id ever created, deleted ones too
        self.accounts: dict[str, Account] = {}
        self.vms: dict[str, VM] = {}
        self.backups: dict[str, Backup] = {}
        self._project_account: dict[str, str] = {}
        self._stale: dict[str, dict[str, Any]] = {}  # deleted_backup_still_readable: id -> last body
        self._load(default_seed() if seed is None else seed)

    # ---- seed and credentials -------------------------------------------------------------

    def _load(self, seed: dict[str, Any]) -> None:
        accounts = seed.get("accounts") if isinstance(seed, dict) else None
        if not isinstance(accounts, list) or len(accounts) < 2:
            raise ValueError("seed needs 'accounts': a list of at least two accounts")
        for raw_account in accounts:
            account = Account(
                id=_seed_uuid(raw_account, "account"),
                name=str(raw_account.get("name", "account")),
                user_id=str(raw_account.get("user_id") or uuid.uuid4()),
                api_key=str(raw_account.get("api_key") or new_api_key()),
            )
            self.accounts[account.id] = account
            for raw_project in raw_account.get("projects", []):
                project_id = _seed_uuid(raw_project, "project")
                account.project_ids.append(project_id)
                self._project_account[project_id] = account.id
                for raw_vm in raw_project.get("vms", []):
                    self._load_vm(account, project_id, raw_vm)
        shape = [[len(self._vms_of(p)) for p in a.project_ids] for a in self.accounts.values()]
        if len(shape[0]) < 2 or shape[0][0] < 2 or shape[0][1] < 1 or not shape[1] or shape[1][0] < 1:
            raise ValueError(
                "seed needs: account 1 with a project of two VMs and a second project with a VM, "
                "and account 2 with a project with a VM"
            )
        if len({a.api_key for a in self.accounts.values()}) != len(self.accounts):
            raise ValueError("seed api_key values must differ between accounts")

    def _load_vm(self, account: Account, project_id: str, raw: dict[str, Any]) -> None:
        vm_id = _seed_uuid(raw, "vm")
        created = "2026-05-01T08:00:00Z"
        body: dict[str, Any] = {
            "id": vm_id,
            "name": "vm",
            "status": "active",
            "cpu": 2,
            "ram": 4,
            "storage": 50,
            "added_storage": 0,
            "total_storage": 50,
            "template_id": "7e3f1a52-0000-4000-8000-000000002404",
            "template_name": "Ubuntu",
            "template_version": "24.04x64",
            "version": "1",
            "price_per_hour": "0.027764",
            "pricing_id": 3,
            "created_by": account.user_id,
            "billing_type": "payg",
            "backup_type": None,
            "region": REGION,
            "project_id": project_id,
            "public_ipv4_address": f"203.0.113.{len(self.vms) + 10}",  # TEST-NET-3: never a real host
            "public_ipv6_address": None,
            "private_ipv4_address": f"10.0.0.{len(self.vms) + 10}",
            "private_ipv6_address": None,
            "tags": [],
            "active": True,
            "created_at": created,
            "updated_at": created,
        }
        body.update({key: value for key, value in raw.items() if key != "backups"})
        self.vms[vm_id] = VM(id=vm_id, account_id=account.id, project_id=project_id, body=body)
        for raw_backup in raw.get("backups", []):
            if raw_backup.get("increment_id") is not None:
                raise ValueError("seeded backups are legacy standalone backups: increment_id must be null")
            status = str(raw_backup.get("status", "ready"))
            created_at = raw_backup.get("created_at")
            self._add_backup(
                Backup(
                    id=_seed_uuid(raw_backup, "backup"),
                    account_id=account.id,
                    project_id=project_id,
                    vm_id=vm_id,
                    name=str(raw_backup.get("name", f"legacy-backup-{len(self.backups) + 1}")),
                    storage_size=int(raw_backup.get("storage_size", 20480)),
                    created_by=account.user_id,
                    created_at=_parse_time(created_at) if created_at else datetime.now(UTC),
                    seq=0,
                    series=None,
                    increment_id=None,
                    created_mono=float("-inf"),
                    ready_mono=float("-inf"),
                    fixed_status=None if status == "ready" else status,
                )
            )

    def _vms_of(self, project_id: str) -> list[VM]:
        return [vm for vm in self.vms.values() if vm.project_id == project_id]

    def credentials(self) -> dict[str, str]:
        """The seeded identities and ids the suite reads from its environment (no base URL)."""
        first, second = list(self.accounts.values())[:2]
        vms = self._vms_of(first.project_ids[0])
        # RAFF_OTHER_ACCOUNT_VM_ID comes last: readers of the CLI's export lines stop at it.
        return {
            "RAFF_API_KEY": first.api_key,
            "RAFF_PROJECT_ID": first.project_ids[0],
            "RAFF_VM_ID": vms[0].id,
            "RAFF_SECOND_VM_ID": vms[1].id,
            "RAFF_OTHER_PROJECT_ID": first.project_ids[1],
            "RAFF_OTHER_PROJECT_VM_ID": self._vms_of(first.project_ids[1])[0].id,
            "RAFF_OTHER_ACCOUNT_API_KEY": second.api_key,
            "RAFF_OTHER_ACCOUNT_VM_ID": self._vms_of(second.project_ids[0])[0].id,
        }

    def account_for_key(self, api_key: str | None) -> Account | None:
        if not api_key:
            return None
        for account in self.accounts.values():
            if secrets.compare_digest(account.api_key.encode(), api_key.encode("utf-8", "surrogateescape")):
                return account
        return None

    # ---- operations -----------------------------------------------------------------------

    def list_backups(
        self, account: Account, project_id: str | None, vm_id: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        with self._lock:
            if project_id is None and "unscoped_listing_ignores_vm_filter" in self.defects:
                vm_id = None
            if "listing_shows_lower_accounts" in self.defects:  # <= where == was meant
                owned = [b for b in self._ordered() if b.account_id <= account.id]
            else:
                owned = [b for b in self._ordered() if b.account_id == account.id]
            foreign = self.vms.get(vm_id) if vm_id is not None else None
            crossing = foreign is not None and foreign.account_id != account.id
            if crossing and "vm_filter_crosses_accounts" in self.defects:
                owned = [b for b in self._ordered() if b.vm_id == vm_id]  # the filter skips the account check
                project_id = None
            matching = [
                b
                for b in owned
                if (project_id is None or b.project_id == project_id) and (vm_id is None or b.vm_id == vm_id)
            ]
            if "closed_points_hidden" in self.defects:
                matching = [b for b in matching if not self._is_closed(b)]
            total = len(owned) if "list_total_ignores_filter" in self.defects else len(matching)
            offset, limit = max(offset, 0), max(limit, 0)  # the spec sets no minimum: clamp, don't reject
            if "list_total_is_page_size" in self.defects:
                total = len(matching[offset : offset + limit])  # the page's length where the match count was meant
            if "offset_past_end_crashes" in self.defects and offset > len(matching):
                raise ApiError(500, "internal error: slice bounds out of range")
            if offset and "listing_offset_off_by_one" in self.defects:
                offset += 1
            now = self._clock()
            if vm_id is None and "unfiltered_listing_cancels_reset" in self.defects:
                for vm in self.vms.values():  # a "sync" of the VM rows that writes back a stale series pointer
                    if vm.account_id == account.id and vm.reset_pending and vm.open_series is None:
                        vm.open_series, vm.reset_pending = vm.closed_last, False
            bodies = [self._backup_body(b, now) for b in matching[offset : offset + limit]]
            if "listing_account_id_is_project_id" in self.defects:
                bodies = [{**body, "account_id": body["project_id"]} for body in bodies]
            if vm_id is None and "unfiltered_listing_drops_increment" in self.defects:
                closed = {b.id for b in matching if self._is_closed(b)}
                bodies = [{**body, "increment_id": None} if body["id"] in closed else body for body in bodies]
            return bodies, total

    def create_backup(self, account: Account, project_id: str, vm_id: str, name: str | None) -> dict[str, Any]:
        with self._lock:
            vm = self._scoped_vm(account, project_id, vm_id)
            if self.one_backup_at_a_time:
                now = self._clock()
                busy = [
                    b for b in self.backups.values() if b.vm_id == vm.id and b.status(now) in ("pending", "creating")
                ]
                if busy:
                    raise ApiError(409, f"A backup of this VM is already in progress ({busy[0].id})")
            if vm.reset_due is not None and self._clock() >= vm.reset_due:
                vm.reset_due = None
                self._close_series(vm)
                vm.reset_pending = True
            reopened = None
            if vm.reset_pending and "series_reopens_after_reset" in self.defects:
                reopened = next((b.series for b in reversed(self._ordered()) if b.vm_id == vm.id and b.series), None)
            if vm.open_series is None:
                vm.open_series = reopened or str(uuid.uuid4())
            points = self._series_points(vm.open_series)
            increment = max(p.increment_id or 0 for p in points) + 1 if points else vm.series_start
            vm.series_start = 0
            vm.reset_pending = False
            now_mono, now = self._clock(), datetime.now(UTC)
            if name is not None and "non_ascii_name_mangled" in self.defects:
                name = name.encode("latin-1", "replace").decode("latin-1")  # a latin-1 column
            if "created_at_an_hour_ahead" in self.defects:
                now += timedelta(hours=1)  # local time (UTC+1) written with a Z
            backup = Backup(
                id=str(uuid.uuid4()),
                account_id=account.id,
                project_id=project_id,
                vm_id=vm.id,
                name=name if name is not None else f"manual-backup-{now:%Y-%m-%dT%H-%M-%S.%fZ}",
                # A baseline holds the whole disk; an increment only the blocks changed since.
                storage_size=_baseline_size(vm) if not points else 16 + (increment * 37) % 240,
                created_by=account.user_id,
                created_at=now,
                seq=0,
                series=vm.open_series,
                increment_id=increment,
                created_mono=now_mono,
                ready_mono=now_mono + self.backup_delay,
                default_name=name is None,
                ends_failed=reopened is not None,
                fixed_status="pending" if "backups_never_ready" in self.defects else None,
            )
            self._add_backup(backup)
            body = self._backup_body(backup, now_mono)
            body["status"] = "pending"  # the 202 answer is always "pending", even with a zero delay
            if reopened is not None:
                body["increment_id"] = 0  # announced as the new baseline it should have been
            return body

    def get_backup(self, account: Account, project_id: str, backup_id: str) -> dict[str, Any]:
        with self._lock:
            stale = self._stale.pop(backup_id, None)
            if stale is not None and stale["account_id"] == account.id:
                return stale  # deleted_backup_still_readable: a cache that outlives the delete once
            upper_half = backup_id[:1] != "" and backup_id[:1] in "89abcdef"
            if "unissued_backup_id_crashes" in self.defects and upper_half and backup_id not in self._issued:
                raise ApiError(500, "internal error: no shard for backup id")
            backup = self._scoped_backup(account, project_id, backup_id)
            if "closed_point_get_not_found" in self.defects and self._is_closed(backup):
                raise not_found("Backup")  # the by-id lookup reads only the open series' table
            return self._backup_body(backup, self._clock())

    def delete_backup(self, account: Account, project_id: str, backup_id: str) -> None:
        with self._lock:
            backup = self._scoped_backup(account, project_id, backup_id)
            if backup.series is not None:
                later = [
                    p for p in self._series_points(backup.series) if (p.increment_id or 0) > (backup.increment_id or 0)
                ]
                if later:
                    if "delete_with_dependents_cascades" in self.defects:
                        self._delete_series(backup.series)
                        return
                    if "delete_with_dependents_deletes_point" not in self.defects:
                        raise ApiError(409, DEPENDENTS_MESSAGE)
            self._forget(backup)

    def delete_chain(self, account: Account, project_id: str, backup_id: str) -> None:
        with self._lock:
            backup = self._scoped_backup(account, project_id, backup_id)
            if backup.series is None:
                self._forget(backup)  # a legacy backup is a series of its own
                return
            vm = self.vms[backup.vm_id]
            if "chain_delete_removes_oldest_series" in self.defects:
                oldest = next(b.series for b in self._ordered() if b.vm_id == vm.id and b.series is not None)
                backup = next(b for b in self._ordered() if b.series == oldest)
            if vm.open_series == backup.series:
                vm.open_series = None  # the next backup starts a fresh series at 0
                if "open_chain_delete_spills_into_closed_series" in self.defects:
                    for closed in {b.series for b in self._ordered() if b.vm_id == vm.id and b.series != backup.series}:
                        if closed is not None:
                            self._delete_series(closed)
            elif "chain_delete_spills_into_open_series" in self.defects and vm.open_series is not None:
                self._delete_series(vm.open_series)
            self._delete_series(backup.series)

    def restore_backup(self, account: Account, project_id: str, backup_id: str) -> dict[str, Any]:
        with self._lock:
            backup = self._scoped_backup(account, project_id, backup_id, any_project="restore_ignores_project_scope")
            if backup.default_name and "restore_default_named_crashes" in self.defects:
                raise ApiError(500, "internal error: restore job name is empty")
            now = self._clock()
            status = backup.status(now)
            if status != "ready":
                code = 408 if "restore_in_flight_408" in self.defects else 409
                raise ApiError(code, f"Backup is {status}; only a ready backup can be restored")
            if "closed_points_not_restorable" in self.defects and self._is_closed(backup):
                raise ApiError(409, "This restore point belongs to a closed series")
            if "closed_point_restore_refused" in self.defects and self._is_closed(backup):
                raise ApiError(400, "restore point belongs to a closed series")
            backup.restoring_until = now + self.restore_delay
            body = self._backup_body(backup, now)
            body["status"] = "restoring"  # even with a zero restore delay
            return body

    def get_vm(self, account: Account, vm_id: str) -> dict[str, Any]:
        with self._lock:
            vm = self.vms.get(vm_id)
            if vm is None or vm.account_id != account.id:
                raise not_found("VM")
            return copy.deepcopy(vm.body)

    def reset_chain(self, account: Account | None, project_id: str | None, vm_id: str) -> None:
        """Close the VM's open series. ``account``/``project_id`` are None only under planted defects."""
        with self._lock:
            vm = self.vms.get(vm_id)
            if vm is None:
                if "reset_unknown_vm_accepted" in self.defects:
                    return
                raise not_found("VM")
            in_account = account is None or vm.account_id == account.id
            if (
                "reset_accepts_unknown_project" in self.defects
                and account is not None
                and project_id not in account.project_ids
            ):
                project_id = vm.project_id  # the header names no project of the account: ignored
            if not in_account and "reset_ignores_account" not in self.defects:
                raise not_found("VM")
            if (
                in_account
                and project_id is not None
                and vm.project_id != project_id
                and "reset_ignores_project_scope" not in self.defects
            ):
                raise not_found("VM")
            if "reset_in_flight_ignored" in self.defects and vm.open_series is not None:
                now = self._clock()
                if any(p.status(now) in ("pending", "creating") for p in self._series_points(vm.open_series)):
                    return  # answered 202, but the reset waits behind the running backup and is lost
            if (
                "reset_skips_baseline_only_series" in self.defects
                and vm.open_series is not None
                and len(self._series_points(vm.open_series)) == 1
            ):
                return  # answered 202; a series of one point is "nothing to close" to this server
            if vm.reset_pending and "second_reset_rejected" in self.defects:
                raise ApiError(400, "The backup series of this VM was already reset")
            if "reset_takes_effect_late" in self.defects:
                vm.reset_due = self._clock() + LATE_RESET_S  # queued: applied by a later request
                return
            targets = [vm]
            if "reset_spills_to_other_vm" in self.defects:
                targets += [other for other in self._vms_of(vm.project_id) if other is not vm]
            for target in targets:
                self._close_series(target)
            vm.reset_pending = True

    # ---- helpers (callers hold the lock) ------------------------------------------------------

    def _add_backup(self, backup: Backup) -> None:
        self._seq += 1
        backup.seq = self._seq
        self.backups[backup.id] = backup
        self._issued.add(backup.id)

    def _ordered(self) -> list[Backup]:
        if "closed_series_pruned_after_baseline" in self.defects:
            self._prune_closed_series()
        return sorted(self.backups.values(), key=lambda b: b.seq)

    def _prune_closed_series(self) -> None:
        """Planted defect: once a VM's new baseline is ready, its closed series are deleted."""
        now = self._clock()
        for vm in self.vms.values():
            points = [b for b in self.backups.values() if vm.open_series is not None and b.series == vm.open_series]
            if any(p.increment_id == 0 and p.status(now) == "ready" for p in points):
                for backup in [b for b in self.backups.values() if b.vm_id == vm.id]:
                    if backup.series is not None and backup.series != vm.open_series:
                        self._forget(backup)

    def _series_points(self, series: str) -> list[Backup]:
        return [b for b in self._ordered() if b.series == series]

    def _delete_series(self, series: str) -> None:
        for point in self._series_points(series):
            self._forget(point)

    def _forget(self, backup: Backup) -> None:
        """Delete one backup (under deleted_backup_still_readable, getBackup still finds it once)."""
        if "deleted_backup_still_readable" in self.defects:
            self._stale[backup.id] = self._backup_body(backup, self._clock())
        del self.backups[backup.id]

    def _is_closed(self, backup: Backup) -> bool:
        return backup.series is not None and self.vms[backup.vm_id].open_series != backup.series

    def _close_series(self, vm: VM) -> None:
        vm.closed_last = vm.open_series or vm.closed_last
        if vm.open_series is not None:
            points = self._series_points(vm.open_series)
            if "reset_drops_baseline_only_series" in self.defects and len(points) == 1:
                self._forget(points[0])  # a series of one point taken for an unfinished one
            if "reset_deletes_closed_points" in self.defects:
                now = self._clock()
                for point in [p for p in points if p.status(now) == "ready"]:
                    self._forget(point)  # "closing" taken as "clearing": the finished points go
            if "numbering_continues_after_reset" in self.defects and points:
                vm.series_start = max(p.increment_id or 0 for p in points) + 1
            if "closed_points_renumbered" in self.defects:
                for point in points:
                    point.increment_id = (point.increment_id or 0) + 1
        vm.open_series = None

    def _project_in_account(self, account: Account, project_id: str) -> None:
        if project_id not in account.project_ids:
            raise not_found("Project")

    def _scoped_vm(self, account: Account, project_id: str, vm_id: str) -> VM:
        self._project_in_account(account, project_id)
        vm = self.vms.get(vm_id)
        if vm is None or vm.account_id != account.id or vm.project_id != project_id:
            raise not_found("VM")
        return vm

    def _scoped_backup(self, account: Account, project_id: str, backup_id: str, any_project: str = "") -> Backup:
        """The backup, if it is in the account and in that project (any of the account's projects when
        the planted defect ``any_project`` names is on)."""
        self._project_in_account(account, project_id)
        backup = self.backups.get(backup_id)
        in_project = backup is not None and (backup.project_id == project_id or any_project in self.defects)
        if backup is None or backup.account_id != account.id or not in_project:
            raise not_found("Backup")
        if backup.default_name and "default_named_backup_not_found" in self.defects:
            raise not_found("Backup")  # the by-id index missed it
        return backup

    def _backup_body(self, backup: Backup, now: float) -> dict[str, Any]:
        storage_size: int | str = backup.storage_size
        if "backup_storage_size_string" in self.defects:
            storage_size = str(backup.storage_size)
        return {
            "id": backup.id,
            "account_id": backup.account_id,
            "project_id": backup.project_id,
            "created_by": backup.created_by,
            "region": REGION,
            "product_vm": backup.vm_id,
            "name": backup.name,
            "storage_size": storage_size,
            "status": backup.status(now),
            "price_per_hour": f"{backup.storage_size / 1024 * PRICE_PER_GB_HOUR:.6f}",
            "expire_date": _format_time(backup.created_at + RETENTION),
            "increment_id": backup.increment_id,
            "created_at": _format_time(backup.created_at),
        }


LATE_RESET_S = 1.0  # reset_takes_effect_late: how long an accepted reset waits in the queue


def _baseline_size(vm: VM) -> int:
    storage = vm.body.get("storage")
    gigabytes = storage if isinstance(storage, int) and storage > 0 else 50
    return gigabytes * 1024 * 2 // 5  # a baseline holds the used part of the disk, say 40 %


def _seed_uuid(raw: Any, kind: str) -> str:
    value = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(value, str) or not FORMAT_CHECKER.conforms(value, "uuid"):
        raise ValueError(f"every seeded {kind} needs an 'id' that is a UUID, got {value!r}")
    return value.lower()


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
