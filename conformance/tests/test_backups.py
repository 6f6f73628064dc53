"""Series deletes and response shapes around reset-chain, from the recorded scenario."""

from __future__ import annotations

import pytest

from conformance.checks import conforms, fail, inconclusive, status_code_is
from conformance.scenario import ScenarioRecord

pytestmark = [pytest.mark.writes, pytest.mark.xdist_group("vm-series")]


RUN_ORDER = ("A1", "A2", "A3", "A4", "A5", "A6")  # the scenario's backups on the VM, oldest first
# Each chain delete: its step, the listings around it, and the series it names. Series 2 goes first,
# through a middle point, while series 1 (older, closed) and series 3 (open) stand beside it.
CHAIN_DELETES = [
    pytest.param(
        "delete_chain_A4",
        "list_A_after_refused_delete",
        "list_A_after_chain_delete_A4",
        ("A3", "A4", "A5"),
        id="series-2-through-A4",
    ),
    pytest.param(
        "delete_chain_A2",
        "list_A_after_chain_delete_A4",
        "list_A_after_chain_delete",
        ("A1", "A2"),
        id="series-1-through-A2",
    ),
]


def _may_continue(scenario: ScenarioRecord, series: tuple[str, ...]) -> set[str]:
    """The run's later backups on the VM, up to its next baseline: the server may have kept them in ``series``."""
    later = RUN_ORDER[RUN_ORDER.index(series[-1]) + 1 :]
    ids: set[str] = set()
    for label in later:
        if scenario.increment(label) == 0:
            break
        if label in scenario.ids:
            ids.add(scenario.ids[label])
    return ids


@pytest.mark.req("RC-15")
@pytest.mark.parametrize(("step", "before_step", "after_step", "series"), CHAIN_DELETES)
def test_backup_chain_delete_closed_series(
    scenario: ScenarioRecord, contract, evidence, step, before_step, after_step, series
) -> None:
    """1. delete a closed series through one of its points  2. exactly its points are gone
    3. the VM's other series and the other VM's points stay."""
    exchange = scenario.step(step)
    evidence.attach(exchange)
    removed = set(scenario.require(*series))
    before = scenario.listed(before_step)
    after = scenario.listed(after_step)
    evidence.attach(scenario.step(after_step))
    named = scenario.ids[series[-1]]
    if named not in before:
        raise inconclusive(
            before_step,
            f"{series[-1]} ({named}) was no longer listed before {step}, so what the delete removed cannot be told",
            scenario.step(before_step),
        )
    trail = scenario.trail(before_step, step, after_step)
    status_code_is(exchange, 200, "RC-15")
    conforms(contract, exchange, "RC-15")
    if removed & after.keys():
        raise fail(
            "RC-15",
            trail,
            "series points survived the chain delete",
            f"{step} named series {', '.join(series)}; still listed: {sorted(removed & after.keys())}",
        )
    # A later backup that did not start a new series (not a baseline) may belong to the named one;
    # whether it should have is RC-08's or RC-21's to judge, not the delete's.
    spilled = (before.keys() - removed - _may_continue(scenario, series)) - after.keys()
    if spilled:
        raise fail(
            "RC-15",
            trail,
            "chain delete removed other points",
            f"{step} named series {', '.join(series)}; also removed: {sorted(spilled)} (outside the named series)",
        )
    if step != "delete_chain_A2":
        return
    gone = scenario.step("show_A1_after_chain_delete")
    evidence.attach(gone)
    status_code_is(gone, 404, "RC-15")
    conforms(contract, gone, "RC-15")
    if scenario.has("list_B_after_chain_delete"):
        other_before = scenario.listed("list_B_after")
        other_after = scenario.listed("list_B_after_chain_delete")
        if other_before.keys() - other_after.keys():
            raise fail(
                "RC-15",
                scenario.trail("list_B_after", "delete_chain_A4", step, "list_B_after_chain_delete"),
                "chain delete spilled to another VM",
                f"removed from the other VM: {sorted(other_before.keys() - other_after.keys())}",
            )


@pytest.mark.req("RC-16")
def test_backup_delete_with_dependents_refused(scenario: ScenarioRecord, contract, evidence) -> None:
    exchange = scenario.step("delete_A3")
    evidence.attach(exchange, scenario.step("list_A_after_refused_delete"))
    (a3,) = scenario.require("A3")
    if a3 not in scenario.listed("list_A_before_deletes"):
        raise inconclusive(
            "list_A_before_deletes",
            f"A3 ({a3}) was no longer listed before its delete, so the refusal cannot be judged",
            scenario.step("list_A_before_deletes"),
        )
    if exchange.status is None or not 400 <= exchange.status < 500:
        raise fail(
            "RC-16",
            exchange,
            "delete of a point with dependents was not refused",
            f"DELETE answered {exchange.status}; later points depend on it, so a clear error is documented",
        )
    conforms(contract, exchange, "RC-16")
    message = str((exchange.response_body or {}).get("message", ""))
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
