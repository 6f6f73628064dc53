"""The model-based run of backup series: the pytest entry of ``conformance.series_machine``.

Hypothesis drives the machine through random sequences of backups, resets, restores and
deletes on two VMs and, on a failure, shrinks them to a short program that the report shows.
"""

from __future__ import annotations

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import FlakyFailure
from hypothesis.stateful import run_state_machine_as_test

from conformance.checks import ConformanceFailure
from conformance.client import RaffClient
from conformance.contract import Contract
from conformance.ledger import Ledger
from conformance.series_machine import Harness, SeriesMachine, bind, machine_settings
from conformance.settings import Settings
from conformance.state import RaffState

pytestmark = [pytest.mark.writes, pytest.mark.xdist_group("vm-series")]


@pytest.mark.model
@pytest.mark.requires_setting("second_vm_id")
@pytest.mark.req("RC-06", "RC-07", "RC-08", "RC-09", "RC-10", "RC-15", "RC-16", "RC-17", "RC-18", "RC-21")
def test_backup_series_follow_model(
    settings: Settings,
    client: RaffClient,
    contract: Contract,
    ledger: Ledger,
    raff_state: RaffState,
    pytestconfig: pytest.Config,
) -> None:
    """Random sequences over two VMs; every answer and every listing as the series model predicts."""
    vms = {"A": settings.vm_id or "", "B": settings.second_vm_id or ""}
    if not settings.is_mock and not settings.max_backups_given:
        pytest.skip(
            "the model run creates backups on a real server: set RAFF_MAX_BACKUPS (--max-backups) explicitly "
            "to the number it may create, and select it with -m model"
        )
    if settings.is_mock:
        # On the bundled mock the machine creates hundreds of backups: a private book keeps them
        # off the session's RAFF_MAX_BACKUPS count, which bounds the cost of live runs and would
        # otherwise stop every later test's make_backup. Leftovers go to the session ledger.
        book = Ledger(client=client, preexisting=ledger.preexisting, announce=False)
        harness = Harness(settings, client, contract, book, vms)
    else:
        harness = Harness(settings, client, contract, ledger, vms, creates_cap=settings.max_backups)
    try:
        # A profile named with --hypothesis-profile sets the number of examples (the defect
        # self-tests use Hypothesis' "default" profile, 100, to find every planted defect).
        explicit = pytestconfig.getoption("hypothesis_profile", None)
        examples = hypothesis_settings.default.max_examples if explicit else None
        _run(bind(harness), machine_settings(settings, examples=examples))
    finally:
        if harness.book is not ledger:
            leftovers = list(harness.book.created)  # the session ledger deletes (and counts) these
            raff_state.backups_created += harness.book.backups_created - len(leftovers)
            for backup_id in leftovers:
                ledger.record(backup_id)
        raff_state.wait_seconds += harness.wait_seconds


def _observed_failure(group: BaseExceptionGroup) -> ConformanceFailure | None:
    """The first ConformanceFailure inside an exception group (Hypothesis' FlakyFailure is one)."""
    for error in group.exceptions:
        if isinstance(error, ConformanceFailure):
            return error
        if isinstance(error, BaseExceptionGroup) and (inner := _observed_failure(error)) is not None:
            return inner
    return None


def _run(machine: type[SeriesMachine], hypothesis: hypothesis_settings) -> None:
    try:
        try:
            run_state_machine_as_test(machine, settings=hypothesis)
        except FlakyFailure as flaky:
            # The server's state moved on between Hypothesis' first failing run and its replay (the
            # machine draws from what the server holds), so the replay took another path. The first
            # run's failure was still observed on the server: report it, not "flaky".
            observed = _observed_failure(flaky)
            if observed is None:
                raise
            # The shrunk program is in the group's notes; the report shows the failure's.
            observed.__notes__ = [*getattr(flaky, "__notes__", []), *getattr(observed, "__notes__", [])]
            observed.finding.message += (
                "\n\n(Hypothesis could not replay this sequence exactly: the server's state had moved on.)"
            )
            raise observed from None
    except ConformanceFailure as failure:
        # Hypothesis adds the shrunk program as notes; the finding carries it into the report.
        # The invariant runs after every step; Hypothesis prints each call, which only doubles the list.
        notes = "\n".join(getattr(failure, "__notes__", [])).splitlines()
        program = "\n".join(line for line in notes if "listings_match_model()" not in line)
        if program:
            failure.finding.message += f"\n\nShrunk failing sequence (Hypothesis):\n{program}"
        raise
