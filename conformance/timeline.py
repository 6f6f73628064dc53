"""The run's waits: what was in flight, when the run stood still for it, and which waits set its length.

On a live server a backup takes minutes, so a run's wall time is the sum of the times it stood still
(a *block*) waiting for something in flight (a *span*: a backup from its create to ready, a restore
from its 202 to settled). Several spans may be in flight at once; a block ends when the last thing it
waits for settles, and that span is the one on the *critical path*: had it been faster, the run would
have been. The report draws the spans and blocks; the terminal shows the current block on one line.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

QUIET_BELOW_S = 1.0  # blocks shorter than this are recorded but never shown on the terminal
# How a block is shown: ``show(line, final)``; ``final`` is the block's last line (it ended).
Show = Callable[[str, bool], None]
# A status is the server's text on our terminal: control characters (a carriage return, an escape
# sequence) would break the one line or the terminal itself. Its length is left alone: whoever shows
# the line redacts secrets first and cuts it to the terminal's width after.
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]+")


@dataclass
class Span:
    """One thing in flight: a backup (create answered, until ready) or a restore (202, until settled)."""

    label: str  # the scenario's name for it: "A1", "B1", "restore B1"
    kind: str  # "backup" or "restore"
    vm: str  # which of the run's VMs: "A" or "B"
    started: float  # monotonic seconds
    ended: float | None = None
    outcome: str | None = None  # "ready", or what happened instead ("failed", "timed out", ...)
    status: str | None = None  # the last status seen while it was in flight
    critical: bool = False  # it ended a block: on the critical path


@dataclass
class Block:
    """A stretch during which the run stood still, waiting for ``waiting_for`` to settle."""

    started: float
    waiting_for: tuple[str, ...]
    ended: float | None = None
    ended_by: str | None = None  # the span whose settling ended the block: on the critical path


@dataclass
class Timeline:
    """Every span and block of the run, on one monotonic clock."""

    show: Show | None = None
    clock: Callable[[], float] = time.monotonic
    origin: float = field(default=0.0)
    spans: dict[str, Span] = field(default_factory=dict)  # the latest span of each label
    blocks: list[Block] = field(default_factory=list)
    _current: Block | None = None
    _earlier: list[Span] = field(default_factory=list)  # spans whose label began again (a second restore)

    def __post_init__(self) -> None:
        if not self.origin:
            self.origin = self.clock()

    def begin(self, label: str, kind: str, vm: str, ago: float = 0.0) -> None:
        """``label`` is in flight since ``ago`` seconds (its create or restore was accepted then)."""
        if label in self.spans:
            self._earlier.append(self.spans.pop(label))  # still drawn: it happened
        self.spans[label] = Span(label, kind, vm, self.clock() - max(0.0, ago))

    def seen(self, label: str, status: str | None) -> None:
        """A poll saw ``label`` still in flight with this status: the terminal line shows it."""
        span = self.spans.get(label)
        if span is not None and span.ended is None:
            span.status = None if status is None else _UNPRINTABLE.sub("?", str(status))
            self._show(final=False)

    def end(self, label: str, outcome: str) -> None:
        """``label`` settled (or the run stopped waiting for it): ``outcome`` says how."""
        span = self.spans.get(label)
        if span is None or span.ended is not None:
            return
        span.ended, span.outcome = self.clock(), outcome
        block = self._current
        if block is not None and label in block.waiting_for:
            block.ended_by = label  # the latest to settle so far; the last one ends the block

    @contextmanager
    def blocked(self, *labels: str) -> Iterator[Block]:
        """The run stands still until ``labels`` settle (the caller polls them and calls ``end``)."""
        waiting = tuple(label for label in labels if label in self.spans and self.spans[label].ended is None)
        block = Block(self.clock(), waiting)
        outer, self._current = self._current, block
        try:
            yield block
        finally:
            block.ended = self.clock()
            self._current = outer
            if any(self.spans[label].ended is None for label in waiting):
                # Cut short (an error, Ctrl-C) with something still in flight: no span ended it.
                block.ended_by = None
            if block.ended_by is not None:
                self.spans[block.ended_by].critical = True
            if waiting:
                self.blocks.append(block)
                self._show(final=True, block=block)

    # -- what the run shows and records

    def line(self, block: Block | None = None) -> str:
        """The current block in one line: how long so far, and each thing it waits for with its status."""
        block = block or self._current
        if block is None:
            return ""
        now = block.ended if block.ended is not None else self.clock()
        parts = []
        for label in block.waiting_for:
            span = self.spans[label]
            if span.ended is not None and span.ended <= now:
                parts.append(f"{label} {span.outcome}")
            else:
                parts.append(f"{label} {span.status or 'in flight'} for {now - span.started:.0f}s")
        head = "waited" if block.ended is not None else "waiting"
        return _UNPRINTABLE.sub("?", f"{head} {now - block.started:.0f}s for {', '.join(parts)}")

    def _show(self, *, final: bool, block: Block | None = None) -> None:
        shown = block or self._current
        if self.show is None or shown is None:
            return
        # A wait shorter than a second (the bundled mock's) is not worth a line of anyone's terminal.
        if (shown.ended if shown.ended is not None else self.clock()) - shown.started < QUIET_BELOW_S:
            return
        self.show(self.line(block), final)

    def critical(self) -> list[str]:
        """The spans that ended a block, in order: the run's critical path through its waits."""
        return [block.ended_by for block in self.blocks if block.ended_by is not None]

    def to_dict(self) -> dict[str, Any]:
        """For results.json: seconds since the run's start, rounded to a tenth."""

        def at(moment: float | None) -> float | None:
            return None if moment is None else round(moment - self.origin, 1)

        return {
            "spans": [
                {
                    "label": s.label,
                    "kind": s.kind,
                    "vm": s.vm,
                    "started_s": at(s.started),
                    "ended_s": at(s.ended),
                    "outcome": s.outcome,
                    "critical": s.critical,
                }
                for s in sorted([*self._earlier, *self.spans.values()], key=lambda s: s.started)
            ],
            "blocks": [
                {
                    "started_s": at(b.started),
                    "ended_s": at(b.ended),
                    "waiting_for": list(b.waiting_for),
                    "ended_by": b.ended_by,
                }
                for b in self.blocks
            ],
            "blocked_s": round(sum((b.ended - b.started for b in self.blocks if b.ended is not None), 0.0), 1),
            "written_s": at(self.clock()),  # when this was read: the run's length so far
        }
