"""Schemathesis stateful sequences along the overlay's OpenAPI links.

Scenarios chain create → get / restore / delete / series delete / reset → create …, the ids
coming from earlier answers through the links, and every answer is checked like a fuzzed one
(``conformance.fuzz_checks.CHECK_NAMES``, including use_after_free and
ensure_resource_availability, which only sequences can trigger). Each scenario deletes what it
created in its teardown; the number and length of scenarios follow the Hypothesis profile.

Against the bundled mock it always runs. Against a live target it creates real backups, so it
runs only when selected explicitly (``-m fuzz``) with writes allowed, and stops creating once
the run's ``RAFF_MAX_BACKUPS`` is spent.
"""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest

from conformance.client import RaffClient, RateLimiter
from conformance.contract import Contract
from conformance.fuzzing import (
    BackupBudgetSpent,
    CreatedBackups,
    Targets,
    created_backups,
    lifecycle_budget,
    lifecycle_machine,
    prepare,
    run_seed,
)
from conformance.ledger import Ledger
from conformance.settings import Settings
from conformance.state import RaffState

pytestmark = [pytest.mark.fuzz, pytest.mark.writes, pytest.mark.xdist_group("vm-series")]


@pytest.fixture(scope="module")
def lifecycle_backups(
    settings: Settings, client: RaffClient, ledger: Ledger, raff_state: RaffState
) -> Iterator[CreatedBackups]:
    """Every backup the scenarios create; whatever a scenario's own teardown missed goes at module end."""
    with created_backups(settings, client, ledger, raff_state) as book:
        yield book


@pytest.mark.req("RC-14", "RC-24", "RC-25")
def test_backups_lifecycle__linked_sequences(
    request: pytest.FixtureRequest,
    pytestconfig: pytest.Config,
    settings: Settings,
    contract: Contract,
    client: RaffClient,
    raff_state: RaffState,
    rate_limiter: RateLimiter,
    lifecycle_backups: CreatedBackups,
) -> None:
    """1. build the link state machine  2. run bounded scenarios  3. every answer conforms."""
    if not settings.is_mock and "fuzz" not in (pytestconfig.getoption("markexpr") or ""):
        pytest.skip("creates real backups: on a live target it runs only when selected with -m fuzz")
    remaining = lifecycle_backups.remaining()
    if remaining is not None and remaining < 1:
        pytest.skip(f"RAFF_MAX_BACKUPS={settings.max_backups} is spent; the scenarios need to create backups")
    # Given
    seed = run_seed(pytestconfig)
    scenarios, steps = lifecycle_budget(hypothesis.settings.default, is_mock=settings.is_mock)
    schema, runner = prepare(
        "lifecycle",
        request=request,
        settings=settings,
        contract=contract,
        raff_state=raff_state,
        limiter=rate_limiter,
        created=lifecycle_backups,
        targets=Targets(project_id=settings.project_id or "", vm_id=settings.vm_id or ""),
        seed=seed,
        max_steps=steps,
    )
    machine = hypothesis.seed(seed)(lifecycle_machine(schema, runner, lifecycle_backups, client, settings))
    # When / Then: a failing check raises Schemathesis' FailureGroup; its findings are reported already.
    try:  # a live run stops creating at the budget, by design
        machine.run(
            settings=hypothesis.settings(
                hypothesis.settings.default,
                max_examples=scenarios,
                stateful_step_count=steps,
                database=None,
                deadline=None,
                # No shrink phase: a Schemathesis failure stops the run at once anyway (FuzzRunner.report),
                # and replaying scenarios would create backups again.
                phases=(hypothesis.Phase.explicit, hypothesis.Phase.generate),
                suppress_health_check=list(hypothesis.HealthCheck),
            )
        )
    except BackupBudgetSpent as spent:
        client.notify(f"stateful sequences stopped: {spent}")
