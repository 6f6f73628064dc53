"""Series deletes and response shapes around reset-chain, from the recorded scenario."""

from __future__ import annotations

import pytest

from conformance.checks import conforms, fail, inconclusive, status_code_is
from conformance.scenario import REJECTED_RESETS, ScenarioRecord

pytestmark = [pytest.mark.writes, pytest.mark.xdist_group("vm-series")]


# The scenario's backups on the VM, in the order it asked for them.
RUN_ORDER = ("A1", "A2", "A3", "A4", "A5", "A6", "A7")
# Each chain delete: its step, the listings around it, and the point it names. Series 2 goes first,
# through a middle point, while series 1 (older, closed) and series 3 (open) stand beside it. Which
# points the named series holds is read from the server's own answers, not from what the script expected.
CHAIN_DELETES = [
    pytest.param(
        "delete_chain_A4",
        "list_A_after_refused_delete",
        "list_A_after_chain_delete_A4",
        "A4",
        id="series-2-through-A4",
    ),
    pytest.param(
        "delete_chain_A2",
        "list_A_after_chain_delete_A4",
        "list_A_after_chain_delete",
        "A2",
        id="series-1-through-A2",
    ),
]


# The resets the scenario sends before each backup (after the one before it): an accepted one may
# have started a new series there, whatever the numbering says.
RESETS_BEFORE = {
    "A3": ("reset_A", "reset_A_again"),
    "A5": tuple(REJECTED_RESETS),
    "A6": ("reset_A_in_flight",),
    "A7": ("reset_A_final",),
}


def _reset_accepted_between(scenario: ScenarioRecord, earlier: str, later: str) -> bool:
    labels = RUN_ORDER[RUN_ORDER.index(earlier) + 1 : RUN_ORDER.index(later) + 1]
    steps = [step for label in labels for step in RESETS_BEFORE.get(label, ())]
    return any(scenario.has(step) and 200 <= (scenario.step(step).status or 0) < 300 for step in steps)


def server_series(
    scenario: ScenarioRecord, before: dict[str, dict], before_step: str, label: str
) -> tuple[list[str], set[str]]:
    """The named point's series as the server showed it right before a delete: (must go, may go).

    The run's points still listed, in the order the run created them, with their increment_id as that
    listing shows it: a series is a baseline (0) and the points after it counting 1, 2, ... with no
    accepted reset between them. Where the two disagree (the numbering goes on across an accepted
    reset), or the series' baseline is not listed, the points that may belong to it are neither
    required gone nor counted as spilled. ``must`` is in creation order. Inconclusive where the listing
    shows no number.
    """
    __tracebackhide__ = True
    ours = [(name, scenario.ids[name]) for name in RUN_ORDER if scenario.ids.get(name) in before]
    unnumbered = [name for name, backup_id in ours if not isinstance(before[backup_id].get("increment_id"), int)]
    if unnumbered:
        raise inconclusive(
            before_step,
            f"{before_step} shows {', '.join(unnumbered)} without an increment_id, so which series the delete "
            "names cannot be told from the server's own answers",
            scenario.step(before_step),
        )
    numbers = [before[backup_id]["increment_id"] for _, backup_id in ours]

    def numbered_on(index: int) -> bool:  # the point's number continues the one before it
        return numbers[index] != 0 and numbers[index] == numbers[index - 1] + 1

    def certain(index: int) -> bool:  # ... and no accepted reset came between them
        return numbered_on(index) and not _reset_accepted_between(scenario, ours[index - 1][0], ours[index][0])

    named = [name for name, _ in ours].index(label)
    start = named
    while start > 0 and certain(start):
        start -= 1
    end = named
    while end + 1 < len(ours) and certain(end + 1):
        end += 1
    must = [backup_id for _, backup_id in ours[start : end + 1]]
    may: set[str] = set()
    if numbers[start] != 0:
        # The series' baseline is not among these points: earlier points back to the last baseline, and
        # before the run's first point the VM's other backups, may be of it.
        index = start - 1
        while index >= 0:
            may.add(ours[index][1])
            if numbers[index] == 0:
                break
            index -= 1
        else:
            may |= before.keys() - {backup_id for _, backup_id in ours}
    index = end + 1
    while index < len(ours) and numbers[index] != 0:
        may.add(ours[index][1])
        index += 1
    return must, may


@pytest.mark.req("RC-15")
@pytest.mark.parametrize(("step", "before_step", "after_step", "label"), CHAIN_DELETES)
def test_backup_chain_delete_closed_series(scenario: ScenarioRecord, evidence, step, before_step, after_step, label):
    """1. delete a series through one of its points  2. exactly its points, as the listing right before
    showed them, are gone  3. the VM's other series and the other VM's points stay. The answers' bodies
    are RC-14's (judged on every answer); that getBackup then answers 404 is RC-24's."""
    other = ("list_B_after", "list_B_after_chain_delete") if step == "delete_chain_A2" else None
    _judge_chain_delete(scenario, evidence, "RC-15", step, before_step, after_step, label, other)


