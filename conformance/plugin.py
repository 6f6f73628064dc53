"""The pytest plugin: settings, target, requirement markers, evidence and the run's results.

Flow: options -> ``Settings`` (pytest_configure, fails fast with one line) -> collection
(requirement IDs enforced, markers derived) -> target (bundled mock started, or the live
server checked reachable, before any test) -> each test's record (outcome, findings,
evidence) travels in ``report.user_properties`` so it also crosses pytest-xdist -> the
controller builds ``results.json`` and renders the reports at session end.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from conformance.checks import ConformanceFailure, Finding, Inconclusive, spec_gap
from conformance.contract import load_contract
from conformance.exchange import STOP, WRITES
from conformance.ledger import KEPT, OWN_BACKUPS
from conformance.preflight import (
    PreflightError,
    backups_needed,
    check_budget,
    check_local,
    check_other_runs,
    check_target,
)
from conformance.results import JUDGE_NODEID
from conformance.settings import OPTIONS, REDACTED, Settings, SettingsError, resolve
from conformance.state import (
    MAX_EXCHANGES_PER_TEST,
    STATE_KEY,
    RaffState,
    TestRecord,
    exchange_dict,
    finding_dict,
    get_state,
)
from conformance.terminal import failure_block

CONFORMANCE_TESTS = Path(__file__).resolve().parent / "tests"
RECORD_KEY = "raff_record"
# Exit code of a run in which nothing broke the contract but at least one requirement could not be
# proven (pytest's own codes are 0-5): not green, and not "the server failed" either.
EXIT_INCONCLUSIVE = 6

hypothesis_settings.register_profile(
    "thorough", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.register_profile(
    "bounded", max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
hypothesis_settings.register_profile("smoke", max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))


def _only_self_tests(config: pytest.Config) -> bool:
    """Whether every path this run was given lies in the checkout's self-tests (``tests/``)."""
    self_tests = CONFORMANCE_TESTS.parents[1] / "tests"
    paths = [Path(config.invocation_params.dir, arg.split("::")[0]).resolve() for arg in config.args]
    return bool(paths) and all(path == self_tests or self_tests in path.parents for path in paths)


def pytest_configure(config: pytest.Config) -> None:
    options = {name: config.getoption(f"raff_{name}") for name in OPTIONS}
    try:
        settings = resolve(options)
    except SettingsError as error:
        raise pytest.UsageError(f"raff-conformance: {error}") from None
    if not hasattr(config, "workerinput"):
        try:
            baseline, compare = config.getoption("baseline"), config.getoption("compare")
            check_local(settings, report_dir(config, settings), baseline, compare)
        except PreflightError as error:
            raise pytest.UsageError(f"raff-conformance: {error}") from None
    token = getattr(config, "workerinput", {}).get("raff_run_token")
    if token:  # one run, one token: a pytest-xdist worker names its backups as the controller's run
        settings = dataclasses.replace(settings, run_token=token)
    OWN_BACKUPS.clear()  # a program that calls pytest.main() twice runs two runs
    KEPT.clear()
    config.stash[STATE_KEY] = RaffState(config=config, settings=settings, contract=load_contract())
    hypothesis_settings.load_profile(settings.effective_profile)
    # Tests that share the VM's backup series must never interleave under pytest-xdist. A run of
    # only the self-tests (no shared series: each starts its own mock) lets idle workers steal
    # queued tests instead, which keeps a few long subprocess runs from trailing at the end.
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "dist", "no") in ("no", "load"):
        config.option.dist = "worksteal" if _only_self_tests(config) else "loadgroup"
    # Ctrl-C and SIGTERM (CI cancelling a job) stop the run: the flag makes every later request of
    # a test raise again (a library that swallows the first KeyboardInterrupt cannot go on) and no
    # finding is made from what was cut short; fixtures still clean up.
    STOP.interrupted.clear()
    if not hasattr(config, "workerinput"):
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) in (signal.default_int_handler, signal.SIG_DFL):
                signal.signal(signum, _interrupt)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker of the run carries the controller's run token."""
    state = node.config.stash.get(STATE_KEY, None)
    if state is not None:
        node.workerinput["raff_run_token"] = state.settings.run_token


