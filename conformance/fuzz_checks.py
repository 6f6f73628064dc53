"""The Schemathesis checks the suite runs, and how their failures become the suite's ``Finding``s.

Schemathesis raises a ``FailureGroup`` of ``Failure`` objects (each with a stable ``ST…`` code);
the report speaks in requirements. ``findings_from_failures`` maps one onto the other:

- ``ignored_auth``, or ``missing_required_header`` for the key header (a request without or with
  a wrong key was accepted), breaks RC-13;
- on resetBackupChain, any failure of a request whose path id is not a UUID breaks RC-05 (a 5xx
  for a well-formed id is an undocumented answer: RC-14), a reset without X-Project-ID that was not
  rejected breaks RC-03, one whose X-Project-ID is not a UUID RC-04, and a valid reset of the run's
  VM refused (``positive_data_acceptance``) RC-01;
- ``unsupported_method`` and ``allow_header_conformance`` (an undeclared method not refused with
  405 and an ``Allow`` header, or an ``Allow`` that does not list the declared methods) break RC-23;
  a 404 for an undeclared method is a note (see ``classification_for``);
- ``use_after_free``, ``ensure_resource_availability`` and the suite's ``created_backup_found`` (a
  deleted backup still there, a created one not there) break RC-24;
- ``negative_data_rejection`` and ``positive_data_acceptance`` otherwise (a request refused for a
  shape the schema allows, or one the schema forbids carried out) break RC-25;
- everything else is a response that does not match the merged contract: RC-14.

Answers that only the overlay allows are *spec gaps*, not failures: the plugin derives them
from the exchanges it observes, so nothing here classifies them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import schemathesis
from schemathesis.checks import CHECKS, CheckContext, CheckFunction, load_all_checks
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.openapi.checks import EnsureResourceAvailability
from schemathesis.specs.openapi.checks import resource_was_deleted

from conformance.checks import Classification, Finding
from conformance.exchange import Exchange, data_id, json_body

# The built-in checks the suite runs: every one that applies (results.py lists them in
# results.json). Left out on purpose: object_level_authorization (needs a second identity in
# Schemathesis' WFC format) and max_response_time (the contract sets no latency limit).
CHECK_NAMES: tuple[str, ...] = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
    "created_backup_found",  # the suite's: ensure_resource_availability where it cannot fire (below)
)
DISABLED_CHECK_NAMES: tuple[str, ...] = (
    "object_level_authorization",
    "max_response_time",
)

DEFAULT_REQUIREMENT = "RC-14"
METHODS_REQUIREMENT = "RC-23"  # undeclared methods: 405 with Allow (RFC 9110)
LIFETIME_REQUIREMENT = "RC-24"  # a created backup is there at once; a deleted one is gone
METHOD_CHECKS = frozenset({"unsupported_method", "allow_header_conformance"})
LIFETIME_CHECKS = frozenset({"use_after_free", "ensure_resource_availability", "created_backup_found"})
REQUEST_SHAPE_REQUIREMENT = "RC-25"  # the request schema decides what is taken and what is refused
REQUEST_SHAPE_CHECKS = frozenset({"negative_data_rejection", "positive_data_acceptance"})
AUTH_REQUIREMENT = "RC-13"
RESET_PATH_REQUIREMENT = "RC-05"
OWNED_RESET_REQUIREMENT = "RC-01"  # a reset of a VM the account owns, in its project, answers 202
MISSING_PROJECT_REQUIREMENT = "RC-03"
MALFORMED_PROJECT_REQUIREMENT = "RC-04"
PROJECT_HEADER = "X-Project-ID"
API_KEY_HEADER = "X-API-Key"  # components.securitySchemes.ApiKeyAuth
RESET_OPERATION = "resetBackupChain"
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@schemathesis.check
def created_backup_found(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A linked step on a backup that its createBackup just accepted must not answer 404 (RC-24).

    Schemathesis' ensure_resource_availability asks the same, but only of a step whose every
    parameter the link filled, and 4.32.5 counts a linked header as generated (it compares the
    step with its own generated state, which already holds the link's value). Every backup
    operation here takes the linked X-Project-ID header, so the built-in check never fires on this
    contract. This one asks what the built-in means: the step's path id is the one the create
    answered, its project header the one the create was sent with, and no successful request of
    the scenario removed the backup since. Its failure is Schemathesis' own (ST302).
    """
    if response.status_code != 404:
        return None
    parent = ctx.internals.find_parent(case_id=case.id)
    if parent is None or parent.operation.definition.raw.get("operationId") != "createBackup":
        return None
    created = ctx.internals.find_response(case_id=parent.id)
    if created is None or not 200 <= created.status_code < 300:
        return None
    created_id = data_id(json_body(created))
    if created_id is None or (case.path_parameters or {}).get("id") != created_id:
        return None
    if _header(case.headers or {}, PROJECT_HEADER) != _header(parent.headers or {}, PROJECT_HEADER):
        return None
    if ctx.internals.recorder is not None and resource_was_deleted(ctx.internals.recorder, case, created_by=parent.id):
        return None
    raise EnsureResourceAvailability(
        operation=parent.operation.label,
        message=(
            f"The API returned `404 Not Found` for backup {created_id}, which createBackup had just "
            f"accepted with `{created.status_code}`, before anything deleted it.\n\n"
            f"Created with      : `{parent.operation.label}`\n"
            f"Not available with: `{case.operation.label}`"
        ),
        created_with=parent.operation.label,
        not_available_with=case.operation.label,
    )


