"""The client's own machinery, with respx (strict: every route called, nothing unmocked)."""

from __future__ import annotations

import time

import httpx
import pytest

from conformance.client import RaffClient, RateLimiter
from conformance.exchange import Exchange
from conformance.settings import FAKE_KEY_PREFIX, REDACTED, WRONG_KEY

BASE = "https://staging.example.test"
KEY = "raff_pub_unit_test_key_0123456789"
PROJECT = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
VM = "2b1f8a4e-6f0d-4d3e-9a51-0c9d7b6e5a41"

# Strict: a test fails if a route it declares is never called or a request matches no route.
pytestmark = pytest.mark.respx(assert_all_called=True, assert_all_mocked=True)


@pytest.fixture
def api():
    seen: list[Exchange] = []
    with RaffClient(BASE, KEY, PROJECT, timeout=2.0, on_exchange=[seen.append]) as client:
        client.seen = seen
        yield client


def test_client_reset_sends_key_and_project(respx_mock, api: RaffClient) -> None:
    route = respx_mock.post(f"{BASE}/api/v1/vms/{VM}/backups/reset-chain").respond(202, json={"success": True})
    response = api.reset_backup_chain(VM)
    assert response.status_code == 202
    assert route.calls.last.request.headers["X-API-Key"] == KEY
    assert route.calls.last.request.headers["X-Project-ID"] == PROJECT


def test_client_reset__without_project_and_key(respx_mock, api: RaffClient) -> None:
    route = respx_mock.post(f"{BASE}/api/v1/vms/{VM}/backups/reset-chain").respond(400, json={"error": "Bad Request"})
    assert api.reset_backup_chain(VM, project_id=None, api_key=None).status_code == 400
    assert "X-Project-ID" not in route.calls.last.request.headers
    assert "X-API-Key" not in route.calls.last.request.headers


def test_client_returns_errors_without_raising(respx_mock, api: RaffClient) -> None:
    respx_mock.get(f"{BASE}/api/v1/backups/x").respond(500, text="boom")
    assert api.show_backup("x").status_code == 500


def test_client_list__query_parameters(respx_mock, api: RaffClient) -> None:
    route = respx_mock.get(f"{BASE}/api/v1/backups", params={"vm_id": VM, "limit": "5"}).respond(
        200, json={"success": True, "data": [], "total": 0}
    )
    api.list_backups(vm_id=VM, limit=5)
    assert route.called


def test_client_429__honours_retry_after(respx_mock, api: RaffClient, monkeypatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    route = respx_mock.post(f"{BASE}/api/v1/backups").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}, json={"error": "Rate limit exceeded"}),
            httpx.Response(202, json={"success": True, "data": {"id": "b"}}),
        ]
    )
    assert api.create_backup(VM).status_code == 202
    assert route.call_count == 2
    assert slept == [2.0]


def test_client_429__gives_up_after_bounded_retries(respx_mock, monkeypatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)
    route = respx_mock.get(f"{BASE}/api/v1/vms/{VM}").respond(429, headers={"Retry-After": "1"}, json={})
    with RaffClient(BASE, KEY, PROJECT, max_429_retries=3) as client:
        assert client.show_vm(VM).status_code == 429
    assert route.call_count == 4


def test_client_get__connection_error_retried(respx_mock, api: RaffClient, monkeypatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)
    route = respx_mock.get(f"{BASE}/api/v1/backups/b").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={"success": True, "data": {}})]
    )
    assert api.show_backup("b").status_code == 200
    assert route.call_count == 2


def test_client_post__connection_error_not_retried(respx_mock, api: RaffClient) -> None:
    route = respx_mock.post(f"{BASE}/api/v1/vms/{VM}/backups/reset-chain").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(httpx.ReadTimeout):
        api.reset_backup_chain(VM)
    assert route.call_count == 1


def test_client_wait_for_backup__deadline(respx_mock, api: RaffClient) -> None:
    respx_mock.get(f"{BASE}/api/v1/backups/b").respond(200, json={"data": {"id": "b", "status": "creating"}})
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="still 'creating'"):
        api.wait_for_backup("b", timeout=0.3, interval=0.05)
    assert time.monotonic() - started < 2


def test_client_exchange_redacts_key_and_curl_reads_env(respx_mock, api: RaffClient) -> None:
    respx_mock.delete(f"{BASE}/api/v1/backups/b").respond(200, json={"success": True})
    api.delete_backup("b")
    exchange = api.seen[-1]
    assert exchange.request_headers["X-API-Key"] == REDACTED
    assert KEY not in repr(exchange.to_dict())
    assert '"X-API-Key: $RAFF_API_KEY"' in exchange.curl()


def test_rate_limiter_spaces_requests() -> None:
    """n requests take at least (n - burst) intervals: never more than rate per second on average."""
    limiter = RateLimiter(50.0, burst=2)
    started = time.monotonic()
    for _ in range(12):
        limiter.acquire()
    assert time.monotonic() - started >= 0.19


def test_rate_limiter_lets_two_go_at_once() -> None:
    """The same write twice at once (the variant matrix) must reach the server together, not 1/rate apart."""
    limiter = RateLimiter(2.0, burst=2)
    assert limiter.acquire() == 0 and limiter.acquire() == 0
    assert limiter.acquire() > 0.4  # the third waits for the pace
    strict = RateLimiter(2.0, burst=1)
    assert strict.acquire() == 0 and strict.acquire() > 0.4


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (KEY, '-H "X-API-Key: $RAFF_API_KEY"'),  # the configured key: read from the environment
        (WRONG_KEY, f"-H 'X-API-Key: {WRONG_KEY}'"),  # the suite's fake key: shown as sent
        ("", "-H 'X-API-Key: '"),  # an empty key is evidence too
    ],
    ids=["configured", "fake", "empty"],
)
def test_exchange_curl__reproduces_the_key_that_was_sent(respx_mock, key: str, expected: str) -> None:
    respx_mock.post(f"{BASE}/api/v1/vms/{VM}/backups/reset-chain").respond(401, json={"error": "Unauthorized"})
    seen: list[Exchange] = []
    with RaffClient(BASE, key, PROJECT, on_exchange=[seen.append]) as client:
        client.reset_backup_chain(VM)
    curl = seen[-1].curl()
    assert expected in curl, curl
    assert "Host:" not in curl and "host:" not in curl
    assert (KEY not in curl) and (seen[-1].request_headers["X-API-Key"] == (REDACTED if key == KEY else key))


def test_report_redaction__keeps_fake_keys_and_scrubs_real_ones() -> None:
    from conformance.report.model import FAKE_KEY_PREFIX as REPORT_PREFIX
    from conformance.report.redact import redact

    assert REPORT_PREFIX == FAKE_KEY_PREFIX  # one prefix, written in two layers
    curl = f"-H 'X-API-Key: {WRONG_KEY}' -H 'X-API-Key: {KEY}'"
    scrubbed = redact({"headers": {"X-API-Key": WRONG_KEY}, "curl": curl})
    assert scrubbed["headers"]["X-API-Key"] == WRONG_KEY
    assert WRONG_KEY in scrubbed["curl"] and KEY not in scrubbed["curl"]
