"""Self-tests of the run's waits (conformance/timeline.py) on a clock the test moves by hand."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
from _pytest.terminal import TerminalReporter

from conformance.results import _timeline
from conformance.settings import Settings
from conformance.state import RaffState
from conformance.timeline import Timeline


class Clock:
    """Monotonic seconds that pass only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def shown() -> list[tuple[str, bool]]:
    return []


@pytest.fixture
def timeline(clock: Clock, shown: list[tuple[str, bool]]) -> Timeline:
    return Timeline(show=lambda line, final: shown.append((line, final)), clock=clock)


def test_timeline_block__ends_with_the_last_span_it_waits_for(clock: Clock, timeline: Timeline) -> None:
    # Given A1 and B1 in flight together
    timeline.begin("A1", "backup", "A")
    clock.tick(2)
    timeline.begin("B1", "backup", "B")
    # When the run waits for both, and B1 settles before A1
    with timeline.blocked("A1", "B1") as block:
        clock.tick(5)
        timeline.end("B1", "ready")
        clock.tick(3)
        timeline.end("A1", "ready")
    # Then one block of 8 s, ended by A1: A1 is on the critical path, B1 is not
    assert (block.started, block.ended) == (1002.0, 1010.0)
    assert block.waiting_for == ("A1", "B1")
    assert block.ended_by == "A1"
    assert timeline.blocks == [block]
    assert timeline.critical() == ["A1"]
    assert timeline.spans["A1"].critical and not timeline.spans["B1"].critical


def test_timeline_block__waits_only_for_what_is_still_in_flight(clock: Clock, timeline: Timeline) -> None:
    timeline.begin("A1", "backup", "A")
    timeline.begin("A2", "backup", "A")
    clock.tick(4)
    timeline.end("A1", "ready")

    with timeline.blocked("A1", "A2", "never-begun") as block:
        clock.tick(6)
        timeline.end("A2", "ready")

    assert block.waiting_for == ("A2",)
    assert timeline.critical() == ["A2"]
    assert not timeline.spans["A1"].critical


def test_timeline_block__on_settled_spans_is_no_block(clock: Clock, timeline: Timeline, shown: list) -> None:
    timeline.begin("A1", "backup", "A")
    clock.tick(1)
    timeline.end("A1", "ready")

    with timeline.blocked("A1"):
        clock.tick(1)

    assert timeline.blocks == []
    assert shown == []  # nothing was waited for: nothing to say


def test_timeline_block__cut_short_is_ended_by_nothing(clock: Clock, timeline: Timeline) -> None:
    # A block left by an exception (Ctrl-C) while A2 is still in flight: A1 settled inside it, but
    # did not end it, so it is not on the critical path.
    timeline.begin("A1", "backup", "A")
    timeline.begin("A2", "backup", "A")
    with pytest.raises(KeyboardInterrupt), timeline.blocked("A1", "A2") as block:
        clock.tick(3)
        timeline.end("A1", "ready")
        clock.tick(2)
        raise KeyboardInterrupt

    assert block.ended == 1005.0
    assert block.ended_by is None
    assert timeline.critical() == []
    assert not timeline.spans["A1"].critical
    assert timeline.blocks == [block]  # the run still stood still for it


def test_timeline_span__settling_outside_a_block_is_not_critical(clock: Clock, timeline: Timeline) -> None:
    # B1 settles while the run waits for A1 only: B1 ran beside the critical path.
    timeline.begin("A1", "backup", "A")
    timeline.begin("B1", "backup", "B")
    with timeline.blocked("A1"):
        clock.tick(2)
        timeline.end("B1", "ready")
        clock.tick(2)
        timeline.end("A1", "ready")

    assert timeline.critical() == ["A1"]
    assert timeline.blocks[0].ended_by == "A1"


def test_timeline_end__twice_keeps_the_first(clock: Clock, timeline: Timeline) -> None:
    timeline.begin("A1", "backup", "A")
    clock.tick(3)
    timeline.end("A1", "ready")
    clock.tick(3)
    timeline.end("A1", "timed out")
    timeline.end("unknown", "ready")  # a label never begun: nothing to end

    assert (timeline.spans["A1"].ended, timeline.spans["A1"].outcome) == (1003.0, "ready")
    assert set(timeline.spans) == {"A1"}


