"""The mock's sense of time: wall-clock seconds, or a fixed step per request it answers.

A backup is ``pending`` for the first half of its delay, ``creating`` for the second half, then
``ready``; a restore holds ``restoring`` for its delay. On the wall clock those delays take real
time. On the request clock the same delays are counted in requests: every request the mock
answers moves its time on by ``STEP`` seconds, so with the default delays a backup is
``pending`` on the next request, ``creating`` on the one after and ``ready`` from the third on,
in milliseconds of wall time. The order of states, and everything a client can observe apart
from wall time, stay the same; self-tests that only need the story, not the wait, use it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TIME_MODES = ("wall", "requests")
# A power of two, so that sums of steps compare exactly with the delays they are measured against.
STEP = 0.125


class RequestClock:
    """Mock time that stands still between requests and moves on by ``step`` with each one."""

    def __init__(self, step: float = STEP) -> None:
        self.step = step
        self._ticks = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._ticks * self.step

    def tick(self) -> None:
        with self._lock:
            self._ticks += 1


def make_clock(mode: str) -> Callable[[], float]:
    """The clock of a time mode (one of TIME_MODES)."""
    if mode == "wall":
        return time.monotonic
    if mode == "requests":
        return RequestClock()
    raise ValueError(f"unknown mock time mode {mode!r}; choose one of: {', '.join(TIME_MODES)}")
