"""Series deletes and response shapes around reset-chain, from the recorded scenario."""

from __future__ import annotations

import pytest

from conformance.checks import conforms, fail, status_code_is
from conformance.scenario import ScenarioRecord

pytestmark = [pytest.mark.writes, pytest.mark.xdist_group("vm-series")]


@pytest.mark.req("RC-15")
def test_backup_chain_delete_closed_series(scenario: ScenarioRecord, contract, evidence) -> None:
    """1. delete series 1 through A2  2. A1, A2 gone  3. A3, A4 and the other VM's points stay."""
    exchange = scenario.step("delete_chain_A2")
    evidence.attach(exchange)
    status_code_is(exchange, 200, "RC-15")
    conforms(contract, exchange, "RC-15")
    before = scenario.listed("list_A_after_refused_delete")
    after = scenario.listed("list_A_after_chain_delete")
    evidence.attach(scenario.step("list_A_after_chain_delete"))
    removed = {scenario.ids["A1"], scenario.ids["A2"]}
    gone = scenario.step("show_A1_after_chain_delete")
    evidence.attach(gone)
    status_code_is(gone, 404, "RC-15")
    conforms(contract, gone, "RC-15")
    if removed & after.keys():
        raise fail(
            "RC-15",
            scenario.trail("list_A_after_refused_delete", "chain_A2", "list_A_after_chain_delete"),
            "series points survived the chain delete",
            f"still listed: {sorted(removed & after.keys())}",
        )
    spilled = (before.keys() - removed) - after.keys()
    if spilled:
        raise fail(
            "RC-15",
            scenario.trail("list_A_after_refused_delete", "chain_A2", "list_A_after_chain_delete"),
            "chain delete removed other points",
            f"also removed: {sorted(spilled)} (outside the named series)",
        )
    if scenario.has("list_B_after_chain_delete"):
        other_before = scenario.listed("list_B_after")
        other_after = scenario.listed("list_B_after_chain_delete")
        if other_before.keys() - other_after.keys():
            raise fail(
                "RC-15",
                scenario.trail("list_B_after", "chain_A2", "list_B_after_chain_delete"),
                "chain delete spilled to another VM",
                f"removed from the other VM: {sorted(other_before.keys() - other_after.keys())}",
            )


@pytest.mark.req("RC-16")
def test_backup_delete_with_dependents_refused(scenario: ScenarioRecord, contract, evidence) -> None:
    exchange = scenario.step("delete_A3")
    evidence.attach(exchange, scenario.step("list_A_after_refused_delete"))
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