def _interrupt(signum: int, frame: Any) -> None:
    STOP.interrupted.set()
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = get_state(config)
    contract = state.contract
    lines = [state.settings.describe()]
    if not state.settings.base_url:
        lines.append("raff-conformance: no RAFF_BASE_URL: the bundled mock starts on a free loopback port")
    elif state.settings.writes_allowed:
        lines.append(f"raff-conformance: this run's backups are named {state.settings.run_prefix}-…")
    lines.append(
        f"raff-conformance: contract {contract.title} {contract.version} "
        f"(spec {contract.published_sha256[:12]}, overlay {contract.overlay_sha256[:12]})"
    )
    return lines


def _is_conformance_item(item: pytest.Item) -> bool:
    return CONFORMANCE_TESTS in Path(str(item.path)).parents


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = get_state(config)
    problems = []
    for item in items:
        if not _is_conformance_item(item):
            continue
        if item.path.name.endswith("_negative.py"):
            item.add_marker(pytest.mark.negative)
        ids = requirement_ids(item)
        if not ids:
            problems.append(f"{item.nodeid}: no @pytest.mark.req(...) requirement ID")
        problems += [
            f"{item.nodeid}: unknown requirement ID {req_id} (not in specs/requirements.yaml)"
            for req_id in ids
            if req_id not in state.contract.requirements
        ]
    wanted = set(config.getoption("req"))
    unknown_wanted = wanted - set(state.contract.requirements)
    problems += [f"--req {req_id}: not in specs/requirements.yaml" for req_id in sorted(unknown_wanted)]
    if problems:
        raise pytest.UsageError("raff-conformance: " + "; ".join(problems))
    # Requirements the judge's properties count against are judged on every exchange: a selection of
    # one of them keeps the tests that send the scenario's traffic, where the properties have most to see.
    judged = {prop.requirement for prop in state.judge.properties.values()}
    if wanted:
        keep = [
            item
            for item in items
            if not _is_conformance_item(item)
            or wanted & set(requirement_ids(item))
            or (wanted & judged and "scenario" in getattr(item, "fixturenames", ()))
        ]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
    selected = {req_id for item in items if _is_conformance_item(item) for req_id in requirement_ids(item)}
    if selected:
        uncovered = sorted(set(state.contract.requirements) - selected - judged)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if uncovered and reporter is not None:
            reporter.write_line(f"raff-conformance: requirements no selected test covers: {', '.join(uncovered)}")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Bring the target up (or check it, read-only) once, before any test runs."""
    config = session.config
    conformance_items = [item for item in session.items if _is_conformance_item(item)]
    if not conformance_items:
        return
    if hasattr(config, "workerinput"):
        _prepare_target(config, preflight=False)  # the controller checked the target already
        return
    _prepare_target(config, preflight=True)
    state = get_state(config)
    uses_scenario = any("scenario" in getattr(item, "fixturenames", ()) for item in conformance_items)
    try:
        check_budget(state.settings, backups_needed(state.settings, uses_scenario))
    except PreflightError as error:
        _stop_target(state)
        raise pytest.UsageError(f"raff-conformance: {error}") from None


def _prepare_target(config: pytest.Config, *, preflight: bool) -> None:
    state = get_state(config)
    if state.target_ready:
        return
    if not state.settings.base_url:
        from conformance.mock import MockServer, create_app

        app = create_app(
            defects=config.getoption("mock_defect"),
            faults=config.getoption("mock_fault"),
            real_stack=config.getoption("mock_real_stack"),
            time_mode=config.getoption("mock_time"),
        )
        state.mock = MockServer(app).__enter__()
        state.mock_initial = frozenset(app.state.world.backups)
        state.settings = state.settings.with_mock(state.mock.credentials())
        if config.getoption("mock_time") == "requests":
            # Mock time moves only with requests: sleeping between polls would wait for nothing.
            state.settings = dataclasses.replace(state.settings, poll_interval=0.0)
    if preflight:
        try:
            state.preflight_notes = check_target(state.settings)
        except PreflightError as error:
            _stop_target(state)
            message = str(error)
            for secret in state.settings.secrets():
                message = message.replace(secret, REDACTED)
            raise pytest.UsageError(f"raff-conformance: {message}") from None
        for line in state.preflight_notes:
            state.say(f"note: {line}")
    if not state.settings.is_mock:
        # Another run of the suite on the run's VMs: wait for it or stop (exit 4) before the first
        # write; what each VM holds now is where the watch for foreign writes starts.
        settings = state.settings
        try:
            initial = check_other_runs(settings, state.say, enforce=preflight and settings.writes_allowed)
        except PreflightError as error:
            raise pytest.UsageError(f"raff-conformance: {error}") from None
        state.watch_foreign_writes(active=True)
        for vm_id, backup_ids in initial.items():
            state.foreign.start(vm_id, backup_ids, state.foreign.started_at)
    state.target_ready = True


def _stop_target(state: RaffState) -> None:
    if state.mock is not None:
        state.left_in_mock = len(set(state.mock.app.state.world.backups) - state.mock_initial)
        state.mock.__exit__(None, None, None)
        state.mock = None


def report_dir(config: pytest.Config, settings: Settings) -> Path:
    out_dir = Path(settings.report_dir)
    return out_dir if out_dir.is_absolute() else Path(config.rootpath) / out_dir


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # trylast: after pytest's own session teardown, which runs the session fixtures' cleanup when
    # the run was interrupted, so that the results count what the cleanup deleted or left.
    config = session.config
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return
    _stop_target(state)
    if hasattr(config, "workerinput"):
        config.workeroutput["raff"] = json.dumps(_process_output(state))
        return
    interrupted = STOP.interrupted.is_set() or exitstatus == pytest.ExitCode.INTERRUPTED
    if not state.records and not (interrupted and state.target_ready):
        return
    from conformance.results import build_results

    outputs = [*state.worker_outputs, _process_output(state)]
    results = build_results(state, outputs, exitstatus, interrupted=interrupted)
    from conformance.report import write_reports

    out_dir = report_dir(config, state.settings)
    session.exitstatus = _exit_status(results, int(session.exitstatus))
    results["run"]["exit_status"] = int(session.exitstatus)
    write_reports(results, out_dir, secrets=state.settings.secrets())
    state.final_results = results  # type: ignore[attr-defined]


def _exit_status(results: dict[str, Any], exitstatus: int) -> int:
    """The run's exit code from its verdict; pytest's own code where the run itself broke.

    0 pass or spec gaps only (1 with --strict-spec), 1 an open violation, 6 (EXIT_INCONCLUSIVE) no
    violation but a requirement that could not be proven. Accepted (baseline) violations and ones
    a live replay did not reproduce fail nothing. Interrupted, internal and usage errors stay.
    """
    if results["run"].get("interrupted"):
        return pytest.ExitCode.INTERRUPTED
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return exitstatus
    verdict = results["run"]["verdict"]
    if verdict == "violation":
        return pytest.ExitCode.TESTS_FAILED
    if verdict == "inconclusive":
        return EXIT_INCONCLUSIVE
    if verdict == "spec_gap" and results["run"]["strict_spec"]:
        return pytest.ExitCode.TESTS_FAILED
    if exitstatus == pytest.ExitCode.TESTS_FAILED and _failed_outside_suite(results):
        return exitstatus
    return pytest.ExitCode.OK


def _failed_outside_suite(results: dict[str, Any]) -> bool:
    """A failed test that is not one of ours (e.g. a self-test collected alongside) still fails the run."""
    ours = {t["nodeid"] for t in results["tests"]}
    return bool(set(_FAILED_NODEIDS) - ours)


VERDICT_WORDS = {
    "violation": "FAIL: the server breaks the contract or a documented requirement",
    "inconclusive": "INCONCLUSIVE: nothing shows a violation, but some requirements could not be proven",
    "spec_gap": "PASS with spec gaps: the server relies on answers only the overlay documents",
    "pass": "PASS",
    "empty": "nothing ran",
    "interrupted": "INTERRUPTED: the run was stopped before it ended and judges nothing",
}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The requirement table, after pytest's progress line (never inside it)."""
    state = config.stash.get(STATE_KEY, None)
    results = getattr(state, "final_results", None) if state is not None else None
    if results is None:
        return
    reporter = terminalreporter
    reporter.write_sep("=", "raff-conformance: requirements")
    column = max(len(req["verdict"]) for req in results["requirements"]) + 1
    width = max(20, reporter._tw.fullwidth - column - 8)
    # With -q only what needs a reader gets a row; the passes share one line.
    quiet = config.get_verbosity() < 0
    passed = [req["id"] for req in results["requirements"] if quiet and req["verdict"] == "pass"]
    for req in results["requirements"]:
        if req["id"] in passed:
            continue
        reporter.write_line(f"{req['id']:6} {req['verdict']:{column}} {_clip(req['statement'], width)}")
        if req["verdict"] in ("inconclusive", "skipped") and req.get("reason"):
            reporter.write_line(f"{'':{column + 7}} {_clip(req['reason'], width)}")
    for line in textwrap.wrap(f"pass: {', '.join(passed)}", max(40, reporter._tw.fullwidth - 1)) if passed else []:
        reporter.write_line(line)
    _judge_summary(reporter, results, report_dir(config, state.settings) / "report.html")
    _matrix_summary(reporter, results)
    live = results["live"]
    reporter.write_line(
        f"backups created: {live['backups_created']}, waited for ready: {live['wait_seconds']:.1f}s, "
        f"requests sent: {live.get('requests_sent', 0)}"
    )
    if live["leftovers"]:
        # "Not confirmed": no DELETE answered 404, and no DELETE's 2xx has a listing that agrees with it.
        reporter.write_line(f"LEFTOVERS (not confirmed deleted): {', '.join(live['leftovers'])}", red=True)
        if live.get("sweep_command"):
            reporter.write_line(f"  finish the cleanup with: {live['sweep_command']} (add --dry-run to look first)")
    for kept in live.get("kept") or []:
        reporter.write_line(f"KEPT: {kept['message']}", yellow=True)
    foreign = (results.get("sharing") or {}).get("foreign_writes") or []
    if foreign:
        excused = sum(1 for f in results["findings"] if f.get("blocked_by") == "foreign write")
        reporter.write_line(
            f"writes by someone else on the run's VMs: {len(foreign)}; {excused} verdict(s) they touched are "
            "inconclusive, never violations",
            yellow=True,
        )
        for write in foreign[:5]:
            reporter.write_line(f"  {_clip(write['description'], max(40, reporter._tw.fullwidth - 3))}")
    out_dir = report_dir(config, state.settings)
    reporter.write_line(f"reports: {out_dir / 'report.html'}, {out_dir / 'junit.xml'}, {out_dir / 'results.json'}")
    verdict = results["run"]["verdict"]
    reporter.write_line(
        f"verdict: {VERDICT_WORDS.get(verdict, verdict)} (exit code {results['run']['exit_status']})",
        red=verdict == "violation",
        yellow=verdict == "inconclusive",
        green=verdict in ("pass", "spec_gap"),
    )


