"""Reset-chain semantics, asserted on the recorded scenario (see conformance/scenario.py)."""

from __future__ import annotations

import pytest

from conformance.checks import conforms, fail, inconclusive, status_code_is
from conformance.contract import load_contract
from conformance.scenario import REJECTED_RESETS, ScenarioRecord

pytestmark = [pytest.mark.writes, pytest.mark.xdist_group("vm-series")]


@pytest.mark.req("RC-01")
def test_reset_chain_owned_vm_accepted(scenario: ScenarioRecord, contract, evidence) -> None:
    for step in ("reset_A_start", "reset_A"):
        exchange = scenario.step(step)
        evidence.attach(exchange)
        status_code_is(exchange, 202, "RC-01")
        conforms(contract, exchange, "RC-01")
        if exchange.response_body.get("success") is not True:
            raise fail("RC-01", exchange, "success is not true", f"202 body was {exchange.response_body}")


@pytest.mark.req("RC-06")
def test_reset_chain_keeps_earlier_points_listed(scenario: ScenarioRecord, evidence) -> None:
    """1. list before the reset  2. list after it, after a second reset, and after new backups."""
    own = set(scenario.require("A1", "A2"))
    before = scenario.listed("list_A_before_reset")
    evidence.attach(scenario.step("list_A_before_reset"))
    if own - before.keys():
        # Without the points in the listing before the reset there is nothing to compare with after it.
        raise inconclusive(
            "list_A_before_reset",
            f"{', '.join(sorted(own - before.keys()))} answered 'ready' on getBackup but the listing before the "
            "reset does not hold it, so there is no 'before' to compare the later listings with",
            scenario.step("list_A_before_reset"),
        )
    # The run's points as each listing shows them, judged in the next: the first reset, the second, the
    # creates of A3 and A4, and the in-flight reset (A3 and A4 are closed by it; A5 and the in-flight case
    # are RC-21's, the final reset's baseline RC-22's).
    run_points = set(scenario.ids.values())
    in_progress = load_contract().backup_statuses("in_progress")
    previous, seen = "list_A_before_reset", {backup_id: before[backup_id] for backup_id in own}
    for step in (
        "list_A_after_reset",
        "list_A_after_second_reset",
        "list_A_before_in_flight_reset",
        "list_A_before_deletes",
    ):
        after = scenario.listed(step)
        evidence.attach(scenario.step(step))
        # A total that disagrees with the items is RC-18's rule (the judge's P-TOTALS), not this one's.
        # Each point is judged in the listing right before the steps that changed it, so a change is
        # charged to the span it happened in (the first reset, the second, or the later backups).
        for backup_id in sorted(seen):
            if backup_id not in after:
                raise fail(
                    "RC-06",
                    scenario.trail(previous, step),
                    "restore point gone after reset",
                    f"{backup_id} was listed in {previous} and is missing from {step}",
                )
            for key in ("increment_id", "status"):
                if key == "status" and seen[backup_id].get(key) in in_progress:
                    continue  # a point still in flight moves on by itself; only a settled status must stay
                if after[backup_id].get(key) != seen[backup_id].get(key):
                    raise fail(
                        "RC-06",
                        scenario.trail(previous, step),
                        f"restore point {key} changed by reset",
                        f"{backup_id}: {key} was {seen[backup_id].get(key)!r} in {previous}, "
                        f"{after[backup_id].get(key)!r} in {step}",
                    )
        previous, seen = step, {backup_id: point for backup_id, point in after.items() if backup_id in run_points}


@pytest.mark.restores
@pytest.mark.req("RC-07")
def test_reset_chain_keeps_earlier_points_restorable(scenario: ScenarioRecord, evidence) -> None:
    """1. a point closed by a reset (B1, beside A's series; without a second VM, A1) is listed right
    before its restore  2. the restore answers 202  3. it is ready again. The answer's body is RC-14's
    (judged on every answer)."""
    label = scenario.restored or ("B1" if scenario.second_vm_id else "A1")
    vm, closing = ("B", "reset_B") if label == "B1" else ("A", "reset_A")
    exchange = scenario.step(f"restore_{label}")
    (point,) = scenario.require(label)
    before = f"list_{vm}_before_restore"
    reset = scenario.step(closing)
    if not 200 <= (reset.status or 0) < 300:
        raise inconclusive(
            closing,
            f"{closing}, which was to close {label}'s series, answered {reset.status}, so {label} was no closed point",
            reset,
        )
    if point not in scenario.listed(before):
        # A point the server no longer shows cannot be expected to restore; its loss is RC-06's finding.
        raise inconclusive(
            before,
            f"{label} ({point}) was no longer listed right before its restore, so the restore's answer says "
            "nothing about whether a listed closed point stays restorable",
            scenario.step(before),
        )
    evidence.attach(scenario.step(before), exchange)
    status_code_is(exchange, 202, "RC-07")
    final = scenario.step(f"restored_{label}")
    evidence.attach(final)
    if scenario.data(f"restored_{label}").get("status") != "ready":
        raise fail("RC-07", final, "restore did not complete", f"status after restore: {final.response_body}")


