"""A thin client of the Raff backups API: one method per operationId, no assertions.

Every method returns the ``httpx.Response`` untouched so that checks can judge 4xx answers
as well as 2xx ones. The client only keeps the run safe and steady: connect/read timeouts,
a request-rate cap below the documented limit, ``Retry-After`` on 429, and bounded retries
of connection errors on GET (never on POST/DELETE: a retried reset is another experiment).
Each exchange is handed to the ``on_exchange`` callbacks, which is how evidence is collected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from conformance.contract import load_contract
from conformance.exchange import STOP, WRITES, Exchange

DEFAULT = object()  # "use the client's own value"; None means "send no such header"
MAX_RETRY_AFTER_S = 60.0
# A wait longer than this says what it waits for and until when, so a slow server does not look hung.
NOTICE_AFTER_S = 5.0


class WaitTimeout(TimeoutError):
    """A wait ran out; ``last`` is the last answer seen (evidence of what the server said)."""

    def __init__(self, message: str, last: httpx.Response | None) -> None:
        super().__init__(message)
        self.last = last


class RateLimiter:
    """Keeps the client under ``rate`` requests per second on average, letting at most ``burst`` start
    together (a token bucket, as the API's own limit is: 30/s, burst 60). Two at once is what a client
    sends when it sends the same write twice at once; paced one by one, "at once" would never be."""

    def __init__(self, rate: float, burst: int = 2) -> None:
        self.interval = 1.0 / rate
        self.burst = max(1, burst)
        self._due = 0.0  # when the bucket would be empty again at the pace (GCRA's theoretical arrival)
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until the next request may go; return how long it waited."""
        with self._lock:
            now = time.monotonic()
            due = max(self._due, now)
            start = max(now, due - (self.burst - 1) * self.interval)
            self._due = due + self.interval
        delay = start - now
        if delay > 0:
            time.sleep(delay)
        return delay


class RaffClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        project_id: str | None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        limiter: RateLimiter | None = None,
        get_retries: int = 2,
        max_429_retries: int = 5,
        on_exchange: list[Callable[[Exchange], None]] | None = None,
        transport: httpx.BaseTransport | None = None,
        notify: Callable[[str], None] | None = None,
        poll_interval: float = 0.1,
        trust_env: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.project_id = project_id
        self.limiter = limiter
        self.get_retries = get_retries
        self.max_429_retries = max_429_retries
        self.on_exchange = on_exchange if on_exchange is not None else []
        self.throttled_s = 0.0
        self.notify = notify or (lambda line: None)
        self.poll_interval = poll_interval
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "raff-conformance"},
            trust_env=trust_env,  # environment proxies; see Settings.trust_env
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RaffClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------

    def _headers(
        self, project_id: Any, api_key: Any, extra: dict[str, str] | list[tuple[str, str]] | None
    ) -> dict[str, str] | list[tuple[str, str]]:
        headers: dict[str, str] = {}
        key = self.api_key if api_key is DEFAULT else api_key
        if key is not None:
            headers["X-API-Key"] = key
        project = self.project_id if project_id is DEFAULT else project_id
        if project is not None:
            headers["X-Project-ID"] = project
        if isinstance(extra, list):  # field lines as given, a repeated name included (RFC 9110 §5.3)
            return [*headers.items(), *extra]
        headers.update(extra or {})
        return headers

    def request(
        self,
        operation_id: str,
        method: str,
        path: str,
        *,
        project_id: Any = DEFAULT,
        api_key: Any = DEFAULT,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        request = self._http.build_request(method, path, headers=self._headers(project_id, api_key, headers), **kwargs)
        attempts_left = self.get_retries if method == "GET" else 0
        throttles_left = self.max_429_retries
        backoff = 1.0
        while True:
            if self.limiter is not None:
                self.throttled_s += self.limiter.acquire()
            STOP.check()
            WRITES.sent(method)
            try:
                response = self._http.send(request)
            except httpx.TransportError as error:
                self._emit(Exchange.from_error(request, operation_id, error))
                # A read timeout on POST/DELETE may have taken effect: never resend those blindly.
                if attempts_left <= 0 or (isinstance(error, httpx.TimeoutException) and method != "GET"):
                    raise
                attempts_left -= 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 8.0)
                continue
            response.read()
            if response.status_code == 429 and throttles_left > 0:
                # A 429 was not processed, so resending even a POST is the same experiment.
                self._emit(Exchange.from_httpx(response, operation_id))
                throttles_left -= 1
                wait = _retry_after(response, backoff)
                backoff = min(backoff * 2, MAX_RETRY_AFTER_S)
                self.throttled_s += wait
                time.sleep(wait)
                continue
            self._emit(Exchange.from_httpx(response, operation_id))
            return response

    def _emit(self, exchange: Exchange) -> None:
        for callback in list(self.on_exchange):
            callback(exchange)

    # -- operations ---------------------------------------------------------------------------

    def list_backups(
        self,
        *,
        vm_id: str | None = None,
        limit: int | str | None = None,
        offset: int | str | None = None,
        project_id: Any = DEFAULT,
        **kw: Any,
    ) -> httpx.Response:
        """listBackups: GET /api/v1/backups."""
        params = {k: v for k, v in {"vm_id": vm_id, "limit": limit, "offset": offset}.items() if v is not None}
        return self.request("listBackups", "GET", "/api/v1/backups", params=params, project_id=project_id, **kw)

    def create_backup(
        self, vm_id: str | None, *, name: str | None = None, json: Any = DEFAULT, **kw: Any
    ) -> httpx.Response:
        """createBackup: POST /api/v1/backups."""
        if json is DEFAULT:
            json = {"vm_id": vm_id} | ({"name": name} if name is not None else {})
        return self.request("createBackup", "POST", "/api/v1/backups", json=json, **kw)

    def show_backup(self, backup_id: str, **kw: Any) -> httpx.Response:
        """getBackup: GET /api/v1/backups/{id}."""
        return self.request("getBackup", "GET", f"/api/v1/backups/{backup_id}", **kw)

    def delete_backup(self, backup_id: str, **kw: Any) -> httpx.Response:
        """deleteBackup: DELETE /api/v1/backups/{id}."""
        return self.request("deleteBackup", "DELETE", f"/api/v1/backups/{backup_id}", **kw)

    def restore_backup(self, backup_id: str, **kw: Any) -> httpx.Response:
        """restoreBackup: POST /api/v1/backups/{id}/restore."""
        return self.request("restoreBackup", "POST", f"/api/v1/backups/{backup_id}/restore", **kw)

    def delete_backup_chain(self, backup_id: str, **kw: Any) -> httpx.Response:
        """deleteBackupChain: DELETE /api/v1/backups/{id}/chain."""
        return self.request("deleteBackupChain", "DELETE", f"/api/v1/backups/{backup_id}/chain", **kw)

    def show_vm(self, vm_id: str, **kw: Any) -> httpx.Response:
        """getVM: GET /api/v1/vms/{id} (takes no X-Project-ID)."""
        kw.setdefault("project_id", None)
        return self.request("getVM", "GET", f"/api/v1/vms/{vm_id}", **kw)

    def reset_backup_chain(self, vm_id: str, **kw: Any) -> httpx.Response:
        """resetBackupChain: POST /api/v1/vms/{id}/backups/reset-chain."""
        return self.request("resetBackupChain", "POST", f"/api/v1/vms/{vm_id}/backups/reset-chain", **kw)

    # -- waiting ------------------------------------------------------------------------------

    def wait_for_backup(
        self,
        backup_id: str,
        *,
        until: tuple[str, ...] = ("ready",),
        timeout: float,
        interval: float | None = None,
        progress: tuple[str, ...] | None = None,
        on_status: Callable[[str | None], None] | None = None,
    ) -> tuple[httpx.Response, float]:
        """Poll getBackup while the backup is in progress; return the first answer that is not.

        It waits only for progress: while the status is a documented in-progress value
        (``progress``, from the contract: pending, creating, restoring). Any other answer ends the
        wait at once and is returned: one of ``until``, 'failed', a non-200, and a status no
        documentation names (nothing says it will ever move). Raises WaitTimeout past ``timeout``.
        The interval is an eighth of the time waited so far (at least ``interval``, at most a tenth of
        the timeout): a live run polls gently, and the wait overshoots the moment the backup became ready
        by at most an eighth of the wait. A backup created beside one just waited for is found ready at once.
        ``on_status`` hears each in-progress status (the run's timeline shows it on its one line);
        without it, a wait that lasts past NOTICE_AFTER_S says once (``notify``) what it waits for and
        until when.
        """
        if progress is None:
            progress = load_contract().backup_statuses("in_progress")
        started = time.monotonic()
        deadline = started + timeout
        noticed = False
        pause = self.poll_interval if interval is None else interval
        while True:
            response = self.show_backup(backup_id)
            status = _backup_status(response)
            if response.status_code != 200 or status in until or status not in progress:
                return response, time.monotonic() - started
            if on_status is not None:
                on_status(status)
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"backup {backup_id} still {status!r} after {timeout:g}s (waited for {'/'.join(until)})",
                    response,
                )
            if on_status is None and not noticed and time.monotonic() - started >= NOTICE_AFTER_S:
                noticed = True
                until_clock = time.strftime("%H:%M:%S", time.localtime(time.time() + deadline - time.monotonic()))
                self.notify(
                    f"waiting for backup {backup_id} to become {'/'.join(until)} (now {status!r}; "
                    f"giving up at {until_clock}, RAFF_READY_TIMEOUT={timeout:g}s)"
                )
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            floor = self.poll_interval if interval is None else interval
            pause = min(max(floor, (time.monotonic() - started) / 8), max(0.5, timeout / 10))


def _backup_status(response: httpx.Response) -> str | None:
    try:
        data = response.json().get("data") or {}
        return data.get("status")
    except (ValueError, AttributeError):
        return None


def _retry_after(response: httpx.Response, fallback: float) -> float:
    try:
        value = float(response.headers.get("Retry-After", ""))
    except ValueError:
        value = fallback
    return max(0.0, min(value, MAX_RETRY_AFTER_S))
