"""Reset-chain while a backup is in flight, and on every shape a series can have (recorded scenario)."""

from __future__ import annotations

import pytest

from conformance.checks import fail, inconclusive, status_code_conformance, status_code_is
from conformance.exchange import Exchange
from conformance.scenario import ScenarioRecord

pytestmark = [pytest.mark.writes, pytest.mark.xdist_group("vm-series")]

IN_FLIGHT = ("pending", "creating")


def _answered_like_plain_reset(scenario: ScenarioRecord, reset: Exchange) -> bool:
    """Whether this reset got the same wrong answer as the plain reset_A: that is RC-01's finding,
    not this case's, so the case judges the effect only."""
    return reset.status != 202 and reset.status == scenario.step("reset_A").status


def _accepted(scenario: ScenarioRecord, reset: Exchange, requirement: str) -> None:
    """A reset of this shape is accepted (202), like any other. Its body is RC-14's, judged on every
    answer (the judge's P-CONTRACT): the requirements of shapes name a status and an effect."""
    __tracebackhide__ = True
    if _answered_like_plain_reset(scenario, reset):
        return
    status_code_is(reset, 202, requirement)


@pytest.mark.req("RC-21")
def test_reset_chain_while_backup_in_flight(scenario: ScenarioRecord, contract, evidence) -> None:
    """1. create A5, reset at once, read A5: still in flight  2. the reset answered a documented code
    3. accepted: A6, asked for after it, is a baseline; refused: A6 follows A5 in its series."""
    reset = scenario.step("reset_A_in_flight")
    shown = scenario.step("show_A5_after_in_flight_reset")
    evidence.attach(*scenario.trail("create_A5", "reset_A_in_flight", "show_A5_after_in_flight_reset"))
    status = scenario.data("show_A5_after_in_flight_reset").get("status")
    if status not in IN_FLIGHT:
        raise inconclusive(
            "show_A5_after_in_flight_reset",
            f"A5 was already {status!r} right after the reset (getBackup answered {shown.status}), so the reset "
            "did not meet a backup in flight; on the bundled mock, --backup-delay holds backups longer",
            shown,
        )
    if not _answered_like_plain_reset(scenario, reset):
        # RC-21 names a documented code (a refusal is allowed); the body is RC-14's, judged on every answer.
        status_code_conformance(contract, reset, "RC-21")
    evidence.attach(*scenario.trail("ready_A5", "create_A6", "ready_A6"))
    scenario.require("A5", "A6")
    got = scenario.increment("A6")
    if reset.status is not None and 200 <= reset.status < 300:
        if got != 0 and scenario.increment("A3") != 0:
            # A reset with nothing in flight did not start a series either: RC-08's finding, not this case's.
            raise inconclusive(
                "ready_A3",
                f"A6 has increment_id {got!r} after the accepted reset, but A3, the first backup after the resets "
                f"with no backup in flight, was no baseline either ({scenario.increment('A3')!r}), so the numbering "
                "cannot be charged to the backup in flight",
                scenario.trail("ready_A3", "ready_A6"),
            )
        if got != 0:
            raise fail(
                "RC-21",
                scenario.trail("create_A5", "reset_A_in_flight", "show_A5_after_in_flight_reset", "ready_A6"),
                "reset during a backup in flight did not start a new series",
                f"A6, the first backup asked for after the accepted reset, has increment_id {got!r}, expected 0; "
                f"A5 was {status!r} when the reset answered {reset.status}",
            )
        return
    previous = scenario.increment("A5")
    if isinstance(previous, int) and got != previous + 1:
        raise fail(
            "RC-21",
            scenario.trail("reset_A_in_flight", "ready_A5", "ready_A6"),
            "a refused reset changed the series",
            f"the reset answered {reset.status}, yet A6 has increment_id {got!r} after A5's {previous!r}",
        )


@pytest.mark.req("RC-21")
def test_reset_chain_closed_points_survive_new_baseline(scenario: ScenarioRecord, evidence) -> None:
    """Once A6, the new series' baseline, is ready, every point listed right before A5 and the in-flight
    reset, and A5 itself, is still listed: loss that comes later than the reset counts too. A point
    already gone before that listing is judged by RC-06, not here."""
    *ids, a5, _a6 = scenario.require("A1", "A2", "A3", "A4", "A5", "A6")
    seen = scenario.listed("list_A_before_in_flight_reset")
    listed = scenario.listed("list_A_before_deletes")
    evidence.attach(scenario.step("list_A_before_in_flight_reset"), scenario.step("ready_A6"))
    evidence.attach(scenario.step("list_A_before_deletes"))
    # Each closed point where it was last seen before the steps that must keep it: A1-A4 in the listing
    # before A5's create and the reset, A5 when its wait saw it ready (after the reset, before A6).
    expected = {
        backup_id: (label, "list_A_before_in_flight_reset")
        for label, backup_id in zip(("A1", "A2", "A3", "A4"), ids, strict=True)
        if backup_id in seen
    }
    expected[a5] = ("A5", "ready_A5")
    for backup_id, (label, where) in expected.items():
        trail = scenario.trail(where, "reset_A_in_flight", "ready_A6", "list_A_before_deletes")
        if backup_id not in listed:
            raise fail(
                "RC-21",
                trail,
                "closed point lost once the new baseline was ready",
                f"{label} ({backup_id}) was shown in {where}, and is missing from the listing taken after A6 "
                "became ready",
            )
        # RC-21 names "still listed"; a listed point's increment_id and status are RC-06's (same id,
        # increment_id and status after a reset), judged there over this same span.


