"""The ``results.json`` data model (schema_version 1): what the pytest plugin writes and the
report renders.

The TypedDicts below are the documentation of the file; ``validate_results`` walks a loaded
dict against these same classes, so the documentation and the check cannot drift apart.
Field names are part of the contract with the plugin: rename nothing without bumping
``SCHEMA_VERSION``.
"""

import functools
import types
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, Literal, NotRequired, TypedDict, Union, get_args, get_origin, get_type_hints, is_typeddict

SCHEMA_VERSION = 1
REDACTED = "[REDACTED]"
# Keys the suite made up (settings.FAKE_KEY_PREFIX): shown as sent, never a secret.
FAKE_KEY_PREFIX = "conformance-fake-"

# inconclusive: the evidence for the requirement could not be gathered (a precondition failed, a
# step of the scenario was not reached). It is never a violation: nothing shows the server broke
# anything. Precedence when the plugin folds a requirement's findings into one verdict:
# violation > inconclusive > skipped > spec_gap > pass.
Verdict = Literal["pass", "violation", "inconclusive", "spec_gap", "skipped", "not_covered", "not_selected", "known"]
Outcome = Literal["passed", "failed", "inconclusive", "skipped", "error"]
# violation and spec_gap judge the server; inconclusive says a requirement could not be judged;
# note is for a reviewer's eye only and affects no verdict, count or exit code.
Classification = Literal["violation", "spec_gap", "inconclusive", "note"]
# The run's overall verdict; it decides the exit code: 0 pass / spec_gap (1 with --strict-spec),
# 1 violation, 6 inconclusive (no violation, but a requirement could not be proven).
RunVerdict = Literal["pass", "violation", "inconclusive", "spec_gap", "empty", "interrupted"]
Severity = Literal["critical", "high", "medium", "low"]
Origin = Literal["published", "overlay"]  # where a documented status code comes from
RequirementKind = Literal["contract", "documented", "inferred"]

VERDICTS: tuple[str, ...] = get_args(Verdict)


class Suite(TypedDict):
    name: str
    version: str


class Target(TypedDict):
    base_url: str
    kind: Literal["mock", "live", "capture"]  # capture: recorded traffic judged (raff-conformance traffic)
    project_id: str
    vm_id: str
    api_key: str  # always REDACTED; validate_results flags anything else as a leak


class ContractInfo(TypedDict):
    title: str
    version: str
    published_sha256: str
    overlay_sha256: str


class Run(TypedDict):
    started_at: str  # ISO-8601
    duration_s: float
    hypothesis_seed: int | None
    hypothesis_profile: str
    strict_spec: bool  # spec gaps fail the run too
    command: str  # reproduces the whole run
    exit_status: int | None
    verdict: NotRequired[RunVerdict]  # absent in files written before it existed: derived then
    interrupted: NotRequired[bool]  # stopped by Ctrl-C or SIGTERM: the run proves nothing


class Request(TypedDict):
    method: str
    url: str
    headers: dict[str, str]
    body: Any


class Response(TypedDict):
    status: int
    headers: dict[str, str]
    body: Any
    elapsed_s: float


class Exchange(TypedDict):
    operation_id: str | None
    request: Request
    response: Response | None  # None when the request never got an answer
    curl: str
    # conformance.exchange.Exchange.to_dict adds the transport error when response is None.
    error: NotRequired[str | None]
    # When the run saw it (epoch seconds; conformance.state.exchange_dict): the foreign-write rule's clock.
    at: NotRequired[float | None]


class RequirementResult(TypedDict):
    id: str
    statement: str
    source: str
    source_url: str
    kind: RequirementKind
    operations: list[str]
    verdict: Verdict
    reason: str | None  # why it was skipped
    tests: list[str]  # nodeids
    sample: Exchange | None  # one exchange behind a pass, as evidence
    # What a passing test of this requirement alone judged, in order (conformance.results._trail).
    evidence_trail: NotRequired[list[Exchange]]


class TestRecord(TypedDict):
    nodeid: str
    requirements: list[str]
    outcome: Outcome
    duration_s: float
    message: str | None
    findings: list[str]  # Finding ids
    # conformance.results keeps every exchange of the test here (samples are drawn from it);
    # the report does not show them beyond the samples.
    exchanges: NotRequired[list[Exchange]]
    # The exchanges the test attached as the evidence of its verdict (a prefix of each record's).
    evidence: NotRequired[list[Exchange]]


