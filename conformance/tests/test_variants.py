"""The variant matrix (conformance/matrix.py): every operation, every kind of input, sent once
after the recorded scenario on what the run already has. The judge holds each answer to the
properties; each test here owns one kind of input, proves its cells were sent and answered, and
names the requirements a breach in that kind counts against."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks import inconclusive
from conformance.client import RaffClient
from conformance.factory import BackupFactory
from conformance.matrix import MatrixRunner, Outcome, derive
from conformance.scenario import ScenarioRecord
from conformance.settings import Settings
from conformance.state import Evidence, RaffState

pytestmark = [pytest.mark.writes, pytest.mark.xdist_group("vm-series")]


@pytest.fixture(scope="module")
def matrix(
    settings: Settings, client: RaffClient, make_backup: BackupFactory, scenario: ScenarioRecord, raff_state: RaffState
) -> list[Outcome]:
    """The whole matrix, sent once, after the scenario (whose evidence is recorded by then)."""
    runner = MatrixRunner(settings, client, make_backup, scenario, derive(raff_state.contract))
    outcomes = runner.run(early=raff_state.matrix_early)
    violations = [f for f in raff_state.judge.findings if f.classification == "violation"]
    for outcome in outcomes:
        row: dict[str, Any] = outcome.as_dict()
        # What the judge found in the cell's own exchanges: the cell is breached, under those requirements.
        # (The judge holds the client's record of each request; the runner its own: the request is one.)
        sent = {id(x.raw_request) for x in outcome.exchanges if x.raw_request is not None}
        row["breached"] = sorted({
            f.requirement or "" for f in violations if any(id(e.raw_request) in sent for e in f.exchanges)
        })
        raff_state.matrix.append(row)
    return outcomes


def _sent(outcomes: list[Outcome], kind: str, evidence: Evidence) -> None:
    """Every cell of the kind was sent and answered, or says why it was not sent; a cell that got no
    answer leaves the kind inconclusive (it judged nothing)."""
    __tracebackhide__ = True
    cells = [o for o in outcomes if o.cell.kind == kind]
    assert cells, f"the matrix has no cell of kind {kind!r}: derive() lost it"
    unanswered = [o for o in cells if o.reason.startswith("no answer")]
    # The cells' exchanges are the judge's evidence (the report's matrix and its findings), not
    # attached here again: a few hundred requests would bury the test's own record.
    if unanswered:
        first = unanswered[0]
        raise inconclusive(
            f"matrix {kind}",
            f"{len(unanswered)} cell(s) got no answer, first {first.cell.operation} {first.cell.variant}: "
            f"{first.reason}",
        )
    for outcome in cells:
        where = f"{outcome.cell.operation} {outcome.cell.variant}"
        assert outcome.tried or outcome.reason, f"{where}: neither sent nor excused"


@pytest.mark.req("RC-28")
def test_variants__spellings(matrix: list[Outcome], evidence: Evidence) -> None:
    _sent(matrix, "spelling", evidence)


@pytest.mark.req("RC-02", "RC-05", "RC-11", "RC-12", "RC-29")
def test_variants__ids_of_another_kind_or_scope(matrix: list[Outcome], evidence: Evidence) -> None:
    _sent(matrix, "ids", evidence)


@pytest.mark.req("RC-03", "RC-04", "RC-13", "RC-19")
def test_variants__headers(matrix: list[Outcome], evidence: Evidence) -> None:
    _sent(matrix, "headers", evidence)


@pytest.mark.req("RC-14", "RC-25")
def test_variants__bodies(matrix: list[Outcome], evidence: Evidence) -> None:
    _sent(matrix, "bodies", evidence)


@pytest.mark.req("RC-10")
def test_variants__twice_in_a_row_and_at_once(matrix: list[Outcome], evidence: Evidence) -> None:
    _sent(matrix, "repetition", evidence)


@pytest.mark.req("RC-18", "RC-20")
def test_variants__listing_edges(matrix: list[Outcome], evidence: Evidence) -> None:
    _sent(matrix, "listing", evidence)