def _judge_summary(reporter: Any, results: dict[str, Any], report_html: Path) -> None:
    """What the properties every exchange is held to found: one short block per violation."""
    properties = results.get("properties") or []
    judged = sum(p["judged"] for p in properties)
    found = [f for f in results["findings"] if f["test"] == JUDGE_NODEID and f["classification"] == "violation"]
    if not judged and not found:
        return
    reporter.write_line(
        f"properties held on every exchange: {len(properties)} properties, {judged} judgements, "
        f"{len(found)} violation(s)",
        red=bool(found),
    )
    width = max(40, reporter._tw.fullwidth - 6)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for finding in found:
        groups.setdefault((finding["requirement"], finding["title"]), []).append(finding)
    for (requirement, title), alike in groups.items():
        finding = alike[0]
        more = f"  (and {len(alike) - 1} more alike)" if len(alike) > 1 else ""
        reporter.write_line(f"  {requirement}  {title}{more}", red=True)
        for line in textwrap.wrap(finding["message"], width, max_lines=3, placeholder=" …"):
            reporter.write_line(f"    {line}")
        if finding["exchanges"]:
            reporter.write_line(f"    curl: {_clip(finding['exchanges'][-1]['curl'], width)}")
        reporter.write_line(f"    report: {report_html}#finding-{finding['id']}")