@pytest.mark.req("RC-08")
def test_reset_chain_next_backup_starts_new_series(scenario: ScenarioRecord, evidence) -> None:
    evidence.attach(scenario.step("create_A3"), scenario.step("ready_A3"), scenario.step("ready_A4"))
    if scenario.increment("A3") != 0:
        raise fail(
            "RC-08",
            scenario.trail("ready_A2", "reset_A", "create_A3", "ready_A3"),
            "first backup after reset is not a baseline",
            f"increment_id {scenario.increment('A3')!r}, expected 0",
        )
    if scenario.increment("A4") != 1:
        raise fail(
            "RC-08",
            scenario.trail("ready_A3", "create_A4", "ready_A4"),
            "second backup after reset is not increment 1",
            f"increment_id {scenario.increment('A4')!r}, expected 1",
        )


@pytest.mark.req("RC-08")
def test_backup_series_numbering_before_reset(scenario: ScenarioRecord, evidence) -> None:
    """The scenario's own series (after its opening reset) counts 0, 1 as well."""
    evidence.attach(scenario.step("ready_A1"), scenario.step("ready_A2"))
    got = [scenario.increment("A1"), scenario.increment("A2")]
    if got != [0, 1] and got[0] == 0 and _other_vm_reset_between_a1_a2(scenario):
        raise inconclusive(
            "reset_B",
            f"A1, A2 count {got}, and the second VM's reset went out between them: whether it reached this VM "
            "is RC-09's question (judged there), so the count here tells nothing of the numbering",
            scenario.step("reset_B"),
        )
    if got != [0, 1]:
        raise fail("RC-08", scenario.step("ready_A2"), "series does not count 0, 1", f"increment_ids {got}")


def _other_vm_reset_between_a1_a2(scenario: ScenarioRecord) -> bool:
    return scenario.has("reset_B") and 200 <= (scenario.step("reset_B").status or 0) < 300


@pytest.mark.requires_setting("second_vm_id")
@pytest.mark.req("RC-09")
def test_reset_chain_touches_only_named_vm(scenario: ScenarioRecord, evidence) -> None:
    """1. A1, then a reset of the second VM, then A2: A2 still follows A1  2. B1 is listed as it was,
    with A's resets since. A count that restarts is blamed here only where the VM's numbering is seen to
    work (A4 follows A3), so a server that numbers nothing is RC-08's finding alone."""
    reset = scenario.step("reset_B")
    evidence.attach(*scenario.trail("ready_A1", "reset_B", "create_A2", "ready_A2"))
    scenario.require("A1", "A2")
    first, second = scenario.increment("A1"), scenario.increment("A2")
    if 200 <= (reset.status or 0) < 300 and not (isinstance(first, int) and second == first + 1):
        numbering = [scenario.increment("A3"), scenario.increment("A4")] if "A4" in scenario.ids else None
        if numbering != [0, 1]:
            raise inconclusive(
                "ready_A4",
                f"A2 has increment_id {second!r} after A1's {first!r}, with the second VM's reset between them; "
                f"but A3, A4 (one series) count {numbering}, so whether this VM counts on at all is RC-08's "
                "question and the reset of the other VM cannot be told to have reached this one",
                scenario.step("ready_A4") if scenario.has("ready_A4") else None,
            )
        raise fail(
            "RC-09",
            scenario.trail("ready_A1", "reset_B", "create_A2", "ready_A2"),
            "reset of one VM restarted another VM's series",
            f"A2 has increment_id {second!r} after A1's {first!r}; between them only the second VM was reset "
            f"({reset.status}), and this VM's numbering otherwise counts on (A3, A4: 0, 1)",
        )
    (b1,) = scenario.require("B1")
    before, after = scenario.listed("list_B_before_reset_A"), scenario.listed("list_B_after")
    trail = scenario.trail("list_B_before_reset_A", "reset_A", "reset_A_again", "reset_A_in_flight", "list_B_after")
    if b1 not in before:
        raise inconclusive(
            "list_B_before_reset_A",
            f"B1 ({b1}) was not listed right before the first VM's resets, so what they did to it cannot be told",
            scenario.step("list_B_before_reset_A"),
        )
    if b1 not in after:
        raise fail("RC-09", trail, "other VM's point missing", f"B1 ({b1}) is not listed after the first VM's resets")
    if after[b1].get("increment_id") != before[b1].get("increment_id"):
        raise fail(
            "RC-09",
            trail,
            "other VM's point renumbered",
            f"B1 ({b1}) had increment_id {before[b1].get('increment_id')!r} right before the first VM's resets, "
            f"{after[b1].get('increment_id')!r} after them",
        )


