"""Writes sent in the wrong project are refused and change nothing, from the recorded scenario.

The scenario sends each write of a backup of its own (or a create for its own VM) with the
X-Project-ID of another project of the same account (RAFF_OTHER_PROJECT_VM_ID's): a server that
ignores the scope deletes or restores only what the run created, and the next listing shows it.
"""

from __future__ import annotations

import pytest

from conformance.checks import fail, inconclusive, status_code_is
from conformance.scenario import ScenarioRecord

pytestmark = [pytest.mark.writes, pytest.mark.xdist_group("vm-series")]

# Each probe: its step and the backup it names (still listed afterwards), or None for the create.
SCOPE_PROBES = [
    pytest.param("scope_delete_A5", "A5", id="delete"),
    pytest.param("scope_chain_A2", "A2", id="series-delete"),
    pytest.param("scope_restore_A1", "A1", id="restore", marks=pytest.mark.restores),
    pytest.param("scope_create_A", None, id="create"),
]


@pytest.mark.req("RC-29")
@pytest.mark.requires_setting("other_project_vm_id")
@pytest.mark.parametrize(("step", "label"), SCOPE_PROBES)
def test_backup_write_in_other_project__refused(
    scenario: ScenarioRecord, evidence, step: str, label: str | None
) -> None:
    """1. a write of the run's own backup with another project's X-Project-ID  2. refused (400 or
    404) with an Error body  3. the backup is still listed."""
    if step == "scope_create_A" and not scenario.has(step) and step not in scenario.missing:
        pytest.skip("RAFF_MAX_BACKUPS has no room for a create the server might wrongly accept")
    exchange = scenario.step(step)
    evidence.attach(exchange)
    # RC-29 names a refusal and no change; the refusal's body is RC-14's (judged on every answer).
    status_code_is(exchange, (400, 404), "RC-29")
    if label is None:
        return
    backup_id = scenario.require(label)[0]
    # The VM's listing right before the probes (only reads come between): a backup already gone there
    # was not removed by a probe.
    before = scenario.listed("list_A_before_deletes")
    if backup_id not in before:
        raise inconclusive(
            "list_A_before_deletes",
            f"{label} ({backup_id}) was already missing from the listing right before the writes in another "
            "project, so whether they changed it cannot be told",
            scenario.step("list_A_before_deletes"),
        )
    after = scenario.listed("list_A_after_scope_probes")
    evidence.attach(scenario.step("list_A_before_deletes"), scenario.step("list_A_after_scope_probes"))
    probes = [name for name, *_ in (param.values for param in SCOPE_PROBES) if scenario.has(name)]
    accepted = [name for name in probes if name != step and 200 <= (scenario.step(name).status or 0) < 300]
    if backup_id not in after and accepted:
        # Another probe was carried out: its own case reports it, and it may be what removed this backup.
        raise inconclusive(
            accepted[0],
            f"{label} ({backup_id}) is gone, but {', '.join(accepted)} was accepted in between (reported by its "
            f"own case), so the loss cannot be charged to {step}",
            scenario.trail(*accepted),
        )
    if backup_id not in after:
        raise fail(
            "RC-29",
            scenario.trail("list_A_before_deletes", *probes, "list_A_after_scope_probes"),
            f"{label} is gone after refused writes in another project",
            f"{label} ({backup_id}) was listed right before the writes in another project ({', '.join(probes)}); "
            f"{step} answered {exchange.status}, and after them {label} is no longer listed.",
        )
