"""Schemathesis wiring: the merged contract as a Schemathesis schema, pointed at the run's target.

Three ways to send generated traffic, each a Schemathesis config built from the settings:

- **free**: nothing pinned, positive and negative cases. What an arbitrary client can send:
  malformed path ids (RC-05 on reset-chain), missing or malformed headers, bodies that break
  the schema, well-formed ids that name nothing. Almost every answer is a 4xx, which is the point.
- **pinned**: positive cases only, with the ids that reach real resources pinned through
  ``[[operations]] parameters``: the project header, the VM, and backups this module created
  for the purpose (one to read and restore, one to delete, one whose series to delete, each alone
  in a closed series so that no delete reaches a point anyone else holds and the restores restore
  what reset-chain closed). Without pins a
  generated UUID only ever reaches a 404, so 2xx bodies would never be schema-checked and
  ``ignored_auth`` (which probes only accepted requests) would never run.
- **lifecycle**: the stateful phase along the overlay's OpenAPI links (create → get / restore /
  delete / series delete / reset), project header pinned, links filling the ids. On the bundled
  mock every second created backup is waited for until ready, so that steps reach both states.

Every request, including the probes that checks send on their own (``ignored_auth`` sends two
per accepted request of an operation until both were refused, once per run), goes through
:class:`ObservedTransport`: paced by the suite's rate limiter, handed to ``RaffState.observe``
(coverage, evidence, spec gaps), and a created backup's id recorded in the ledger before anything
else looks at the answer. It has to be the transport:
``Case.call`` dispatches ``before_call`` to global hooks only (not schema hooks), and the auth
probes bypass both the hooks and any ``session`` passed to ``call``.

Live safety (a target that is not the bundled mock):

- ``extra-data-sources.responses = false`` in every phase: Schemathesis must never reuse ids it
  saw in answers (it would delete backups a list returned), and OpenAPI link inference is off, so
  the lifecycle follows only the overlay's explicit links.
- createBackup is never generated (free or pinned); the lifecycle creates backups only when
  selected explicitly, with writes allowed, and never beyond ``RAFF_MAX_BACKUPS`` for the run.
- No mutating request (POST, DELETE) is generated unless writes are allowed; restoreBackup only
  with ``--allow-restore``. With writes allowed, the free variant's deletes and restores carry
  generated ids (fresh UUIDs or no UUID at all, never one seen in an answer), and the pinned ones
  only ids of backups this module created, each alone in its series.
- A series delete removes every point of the series, so each lifecycle scenario starts by
  resetting the VM's series: the points a linked series delete can reach are the scenario's own.
- Undeclared methods (the coverage phase's ``unexpected-methods``, RC-23) are sent only as safe
  methods (GET, OPTIONS, TRACE, QUERY). ``limitations`` names each of these limits for the report.
"""

from __future__ import annotations

import copy
import os
import random
import shlex
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import CheckFunction
from schemathesis.core import NotSet
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.generation.stateful.state_machine import APIStateMachine
from schemathesis.openapi.checks import EnsureResourceAvailability
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.schemas import OpenApiSchema
from schemathesis.transport.requests import REQUESTS_TRANSPORT, RequestsTransport, SameHostRedirectsSession

from conformance.checks import exchange_from_schemathesis
from conformance.client import RaffClient, RateLimiter
from conformance.contract import Contract
from conformance.exchange import STOP, WRITES, Exchange, clean_headers, data_id, json_body
from conformance.factory import BackupFactory, left_to_other_run
from conformance.fuzz_checks import (
    RUN_SCOPED_CHECK_NAMES,
    check_functions,
    checks_config,
    failure_key,
    failures_of,
    findings_from_failures,
)
from conformance.ledger import Ledger
from conformance.settings import OPTIONS, Settings
from conformance.state import Evidence, RaffState

Variant = Literal["free", "pinned", "lifecycle"]

CREATE = "createBackup"
RESET = "resetBackupChain"
RESTORE = "restoreBackup"
SERIES_DELETE = "deleteBackupChain"
READ_OPERATIONS = frozenset({"listBackups", "getBackup", "getVM"})
# The backup each pinned operation works on; one backup serves both reading and restoring.
TARGET_ROLE = {"getBackup": "read", RESTORE: "read", "deleteBackup": "delete", "deleteBackupChain": "series"}
# Budget of pinned targets on a live target, most useful first: reading also checks 2xx bodies.
TARGET_ROLES = ("read", "delete", "series")
PROJECT_DICTIONARY = "run_project"
# The undeclared methods the coverage phase sends to a live target (RC-23): safe ones only.
SAFE_UNDECLARED_METHODS = ("GET", "OPTIONS", "TRACE", "QUERY")


