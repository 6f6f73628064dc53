"""Requests reset-chain must reject; each is checked to change nothing in the VM's listing."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from conformance.checks import error_body, fail, note, status_code_is
from conformance.client import RaffClient
from conformance.exchange import Exchange
from conformance.scenario import WRONG_KEY

pytestmark = pytest.mark.xdist_group("vm-series")


def _listing(client: RaffClient, vm_id: str, **overrides: object) -> tuple[Exchange, list[tuple]]:
    response = client.list_backups(vm_id=vm_id, limit=1000, **overrides)
    exchange = Exchange.from_httpx(response, "listBackups")
    rows = [(b.get("id"), b.get("increment_id"), b.get("status")) for b in (response.json().get("data") or [])]
    return exchange, sorted(rows, key=repr)


def _unchanged(
    requirement: str, before: tuple[Exchange, list[tuple]], after_exchange: Exchange, after: list[tuple]
) -> None:
    """The listing after a refused request equals the one before it (both are the evidence)."""
    __tracebackhide__ = True
    before_exchange, rows = before
    if rows != after:
        raise fail(
            requirement,
            [before_exchange, after_exchange],
            "rejected reset changed the listing",
            f"before: {rows}; after: {after}",
        )


@pytest.mark.req("RC-02")
def test_reset_chain__unknown_vm(client: RaffClient, contract, evidence) -> None:
    exchange = Exchange.from_httpx(client.reset_backup_chain(str(uuid.uuid4())), "resetBackupChain")
    evidence.attach(exchange)
    status_code_is(exchange, 404, "RC-02")
    error_body(contract, exchange, "RC-02")


@pytest.mark.req("RC-03")
def test_reset_chain__missing_project_header(client: RaffClient, settings, contract, evidence) -> None:
    before = _listing(client, settings.vm_id)
    exchange = Exchange.from_httpx(client.reset_backup_chain(settings.vm_id, project_id=None), "resetBackupChain")
    evidence.attach(exchange)
    status_code_is(exchange, 400, "RC-03")
    error_body(contract, exchange, "RC-03")
    _unchanged("RC-03", before, *_listing(client, settings.vm_id))


@pytest.mark.parametrize("project_id", ["not-a-uuid", "12345", "prj_01HXK5Q2J3P4N5R6T7V8W9Y0Z1", ""])
@pytest.mark.req("RC-04")
def test_reset_chain__project_header_not_uuid(client: RaffClient, settings, contract, evidence, project_id) -> None:
    before = _listing(client, settings.vm_id)
    response = client.reset_backup_chain(settings.vm_id, project_id=project_id)
    exchange = Exchange.from_httpx(response, "resetBackupChain")
    evidence.attach(exchange)
    status_code_is(exchange, 400, "RC-04")
    error_body(contract, exchange, "RC-04")
    _unchanged("RC-04", before, *_listing(client, settings.vm_id))


@pytest.mark.req("RC-19")
def test_reset_chain__project_header_of_no_project_of_the_account(client: RaffClient, settings, contract, evidence):
    """A well-formed project UUID that no project of the key's account has: refused, nothing reset."""
    before = _listing(client, settings.vm_id)
    stranger = str(uuid.uuid4())
    exchange = Exchange.from_httpx(client.reset_backup_chain(settings.vm_id, project_id=stranger), "resetBackupChain")
    evidence.attach(before[0], exchange)
    status_code_is(exchange, (400, 404), "RC-19")
    error_body(contract, exchange, "RC-19")
    _unchanged("RC-19", before, *_listing(client, settings.vm_id))


@pytest.mark.parametrize("vm_id", ["not-a-uuid", "123", "00000000-0000-0000-0000", "%20"])
@pytest.mark.req("RC-05")
def test_reset_chain__path_id_not_uuid(client: RaffClient, contract, evidence, vm_id) -> None:
    """A single path segment that is not a UUID routes to the operation: its 400/404 carries an Error body."""
    exchange = Exchange.from_httpx(client.reset_backup_chain(vm_id), "resetBackupChain")
    evidence.attach(exchange)
    status_code_is(exchange, (400, 404), "RC-05")
    error_body(contract, exchange, "RC-05")


