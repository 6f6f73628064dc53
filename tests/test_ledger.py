"""The cleanup ledger against a server that errs on a repeated DELETE (respx, strict)."""

from __future__ import annotations

import httpx
import pytest

from conformance.client import RaffClient
from conformance.ledger import Ledger

BASE = "http://api.test"
BACKUP = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
pytestmark = pytest.mark.respx(assert_all_called=True, assert_all_mocked=True)


@pytest.fixture
def api():
    with RaffClient(BASE, "conformance-test-key", "00009e00-0000-4000-8000-000000000001", get_retries=0) as client:
        yield client


def _deleted_then_errs(respx_mock) -> None:
    respx_mock.delete(f"{BASE}/api/v1/backups/{BACKUP}").mock(
        side_effect=[httpx.Response(200, json={"success": True})] + [httpx.Response(500, json={"error": "x"})] * 3
    )


def test_ledger__a_delete_taken_and_gone_from_the_listing_is_no_leftover(respx_mock, api: RaffClient) -> None:
    """The DELETE answered 200, its resend errs (500): the listing, no longer showing it, decides."""
    _deleted_then_errs(respx_mock)
    respx_mock.get(f"{BASE}/api/v1/backups").respond(200, json={"success": True, "data": [], "total": 0})
    ledger = Ledger(api, announce=False)
    ledger.record(BACKUP)
    assert ledger.cleanup(confirm_timeout=5) == [] and ledger.leftovers == [] and ledger.created == []


def test_ledger__a_delete_taken_but_still_listed_is_a_leftover(respx_mock, api: RaffClient) -> None:
    _deleted_then_errs(respx_mock)
    listed = {"success": True, "data": [{"id": BACKUP}], "total": 1}
    respx_mock.get(f"{BASE}/api/v1/backups").respond(200, json=listed)
    ledger = Ledger(api, announce=False)
    ledger.record(BACKUP)
    (left,) = ledger.cleanup(confirm_timeout=5)
    assert left.startswith(BACKUP) and "still shows it" in left