class Expected(TypedDict):
    statuses: dict[str, Origin]
    schema_excerpt: str | None


class Replay(TypedDict):
    seed: int | None
    case_id: str | None
    command: str | None


class Known(TypedDict):
    reason: str
    ticket: str
    expires: str  # YYYY-MM-DD


class Finding(TypedDict):
    id: str
    classification: Classification
    requirement: str | None
    test: str
    operation: str | None
    check: str
    title: str
    message: str  # plain words; JUnit and HTML show exactly this text
    severity: Severity
    exchanges: list[Exchange]  # usually one; stateful findings carry the whole sequence
    expected: Expected | None  # None when the finding names no operation of the contract
    replay: Replay | None  # property-based findings only
    confirmed: bool | None  # replay in the same state: True reproduced, False not reproduced, None not replayed
    known: Known | None  # set by compare.apply_baseline (violations only)
    # inconclusive only: the step or precondition that blocked, e.g. "ready_A3: backup 1234 still
    # 'pending' after 30s"; ``exchanges`` then hold that step's exchange. None or absent otherwise.
    blocked_by: NotRequired[str | None]


class OperationCoverage(TypedDict):
    operation_id: str
    method: str
    path: str
    documented: dict[str, Origin]
    observed: dict[str, int]
    undocumented_observed: list[str]


class SpecGapRelied(TypedDict):
    operation_id: str
    status: str
    description: str
    source: str
    basis: Literal["documented", "inferred"]
    count: int


class Coverage(TypedDict):
    operations: list[OperationCoverage]
    spec_gaps_relied_on: list[SpecGapRelied]


class OperationFuzz(TypedDict):
    cases: int
    phases: dict[str, int]


class PropertyBased(TypedDict):
    operations: dict[str, OperationFuzz]
    checks: list[str]
    limitations: NotRequired[list[str]]  # what generated traffic left out on the target, and why


class KeptBackup(TypedDict):
    backup_id: str
    depends_on_it: str  # the backup that is not the run's and depends on it, in words
    sweep_command: str  # deletes the run's backups once that one is gone
    message: str


class ForeignWrite(TypedDict):
    """A write on one of the run's VMs that the run did not make (conformance.state.ForeignWrite)."""

    backup_id: str
    vm_id: str
    # "another client": a write in a judged capture by a client other than its busiest one
    kind: Literal["appeared", "vanished", "another client"]
    name: str | None
    created_at: str | None
    shown_by: str
    seen_at: float
    window_from: float
    other_run: str | None
    description: str


class Sharing(TypedDict):
    run_token: str  # in the name of every backup the run created
    foreign_writes: list[ForeignWrite]  # each made the verdicts it touched inconclusive


class TimelineSpan(TypedDict):
    """One thing in flight (conformance.timeline.Span): a backup from its create to ready, a restore
    from its 202 to settled. Seconds since the run's start."""

    label: str  # the scenario's name for it: "A1", "restore B1"
    kind: str  # "backup" or "restore"
    vm: str  # which of the run's VMs: "A" or "B"
    started_s: float
    ended_s: float | None  # None: still in flight when results.json was written
    outcome: str | None  # "ready", or what happened instead
    critical: bool  # it ended a block: had it been faster, the run would have been


class TimelineBlock(TypedDict):
    """A stretch the run stood still for, waiting for ``waiting_for`` to settle."""

    started_s: float
    ended_s: float
    waiting_for: list[str]
    ended_by: str | None  # the span whose settling ended it; None when the block was cut short


class Timeline(TypedDict):
    """The run's waits (conformance/timeline.py)."""

    spans: list[TimelineSpan]
    blocks: list[TimelineBlock]
    blocked_s: float  # the blocks' seconds, summed
    written_s: float | None  # when it was written: the run's length, on the same clock