def limitations(settings: Settings) -> list[str]:
    """What the generated traffic leaves out on this target, and why: the report names each one.

    Plain Schemathesis on the same contract would send these; the suite does not, on purpose.
    """
    items = []
    if not settings.is_mock:
        items.append(
            "createBackup is not generated by the free and pinned variants: each create is a real backup "
            "that costs money (the lifecycle creates, within RAFF_MAX_BACKUPS)"
        )
        items.append(
            f"coverage phase: undeclared methods only as {', '.join(SAFE_UNDECLARED_METHODS)}; an undeclared "
            "DELETE, PUT, PATCH or POST on a real path could act on it (DELETE /api/v1/vms/{id} deletes a VM)"
        )
        if not settings.writes_allowed:
            items.append("no POST or DELETE is generated: RAFF_ALLOW_WRITES is not set")
        elif not settings.restores_allowed:
            items.append("restoreBackup is not generated: RAFF_ALLOW_RESTORE is not set")
    items.append(
        "ids seen in answers are not reused (extra-data-sources.responses = false; plain Schemathesis "
        "reuses them): a reused id would send generated deletes to backups that other tests or other "
        "people hold; the pinned variant and the lifecycle's links reach real backups instead"
    )
    return items


# -- what each variant may send -------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """The ids the pinned variant sends: real ones, created or configured for the purpose."""

    project_id: str
    vm_id: str
    backups: Mapping[str, str] = field(default_factory=dict)  # role (TARGET_ROLES) -> backup id


def excluded_operations(
    settings: Settings, contract: Contract, variant: Variant, targets: Targets | None
) -> dict[str, str]:
    """Operations this variant must not send to this target, each with the reason."""
    excluded: dict[str, str] = {}
    for operation in contract.operations():
        op = operation.operation_id
        mutating = op not in READ_OPERATIONS
        if not settings.is_mock and op == CREATE and variant != "lifecycle":
            excluded[op] = "creating backups costs money: generated creates run against the bundled mock only"
        elif mutating and not settings.writes_allowed:
            excluded[op] = "changes state: needs RAFF_ALLOW_WRITES=1 (--allow-writes) on a live target"
        elif op == RESTORE and not settings.restores_allowed:
            excluded[op] = "overwrites the VM's disk: needs RAFF_ALLOW_RESTORE=1 (--allow-restore)"
        elif variant == "pinned" and op in TARGET_ROLE and (targets is None or TARGET_ROLE[op] not in targets.backups):
            excluded[op] = "no backup of this run to pin it to (RAFF_MAX_BACKUPS spent, or writes not allowed)"
    return excluded


def pins(variant: Variant, targets: Targets | None) -> dict[str, dict[str, Any]]:
    """Per operation, the parameters Schemathesis must send as given (``[[operations]] parameters``).

    A value is a literal, or a dictionary binding (``{"dictionary": …, "probability": p}``): the
    pinned reset sends the real project header in half of its positive cases and leaves the header
    free otherwise, so it also sends it missing or malformed to the real VM (RC-03, RC-04), which a
    generated VM id would answer with 404 before the header matters.
    """
    if targets is None:
        return {}
    if variant != "pinned":
        # The lifecycle's links fill the ids; LifecycleMachine pins the project header and the
        # created VM itself, because config pins do not reach the stateful phase's root calls.
        return {}
    project = {"header.X-Project-ID": targets.project_id}
    table: dict[str, dict[str, Any]] = {
        "listBackups": {**project, "query.vm_id": targets.vm_id},
        CREATE: project,  # the body's vm_id is pinned by FuzzRunner: config pins cannot reach bodies
        "getVM": {"path.id": targets.vm_id},
        RESET: {
            "header.X-Project-ID": {"dictionary": PROJECT_DICTIONARY, "probability": 0.5},
            "path.id": targets.vm_id,
        },
    }
    for op, role in TARGET_ROLE.items():
        if role in targets.backups:
            table[op] = {**project, "path.id": targets.backups[role]}
    return table