def test_timeline_blocked__nested_restores_the_outer_block(clock: Clock, timeline: Timeline) -> None:
    timeline.begin("A1", "backup", "A")
    timeline.begin("B1", "backup", "B")
    with timeline.blocked("A1") as outer:
        with timeline.blocked("B1"):
            clock.tick(1)
            timeline.end("B1", "ready")
        clock.tick(1)
        timeline.end("A1", "ready")
        assert timeline.line().startswith("waiting 2s for A1")  # the outer block is current again

    assert outer.ended_by == "A1"
    assert timeline.critical() == ["B1", "A1"]


def test_timeline_begin__again_keeps_the_earlier_span(clock: Clock, timeline: Timeline) -> None:
    # A label begun twice (a second restore of B1): both happened, both are drawn.
    timeline.begin("restore B1", "restore", "B")
    with timeline.blocked("restore B1"):
        clock.tick(4)
        timeline.end("restore B1", "settled")
    timeline.begin("restore B1", "restore", "B")
    clock.tick(2)
    timeline.end("restore B1", "settled")

    spans = timeline.to_dict()["spans"]

    assert [(s["label"], s["started_s"], s["ended_s"], s["critical"]) for s in spans] == [
        ("restore B1", 0.0, 4.0, True),
        ("restore B1", 4.0, 6.0, False),
    ]


# --- the line on the terminal


def test_timeline_line__in_flight_with_the_last_status_seen(clock: Clock, timeline: Timeline, shown: list) -> None:
    timeline.begin("A1", "backup", "A")
    clock.tick(10)
    timeline.begin("B1", "backup", "B")
    with timeline.blocked("A1", "B1"):
        clock.tick(5)
        timeline.seen("A1", "pending")
        assert shown[-1] == ("waiting 5s for A1 pending for 15s, B1 in flight for 5s", False)
        clock.tick(7)
        timeline.end("A1", "ready")
        timeline.seen("B1", "creating")
        assert shown[-1] == ("waiting 12s for A1 ready, B1 creating for 12s", False)
        clock.tick(1)
        timeline.end("B1", "ready")

    assert shown[-1] == ("waited 13s for A1 ready, B1 ready", True)
    assert [final for _, final in shown] == [False, False, True]  # one final line per block


def test_timeline_line__empty_outside_a_block(timeline: Timeline, shown: list) -> None:
    timeline.begin("A1", "backup", "A")
    timeline.seen("A1", "pending")

    assert timeline.line() == ""
    assert shown == []  # no block: nothing to show


def test_timeline_seen__after_the_end_changes_nothing(clock: Clock, timeline: Timeline, shown: list) -> None:
    timeline.begin("A1", "backup", "A")
    timeline.end("A1", "ready")
    timeline.seen("A1", "pending")
    timeline.seen("unknown", "pending")

    assert timeline.spans["A1"].status is None
    assert shown == []


def test_timeline_line__server_status_cannot_break_the_line(clock: Clock, timeline: Timeline) -> None:
    # The status is the server's text: a carriage return or an escape sequence would rewrite the
    # terminal. (Its length is RaffState.progress's to cut, after redacting.)
    timeline.begin("A1", "backup", "A")
    with timeline.blocked("A1"):
        timeline.seen("A1", "pend\r\x1b[2Jing")
        line = timeline.line()
        timeline.end("A1", "ready")

    assert timeline.spans["A1"].status == "pend?[2Jing"
    assert line == "waiting 0s for A1 pend?[2Jing for 0s"


# --- results.json