class Live(TypedDict):
    backups_created: int
    wait_seconds: float
    leftovers: list[str]
    requests_sent: NotRequired[int]
    sweep_command: NotRequired[str | None]  # deletes the leftovers; set when there are any
    # The bundled mock only: backups still in its world at the end that the run created (read from
    # the mock's state itself, not through the API, so a server whose reads lie cannot hide one).
    left_in_mock: NotRequired[int | None]
    # The run's backups that another client's backup depends on (every delete refused 409): kept.
    kept: NotRequired[list[KeptBackup]]
    timeline: NotRequired[Timeline]  # the run's waits (conformance/timeline.py); absent in older files


class OutsideRow(TypedDict):
    request: str  # "METHOD host/path"
    count: int


class Capture(TypedDict):
    """A judged HAR capture (conformance/traffic.py): what it held and what it could not prove."""

    file: str
    entries: int
    judged: int  # entries the contract speaks about, with a response
    writes: int
    span_s: float
    unreadable: dict[str, int]  # why an entry could not be read -> how many
    no_response: int
    outside_contract: list[OutsideRow]  # the 50 most frequent
    outside_contract_total: int
    unknown_parts: dict[str, int]  # "response body" / "request body" -> entries lacking it
    stripped_keys: int  # requests whose key the capture does not hold (a browser strips it)
    overlapping_pairs: int  # pairs of exchanges, one a write, whose times overlap
    out_of_order: int
    clients: int
    cut: NotRequired[str | None]  # the file ends before its entries do: what was read is judged


class PropertyRow(TypedDict):
    """One property of specs/properties.yaml and what conformance.judge saw of it in the run."""

    id: str
    statement: str
    source: str
    requirement: str
    judged: int  # exchanges it judged
    violations: int


class PreviousRun(TypedDict):
    started_at: str
    path: str


class Comparison(TypedDict):
    previous: PreviousRun
    new: list[str]  # finding keys
    fixed: list[str]
    unchanged: list[str]


class BaselineEntry(TypedDict):
    requirement: str | None
    operation: str | None
    check: str
    title: str
    reason: str
    ticket: str
    expires: str  # YYYY-MM-DD


class BaselineMatch(BaselineEntry):
    key: str  # finding_key of the entry
    findings: list[str]  # ids of the findings it matched in this run


class Baseline(TypedDict):
    path: str
    known: list[BaselineMatch]  # unexpired entries that matched: those findings are not failures
    expired: list[BaselineMatch]  # past their date: matching findings count as violations again
    fixed: list[BaselineMatch]  # no finding matches any more: the entry can be deleted


class MatrixCell(TypedDict):
    """One operation x kind of input of the variant matrix: how many of its cells were sent."""

    tried: int
    breached: int  # tried cells whose exchanges the judge found in breach
    not_tried: int
    reasons: list[str]  # why cells were not tried, each once ("budget: ... (3)")


class MatrixOperation(TypedDict):
    operation: str
    kinds: dict[str, MatrixCell]


class MatrixBreach(TypedDict):
    operation: str
    kind: str
    variant: str
    requirements: list[str]
    requests: list[str]


class Matrix(TypedDict):
    """The variant matrix (conformance/matrix.py) of the run, compactly."""

    kinds: list[str]
    operations: list[MatrixOperation]
    tried: int
    breached: int
    not_tried: int
    not_tried_by_reason: dict[str, int]
    breaches: list[MatrixBreach]


class Results(TypedDict):
    schema_version: int
    suite: Suite
    target: Target
    contract: ContractInfo
    run: Run
    requirements: list[RequirementResult]
    tests: list[TestRecord]
    findings: list[Finding]
    coverage: Coverage
    property_based: PropertyBased
    # Properties every exchange was held to (conformance/judge.py); absent in older files.
    properties: NotRequired[list[PropertyRow]]
    # The variant matrix, when the run sent it; absent in older files.
    matrix: NotRequired[Matrix | None]
    live: Live
    sharing: NotRequired[Sharing]  # absent in older files
    capture: NotRequired[Capture]  # only when recorded traffic was judged
    comparison: Comparison | None
    baseline: Baseline | None


def finding_key(finding: Mapping[str, Any]) -> str:
    """The identity of a finding across runs (ids like F1 are per run, this is not)."""
    return (
        f"{finding.get('requirement') or '-'}|{finding.get('operation') or '-'}|{finding['check']}|{finding['title']}"
    )


# --- derived facts shared by the HTML and JUnit renderers, so both tell the same story ---