@pytest.mark.req("RC-22")
def test_reset_chain_on_series_of_only_a_baseline(scenario: ScenarioRecord, evidence) -> None:
    """After both older series were deleted, series 3 holds only A6: the reset answers 202 and A6 stays."""
    (a6,) = scenario.require("A6")
    reset = scenario.step("reset_A_final")
    before = scenario.listed("list_A_after_chain_delete")
    after = scenario.listed("list_A_final")
    evidence.attach(*scenario.trail("list_A_after_chain_delete", "reset_A_final", "list_A_final"))
    _accepted(scenario, reset, "RC-22")
    if a6 not in before:
        raise inconclusive(
            "list_A_after_chain_delete",
            f"A6 ({a6}) was not listed before the reset, so its series' shape there is unknown",
            scenario.step("list_A_after_chain_delete"),
        )
    ours = set(scenario.ids.values()) & before.keys()
    if ours != {a6}:
        raise inconclusive(
            "list_A_after_chain_delete",
            f"besides A6 the VM still lists the run's {sorted(ours - {a6})}, so series 3 was not alone",
            scenario.step("list_A_after_chain_delete"),
        )
    trail = scenario.trail("list_A_after_chain_delete", "reset_A_final", "list_A_final")
    if a6 not in after:
        raise fail(
            "RC-22",
            trail,
            "a series of only a baseline left the listing on reset",
            f"A6 ({a6}), listed before the reset, is not listed after it",
        )
    for key in ("increment_id", "status"):
        if after[a6].get(key) != before[a6].get(key):
            raise fail(
                "RC-22",
                trail,
                f"reset changed the baseline's {key}",
                f"A6 ({a6}): {key} {before[a6].get(key)!r} before the reset, {after[a6].get(key)!r} after it",
            )


@pytest.mark.req("RC-22")
def test_backup_after_reset_of_only_a_baseline_is_baseline(scenario: ScenarioRecord, evidence) -> None:
    """The first backup after the reset of a series of only its baseline (A6) is a new baseline: A7 has
    increment_id 0. A server that leaves a one-point series open on reset numbers A7 1."""
    reset = scenario.step("reset_A_final")
    evidence.attach(*scenario.trail("reset_A_final", "create_A7", "ready_A7"))
    if not 200 <= (reset.status or 0) < 300:
        raise inconclusive(
            "reset_A_final",
            f"the reset of A6's series answered {reset.status}, so no new series was asked for (whether it "
            "should have been accepted is judged above)",
            reset,
        )
    scenario.require("A7")
    if scenario.increment("A3") != 0:
        raise inconclusive(
            "ready_A3",
            f"A3, the first backup after the run's first accepted reset, has increment_id "
            f"{scenario.increment('A3')!r}, so the numbering after any reset is RC-08's finding, not this shape's",
            scenario.step("ready_A3"),
        )
    got = scenario.increment("A7")
    if got != 0:
        raise fail(
            "RC-22",
            scenario.trail("list_A_final", "reset_A_final", "create_A7", "ready_A7"),
            "backup after the reset of a one-point series is not a baseline",
            f"A7, the first backup asked for after the reset of series 3 (only A6, its baseline), has increment_id "
            f"{got!r}, expected 0",
        )


@pytest.mark.req("RC-22")
def test_reset_chain_on_vm_without_backups(scenario: ScenarioRecord, evidence) -> None:
    """A VM with no backup at all: the opening reset answers 202 and A1 is a baseline."""
    listed = scenario.listed("list_A_before")
    if listed:
        pytest.skip(f"the VM held {len(listed)} backups before the run, so this shape is not on hand")
    reset = scenario.step("reset_A_start")
    evidence.attach(*scenario.trail("list_A_before", "reset_A_start", "create_A1", "ready_A1"))
    _accepted(scenario, reset, "RC-22")
    scenario.require("A1")
    if scenario.increment("A1") != 0:
        raise fail(
            "RC-22",
            scenario.trail("list_A_before", "reset_A_start", "ready_A1"),
            "first backup of a VM after a reset is not a baseline",
            f"A1 has increment_id {scenario.increment('A1')!r}, expected 0",
        )