def test_timeline_to_dict__seconds_since_the_run_started(clock: Clock) -> None:
    timeline = Timeline(clock=clock)  # no terminal: nothing is shown, everything is recorded
    clock.tick(1.04)
    timeline.begin("A1", "backup", "A")
    timeline.begin("B1", "backup", "B")
    with timeline.blocked("A1"):
        clock.tick(10)
        timeline.end("A1", "ready")
    clock.tick(0.5)
    with timeline.blocked("B1"):
        clock.tick(2)
        timeline.end("B1", "failed")
    timeline.begin("restore A1", "restore", "A")  # still in flight when results are written
    clock.tick(3)

    assert timeline.to_dict() == {
        "spans": [
            {"label": "A1", "kind": "backup", "vm": "A", "started_s": 1.0, "ended_s": 11.0,
             "outcome": "ready", "critical": True},
            {"label": "B1", "kind": "backup", "vm": "B", "started_s": 1.0, "ended_s": 13.5,
             "outcome": "failed", "critical": True},
            {"label": "restore A1", "kind": "restore", "vm": "A", "started_s": 13.5, "ended_s": None,
             "outcome": None, "critical": False},
        ],
        "blocks": [
            {"started_s": 1.0, "ended_s": 11.0, "waiting_for": ["A1"], "ended_by": "A1"},
            {"started_s": 11.5, "ended_s": 13.5, "waiting_for": ["B1"], "ended_by": "B1"},
        ],
        "blocked_s": 12.0,
        "written_s": 16.5,
    }


def test_timeline_to_dict__nothing_waited(clock: Clock) -> None:
    timeline = Timeline(clock=clock)
    clock.tick(2)

    assert timeline.to_dict() == {"spans": [], "blocks": [], "blocked_s": 0.0, "written_s": 2.0}


# --- the terminal line (RaffState.progress): pytest's own TerminalReporter, writing into a buffer

KEY = "raff_pub_CANARY0123456789abcdef"  # the configured key of these tests: must never be printed
OTHER_KEY = "raff_pub_OTHERCANARY9876543210"  # the other account's key: never printed either


class Output(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class Plugins:
    def __init__(self, reporter: TerminalReporter) -> None:
        self.reporter = reporter

    def get_plugin(self, name: str) -> Any:
        return self.reporter if name == "terminalreporter" else None  # no capture manager: nothing to suspend


def _state(pytestconfig: pytest.Config, *, tty: bool, worker: bool = False) -> tuple[Any, Output]:
    """What RaffState.progress reads of its state: the config (its reporter), the key, the open line."""
    out = Output(tty)
    reporter = TerminalReporter(pytestconfig, out)
    config = SimpleNamespace(pluginmanager=Plugins(reporter), get_terminal_writer=lambda: reporter._tw)
    if worker:
        config.workerinput = {"workerid": "gw0"}  # what xdist sets on a worker's config
    state = SimpleNamespace(config=config, settings=Settings(api_key=KEY, other_account_api_key=OTHER_KEY),
                            progress_open=False)
    return state, out


def _wait(state: Any, clock: Clock, *, status: str = "pending") -> None:
    """One block of the run on its terminal: two polls of A1, then A1 ready."""
    timeline = Timeline(show=lambda line, final: RaffState.progress(state, line, final), clock=clock)
    timeline.begin("A1", "backup", "A")
    with timeline.blocked("A1"):
        for _ in range(2):
            clock.tick(5)
            timeline.seen("A1", status)
        timeline.end("A1", "ready")


def test_progress__on_a_terminal_one_line_rewritten_in_place(pytestconfig: pytest.Config, clock: Clock) -> None:
    state, out = _state(pytestconfig, tty=True)
    state.config.pluginmanager.reporter.write("conformance/tests/test_x.py ..")  # a line of results

    _wait(state, clock)

    text = out.getvalue()
    # The results line is left whole; the wait's line starts on a line of its own.
    assert text.startswith("conformance/tests/test_x.py ..\n\r")
    rewrites = text.split("\n")[1].split("\r")[1:]
    assert [r.rstrip() for r in rewrites] == [
        "raff-conformance: waiting 5s for A1 pending for 5s",
        "raff-conformance: waiting 10s for A1 pending for 10s",
        "raff-conformance: waited 10s for A1 ready",
    ]
    assert text.endswith("\n") and text.count("\n") == 2  # ended by a newline when the wait ended
    assert not state.progress_open


def test_progress__on_a_terminal_never_wider_than_it(pytestconfig: pytest.Config, clock: Clock) -> None:
    state, out = _state(pytestconfig, tty=True)
    width = state.config.get_terminal_writer().fullwidth

    _wait(state, clock, status="pending" * 3)
    timeline = Timeline(show=lambda line, final: RaffState.progress(state, line, final), clock=clock)
    labels = [f"A{i}-with-a-rather-long-label" for i in range(10)]
    for label in labels:
        timeline.begin(label, "backup", "A")
    with timeline.blocked(*labels):
        for label in labels:
            timeline.end(label, "ready")

    for rewrite in out.getvalue().replace("\n", "\r").split("\r"):
        assert len(rewrite) < width, rewrite  # a wrapped line would leave its first part behind


def test_progress__in_a_file_one_line_per_wait(pytestconfig: pytest.Config, clock: Clock) -> None:
    state, out = _state(pytestconfig, tty=False)

    _wait(state, clock)
    _wait(state, clock)

    assert out.getvalue() == "raff-conformance: waited 10s for A1 ready\n" * 2


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "file"])
def test_progress__an_xdist_worker_prints_nothing(pytestconfig: pytest.Config, clock: Clock, tty: bool) -> None:
    state, out = _state(pytestconfig, tty=tty, worker=True)

    _wait(state, clock)

    assert out.getvalue() == ""


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "file"])
def test_progress__never_prints_the_api_key(pytestconfig: pytest.Config, clock: Clock, tty: bool) -> None:
    # A server that puts the key it was sent into a backup's status, even one longer than the line.
    state, out = _state(pytestconfig, tty=tty)
    _wait(state, clock, status=KEY)
    _wait(state, clock, status="x" * 300 + KEY)
    _wait(state, clock, status=OTHER_KEY)
    # A block cut short prints its last status in its final line, on a file too.
    timeline = Timeline(show=lambda line, final: RaffState.progress(state, line, final), clock=clock)
    timeline.begin("A1", "backup", "A")
    with pytest.raises(KeyboardInterrupt), timeline.blocked("A1"):
        clock.tick(2)
        timeline.seen("A1", KEY)
        raise KeyboardInterrupt

    text = out.getvalue()
    assert KEY not in text and KEY[:12] not in text and OTHER_KEY not in text
    assert "A1 [REDACTED]" in text