def _matrix_summary(reporter: Any, results: dict[str, Any]) -> None:
    """The variant matrix in one line: cells tried, breached, not tried and why."""
    matrix = results.get("matrix")
    if not matrix:
        return
    why = ", ".join(f"{reason} {n}" for reason, n in matrix["not_tried_by_reason"].items())
    reporter.write_line(
        f"variant matrix: {matrix['tried']} cells tried, {matrix['breached']} breached, "
        f"{matrix['not_tried']} not tried{f' ({why})' if why else ''}",
        red=bool(matrix["breached"]),
    )


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _process_output(state: RaffState) -> dict[str, Any]:
    settings = state.settings
    return {
        "observed": [[op, status, n] for (op, status), n in state.observed.items()],
        "backups_created": state.backups_created,
        "wait_seconds": state.wait_seconds,
        "leftovers": state.leftovers,
        "kept": dict(KEPT),
        "foreign": state.foreign.output(),
        "left_in_mock": state.left_in_mock,
        "requests_sent": state.requests_sent,
        "property_stats": state.property_stats,
        "matrix": state.matrix,
        "timeline": state.timeline.to_dict(),
        "judge": {
            "stats": state.judge.stats(),
            "findings": [finding_dict(f) for f in state.judge.findings],
        },
        "target": {
            "base_url": settings.base_url,
            "kind": "mock" if settings.is_mock else "live",
            "project_id": settings.project_id,
            "vm_id": settings.vm_id,
            "api_key": REDACTED,
        },
    }


