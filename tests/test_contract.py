"""The contract in specs/: valid documents, the seed's reset-chain, a sound requirement catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from conformance.client import RaffClient
from conformance.contract import apply_overlay, load_contract

SEED = Path(__file__).resolve().parents[1] / "specs" / "docs" / "reset-backup-series.md"
RESET = "/api/v1/vms/{id}/backups/reset-chain"


@pytest.fixture(scope="module")
def contract():
    return load_contract()


def test_published_spec_is_valid_openapi_3_0(contract) -> None:
    assert contract.published["openapi"] == "3.0.3"
    validate(contract.published)


def test_merged_spec_is_valid_openapi_3_0(contract) -> None:
    validate(contract.merged)


def _seed_document() -> dict:
    text = SEED.read_text(encoding="utf-8")
    return yaml.safe_load(re.search(r"````yaml[^\n]*\n(.*?)````", text, re.S).group(1))


def test_reset_chain_operation_matches_seed(contract) -> None:
    seed = _seed_document()
    ours = contract.published
    assert ours["paths"][RESET] == seed["paths"][RESET]
    for kind, names in (
        ("schemas", ("SuccessResponse", "Error")),
        ("responses", ("BadRequest", "NotFound")),
        ("parameters", ("ProjectIDHeader",)),
        ("securitySchemes", ("ApiKeyAuth",)),
    ):
        for name in names:
            assert ours["components"][kind][name] == seed["components"][kind][name], f"{kind}.{name}"
    assert ours["security"] == seed["security"]


def test_requirements_name_existing_operations(contract) -> None:
    operation_ids = {op.operation_id for op in contract.operations()}
    assert len(contract.requirements) >= 16
    for requirement in contract.requirements.values():
        assert requirement.kind in ("contract", "documented", "inferred"), requirement.id
        assert requirement.statement and requirement.source, requirement.id
        assert set(requirement.operations) <= operation_ids, requirement.id


def test_every_operation_has_client_method_and_requirement(contract) -> None:
    documented = {
        method.__doc__.split(":")[0]
        for method in vars(RaffClient).values()
        if callable(method) and method.__doc__ and ": " in method.__doc__
    }
    covered = {op for req in contract.requirements.values() for op in req.operations}
    for operation in contract.operations():
        assert operation.operation_id in documented, f"no client method for {operation.operation_id}"
        assert operation.operation_id in covered, f"no requirement names {operation.operation_id}"


def test_overlay_entries_say_where_they_come_from() -> None:
    overlay = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "specs/overlays/documented-behaviour.yaml").read_text(encoding="utf-8")
    )
    assert overlay["overlay"].startswith("1.")
    for action in overlay["actions"]:
        assert action.get("x-raff-source"), action["target"]
        assert action.get("x-raff-basis") in ("documented", "inferred"), action["target"]


def test_origin_separates_published_from_overlay(contract) -> None:
    assert contract.origin("resetBackupChain", 202) == "published"
    assert contract.origin("resetBackupChain", 401) == "overlay"
    assert contract.origin("deleteBackup", 409) == "overlay"
    assert contract.origin("deleteBackup", 418) == "undocumented"
    assert contract.overlay_entry("deleteBackup", 409).basis == "inferred"
    assert contract.overlay_entry("resetBackupChain", 202) is None


def test_overlay_update_merges_and_reports_additions() -> None:
    document = {"paths": {"/x": {"get": {"operationId": "getX", "responses": {"200": {"description": "ok"}}}}}}
    overlay = {
        "actions": [
            {
                "target": "$.paths.*.*.responses",
                "description": "d",
                "x-raff-basis": "documented",
                "update": {"200": {"description": "ok"}, "401": {"description": "no"}},
            }
        ]
    }
    merged, entries = apply_overlay(document, overlay)
    assert set(merged["paths"]["/x"]["get"]["responses"]) == {"200", "401"}
    assert [(e.operation_id, e.status) for e in entries] == [("getX", "401")]
    assert "401" not in document["paths"]["/x"]["get"]["responses"]  # the input is not mutated


def test_overlay_target_that_matches_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="matches nothing"):
        apply_overlay({"paths": {}}, {"actions": [{"target": "$.paths['/nope'].get", "update": {}}]})
