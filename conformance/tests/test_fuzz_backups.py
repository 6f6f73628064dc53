"""Schemathesis property tests over every operation of the merged contract.

Each operation is fuzzed twice (see ``conformance/fuzzing.py``): *free* (nothing pinned; positive
and negative cases, almost all answered 4xx) and *pinned* (positive cases against the run's
project, VM and backups created for the purpose, so that 2xx bodies are checked and
``ignored_auth`` probes accepted requests). Phases: examples, coverage and fuzzing; checks:
``conformance.fuzz_checks.CHECK_NAMES``. reset-chain has tests of its own so that its findings
land on RC-05 (malformed path id, 5xx), RC-13 (authentication) and RC-03/RC-04 (missing or
malformed X-Project-ID on the real VM) as well as RC-14.

A failing case fails its operation's subtest with Schemathesis' own message (with a curl command)
and reaches the report as a Finding with the requirement, the exchanges of that case (its request
and any probes a check sent) and a replay (seed, X-Schemathesis-TestCaseId, pytest command).
Schemathesis stops an operation at its first failing case and does not shrink it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import pytest
import schemathesis
from schemathesis.generation.case import Case

from conformance.client import RaffClient, RateLimiter
from conformance.contract import Contract
from conformance.fuzzing import (
    RESET,
    CreatedBackups,
    FuzzRunner,
    Targets,
    create_targets,
    created_backups,
    prepare,
    run_seed,
)
from conformance.ledger import Ledger
from conformance.settings import Settings
from conformance.state import RaffState

# Pinned cases reset the VM's series and delete backups: never interleave with other series tests.
pytestmark = [pytest.mark.fuzz, pytest.mark.xdist_group("vm-series")]

free = schemathesis.pytest.from_fixture("free_schema")
pinned = schemathesis.pytest.from_fixture("pinned_schema")


@pytest.fixture(scope="module")
def fuzz_seed(pytestconfig: pytest.Config) -> int:
    """The seed of this module's generated cases (``--hypothesis-seed`` replays a run)."""
    return run_seed(pytestconfig)


@pytest.fixture(scope="module")
def fuzz_backups(
    settings: Settings, client: RaffClient, ledger: Ledger, raff_state: RaffState
) -> Iterator[CreatedBackups]:
    """Every backup this module's traffic creates; all deleted when the module ends."""
    with created_backups(settings, client, ledger, raff_state) as book:
        yield book


@pytest.fixture(scope="module")
def fuzz_targets(settings: Settings, client: RaffClient, fuzz_backups: CreatedBackups) -> Targets:
    """The project, VM and purpose-made backups the pinned variant sends (see create_targets)."""
    return create_targets(settings, client, fuzz_backups)


@pytest.fixture
def prepare_variant(
    request: pytest.FixtureRequest,
    settings: Settings,
    contract: Contract,
    raff_state: RaffState,
    rate_limiter: RateLimiter,
    fuzz_backups: CreatedBackups,
    fuzz_seed: int,
) -> Callable[..., tuple[schemathesis.BaseSchema, FuzzRunner]]:
    """``prepare`` with everything both variants share already given."""
    return functools.partial(
        prepare,
        request=request,
        settings=settings,
        contract=contract,
        raff_state=raff_state,
        limiter=rate_limiter,
        created=fuzz_backups,
        seed=fuzz_seed,
    )


@pytest.fixture
def free_fuzz(
    prepare_variant: Callable[..., tuple[schemathesis.BaseSchema, FuzzRunner]],
) -> tuple[schemathesis.BaseSchema, FuzzRunner]:
    return prepare_variant("free", targets=None)


@pytest.fixture
def pinned_fuzz(
    prepare_variant: Callable[..., tuple[schemathesis.BaseSchema, FuzzRunner]], fuzz_targets: Targets
) -> tuple[schemathesis.BaseSchema, FuzzRunner]:
    return prepare_variant("pinned", targets=fuzz_targets)


@pytest.fixture
def free_schema(free_fuzz: tuple[schemathesis.BaseSchema, FuzzRunner]) -> schemathesis.BaseSchema:
    return free_fuzz[0]


@pytest.fixture
def pinned_schema(pinned_fuzz: tuple[schemathesis.BaseSchema, FuzzRunner]) -> schemathesis.BaseSchema:
    return pinned_fuzz[0]


@pytest.mark.req("RC-14", "RC-23", "RC-25")
@free.exclude(operation_id=RESET).parametrize()
def test_fuzz_backups__free(case: Case, free_fuzz: tuple[schemathesis.BaseSchema, FuzzRunner]) -> None:
    """Arbitrary requests to every operation but reset-chain: answers match the contract."""
    free_fuzz[1].run(case)


@pytest.mark.req("RC-14", "RC-23", "RC-25")
@pinned.exclude(operation_id=RESET).parametrize()
def test_fuzz_backups__pinned(case: Case, pinned_fuzz: tuple[schemathesis.BaseSchema, FuzzRunner]) -> None:
    """Valid requests on real resources: accepted, authenticated, 2xx bodies match the contract."""
    pinned_fuzz[1].run(case)


@pytest.mark.writes
@pytest.mark.req("RC-14", "RC-05", "RC-23")
@free.include(operation_id=RESET).parametrize()
def test_fuzz_reset_chain__free(case: Case, free_fuzz: tuple[schemathesis.BaseSchema, FuzzRunner]) -> None:
    """Arbitrary resets, malformed path ids included: 400/404 with an Error body, never a 5xx."""
    free_fuzz[1].run(case)


@pytest.mark.writes
@pytest.mark.req("RC-14", "RC-13", "RC-03", "RC-04", "RC-23")
@pinned.include(operation_id=RESET).parametrize()
def test_fuzz_reset_chain__pinned(case: Case, pinned_fuzz: tuple[schemathesis.BaseSchema, FuzzRunner]) -> None:
    """Resets of the run's VM: 202 when valid; refused without a valid key, or without or with a
    malformed X-Project-ID."""
    pinned_fuzz[1].run(case)