@pytest.mark.req("RC-10")
def test_reset_chain_twice_is_harmless(scenario: ScenarioRecord, evidence) -> None:
    """1. the second reset answers 202  2. the listing is unchanged  3. A3 is a baseline, judged only
    where a single reset is seen to start one. The answer's body is RC-14's (judged on every answer)."""
    exchange = scenario.step("reset_A_again")
    evidence.attach(exchange, scenario.step("ready_A3"))
    if not (exchange.status != 202 and exchange.status == scenario.step("reset_A").status):
        # The same wrong answer as the first reset's is RC-01's finding; this case judges the second.
        status_code_is(exchange, 202, "RC-10")
    if scenario.listed("list_A_after_second_reset").keys() != scenario.listed("list_A_after_reset").keys():
        raise fail(
            "RC-10",
            scenario.trail("list_A_after_reset", "reset_A_again", "list_A_after_second_reset"),
            "second reset changed the listing",
            "the listing after the second reset differs from the one after the first",
        )
    if scenario.increment("A3") == 0:
        return
    # A3 is no baseline. Whether the second reset did that, or resets never start a series here (RC-08's
    # finding), shows in A6: the first backup after a later single accepted reset.
    single = scenario.step("reset_A_in_flight") if scenario.has("reset_A_in_flight") else None
    a6 = scenario.increment("A6") if "A6" in scenario.ids else None
    if single is None or not 200 <= (single.status or 0) < 300 or a6 != 0:
        raise inconclusive(
            "ready_A6",
            f"A3, the first backup after two resets, has increment_id {scenario.increment('A3')!r}; no backup after a "
            f"single accepted reset was seen to be a baseline either (A6: {a6!r}), so the numbering is RC-08's "
            "finding and cannot be charged to the second reset",
            scenario.trail("ready_A3", "ready_A6"),
        )
    raise fail(
        "RC-10",
        scenario.trail("reset_A", "reset_A_again", "create_A3", "ready_A3", "reset_A_in_flight", "ready_A6"),
        "backup after two resets is not a baseline",
        f"A3 has increment_id {scenario.increment('A3')!r}, expected 0; after a single accepted reset A6 is a "
        "baseline, so it is the second reset that kept the series going",
    )


@pytest.mark.parametrize(
    ("step", "requirement", "status"),
    [
        pytest.param("reset_A_no_project", "RC-03", 400, id="no-project", marks=pytest.mark.req("RC-03")),
        pytest.param("reset_A_bad_project", "RC-04", 400, id="bad-project", marks=pytest.mark.req("RC-04")),
        pytest.param("reset_A_no_key", "RC-13", 401, id="no-key", marks=pytest.mark.req("RC-13")),
        pytest.param("reset_A_wrong_key", "RC-13", 401, id="wrong-key", marks=pytest.mark.req("RC-13")),
    ],
)
def test_reset_chain_rejected_resets_nothing(
    scenario: ScenarioRecord, contract, evidence, step, requirement, status
) -> None:
    """1. the reset is refused  2. A5, created after all four refused resets, still follows A4."""
    exchange = scenario.step(step)
    evidence.attach(exchange, scenario.step("ready_A4"), scenario.step("ready_A5"))
    status_code_is(exchange, status, requirement)
    conforms(contract, exchange, requirement)
    previous = scenario.increment("A4")
    # A5 was asked for before the in-flight reset (RC-21): its create answer, if it gives a number,
    # is the one from before that reset; a later number may be that reset's doing, not these.
    at_create = scenario.data("create_A5").get("increment_id")
    following = at_create if isinstance(at_create, int) else scenario.increment("A5")
    if isinstance(previous, int) and following == previous + 1:
        return
    if not isinstance(at_create, int) and (scenario.step("reset_A_in_flight").status or 0) < 400:
        raise inconclusive(
            "create_A5",
            f"A5's create answer gave no increment_id, and A5 was in flight during an accepted reset; its "
            f"increment_id {following!r} cannot tell whether a refused reset reset the series",
            scenario.step("create_A5"),
        )
    accepted = [name for name in REJECTED_RESETS if (scenario.step(name).status or 0) < 400]
    if accepted:
        # Another of the four resets was accepted: that one explains the restart, not this one.
        return
    raise fail(
        requirement,
        scenario.trail("ready_A4", step, "ready_A5"),
        "a refused reset still reset the series",
        f"A5 has increment_id {following!r} after A4's {previous!r}, although all four resets between them "
        f"were refused ({', '.join(REJECTED_RESETS)}); the scenario cannot tell which one reset the series",
    )