@pytest.mark.req("RC-31")
def test_backup_chain_delete_open_series(scenario: ScenarioRecord, evidence) -> None:
    """1. after the final reset, A7 opens a new series while A6's (closed) stands beside it  2. delete
    the open series through A7  3. exactly its points are gone; A6 and the other VM's points stay."""
    step, before_step = "delete_chain_A7", "list_A_before_open_chain_delete"
    after_step = "list_A_after_open_chain_delete"
    a6, _ = scenario.require("A6", "A7")  # inconclusive, saying why, where either is not ready
    before = scenario.listed(before_step)
    if a6 not in before:
        raise inconclusive(
            before_step,
            f"A6 ({a6}), the closed series beside A7's, was not listed before the delete, so no closed series "
            "stood beside the open one",
            scenario.step(before_step),
        )
    other = ("list_B_before_open_chain_delete", "list_B_after_open_chain_delete")
    _judge_chain_delete(scenario, evidence, "RC-31", step, before_step, after_step, "A7", other)


def _judge_chain_delete(
    scenario: ScenarioRecord,
    evidence,
    requirement: str,
    step: str,
    before_step: str,
    after_step: str,
    label: str,
    other: tuple[str, str] | None,
) -> None:
    """A chain delete removed exactly the series of the point it named, as the listing right before it
    showed that series; ``other``: the other VM's listings around it, whose points all stay."""
    __tracebackhide__ = True
    exchange = scenario.step(step)
    evidence.attach(exchange)
    (named,) = scenario.require(label)
    before = scenario.listed(before_step)
    after = scenario.listed(after_step)
    evidence.attach(scenario.step(before_step), scenario.step(after_step))
    if named not in before:
        raise inconclusive(
            before_step,
            f"{label} ({named}) was no longer listed before {step}, so what the delete removed cannot be told",
            scenario.step(before_step),
        )
    trail = scenario.trail(before_step, step, after_step)
    status_code_is(exchange, 200, requirement)
    series, may = server_series(scenario, before, before_step, label)
    must = set(series)
    shown = {backup_id: before[backup_id].get("increment_id") for backup_id in series}
    if must & after.keys():
        raise fail(
            requirement,
            trail,
            "series points survived the chain delete",
            f"still listed after {step}: {sorted(must & after.keys())}; it named {label}, whose series "
            f"{before_step} showed as {shown} (id: increment_id)",
        )
    spilled = (before.keys() - must - may) - after.keys()
    if spilled:
        raise fail(
            requirement,
            trail,
            "chain delete removed other points",
            f"{step} also removed {sorted(spilled)}, listed in {before_step} outside the series of {label}, "
            f"which it showed as {shown} (id: increment_id)",
        )
    if other is None or not scenario.has(other[1]):
        return
    other_before = scenario.listed(other[0])
    other_after = scenario.listed(other[1])
    if other_before.keys() - other_after.keys():
        raise fail(
            requirement,
            scenario.trail(other[0], step, other[1]),
            "chain delete spilled to another VM",
            f"removed from the other VM: {sorted(other_before.keys() - other_after.keys())}",
        )


@pytest.mark.req("RC-16")
def test_backup_delete_with_dependents_refused(scenario: ScenarioRecord, evidence) -> None:
    exchange = scenario.step("delete_A3")
    evidence.attach(exchange, scenario.step("list_A_after_refused_delete"))
    (a3,) = scenario.require("A3")
    listing = scenario.listed("list_A_before_deletes")
    if a3 not in listing:
        raise inconclusive(
            "list_A_before_deletes",
            f"A3 ({a3}) was no longer listed before its delete, so the refusal cannot be judged",
            scenario.step("list_A_before_deletes"),
        )
    # Its dependents as the server showed them right before the delete: later points of its series.
    series, _ = server_series(scenario, listing, "list_A_before_deletes", "A3")
    dependents = series[series.index(a3) + 1 :]
    if not dependents:
        raise inconclusive(
            "list_A_before_deletes",
            f"in the listing right before the delete, no later point continues A3's series (A3 has increment_id "
            f"{listing[a3].get('increment_id')!r}), so by the server's own answers nothing depends on it",
            scenario.step("list_A_before_deletes"),
        )
    if exchange.status is None or not 400 <= exchange.status < 500:
        raise fail(
            "RC-16",
            exchange,
            "delete of a point with dependents was not refused",
            f"DELETE answered {exchange.status}; {', '.join(dependents)} continued its series in the listing right "
            "before, so a clear error is documented",
        )
    # "A clear error pointing to the series delete": its words, wherever the body holds them. Whether
    # the body is the documented Error JSON is RC-14's (judged on every answer).
    body = exchange.response_body
    message = str(body.get("message", "")) if isinstance(body, dict) else str(body or "")
    if "/chain" not in message:
        raise fail(
            "RC-16",
            exchange,
            "error does not point to the series delete",
            f"message {message!r} does not mention DELETE /api/v1/backups/{{id}}/chain",
        )
    before = scenario.listed("list_A_before_deletes")
    after = scenario.listed("list_A_after_refused_delete")
    if before.keys() != after.keys():
        raise fail(
            "RC-16",
            scenario.trail("list_A_before_deletes", "delete_A3", "list_A_after_refused_delete"),
            "refused delete still deleted",
            f"gone after the refused delete: {sorted(before.keys() - after.keys())}",
        )


@pytest.mark.req("RC-14")
def test_backups_every_scenario_response_conforms(scenario: ScenarioRecord, contract, evidence) -> None:
    """Every answer of the scenario is JSON matching the schema of its operation and status."""
    for name, exchange in scenario.steps.items():
        conforms(contract, exchange, "RC-14")
        if name.startswith(("create_", "ready_")):
            evidence.attach(exchange)
    # Without a ready backup no Backup body (createBackup 202, getBackup 200) was checked at all.
    scenario.require("A1")