# Checks the config switches off so that the state machine runs the suite's own version of them
# instead (passed as additional checks; see check_functions).
RUN_SCOPED_CHECK_NAMES: tuple[str, ...] = ("ignored_auth",)


def check_functions(
    names: Sequence[str] = CHECK_NAMES, *, auth_enforced: set[str] | None = None
) -> list[CheckFunction]:
    """The registered Schemathesis check functions with these names, in order.

    With ``auth_enforced`` (one set per run), ``ignored_auth`` confirms each operation's
    authentication once per run, as Schemathesis' own runner does: it probes an accepted request
    without the key and with a wrong one, and once both were refused it records the operation in
    ``CheckContext.auth_enforced_operations`` ("enforcement is a property of the operation") and
    probes it no more. ``Case.validate_response``, which pytest tests and state machines go
    through, passes no such set, so without this every accepted request would cost two probes
    more than in ``schemathesis run``: half of the lifecycle's requests.
    """
    load_all_checks()
    checks: list[CheckFunction] = [CHECKS.get_one(name) for name in names]  # type: ignore[misc]
    if auth_enforced is None:
        return checks
    return [
        run_scoped_ignored_auth(check, auth_enforced) if check.__name__ == "ignored_auth" else check for check in checks
    ]


def run_scoped_ignored_auth(builtin: CheckFunction, enforced: set[str]) -> CheckFunction:
    """Schemathesis' ``ignored_auth`` with the run's set of operations already confirmed."""

    def ignored_auth(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        if ctx.auth_enforced_operations is None:
            ctx.auth_enforced_operations = enforced
        return builtin(ctx, response, case)

    ignored_auth.__doc__ = builtin.__doc__
    return ignored_auth


def checks_config() -> dict[str, Any]:
    """The ``[checks]`` table: the suite's checks on, every other built-in off.

    Switching the others off in the config (not only by passing ``checks=``) also covers the
    state machine, which validates with the configured set. ``RUN_SCOPED_CHECK_NAMES`` are off
    here too: the suite passes its own version of each (``check_functions``).
    """
    config: dict[str, Any] = {name: {"enabled": name not in RUN_SCOPED_CHECK_NAMES} for name in CHECK_NAMES}
    # max_response_time takes a number (a limit) and is off while none is set.
    config.update({name: {"enabled": False} for name in DISABLED_CHECK_NAMES if name != "max_response_time"})
    return config


def check_name(failure: Failure, reported: Mapping[int, str] | None = None) -> str:
    """The check that raised ``failure``: as recorded by the after_validate hook, else its class's first."""
    if reported and id(failure) in reported:
        return reported[id(failure)]
    return type(failure).checks[0] if type(failure).checks else type(failure).__name__


def requirement_for(
    failure: Failure,
    check: str,
    operation_id: str | None,
    path_parameters: Mapping[str, Any],
    headers: Mapping[str, Any] | None = None,
) -> str:
    """The requirement a Schemathesis failure breaks (see the module docstring)."""
    missing = str(getattr(failure, "header_name", "")).lower()
    if check in METHOD_CHECKS:
        return METHODS_REQUIREMENT
    if check in LIFETIME_CHECKS:
        return LIFETIME_REQUIREMENT
    if check == "ignored_auth" or (check == "missing_required_header" and missing == API_KEY_HEADER.lower()):
        return AUTH_REQUIREMENT
    if operation_id == RESET_OPERATION:
        if not _is_uuid(path_parameters.get("id")):
            return RESET_PATH_REQUIREMENT  # a 5xx included: RC-05 names "never a 5xx" for such an id
        project = _header(headers or {}, PROJECT_HEADER)
        if check == "missing_required_header" and missing == PROJECT_HEADER.lower():
            return MISSING_PROJECT_REQUIREMENT
        if check == "negative_data_rejection" and project is None:
            return MISSING_PROJECT_REQUIREMENT
        if check == "negative_data_rejection" and not _is_uuid(project):
            return MALFORMED_PROJECT_REQUIREMENT
        if check == "positive_data_acceptance":
            # A valid reset of the run's VM (the generated resets are pinned to it) in its project was
            # refused: RC-01 names that answer (202). RC-10 and RC-21 are judged by the scenario, which
            # knows whether a backup came between or was in flight; generated traffic does not.
            return OWNED_RESET_REQUIREMENT
    if check in REQUEST_SHAPE_CHECKS:
        return REQUEST_SHAPE_REQUIREMENT
    # Everything else, a 5xx on a well-formed reset included, is an answer the contract does not
    # document for its operation and status: RC-14's.
    return DEFAULT_REQUIREMENT


def classification_for(failure: Failure, check: str) -> Classification:
    """A violation, except where Schemathesis' expectation goes past what the contract can promise.

    An undeclared method answered 404 on a path with real ids: a gateway or router in front of the
    API may refuse methods it does not route before the API sees them (the first law: a router's 404
    is not the operation's answer). It is shown as a note, so that nothing Schemathesis reports is
    lost, and judges nothing.
    """
    if check == "unsupported_method" and getattr(failure, "status_code", None) == 404:
        return "note"
    return "violation"


def failures_of(error: BaseException) -> list[Failure]:
    """Every Schemathesis ``Failure`` inside an exception (a FailureGroup, nested groups, or one failure)."""
    if isinstance(error, Failure):
        return [error]
    if isinstance(error, BaseExceptionGroup):
        return [failure for inner in error.exceptions for failure in failures_of(inner)]
    return []


def findings_from_failures(
    error: FailureGroup | BaseException,
    *,
    operation_id: str | None,
    path_parameters: Mapping[str, Any],
    headers: Mapping[str, Any] | None = None,
    exchanges: Iterable[Exchange],
    reported: Mapping[int, str] | None = None,
    replay: dict[str, Any] | None = None,
) -> list[Finding]:
    """One violation per Schemathesis failure, with the exchanges of the case that raised it."""
    evidence = list(exchanges)
    findings = []
    for failure in failures_of(error):
        check = check_name(failure, reported)
        findings.append(
            Finding(
                classification=classification_for(failure, check),
                requirement=requirement_for(failure, check, operation_id, path_parameters, headers),
                operation=operation_id,
                check=check,
                # The title stays free of generated values: it is part of the finding's identity
                # across runs (report.model.finding_key), which baselines and --compare rely on.
                title=failure.title,
                message=f"[{type(failure).code}] {failure.message}".strip(),
                severity=str(failure.severity.value),
                exchanges=_failing_last(failure, evidence),
                replay=replay,
            )
        )
    return findings


def _failing_last(failure: Failure, evidence: list[Exchange]) -> list[Exchange]:
    """The case's exchanges with the one the failure is about last, where the failure names its status.

    A case's checks may send requests of their own after it (ignored_auth probes without a key), so
    the last exchange is not always the answer that broke the contract.
    """
    status = getattr(failure, "status_code", None)
    matching = [e for e in evidence if status is not None and e.status == status]
    if not matching:
        return evidence
    culprit = matching[-1]
    return [e for e in evidence if e is not culprit] + [culprit]


def failure_key(failure: Failure) -> tuple[str, str | None, str]:
    """Schemathesis' own identity of a failure: one per operation and failure class (and status)."""
    return (type(failure).__name__, failure.operation, failure._unique_key)


def _header(headers: Mapping[str, Any], name: str) -> Any:
    """A header's value by case-insensitive name (a plain dict of a case's headers is case-sensitive)."""
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def _is_uuid(value: Any) -> bool:
    """The canonical 8-4-4-4-12 form only: ``uuid.UUID`` also takes braces, URNs and bare hex."""
    return isinstance(value, str) and UUID_PATTERN.fullmatch(value) is not None