def pytest_testnodedown(node: Any, error: Any) -> None:
    output = getattr(node, "workeroutput", {}).get("raff")
    if output:
        get_state(node.config).worker_outputs.append(json.loads(output))


def requirement_ids(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for marker in item.iter_markers("req"):
        ids += [str(arg) for arg in marker.args]
    return list(dict.fromkeys(ids))


# -- per-test records ------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    state = get_state(item.config)
    state.current = TestRecord(item.nodeid, requirement_ids(item)) if _is_conformance_item(item) else None
    try:
        return (yield)
    finally:
        state.current = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    state = get_state(item.config)
    state.in_call = True
    try:
        return (yield)
    finally:
        state.in_call = False


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not _is_conformance_item(item):
        return
    settings = get_state(item.config).settings
    for marker in item.iter_markers("requires_setting"):
        for name in marker.args:
            if getattr(settings, name, None) in (None, ""):
                pytest.skip(f"{OPTIONS[name].env} is not set ({OPTIONS[name].help})")
    for marker in item.iter_markers("target"):
        wanted = marker.args[0]
        actual = "mock" if settings.is_mock else "live"
        if wanted != actual:
            pytest.skip(f"runs only against the {wanted} target")
    if item.get_closest_marker("writes") and not settings.writes_allowed:
        reason = "changes state on a live target: set RAFF_ALLOW_WRITES=1 (or --allow-writes) to run it"
        if settings.is_production and settings.allow_writes:
            reason = "refused against production unless RAFF_ALLOW_PRODUCTION=1 (--allow-production) is also set"
        pytest.skip(reason)
    if item.get_closest_marker("restores") and not settings.restores_allowed:
        pytest.skip("restores over the VM's disk: set RAFF_ALLOW_RESTORE=1 (--allow-restore) for a disposable VM")
    if (
        item.get_closest_marker("model")
        and not settings.is_mock
        and "model" not in (item.config.getoption("markexpr") or "")
    ):
        pytest.skip("model-based run is opt-in on a live target: select it with -m model")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    state = get_state(item.config)
    record = state.current
    if record is None:
        return report
    error = call.excinfo.value if call.excinfo is not None else None
    if STOP.interrupted.is_set() or isinstance(error, KeyboardInterrupt):
        # Cut short by Ctrl-C or SIGTERM: nothing it saw is a finding, and the run stops here.
        STOP.interrupted.set()
        item.session.shouldstop = "interrupted (Ctrl-C or SIGTERM)"
        record.findings.clear()
        record.emitted = 0
        record.interrupted = True
        if report.failed or report.when == "call":
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, "interrupted: judges nothing")
        if report.when == "call" and state.in_call:
            return report  # a subtest's report
        report.user_properties.append((RECORD_KEY, json.dumps(_serialize(state, record, report))))
        return report
    if isinstance(error, ConformanceFailure):
        finding = error.finding
        # Right after the check, on every target: only a replay in the same state can say "not reproduced".
        finding.confirmed = replay_confirms(finding, trust_env=state.settings.trust_env)
        record.findings.append(finding)
    converted = False
    if isinstance(error, ConformanceFailure):
        pass
    elif report.failed and error is not None and not (report.when == "call" and state.in_call):
        blocked = _inconclusive_of(error, report.when)
        if blocked is not None:
            # Evidence could not be gathered: the test is inconclusive, neither failed nor passed.
            record.findings += _per_requirement(blocked, record.requirements)
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, f"inconclusive: {blocked.message}")
            record.inconclusive = converted = True
    if report.when == "call" and state.in_call:
        # A pytest 9 subtest (e.g. one Schemathesis operation) reports while its test still runs:
        # note it, and let the test's own call report carry one record for all of them.
        if report.failed:
            record.failed_subtests += 1
            crash = getattr(report.longrepr, "reprcrash", None)
            record.subtest_messages.append(crash.message if crash is not None else str(report.longrepr)[-500:])
            _compact_failure(item, state, record, report, error)
        return report
    if (
        report.when == "call"
        or (report.when == "setup" and not report.passed)
        or (report.when == "teardown" and (report.failed or converted))
    ):
        report.user_properties.append((RECORD_KEY, json.dumps(_serialize(state, record, report))))
    if report.failed and not converted:
        _compact_failure(item, state, record, report, error)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Any:
    """Right before the scenario's first write (its first reset): claim the run's VMs, or leave them
    to another run of the suite (its requirements then end inconclusive, naming that run)."""
    if fixturedef.argname == "scenario":
        state = get_state(request.config)
        if not state.settings.is_mock and state.settings.writes_allowed:
            from conformance.factory import OtherRunOnVm

            try:
                request.getfixturevalue("make_backup").claim_vms()
            except OtherRunOnVm as refusal:
                raise Inconclusive(
                    Finding(
                        "inconclusive",
                        None,
                        None,
                        "precondition",
                        "another run of the suite has the VM",
                        f"the recorded scenario did not run: {refusal}",
                        "low",
                        [],
                        blocked_by="another run of the suite",
                    )
                ) from None
    return (yield)