# What a test counts as for the run. inconclusive is neither a failure nor a pass.
TestCounts = Literal["ok", "failure", "error", "skipped", "known", "inconclusive"]


def classify_test(
    test: Mapping[str, Any], findings_by_id: Mapping[str, Mapping[str, Any]], strict_spec: bool
) -> TestCounts:
    """How a test counts for the run: a spec gap, a baselined finding or a note is not a failure;
    a test whose evidence could not be gathered is inconclusive, unless it also found a violation."""
    if test["outcome"] == "error":
        return "error"
    if test["outcome"] == "skipped":
        return "skipped"
    findings = [findings_by_id[fid] for fid in test["findings"] if fid in findings_by_id]
    open_violations = [f for f in findings if f["classification"] == "violation" and not f.get("known")]
    gaps = [f for f in findings if f["classification"] == "spec_gap"]
    if open_violations or (strict_spec and gaps):
        return "failure"
    if test["outcome"] == "failed":
        # A failed test with no finding is an unexplained failure; one whose violations are all
        # baselined is a known issue.
        return "known" if any(f.get("known") for f in findings) else "failure"
    if test["outcome"] == "inconclusive" or any(f["classification"] == "inconclusive" for f in findings):
        return "inconclusive"
    return "ok"


# --- validation ---


@functools.cache  # get_type_hints evaluates every annotation again on each call: once per record otherwise
def _type_hints(tp: Any) -> dict[str, Any]:
    return get_type_hints(tp)


def validate_results(d: Any) -> list[str]:
    """Every problem found in a loaded results.json, each naming where it is; [] when valid."""
    problems: list[str] = []
    _check(d, Results, "", problems)
    if problems:
        return problems  # cross-references are meaningless on a malformed shape
    if d["schema_version"] != SCHEMA_VERSION:
        problems.append(f"schema_version: {d['schema_version']} is not {SCHEMA_VERSION}")
    if d["target"]["api_key"] != REDACTED:
        problems.append(f"target.api_key: must be {REDACTED!r}, never the key itself")
    _check_iso("run.started_at", d["run"]["started_at"], problems)
    requirement_ids = _unique("requirements", (r["id"] for r in d["requirements"]), problems)
    test_ids = _unique("tests", (t["nodeid"] for t in d["tests"]), problems)
    finding_ids = _unique("findings", (f["id"] for f in d["findings"]), problems)
    for i, req in enumerate(d["requirements"]):
        for nodeid in req["tests"]:
            if nodeid not in test_ids:
                problems.append(f"requirements[{i}] ({req['id']}).tests: unknown test {nodeid!r}")
        if req["verdict"] == "not_covered" and req["tests"]:
            problems.append(f"requirements[{i}] ({req['id']}): verdict not_covered but it lists tests")
        if req["verdict"] == "skipped" and not req["reason"]:
            problems.append(f"requirements[{i}] ({req['id']}): skipped without a reason")
        if req["verdict"] == "inconclusive" and not req["tests"]:
            problems.append(f"requirements[{i}] ({req['id']}): verdict inconclusive but it lists no tests")
    for i, test in enumerate(d["tests"]):
        for rid in test["requirements"]:
            if rid not in requirement_ids:
                problems.append(f"tests[{i}] ({test['nodeid']}).requirements: unknown requirement {rid!r}")
        for fid in test["findings"]:
            if fid not in finding_ids:
                problems.append(f"tests[{i}] ({test['nodeid']}).findings: unknown finding {fid!r}")
    for i, finding in enumerate(d["findings"]):
        where = f"findings[{i}] ({finding['id']})"
        if finding["requirement"] is not None and finding["requirement"] not in requirement_ids:
            problems.append(f"{where}.requirement: unknown requirement {finding['requirement']!r}")
        if finding["test"] not in test_ids:
            problems.append(f"{where}.test: unknown test {finding['test']!r}")
        if finding["known"] is not None:
            _check_date(f"{where}.known.expires", finding["known"]["expires"], problems)
            if finding["classification"] in ("inconclusive", "note"):
                problems.append(
                    f"{where}.known: a baseline accepts violations, not {finding['classification']} findings"
                )
        if finding.get("blocked_by") is not None and finding["classification"] != "inconclusive":
            problems.append(f"{where}.blocked_by: only an inconclusive finding names a blocking step")
    if "timeline" in d["live"]:
        _check_timeline(d["live"]["timeline"], problems)
    return problems


