"""Fault modes and the rate limiter: the unfriendly server the suite's safety tests need.

Faults act at the ASGI level, in front of routing, so they hit every request alike. They are
the only way, besides a planted defect, that the mock answers 5xx or drops a connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterable

from starlette.responses import JSONResponse
from starlette.types import Receive, Send

FAULTS: dict[str, str] = {
    "slow": "every answer is delayed by about 1.5 s",
    "rate_limit_storm": "every request answers 429 with Retry-After: 1 and the documented body",
    "drop_connections": "every 3rd request: the connection is closed without any response",
    "server_errors": "every 2nd request answers 503 with a JSON Error body",
    "hang": "no request is ever answered (until the client gives up or the server stops)",
}
SLOW_SECONDS = 1.5
STORM_LIMIT = 30  # the Standard tier of the authentication docs
BURST_REFILL_SECONDS = 60.0


def check_faults(names: Iterable[str]) -> frozenset[str]:
    """The given fault names as a set; raises ValueError naming the valid ones on an unknown name."""
    chosen = frozenset(names)
    unknown = sorted(chosen - FAULTS.keys())
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}; valid faults: {', '.join(sorted(FAULTS))}")
    return chosen


def _limit_text(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else str(limit)


def too_many_requests(limit: float) -> JSONResponse:
    """The 429 exactly as the authentication docs show it."""
    text = _limit_text(limit)
    return JSONResponse(
        {"error": "Rate limit exceeded", "message": f"Maximum {text} requests per second allowed for your tier"},
        status_code=429,
        headers={"Retry-After": "1", "X-RateLimit-Limit": text, "X-RateLimit-Remaining": "0"},
    )


class RateLimiter:
    """Per-key sliding 1-second window plus a burst budget refilled every 60 s (authentication docs).

    A key may send ``limit`` requests in any 1-second window; beyond that it spends its burst
    budget (another ``limit`` requests, like the Standard tier's 30 req/s with burst 60), and
    once that is gone it is refused until the window slides.
    """

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit <= 0:
            raise ValueError("rate_limit must be a positive number of requests per second")
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._burst: dict[str, tuple[float, float]] = {}  # key -> (budget left, refill time)

    def allow(self, key: str) -> bool:
        with self._lock:
            now = self._clock()
            window = self._windows[key]
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) < self.limit:
                window.append(now)
                return True
            budget, refill_at = self._burst.get(key, (self.limit, now + BURST_REFILL_SECONDS))
            if now >= refill_at:
                budget, refill_at = self.limit, now + BURST_REFILL_SECONDS
            if budget >= 1:
                self._burst[key] = (budget - 1, refill_at)
                return True
            self._burst[key] = (budget, refill_at)
            return False


async def drop_connection(receive: Receive, send: Send) -> None:
    """Close the client's connection without sending any byte of a response.

    ASGI has no message for this. Under uvicorn, ``send`` is a method of the request cycle that
    owns the transport, so the transport is closed directly; then the app waits until the server
    has seen the disconnect, because returning earlier would make uvicorn answer 500 instead.
    Elsewhere, a response is started and abandoned, which servers end by closing the connection.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "close"):
        transport.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                while (await receive())["type"] != "http.disconnect":
                    pass
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})


async def hang(receive: Receive, send: Send, closing: threading.Event) -> None:
    """Never answer: wait until the client disconnects or the server is stopping, then drop."""
    client_gone = False
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        while not closing.is_set():
            if watcher.done():
                client_gone = True
                break
            await asyncio.sleep(0.05)
    finally:
        watcher.cancel()
    if not client_gone:
        # The server is stopping: dropping, rather than answering, keeps "never answers" true.
        await drop_connection(receive, send)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def service_unavailable() -> JSONResponse:
    return JSONResponse(
        {"error": "Service Unavailable", "message": "The service is temporarily unavailable; retry with backoff"},
        status_code=503,
    )


def storm_response() -> JSONResponse:
    return too_many_requests(STORM_LIMIT)