# Path ids that leave the route template: an encoded slash, an empty segment, an encoded dot segment.
UNROUTABLE_IDS = {"encoded-slash": "..%2f..%2fbackups", "empty-segment": "", "dot-segment": "%2e%2e", "slash": "a%2Fb"}


@pytest.mark.parametrize("vm_id", list(UNROUTABLE_IDS.values()), ids=list(UNROUTABLE_IDS))
@pytest.mark.req("RC-05")
def test_reset_chain__path_id_does_not_route(client: RaffClient, settings, evidence, vm_id) -> None:
    """Judged only by what the contract can speak about: no 5xx, no 2xx, and nothing changed.

    Most stacks' routers (Go net/http, nginx, Starlette, API gateways) answer such a path with their
    own plain-text 404 before the operation sees it: that is shown as a note, not a violation.
    """
    before = _listing(client, settings.vm_id)
    exchange = Exchange.from_httpx(client.reset_backup_chain(vm_id), "resetBackupChain")
    evidence.attach(exchange)
    if exchange.status is None or exchange.status >= 500 or 200 <= exchange.status < 300:
        raise fail(
            "RC-05",
            exchange,
            f"path that does not route answered {exchange.error or exchange.status}",
            f"POST {exchange.url} answered {exchange.error or exchange.status}; a path id that is not a UUID must be "
            f"refused (4xx), never accepted or a server error. Body: {exchange.response_body!r:.200}",
        )
    _unchanged("RC-05", before, *_listing(client, settings.vm_id))
    if not exchange.is_json:
        evidence.finding(
            note(
                "RC-05",
                exchange,
                f"router answered {exchange.status} {exchange.media_type or 'without a media type'}",
                f"The path {exchange.url} does not route to resetBackupChain, so its answer ({exchange.status}, "
                f"Content-Type {exchange.response_header('content-type')!r}) comes from the server's router, not "
                "from the operation; the contract does not speak about it. No 5xx, no 2xx, nothing changed.",
                check="unroutable_path",
            )
        )


@pytest.mark.requires_setting("other_project_vm_id")
@pytest.mark.req("RC-11")
def test_reset_chain__vm_of_other_project(client: RaffClient, settings, evidence) -> None:
    # The listing is unscoped (no X-Project-ID) because the VM lives in another project.
    before = _listing(client, settings.other_project_vm_id, project_id=None)
    exchange = Exchange.from_httpx(client.reset_backup_chain(settings.other_project_vm_id), "resetBackupChain")
    evidence.attach(exchange)
    # RC-11 names a status and an effect; the refusal's body is RC-14's (judged on every answer).
    status_code_is(exchange, 404, "RC-11")
    _unchanged("RC-11", before, *_listing(client, settings.other_project_vm_id, project_id=None))


@pytest.mark.requires_setting("other_account_vm_id")
@pytest.mark.req("RC-12")
def test_reset_chain__vm_of_other_account(client: RaffClient, settings, evidence) -> None:
    exchange = Exchange.from_httpx(client.reset_backup_chain(settings.other_account_vm_id), "resetBackupChain")
    evidence.attach(exchange)
    # RC-12 names a status and an effect; the refusal's body is RC-14's (judged on every answer).
    status_code_is(exchange, 404, "RC-12")
    # What another account's VM holds is not ours to see, so its listing cannot show the reset changed
    # nothing; that the key sees none of it is RC-20's (test_backups_list_invisible_vm_lists_nothing).


@pytest.mark.parametrize("api_key", [None, WRONG_KEY, ""], ids=["no-key", "wrong-key", "empty-key"])
@pytest.mark.req("RC-13")
def test_reset_chain__without_valid_key(
    client_factory: Callable[..., RaffClient], client: RaffClient, settings, contract, evidence, api_key
) -> None:
    before = _listing(client, settings.vm_id)
    stranger = client_factory(api_key=api_key)
    exchange = Exchange.from_httpx(stranger.reset_backup_chain(settings.vm_id), "resetBackupChain")
    evidence.attach(exchange)
    status_code_is(exchange, 401, "RC-13")
    error_body(contract, exchange, "RC-13")
    _unchanged("RC-13", before, *_listing(client, settings.vm_id))
