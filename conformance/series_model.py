"""The plain in-memory model of backup series that the state machine checks the API against.

Per VM it keeps the open series and the closed ones, each an ordered list of the restore
points the machine created (id, series, increment_id), and the points that existed before
the machine started, which must never change. It predicts what the API must answer, from
the docs (raff-api.md §4.4-4.7, §5.1; requirements RC-06..RC-10, RC-15, RC-16):

- a backup joins the VM's open series, or starts a new one at increment_id 0 (RC-08);
- a reset closes the open series; closed points stay listed and restorable (RC-06, RC-07);
  the next backup starts a new series at 0, however many resets came before (RC-10);
- deleting one point answers 409 while later points of its series depend on it (RC-16);
- deleting a series through any of its points removes exactly that series (RC-15).

It also keeps the history of steps, so that a mismatch can name the step that caused it.
It knows nothing about HTTP; the test module does the talking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

DeleteOutcome = Literal[200, 409]


class Step(Enum):
    """What the machine did; the history lets a failure blame the step that caused it."""

    START_RESET = "reset at the start of the example"
    CREATE = "create"
    RESET = "reset"
    RESET_IN_FLIGHT = "reset while a backup was in flight"
    RESET_REFUSED_UNKNOWN_VM = "reset of an unknown VM (refused)"
    RESET_REFUSED_NO_PROJECT = "reset without X-Project-ID (refused)"
    RESET_REFUSED_OTHER_PROJECT = "reset of another project's VM (refused)"
    RESTORE = "restore"
    DELETE_POINT = "delete point"
    DELETE_POINT_REFUSED = "delete point (refused)"
    DELETE_SERIES = "delete series"


@dataclass(frozen=True)
class Event:
    step: Step
    vm: str | None  # the VM label the step named; None for steps aimed at no VM of the machine

    def __repr__(self) -> str:
        return f"{self.step.value} {self.vm}" if self.vm else self.step.value


@dataclass(frozen=True)
class RestorePoint:
    id: str
    vm: str
    series: int  # the model's own series number, unique across VMs (the API exposes none)
    increment_id: int

    @property
    def label(self) -> str:
        """E.g. ``A2.1``: VM A, the model's series 2, increment_id 1."""
        return f"{self.vm}{self.series}.{self.increment_id}"

    def __repr__(self) -> str:
        return f"{self.label}({self.id[:8]})"


@dataclass
class Series:
    number: int
    vm: str
    points: list[RestorePoint] = field(default_factory=list)
    closed: bool = False

    @property
    def label(self) -> str:
        return f"{self.vm}{self.number}"

    def __repr__(self) -> str:
        increments = ",".join(str(p.increment_id) for p in self.points)
        return f"{self.label}[{increments}]{' closed' if self.closed else ''}"


@dataclass(frozen=True)
class Preexisting:
    """A backup listed for the VM when the example started: it must stay exactly so (RC-06)."""

    id: str
    increment_id: int | None
    status: str | None


@dataclass
class VmSeries:
    label: str
    vm_id: str
    preexisting: dict[str, Preexisting] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
    open: Series | None = None

    def __repr__(self) -> str:
        parts = [repr(s) for s in self.series if s.points or s is self.open]
        return f"{self.label}: {' '.join(parts) or '-'} (+{len(self.preexisting)} preexisting)"