def _check_timeline(timeline: Mapping[str, Any], problems: list[str]) -> None:
    """A block waits for spans of the timeline and is ended by one of them; nothing ends before it starts."""
    labels = {span["label"] for span in timeline["spans"]}
    for i, span in enumerate(timeline["spans"]):
        if span["ended_s"] is not None and span["ended_s"] < span["started_s"]:
            problems.append(f"live.timeline.spans[{i}] ({span['label']}): ends before it starts")
    for i, block in enumerate(timeline["blocks"]):
        where = f"live.timeline.blocks[{i}]"
        if block["ended_s"] < block["started_s"]:
            problems.append(f"{where}: ends before it starts")
        for label in block["waiting_for"]:
            if label not in labels:
                problems.append(f"{where}.waiting_for: unknown span {label!r}")
        if block["ended_by"] is not None and block["ended_by"] not in block["waiting_for"]:
            problems.append(f"{where}.ended_by: {block['ended_by']!r} is not a span it waited for")


def _unique(where: str, ids: Iterable[str], problems: list[str]) -> set[str]:
    seen: set[str] = set()
    for value in ids:
        if value in seen:
            problems.append(f"{where}: duplicate id {value!r}")
        seen.add(value)
    return seen


def _check_iso(where: str, value: str, problems: list[str]) -> None:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"{where}: {value!r} is not an ISO-8601 timestamp")


def _check_date(where: str, value: str, problems: list[str]) -> None:
    try:
        date.fromisoformat(value)
    except ValueError:
        problems.append(f"{where}: {value!r} is not a YYYY-MM-DD date")


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", None) or str(tp)


def _check(value: Any, tp: Any, path: str, problems: list[str]) -> None:
    """Append a problem for each place where ``value`` does not fit the annotation ``tp``."""
    here = path or "(root)"
    origin = get_origin(tp)
    if tp is Any:
        return
    if tp is type(None):
        if value is not None:
            problems.append(f"{here}: expected null, got {type(value).__name__}")
        return
    if origin in (Union, types.UnionType):
        arms = get_args(tp)
        if value is None:
            if type(None) not in arms:
                problems.append(f"{here}: must not be null")
            return
        candidates = [arm for arm in arms if arm is not type(None)]
        if len(candidates) == 1:
            # Optional[X]: report X's own problems, which say more than "no arm matched".
            _check(value, candidates[0], path, problems)
            return
        for arm in candidates:
            trial: list[str] = []
            _check(value, arm, path, trial)
            if not trial:
                return
        problems.append(f"{here}: expected one of {', '.join(_type_name(a) for a in candidates)}")
        return
    if origin is Literal:
        if value not in get_args(tp):
            problems.append(f"{here}: {value!r} is not one of {_type_name(tp)}")
        return
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{here}: expected a list, got {type(value).__name__}")
            return
        (item_tp,) = get_args(tp)
        for i, item in enumerate(value):
            _check(item, item_tp, f"{path}[{i}]", problems)
        return
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{here}: expected an object, got {type(value).__name__}")
            return
        _, value_tp = get_args(tp)
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{here}: key {key!r} is not a string")
            _check(item, value_tp, f"{path}[{key!r}]", problems)
        return
    if is_typeddict(tp):
        if not isinstance(value, dict):
            problems.append(f"{here}: expected an object ({tp.__name__}), got {type(value).__name__}")
            return
        hints = _type_hints(tp)
        for key in sorted(tp.__required_keys__ - value.keys()):
            problems.append(f"{here}: missing field {key!r}")
        for key in sorted(value.keys() - hints.keys()):
            # Unknown fields are usually misspelt ones; the plugin and the report must agree.
            problems.append(f"{here}: unknown field {key!r}")
        for key, field_tp in hints.items():
            if key in value:
                _check(value[key], field_tp, f"{path}.{key}" if path else key, problems)
        return
    # Plain scalars. bool is a subclass of int in Python but never a count in this model.
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    if not ok:
        problems.append(f"{here}: expected {_type_name(tp)}, got {type(value).__name__}")
