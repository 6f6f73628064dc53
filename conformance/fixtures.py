"""Fixtures every conformance test may use: settings, contract, client, evidence, ledger,
and ``make_backup`` (create, register cleanup, then wait)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conformance.client import RaffClient, RateLimiter
from conformance.contract import Contract
from conformance.factory import BackupFactory
from conformance.ledger import Ledger
from conformance.matrix import MatrixRunner, derive
from conformance.scenario import ScenarioRecord, ScenarioRunner
from conformance.settings import Settings
from conformance.state import Evidence, RaffState, get_state


@pytest.fixture(scope="session")
def raff_state(pytestconfig: pytest.Config) -> RaffState:
    return get_state(pytestconfig)


@pytest.fixture(scope="session")
def settings(raff_state: RaffState) -> Settings:
    """The resolved settings of the run, pointing at the target that is up and answering."""
    return raff_state.settings


@pytest.fixture(scope="session")
def contract(raff_state: RaffState) -> Contract:
    return raff_state.contract


@pytest.fixture(scope="session")
def rate_limiter(settings: Settings) -> RateLimiter:
    """One pace for all traffic of this process (client and Schemathesis alike)."""
    return RateLimiter(settings.rate_limit if not settings.is_mock else 1000.0)


def _client(settings: Settings, raff_state: RaffState, limiter: RateLimiter, **overrides: Any) -> RaffClient:
    return RaffClient(
        settings.base_url or "",
        overrides.get("api_key", settings.api_key),
        overrides.get("project_id", settings.project_id),
        timeout=settings.request_timeout,
        limiter=limiter,
        on_exchange=[raff_state.observe],
        notify=raff_state.say,
        poll_interval=settings.poll_interval,
        trust_env=settings.trust_env,
    )


@pytest.fixture(scope="session")
def client(settings: Settings, raff_state: RaffState, rate_limiter: RateLimiter) -> Iterator[RaffClient]:
    """A client with the run's key and project; every exchange becomes evidence of the running test."""
    with _client(settings, raff_state, rate_limiter) as api:
        yield api


@pytest.fixture
def evidence(raff_state: RaffState) -> Evidence:
    return Evidence(raff_state)


@pytest.fixture(scope="session")
def ledger(settings: Settings, client: RaffClient, raff_state: RaffState) -> Iterator[Ledger]:
    """Records every backup the suite creates; at session end deletes what is left, newest first.

    What existed for the run's VMs before the suite started is remembered and never deleted.
    """
    preexisting: set[str] = set()
    for vm_id in filter(None, (settings.vm_id, settings.second_vm_id)):
        response = client.list_backups(vm_id=vm_id, limit=1000)
        if response.status_code == 200:
            preexisting |= {b["id"] for b in response.json().get("data") or [] if isinstance(b, dict) and "id" in b}
    book = Ledger(client=client, preexisting=frozenset(preexisting), announce=not settings.is_mock)
    try:
        yield book
    finally:
        raff_state.leftovers += book.cleanup(final=True)  # the last cleanup of the run: kept ones once more
        raff_state.backups_created += book.backups_created
        raff_state.wait_seconds += book.wait_seconds


@pytest.fixture(scope="session")
def make_backup(settings: Settings, client: RaffClient, ledger: Ledger) -> BackupFactory:
    return BackupFactory(settings, client, ledger)


@pytest.fixture(scope="session")
def client_factory(settings: Settings, raff_state: RaffState, rate_limiter: RateLimiter) -> Callable[..., RaffClient]:
    """Clients with another key or project (negative tests); closed at session end."""
    made: list[RaffClient] = []

    def make(**overrides: Any) -> RaffClient:
        api = _client(settings, raff_state, rate_limiter, **overrides)
        made.append(api)
        return api

    yield make  # type: ignore[misc]
    for api in made:
        api.close()


@pytest.fixture(scope="session")
def scenario(
    settings: Settings, client: RaffClient, make_backup: BackupFactory, raff_state: RaffState
) -> ScenarioRecord:
    """The recorded reset-chain scenario (see conformance/scenario.py), run once per session.

    On a live target the variant matrix's creates that a conforming server refuses go first, while the
    budget still has room for one a broken server wrongly takes (conformance/matrix.py, run_early); the
    cells that need no backup go while the scenario's last backup is in flight (run_beside)."""
    if not settings.writes_allowed:
        pytest.skip("the scenario creates and resets backups: set RAFF_ALLOW_WRITES=1 (--allow-writes)")
    cells = derive(raff_state.contract)

    def beside(record: ScenarioRecord) -> None:
        # The matrix's cells that need no backup, while A7 is in flight (MatrixRunner.run_beside).
        raff_state.matrix_early += MatrixRunner(settings, client, make_backup, record, cells).run_beside()

    runner = ScenarioRunner(settings, client, make_backup, raff_state.timeline, beside)
    if not settings.is_mock:
        raff_state.matrix_early = MatrixRunner(settings, client, make_backup, runner.record, cells).run_early()
    return runner.run()