class SeriesModel:
    """What the API must hold for the machine's VMs, and what each operation must answer."""

    def __init__(self, vms: dict[str, str]) -> None:
        self.vms: dict[str, VmSeries] = {label: VmSeries(label, vm_id) for label, vm_id in vms.items()}
        self.points: dict[str, RestorePoint] = {}  # alive points the machine created
        self.gone: dict[str, RestorePoint] = {}  # the machine's points that must now be absent
        self.created: list[str] = []  # every id the machine created, oldest first
        self.history: list[Event] = []
        self.restores = 0
        self._series_count = 0

    def __repr__(self) -> str:
        return f"SeriesModel({'; '.join(repr(vm) for vm in self.vms.values())})"

    # -- the start of an example ---------------------------------------------------------------

    def start(self, label: str, preexisting: list[Preexisting]) -> None:
        """The VM's series was closed (reset at the start) and these backups were listed after it."""
        vm = self.vms[label]
        vm.preexisting = {p.id: p for p in preexisting}
        vm.open = None
        self.history.append(Event(Step.START_RESET, label))

    # -- predictions and state changes ---------------------------------------------------------

    def next_increment(self, label: str) -> int:
        """The increment_id the VM's next backup must get: the open series' next, or 0 for a new one."""
        vm = self.vms[label]
        return len(vm.open.points) if vm.open is not None else 0

    def create(self, label: str, backup_id: str) -> RestorePoint:
        """A backup of the VM was accepted: it joins the open series (opening one if needed)."""
        vm = self.vms[label]
        if vm.open is None:
            self._series_count += 1
            vm.open = Series(self._series_count, label)
            vm.series.append(vm.open)
        point = RestorePoint(backup_id, label, vm.open.number, len(vm.open.points))
        vm.open.points.append(point)
        self.points[backup_id] = point
        self.created.append(backup_id)
        self.history.append(Event(Step.CREATE, label))
        return point

    def reset(self, label: str, *, in_flight: bool = False) -> None:
        """An accepted reset: the open series (if any) is closed; its points stay.

        ``in_flight``: the VM's last backup was asked for but not yet ready; it is still a point of
        the series it was asked for in, and the next backup is a baseline all the same.
        """
        vm = self.vms[label]
        if vm.open is not None:
            vm.open.closed = True
            vm.open = None
        self.history.append(Event(Step.RESET_IN_FLIGHT if in_flight else Step.RESET, label))

    def refused(self, step: Step, label: str | None) -> None:
        """A request that must change nothing, such as a reset without X-Project-ID."""
        self.history.append(Event(step, label))

    def restored(self, backup_id: str) -> None:
        self.restores += 1
        self.history.append(Event(Step.RESTORE, self.point(backup_id).vm))

    def delete_outcome(self, backup_id: str) -> DeleteOutcome:
        """200 unless a later point of the same series depends on it (409, RC-16)."""
        point = self.points[backup_id]
        later = [p for p in self.series_of(backup_id).points if p.increment_id > point.increment_id]
        return 409 if later else 200

    def delete_point(self, backup_id: str) -> RestorePoint:
        """The single delete was answered as predicted; on 200 the point is gone."""
        point = self.point(backup_id)
        if self.delete_outcome(backup_id) == 409:
            self.history.append(Event(Step.DELETE_POINT_REFUSED, point.vm))
            return point
        self.series_of(backup_id).points.remove(point)
        self.gone[backup_id] = self.points.pop(backup_id)
        self.history.append(Event(Step.DELETE_POINT, point.vm))
        return point

    def delete_series(self, backup_id: str) -> list[RestorePoint]:
        """Every point of the series is gone; if it was the open one, the next backup starts at 0."""
        series = self.series_of(backup_id)
        vm = self.vms[series.vm]
        removed = list(series.points)
        for point in removed:
            self.gone[point.id] = self.points.pop(point.id)
        series.points.clear()
        vm.series.remove(series)
        if vm.open is series:
            vm.open = None
        self.history.append(Event(Step.DELETE_SERIES, series.vm))
        return removed

    # -- what the API must show ----------------------------------------------------------------

    def series_of(self, backup_id: str) -> Series:
        point = self.point(backup_id)
        return next(s for s in self.vms[point.vm].series if point in s.points)

    def listing(self, label: str) -> dict[str, RestorePoint]:
        """The machine's own points that listBackups?vm_id=<VM> must show, by id."""
        return {p.id: p for s in self.vms[label].series for p in s.points}

    def open_points(self, label: str) -> list[RestorePoint]:
        vm = self.vms[label]
        return list(vm.open.points) if vm.open is not None else []

    def has_closed_points(self, *, beside_open: bool = False) -> bool:
        """Some closed series has points (on a VM whose open series has points, if ``beside_open``)."""
        return any(
            series.closed and series.points and (not beside_open or (vm.open is not None and vm.open.points))
            for vm in self.vms.values()
            for series in vm.series
        )

    def closed_beside_open(self, backup_id: str) -> bool:
        """The point is alive in a closed series, and its VM's open series has points (RC-15's case)."""
        if backup_id not in self.points:
            return False
        vm = self.vms[self.points[backup_id].vm]
        return self.series_of(backup_id).closed and vm.open is not None and bool(vm.open.points)

    def own_ids(self) -> set[str]:
        return set(self.points) | set(self.gone)

    def alive_newest_first(self) -> list[RestorePoint]:
        """What teardown deletes: newest first, so no point is deleted before its dependents."""
        return [self.points[i] for i in reversed(self.created) if i in self.points]

    def since_last_create(self, label: str) -> list[Event]:
        """The steps since the VM's last backup (or the start): the suspects when numbering is off."""
        for index in range(len(self.history) - 1, -1, -1):
            event = self.history[index]
            if event.step is Step.CREATE and event.vm == label:
                return self.history[index + 1 :]
        return list(self.history)

    @property
    def last(self) -> Event | None:
        return self.history[-1] if self.history else None

    def check(self) -> None:
        """The model's own invariant: every series numbers its points 0, 1, 2, … with no gap or repeat."""
        for vm in self.vms.values():
            for series in vm.series:
                increments = [p.increment_id for p in series.points]
                assert increments == list(range(len(increments))), f"model bug: {series!r}"
            assert vm.open is None or vm.open in vm.series, f"model bug: open series of {vm.label} not listed"

    def point(self, backup_id: str) -> RestorePoint:
        point = self.points.get(backup_id) or self.gone.get(backup_id)
        if point is None:
            raise KeyError(f"{backup_id} was not created by the machine")
        return point