def test_progress__a_line_said_mid_wait_keeps_the_wait_line(pytestconfig: pytest.Config, clock: Clock) -> None:
    state, out = _state(pytestconfig, tty=True)
    timeline = Timeline(show=lambda line, final: RaffState.progress(state, line, final), clock=clock)
    timeline.begin("A1", "backup", "A")
    with timeline.blocked("A1"):
        clock.tick(5)
        timeline.seen("A1", "pending")
        RaffState.say(state, "a foreign write on VM A")
        timeline.end("A1", "ready")

    lines = [line.split("\r")[-1].rstrip() for line in out.getvalue().split("\n")]
    assert lines == [
        "raff-conformance: waiting 5s for A1 pending for 5s",
        "raff-conformance: a foreign write on VM A",
        "raff-conformance: waited 5s for A1 ready",
        "",
    ]


# --- which process's timeline results.json holds


def test_results_timeline__the_process_that_waited(clock: Clock) -> None:
    # Under xdist the scenario waits in a worker; the controller's own timeline is empty.
    controller = Timeline(clock=clock)
    worker = Timeline(clock=clock)
    worker.begin("A1", "backup", "A")
    with worker.blocked("A1"):
        clock.tick(30)
        worker.end("A1", "ready")
    state = SimpleNamespace(timeline=controller)
    idle = {"timeline": controller.to_dict()}

    assert _timeline(state, [{"timeline": worker.to_dict()}, idle]) == worker.to_dict()
    assert _timeline(state, [idle, {}]) == controller.to_dict()  # nobody waited (an older worker: no key)


def test_timeline__a_wait_under_a_second_is_not_shown(clock: Clock, timeline: Timeline, shown: list) -> None:
    timeline.begin("A1", "backup", "A")
    with timeline.blocked("A1"):
        clock.tick(0.5)
        timeline.seen("A1", "pending")
        timeline.end("A1", "ready")
    assert shown == [] and len(timeline.blocks) == 1
    timeline.begin("A2", "backup", "A")
    with timeline.blocked("A2"):
        clock.tick(1.5)
        timeline.seen("A2", "creating")
        timeline.end("A2", "ready")
    assert [final for _, final in shown] == [False, True]