def schemathesis_config(
    settings: Settings,
    contract: Contract,
    variant: Variant,
    *,
    targets: Targets | None = None,
    seed: int | None = None,
    max_examples: int | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """The Schemathesis config (``schemathesis.toml`` as a dict) of one variant against this target.

    ``max_examples`` bounds the fuzzing phase per operation (the other phases are deterministic);
    ``fuzzing_examples`` derives it from the active Hypothesis profile.
    """
    no_reuse = {"responses": False}
    coverage: dict[str, Any] = {"enabled": variant != "lifecycle", "extra-data-sources": no_reuse}
    if not settings.is_mock:
        # Undeclared methods, but only safe ones (RFC 9110 §9.2.1): an undeclared DELETE or PUT on a
        # real path might be routed to something that acts (DELETE /api/v1/vms/{id} deletes a VM).
        coverage["unexpected-methods"] = list(SAFE_UNDECLARED_METHODS)
    stateful: dict[str, Any] = {"enabled": variant == "lifecycle", "inference": {"algorithms": []}}
    if max_steps is not None:
        stateful["max-steps"] = max_steps
    operations: list[dict[str, Any]] = [
        {"include-operation-id": op, "enabled": False}
        for op in excluded_operations(settings, contract, variant, targets)
    ]
    disabled = {entry["include-operation-id"] for entry in operations}
    for op, values in pins(variant, targets).items():
        if op in disabled:
            continue
        entry: dict[str, Any] = {"include-operation-id": op, "parameters": values}
        if _fully_pinned(contract, op, values):
            # Nothing left to generate: every fuzzing example would repeat the same request.
            entry["phases"] = {"fuzzing": {"enabled": False}}
        if op == RESET:
            entry["generation"] = {"mode": "all"}  # missing and malformed headers, to the real VM
        operations.append(entry)
    config: dict[str, Any] = {
        "base-url": settings.base_url,
        # The key as OpenAPI auth, never as a plain header: a configured header would override the
        # invalid credentials ignored_auth sends and turn it into a false "auth not enforced".
        "auth": {"openapi": {"ApiKeyAuth": {"api_key": settings.api_key or ""}}},
        "checks": checks_config(),
        "request-timeout": settings.request_timeout,
        "generation": {
            # As plain Schemathesis: the free variant and the sequences send malformed requests too
            # (a sequence makes one step in ten negative); the pinned variant aims only valid ones
            # at the real VM. A step whose mutation the link or the project pin undoes is not
            # judged as negative (negative_data_rejection re-validates what was sent).
            "mode": "all" if variant in ("free", "lifecycle") else "positive",
            # No .hypothesis/ directory in the checkout and no replay of another run's examples:
            # a run is reproduced by its seed.
            "database": "none",
            **({"max-examples": max_examples} if max_examples is not None else {}),
        },
        "phases": {
            "examples": {"enabled": variant != "lifecycle", "fill-missing": True, "extra-data-sources": no_reuse},
            "coverage": coverage,
            "fuzzing": {"enabled": variant != "lifecycle", "extra-data-sources": no_reuse},
            "stateful": stateful,
        },
        "operations": operations,
    }
    if targets is not None and variant == "pinned":
        config["dictionaries"] = {PROJECT_DICTIONARY: {"values": [targets.project_id]}}
    if seed is not None:
        config["seed"] = seed
    return config


def fuzzing_examples(variant: Variant, profile: hypothesis.settings, *, is_mock: bool) -> int:
    """Fuzzing-phase examples per operation, from the profile's ``max_examples``.

    Set explicitly (a loaded profile does not override an explicit Schemathesis setting) so the
    module fits its time budget. On the bundled mock the free variant gets three quarters of the
    profile's examples (30 on the default profile, plain ``schemathesis run``'s count in
    benchmarks/run.py --pair): a defect that only some random inputs reach (a non-ASCII path id)
    was missed on 4 seeds in 12 at 20 and on none in 10 at 30. On a live target it gets half
    (coverage adds ~20 deterministic cases per operation). The pinned variant gets a quarter
    (only listBackups and createBackup have anything left to vary, and each pinned create is a
    real backup).
    """
    if variant == "free":
        return max(1, profile.max_examples * 3 // 4 if is_mock else profile.max_examples // 2)
    return max(1, profile.max_examples // 4)


def _fully_pinned(contract: Contract, operation_id: str, values: Mapping[str, Any]) -> bool:
    definition = contract.operation(operation_id).definition
    parameters = [contract.resolve(parameter) for parameter in definition.get("parameters", [])]
    names = {f"{parameter['in']}.{parameter['name']}" for parameter in parameters}
    literal = {name for name, value in values.items() if isinstance(value, str)}
    return "requestBody" not in definition and names <= literal


# -- traffic ---------------------------------------------------------------------------------------


@dataclass
class CreatedBackups:
    """Backups that this module's traffic created.

    All go into a private ledger that the module cleans up at its end. On a live target they also
    go into the session ledger, whose count is the run-wide ``RAFF_MAX_BACKUPS`` budget every
    factory checks; on the mock the budget is not spent (creates are free and other tests'
    factories must not run out because generated traffic created dozens).
    """

    settings: Settings
    own: Ledger
    session: Ledger | None

    def record(self, backup_id: str) -> None:
        self.own.record(backup_id)
        if self.session is not None and self.settings.backup_budget is not None:
            self.session.record(backup_id)

    def remaining(self) -> int | None:
        """How many more backups the run may create; None when unbounded (the mock)."""
        budget = self.settings.backup_budget
        if budget is None:
            return None
        spent = self.session.backups_created if self.session is not None else self.own.backups_created
        return max(budget - spent, 0)


@contextmanager
def created_backups(
    settings: Settings, client: RaffClient, session_ledger: Ledger, raff_state: RaffState
) -> Iterator[CreatedBackups]:
    """A module's book of created backups; at its end everything still there is deleted."""
    own = Ledger(client=client, preexisting=session_ledger.preexisting, announce=session_ledger.announce)
    book = CreatedBackups(settings=settings, own=own, session=session_ledger)
    try:
        yield book
    finally:
        own.cleanup()
        raff_state.leftovers += own.leftovers  # the scenarios' own cleanups' too
        if settings.is_mock:  # on a live target the session ledger counted them already
            raff_state.backups_created += own.backups_created
        raff_state.wait_seconds += own.wait_seconds


class ObservedTransport(RequestsTransport):
    """Schemathesis' requests transport, paced, observed and with created backups recorded."""

    def __init__(self, recorder: TrafficRecorder) -> None:
        super().__init__()
        # Share the stock transport's serializer registry (not a copy), so a serializer registered
        # on it later applies here as well.
        self._serializers = REQUESTS_TRANSPORT._serializers
        self._recorder = recorder
        # One session for all cases: keep-alive connections instead of a new TCP connection per case
        # (Schemathesis opens and closes a session per call when given none).
        self._session = SameHostRedirectsSession()
        # Settings.trust_env: not for the bundled mock. Not consulting the environment also spares
        # requests' per-call proxy lookup there, 0.2-0.5 ms of a 1.4-1.9 ms round trip.
        self._session.trust_env = recorder.backups.settings.trust_env

    def send(self, case: Case, *, session: Any = None, **kwargs: Any) -> Response:
        self._recorder.limiter_acquire()
        STOP.check()
        WRITES.sent(case.method)
        try:
            response = super().send(case, session=session if session is not None else self._session, **kwargs)
        except Exception as error:
            self._recorder.on_exchange(_error_exchange(case, kwargs.get("base_url"), error))
            raise
        exchange = exchange_from_schemathesis(case, response)
        if exchange.operation_id == CREATE and exchange.status is not None and 200 <= exchange.status < 300:
            backup_id = data_id(exchange.response_body)
            if backup_id:
                self._recorder.backups.record(backup_id)  # first: cleanup must know it whatever follows
        self._recorder.on_exchange(exchange)
        return response


@dataclass
class TrafficRecorder:
    """Where one test's generated traffic goes (see the module docstring)."""

    raff_state: RaffState
    limiter_acquire: Callable[[], float]
    backups: CreatedBackups
    evidence: Evidence
    _case_exchanges: list[Exchange] = field(default_factory=list)
    _distinct: set[tuple[str | None, int | None]] = field(default_factory=set)
    check_names: dict[int, str] = field(default_factory=dict)

    def on_exchange(self, exchange: Exchange) -> None:
        self.raff_state.observe(exchange, generated=True)
        self._case_exchanges.append(exchange)
        # The plugin keeps only a test's first exchanges as evidence and derives spec gaps from
        # them; attaching the first exchange of every distinct (operation, status) answer keeps
        # the evidence short and every overlay-only answer visible as a spec gap.
        key = (exchange.operation_id, exchange.status)
        if key not in self._distinct:
            self._distinct.add(key)
            self.evidence.attach(exchange)

    def begin_case(self) -> list[Exchange]:
        """Start collecting the exchanges of one case (its request and any probes its checks send)."""
        self._case_exchanges = []
        self.check_names.clear()
        return self._case_exchanges

    @property
    def case_exchanges(self) -> list[Exchange]:
        return list(self._case_exchanges)

    def after_validate(self, context: Any, case: Case, response: Response, results: list[Any]) -> None:
        """Remember which check raised which failure (a failure class may belong to several checks)."""
        for result in results:
            if result.failure is not None:
                self.check_names[id(result.failure)] = result.name


def build_schema(
    settings: Settings,
    contract: Contract,
    recorder: TrafficRecorder,
    variant: Variant,
    *,
    targets: Targets | None = None,
    seed: int | None = None,
    max_steps: int | None = None,
) -> BaseSchema:
    """The merged contract as a Schemathesis schema whose every request goes through ``recorder``."""
    max_examples = None
    if variant != "lifecycle":
        max_examples = fuzzing_examples(variant, hypothesis.settings.default, is_mock=settings.is_mock)
    config = schemathesis.Config.from_dict(
        schemathesis_config(
            settings,
            contract,
            variant,
            targets=targets,
            seed=seed,
            max_examples=max_examples,
            max_steps=max_steps,
        )
    )
    # from_dict normalises the document in place; the contract is cached and shared.
    loaded = schemathesis.openapi.from_dict(copy.deepcopy(contract.merged), config=config)
    transport = ObservedTransport(recorder)
    # BaseSchema.transport is a property picking the stock transport; a subclass per schema overrides
    # it, and Schemathesis' clone() keeps the class, so every clone (per test, per operation) uses it.
    schema_class = type("ObservedOpenApiSchema", (OpenApiSchema,), {"transport": property(lambda self: transport)})
    schema: BaseSchema = schema_class(
        loaded.raw_schema,
        config=loaded.config,
        location=loaded.location,
        filter_set=loaded.filter_set,
        hooks=loaded.hooks,
        auth=loaded.auth,
    )
    schema.hooks.register_hook_with_name(recorder.after_validate, "after_validate")
    return schema


# -- running a case and reporting its failures -----------------------------------------------------


@dataclass
class FuzzRunner:
    """Runs one generated case: count it, pin it, send and check it, report failures as Findings."""

    variant: Variant
    recorder: TrafficRecorder
    raff_state: RaffState
    evidence: Evidence
    targets: Targets | None
    seed: int | None
    command: str
    checks: list[CheckFunction] = field(default_factory=check_functions)
    _reported: set[tuple[str, str | None, str]] = field(default_factory=set)

    def run(self, case: Case) -> None:
        __tracebackhide__ = True
        operation_id = operation_id_of(case)
        self.raff_state.count_cases(operation_id or case.operation.label, phase_of(case))
        if self.variant == "pinned" and operation_id == CREATE and self.targets is not None:
            pin_create_body(case, self.targets.vm_id)
        exchanges = self.recorder.begin_case()
        try:
            case.call_and_validate(checks=self.checks)
        except FailureGroup as group:
            self.report(group, case, exchanges)
            raise

    def report(self, error: BaseException, case: Case, exchanges: list[Exchange]) -> None:
        """Hand the failures to the report, once each per test.

        Schemathesis' FailureGroup is a BaseExceptionGroup, not an Exception, so Hypothesis does not
        treat it as a test failure: it neither shrinks nor replays the case, it stops the operation
        at its first failing case and re-raises. The evidence is therefore that case's exchanges as
        sent. Failures Schemathesis considers the same (class, operation, status) are reported once.
        """
        fresh = [f for f in failures_of(error) if failure_key(f) not in self._reported]
        if not fresh:
            return
        self._reported.update(failure_key(f) for f in fresh)
        replay = {"seed": self.seed, "case_id": case.id, "command": self.command}
        for finding in findings_from_failures(
            FailureGroup(fresh),
            operation_id=operation_id_of(case),
            path_parameters=case.path_parameters or {},
            headers=case.headers or {},
            exchanges=exchanges,
            reported=self.recorder.check_names,
            replay=replay,
        ):
            self.evidence.finding(finding)


def pin_create_body(case: Case, vm_id: str) -> None:
    """Point a positive createBackup at the configured VM (the config can pin parameters, not bodies)."""
    if isinstance(case.body, dict):
        case.body = {**case.body, "vm_id": vm_id}


def operation_id_of(case: Case) -> str | None:
    operation_id = case.operation.definition.raw.get("operationId")
    return str(operation_id) if operation_id else None


def phase_of(case: Case) -> str:
    meta = case.meta
    return meta.phase.name.value if meta is not None else "unknown"


def prepare(
    variant: Variant,
    *,
    request: pytest.FixtureRequest,
    settings: Settings,
    contract: Contract,
    raff_state: RaffState,
    limiter: RateLimiter,
    created: CreatedBackups,
    targets: Targets | None,
    seed: int,
    max_steps: int | None = None,
) -> tuple[BaseSchema, FuzzRunner]:
    """The schema of one variant for the requesting test, and the runner its cases go through."""
    pytest9_nodeid_shim(request.node)  # type: ignore[arg-type]
    evidence = Evidence(raff_state)
    recorder = TrafficRecorder(raff_state, limiter.acquire, created, evidence)
    schema = build_schema(settings, contract, recorder, variant, targets=targets, seed=seed, max_steps=max_steps)
    runner = FuzzRunner(
        variant=variant,
        recorder=recorder,
        raff_state=raff_state,
        evidence=evidence,
        targets=targets,
        seed=seed,
        command=replay_command(request.config, request.node.nodeid, seed),
        checks=check_functions(auth_enforced=raff_state.auth_enforced),
    )
    return schema, runner


def create_targets(settings: Settings, client: RaffClient, created: CreatedBackups) -> Targets:
    """Backups for the pinned variant, each alone in a series so that deleting it touches nothing else.

    Order: the series-delete target, then the delete target, then the read/restore target, each
    after a reset, and one more reset after the last, so that each sits alone in a closed series:
    the pinned restores then restore a point that reset-chain closed (RC-07 promises it stays
    restorable; the API exists for that), and the pinned creates start a series of their own. On a
    live target only with writes allowed and within the run's budget (most useful roles first).
    """
    targets = Targets(project_id=settings.project_id or "", vm_id=settings.vm_id or "")
    if not settings.writes_allowed or not settings.vm_id or left_to_other_run(settings, settings.vm_id):
        return targets  # (another run of the suite has the VM: factory.BackupFactory._claim_after)
    remaining = created.remaining()
    roles = TARGET_ROLES if remaining is None else TARGET_ROLES[:remaining]
    backups: dict[str, str] = {}
    waiter = BackupFactory(settings, client, created.own)
    for role in ("series", "delete", "read"):
        if role not in roles:
            continue
        reset = client.reset_backup_chain(settings.vm_id)
        if not 200 <= reset.status_code < 300:
            break  # without a reset the new backup would share a series with others: no isolation
        # The contract's name is optional. On the bundled mock the read/restore target leaves it
        # out, so that the pinned reads and restores of every seed cover a backup the server named
        # itself (named ones come from the scenario and the lifecycle). On a live target every
        # backup carries the run's prefix: the sweep command finds leftovers by it.
        name = None if role == "read" and settings.is_mock else f"{settings.run_prefix}-fuzz-{role}"
        response = client.create_backup(settings.vm_id, name=name)
        backup_id = data_id(json_body(response))
        if backup_id is None:
            break
        created.record(backup_id)  # before the wait: cleanup must know it whatever happens next
        ready = waiter.wait_ready(backup_id)  # counts the wait in this module's ledger
        if ready.timed_out:
            # Never ready: pin nothing more (each further target would wait as long again).
            client.notify(f"pinned fuzzing: no more targets created, {ready.problem}")
            break
        backups[role] = backup_id
    if backups:
        client.reset_backup_chain(settings.vm_id)  # refused, the last target stays open: still a target
    return Targets(project_id=targets.project_id, vm_id=targets.vm_id, backups=backups)


# -- the lifecycle state machine -------------------------------------------------------------------


class BackupBudgetSpent(BaseException):
    """The run's RAFF_MAX_BACKUPS is spent: the lifecycle stops at once.

    A BaseException, like Schemathesis' FailureGroup, so that Hypothesis neither shrinks nor goes
    on generating scenarios (rejecting them instead makes it try hundreds more, each resetting).
    """


@dataclass
class ScenarioFacts:
    """What happened so far: in the running scenario (``series_deleted``, reset at each scenario's
    start) and in the whole lifecycle test (``creates``, ``waits_given_up``)."""

    series_deleted: bool = False
    creates: int = 0  # accepted creates of the whole run (see _let_every_second_backup_get_ready)
    waits_given_up: bool = False


class LifecycleMachine(APIStateMachine):
    """Mixin over the generated machine: pinned creates, budget, counting, per-scenario cleanup."""

    runner: ClassVar[FuzzRunner]
    created: ClassVar[CreatedBackups]
    facts: ClassVar[ScenarioFacts]
    client: ClassVar[RaffClient]
    target: ClassVar[Settings]  # not "settings": Hypothesis reads that name on state machines
    backups: ClassVar[BackupFactory]  # waits for the created backups it lets get ready
    run_scoped_checks: ClassVar[list[CheckFunction]]  # the runner's checks the config leaves out

    def setup(self) -> None:
        super().setup()
        self.facts.series_deleted = False
        # A fresh series per scenario: a linked series delete then reaches only this scenario's
        # own restore points, never ones that were in the VM's open series before (see the module
        # docstring). On the mock a refused reset (a planted defect) changes nothing that matters.
        if self.target.vm_id:
            answer = self.client.reset_backup_chain(self.target.vm_id)
            if not 200 <= answer.status_code < 300 and not self.target.is_mock:
                pytest.skip(f"resetBackupChain answered {answer.status_code}: cannot start a fresh series safely")

    def before_call(self, case: Case) -> None:
        super().before_call(case)
        targets = self.runner.targets
        # Root calls get a generated project header (config pins do not reach the stateful phase);
        # linked calls copy the creating request's header, which this made the real one. A step
        # whose header is the malformed part keeps it: made valid, it would be an unjudged valid
        # request (negative_data_rejection skips it) that still acts, e.g. reads a deleted backup
        # once before the step that use_after_free judges.
        header_is_negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
        if targets is not None and "X-Project-ID" in case.operation.headers and not header_is_negative:
            case.headers["X-Project-ID"] = targets.project_id
        if operation_id_of(case) == CREATE:
            remaining = self.created.remaining()
            if remaining is not None and remaining <= 0:
                raise BackupBudgetSpent(f"RAFF_MAX_BACKUPS={self.target.max_backups} is spent")
            if targets is not None:
                pin_create_body(case, targets.vm_id)
        self.runner.raff_state.count_cases(operation_id_of(case) or case.operation.label, "stateful")
        self.runner.recorder.begin_case()  # this step's exchanges, for a finding's evidence

    def after_call(self, response: Response, case: Case) -> None:
        super().after_call(response, case)
        if operation_id_of(case) == SERIES_DELETE and 200 <= response.status_code < 300:
            self.facts.series_deleted = True
        if operation_id_of(case) == CREATE and 200 <= response.status_code < 300:
            self._let_every_second_backup_get_ready(response)

    def _let_every_second_backup_get_ready(self, response: Response) -> None:
        """On the bundled mock, wait until every second created backup is ready.

        A step right after a create finds the backup in flight (restore and delete answer 409), so
        without waiting the sequences would hardly ever act on a ready backup: restore a point of a
        closed series, delete a ready point. Waiting for half of them lets the sequences reach both
        states. On the mock a wait costs a few reads; on a live target it takes minutes per backup,
        so there the sequences see backups in flight only. After one wait times out (a server whose
        backups never get ready) nothing more is waited for.
        """
        if not self.target.is_mock or self.facts.waits_given_up:
            return
        self.facts.creates += 1
        backup_id = data_id(json_body(response))
        if backup_id is None or self.facts.creates % 2:
            return
        ready = self.backups.wait_ready(backup_id)  # counts the wait in the scenarios' ledger
        if ready.timed_out:
            self.facts.waits_given_up = True
            self.client.notify(f"stateful sequences: no more waits for backups to get ready, {ready.problem}")

    def validate_response(
        self, response: Response, case: Case, additional_checks: list[CheckFunction] | None = None, **kwargs: Any
    ) -> None:
        __tracebackhide__ = True
        additional_checks = [*(additional_checks or []), *self.run_scoped_checks]
        try:
            super().validate_response(response, case, additional_checks=additional_checks, **kwargs)  # type: ignore[call-arg]
        except FailureGroup as group:
            self.runner.report(group, case, self.runner.recorder.case_exchanges)
            raise

    def teardown(self) -> None:
        # Each scenario leaves nothing behind, so the next one starts from the same state and a
        # live VM never accumulates the scenario's restore points.
        self.created.own.cleanup()
        super().teardown()


def lifecycle_machine(
    schema: BaseSchema, runner: FuzzRunner, created: CreatedBackups, client: RaffClient, settings: Settings
) -> type[APIStateMachine]:
    """The state machine of the schema's links, with the suite's hooks (see LifecycleMachine)."""
    facts = ScenarioFacts()

    def filter_failure(context: Any, failure: Failure, case: Case, response: Response) -> bool:
        # Known false positive: a series delete (DELETE /backups/{id}/chain) removes every point of
        # the series, and Schemathesis recognises only a DELETE on the backup's own path as the
        # reason a created backup later answers 404. The API exposes no series id, so whether the
        # 404'd backup was in the deleted series cannot be told: after any series delete in the
        # scenario, "created resource not found" is not reported (RC-15 has tests of its own).
        return not (facts.series_deleted and isinstance(failure, EnsureResourceAvailability))

    schema.hooks.register_hook_with_name(filter_failure, "filter_failure")
    generated = schema.as_state_machine()
    attributes = {
        "runner": runner,
        "created": created,
        "facts": facts,
        "client": client,
        "target": settings,
        "backups": BackupFactory(settings, client, created.own),
        # The configured checks leave out the ones the suite runs in its own version (checks_config).
        "run_scoped_checks": [check for check in runner.checks if check.__name__ in RUN_SCOPED_CHECK_NAMES],
    }
    return type("BackupsLifecycle", (LifecycleMachine, generated), attributes)


def lifecycle_budget(profile: hypothesis.settings, *, is_mock: bool) -> tuple[int, int]:
    """(scenarios, steps per scenario) for the active Hypothesis profile's max_examples.

    On the bundled mock one scenario per two examples (20 on the default profile): a defect that
    needs a particular path through the links (create, delete, then read the same id) is reached
    on 19 seeds in 20, as with 40 (benchmarks/catch-rate-latest.txt; 10 scenarios missed it on 1
    seed in 6), at half the cost (benchmarks/pair-latest.txt). A live target's scenarios create
    real backups, so there a quarter of the examples.
    """
    scenarios = max(2, profile.max_examples // 2) if is_mock else max(2, profile.max_examples // 4)
    steps = min(10, max(4, profile.max_examples // 4))
    return scenarios, steps


# -- replay ----------------------------------------------------------------------------------------


def run_seed(config: pytest.Config) -> int:
    """The run's seed: ``--hypothesis-seed`` when given, else 0 under a derandomized profile
    (``bounded``, for live targets: the same cases every run), else a fresh one."""
    given = config.getoption("hypothesis_seed", None)
    if given is None:
        return 0 if hypothesis.settings.default.derandomize else random.getrandbits(32)
    try:
        return int(given)
    except ValueError:
        return random.Random(str(given)).getrandbits(32)


def replay_command(config: pytest.Config, nodeid: str, seed: int) -> str:
    """A pytest command that runs this one test again with the same seed, target and mock defects."""
    env = [
        f"{option.env}={shlex.quote(os.environ[option.env])}"
        for name, option in OPTIONS.items()
        if name != "api_key" and os.environ.get(option.env)
    ]
    args = [shlex.quote(nodeid), f"--hypothesis-seed={seed}"]
    for name, option in OPTIONS.items():
        value = config.getoption(f"raff_{name}", None)
        if value is None or name == "report_dir":
            continue
        if name == "api_key":
            args += [option.flag, '"$RAFF_API_KEY"']
        elif option.kind == "bool":
            args += [option.flag] if value else []
        else:
            args += [option.flag, shlex.quote(str(value))]
    for defect in config.getoption("mock_defect", None) or []:
        args += ["--mock-defect", shlex.quote(defect)]
    for fault in config.getoption("mock_fault", None) or []:
        args += ["--mock-fault", shlex.quote(fault)]
    return " ".join([*env, "python -m pytest", *args])


def pytest9_nodeid_shim(node: pytest.Item) -> None:
    """Let Schemathesis 4.32's lazy ``parametrize`` run on pytest >= 9.2.

    It reads and rewrites ``node._nodeid`` to name each operation's subtest; pytest 9.2 keeps the
    node id in ``_id`` and has no ``_nodeid``, so the read raises AttributeError. An instance
    attribute satisfies it and leaves the real node id (which the report keys on) untouched.
    """
    if not hasattr(node, "_nodeid"):
        node._nodeid = node.nodeid  # type: ignore[attr-defined]


# -- helpers ---------------------------------------------------------------------------------------


def _error_exchange(case: Case, base_url: str | None, error: Exception) -> Exchange:
    """The exchange of a request that got no answer (connection refused, reset, timeout)."""
    base = (base_url or case.operation.base_url or "").rstrip("/")
    body = None if isinstance(case.body, NotSet) else case.body
    return Exchange(
        operation_id=operation_id_of(case),
        method=case.method,
        url=f"{base}{case.formatted_path}",
        request_headers=clean_headers(case.headers or {}),
        request_body=body,
        status=None,
        error=f"{type(error).__name__}: {error}",
    )