@pytest.hookimpl(trylast=True)
def pytest_exception_interact(node: Any, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Schemathesis' own hook (tryfirst) rewrites a FailureGroup's longrepr; ours comes back after it."""
    block = getattr(report, "raff_block", None)
    if block is not None:
        report.longrepr = block


def _compact_failure(
    item: pytest.Item, state: RaffState, record: TestRecord, report: pytest.TestReport, error: BaseException | None
) -> None:
    """pytest's traceback becomes the short block of conformance/terminal.py, unless asked for.

    ``-v`` or an explicit ``--tb`` (long, short, native, …) keeps pytest's own report. Findings
    already shown by a subtest's block are not shown again by the test's own.
    """
    config = item.config
    if config.get_verbosity() > 0 or config.getoption("tbstyle", "auto") != "auto" or report.when != "call":
        return
    violations = [f for f in record.findings if f.classification == "violation"]
    fresh, record.shown = violations[record.shown :], len(violations)
    if not fresh and record.failed_subtests and not state.in_call:
        return  # the test's own report after failed subtests: pytest says "contains N failed subtests"
    named = [*record.requirements, *(f.requirement for f in fresh if f.requirement)]
    requirements = {
        req_id: state.contract.requirements[req_id].statement
        for req_id in dict.fromkeys(named)
        if req_id in state.contract.requirements
    }
    crash = getattr(report.longrepr, "reprcrash", None)
    message = str(error) if error is not None else (crash.message if crash is not None else str(report.longrepr))
    report.longrepr = report.raff_block = failure_block(  # type: ignore[attr-defined]
        requirements=requirements,
        findings=fresh,
        message=message,
        report_html=str(report_dir(config, state.settings) / "report.html"),
        location=(str(item.path), (item.location[1] or 0) + 1),
    )


def _inconclusive_of(error: BaseException, when: str) -> Finding | None:
    """The finding of an exception that proves nothing about the server, or None for a failure.

    ``Inconclusive`` says so itself. Any other exception but an assertion (a KeyError on an answer
    the test could not read, a timeout, a fixture that could not set up) stopped the test before
    it could judge: inconclusive too, with what was raised. Assertions and pytest.fail are failures.
    """
    if isinstance(error, Inconclusive):
        return error.finding
    if isinstance(error, AssertionError | pytest.fail.Exception | KeyboardInterrupt):
        return None
    if not isinstance(error, Exception):
        return None  # Schemathesis' FailureGroup and other BaseExceptions keep their own handling
    step = "test setup" if when == "setup" else ("test teardown" if when == "teardown" else "the test")
    return Finding(
        "inconclusive",
        None,
        None,
        "precondition",
        f"could not be proven: {step} stopped",
        f"{step} stopped with {type(error).__name__}: {' '.join(str(error).split())[:400]}",
        "low",
        [],
        blocked_by=step,
    )


def _per_requirement(finding: Finding, requirements: list[str]) -> list[Finding]:
    """A finding that names no requirement belongs to every requirement of its test."""
    if finding.requirement is not None or not requirements:
        return [finding]
    return [dataclasses.replace(finding, requirement=req) for req in requirements]


def replay_confirms(finding: Finding, timeout: float = 30.0, *, trust_env: bool = True) -> bool | None:
    """Send the finding's last request once more, in the same state: does the server answer alike?

    A replay shows flakiness only when it meets the state the original met: so only a request that
    cannot have changed anything (a GET, or a request the server refused with a 4xx) is replayed,
    and only while nothing that may change state was sent since it (``Exchange.in_place``): a
    scenario step judged after later steps moved the state on is not replayed (None), never
    "not reproduced". True: the same status again; False: another answer in the same state.
    """
    exchange = finding.exchanges[-1] if finding.exchanges else None
    request = exchange.raw_request if exchange else None
    if exchange is None or request is None or not exchange.in_place:
        return None
    if request.method != "GET" and not (exchange.status and 400 <= exchange.status < 500):
        return None
    WRITES.sent(request.method)  # a refused write sent again is still a write to the state's count
    try:
        with httpx.Client(timeout=timeout, trust_env=trust_env) as replayer:
            again = replayer.send(request)
    except httpx.HTTPError:
        return exchange.status is None  # the transport failed again, or did not this time
    return again.status_code == exchange.status


def _serialize(state: RaffState, record: TestRecord, report: pytest.TestReport) -> dict[str, Any]:
    requirement = record.requirements[0] if record.requirements else None
    findings = record.findings[record.emitted :]
    record.emitted = len(record.findings)
    seen_gaps = {
        (f.operation, f.exchanges[0].status) for f in record.findings if f.classification == "spec_gap" and f.exchanges
    }
    # A spec gap belongs to the requirement only on the operations it is about: the 401 of a listing
    # that an authentication test made along the way is no finding of that test's requirement.
    operations = {op for req in record.requirements for op in state.contract.requirements[req].operations}
    for exchange in [] if record.gaps_emitted or record.interrupted else record.attached + record.exchanges:
        if exchange.operation_id not in operations:
            continue
        owner = next(
            (r for r in record.requirements if exchange.operation_id in state.contract.requirements[r].operations),
            requirement,
        )
        gap = spec_gap(state.contract, exchange, owner)
        if gap and (gap.operation, exchange.status) not in seen_gaps:
            seen_gaps.add((gap.operation, exchange.status))
            findings.append(gap)
    record.gaps_emitted = True
    failed = report.failed or record.failed_subtests > 0
    outcome = "error" if report.failed and report.when != "call" else ("failed" if failed else report.outcome)
    if record.inconclusive and not failed:
        outcome = "inconclusive"
    if record.interrupted:
        outcome, failed = "skipped", False
    message = None
    if record.interrupted:
        message = "interrupted (Ctrl-C or SIGTERM): judges nothing"
    elif record.failed_subtests and not report.failed:
        message = "; ".join(f.message for f in findings if f.classification == "violation") or "; ".join(
            record.subtest_messages
        )
    elif report.failed:
        message = _failure_message(report, findings)
    elif report.skipped and isinstance(report.longrepr, tuple):
        message = str(report.longrepr[2]).removeprefix("Skipped: ")
    exchanges = (record.attached + record.exchanges)[:MAX_EXCHANGES_PER_TEST]
    return {
        "nodeid": record.nodeid,
        "requirements": record.requirements,
        "when": report.when,
        "outcome": outcome,
        "duration_s": round(report.duration, 4),
        "message": message,
        "findings": [finding_dict(f) for f in findings],
        "exchanges": [exchange_dict(e) for e in exchanges],
        "attached": min(len(record.attached), len(exchanges)),  # the first ones: what the test judged
        "hypothesis_seed": _seed(state.config.getoption("hypothesis_seed", None)),
    }


def _seed(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _failure_message(report: pytest.TestReport, findings: list[Finding]) -> str:
    violations = [f for f in findings if f.classification == "violation"]
    if violations:
        return "; ".join(f"{f.title}: {f.message}" for f in violations)
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)[-2000:]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Runs on the controller for its own tests and for every worker's; the record rides along.
    for key, value in report.user_properties:
        if key == RECORD_KEY:
            _CONTROLLER_RECORDS.append(json.loads(value))
    if report.failed:
        _FAILED_NODEIDS.append(report.nodeid)


_CONTROLLER_RECORDS: list[dict[str, Any]] = []
_FAILED_NODEIDS: list[str] = []


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONTROLLER_RECORDS.clear()
    _FAILED_NODEIDS.clear()
    state = session.config.stash.get(STATE_KEY, None)
    if state is not None:
        state.records = _CONTROLLER_RECORDS
    _COLLECTED["session"] = session


# Schemathesis' lazy schema adds each operation it runs as a subtest to session.testscollected
# (schemathesis/pytest/lazy.py), but pytest's progress counts only the test's own report, so
# the counter would end at ~70 %. The count is put back before pytest prints the progress.
_COLLECTED: dict[str, Any] = {}


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    session = _COLLECTED.get("session")
    if session is not None:
        _COLLECTED["before"] = session.testscollected


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    session = _COLLECTED.get("session")
    if session is not None and "before" in _COLLECTED:
        session.testscollected = _COLLECTED.pop("before")
