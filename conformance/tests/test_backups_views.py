"""Views of the same backups agree, and listings keep their envelope's promises (recorded scenario).

Reads only: the scenario's own backups, seen through every answer that shows them.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks import fail, inconclusive
from conformance.exchange import Exchange
from conformance.scenario import ScenarioRecord

pytestmark = [pytest.mark.writes, pytest.mark.xdist_group("vm-series")]

# What every view of a backup must tell alike. Status is left out: it changes with time (pending,
# ready, restoring), so two views taken apart may differ and both be right.
SAME_IN_EVERY_VIEW = ("product_vm", "increment_id")


def _backups_in(exchange: Exchange) -> list[dict[str, Any]]:
    """The backups an answer shows: a listing's items, or a single backup's body."""
    body = exchange.response_body
    if exchange.status not in (200, 202) or not isinstance(body, dict):
        return []
    data = body.get("data")
    if isinstance(data, list):
        return [b for b in data if isinstance(b, dict) and "id" in b]
    return [data] if isinstance(data, dict) and "id" in data else []


def _is_complete(exchange: Exchange) -> bool:
    """A listing that holds every backup it counts (its total fits in the page it asked for)."""
    body = exchange.response_body
    if exchange.status != 200 or not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return False
    return isinstance(body.get("total"), int) and body["total"] <= len(body["data"])


@pytest.mark.req("RC-17")
def test_backups_every_view_agrees(scenario: ScenarioRecord, evidence) -> None:
    """1. each field of each backup has one value wherever it is shown (a null only before the first value)
    2. a backup in the VM's listing is in the project's and the key's complete listings too."""
    ours = set(scenario.ids.values())
    if not ours:
        raise inconclusive("ready_A1", "no backup of the scenario became ready, so there is nothing to compare")
    seen: dict[tuple[str, str], tuple[Any, str]] = {}  # (backup, field) -> (value, first step showing it)
    for name, exchange in scenario.steps.items():
        for backup in _backups_in(exchange):
            if backup["id"] not in ours:
                continue
            for key in SAME_IN_EVERY_VIEW:
                value = backup.get(key)
                if value is None and (backup["id"], key) not in seen:
                    continue  # not known yet (a create answer may come before the value is assigned)
                first = seen.setdefault((backup["id"], key), (value, name))
                if first[0] != value:  # a null after a value counts: a known value does not become unknown
                    raise fail(
                        "RC-17",
                        scenario.trail(first[1], name),
                        f"views disagree on {key}",
                        f"backup {backup['id']}: {first[1]} shows {key}={first[0]!r}, {name} shows {value!r}",
                        check="views_agree",
                    )
    evidence.attach(*scenario.trail("list_A_after_reset", "list_all_after_reset", "list_all_unscoped_after_reset"))
    on_vm = scenario.listed("list_A_after_reset").keys() & ours
    for wider in ("list_all_after_reset", "list_all_unscoped_after_reset"):
        exchange = scenario.step(wider)
        if not _is_complete(exchange):
            continue  # a first page of a big account proves nothing about what it left out
        absent = sorted(on_vm - scenario.listed(wider).keys())
        if absent:
            raise fail(
                "RC-17",
                scenario.trail("list_A_after_reset", wider),
                "a wider listing leaves out the VM's backups",
                f"{wider} (total {exchange.response_body.get('total')}, complete) does not show {', '.join(absent)}, "
                "which the VM's own listing shows",
                check="views_agree",
            )


@pytest.mark.req("RC-18")
def test_backups_list_pages_split_the_listing(scenario: ScenarioRecord, evidence) -> None:
    """The VM's listing re-read in pages: every backup once, none left out, the same total on each page."""
    full_exchange = scenario.step("list_A_before_deletes")
    full = scenario.listed("list_A_before_deletes")
    total = full_exchange.response_body.get("total")
    if not scenario.pages:
        raise inconclusive("page_A_0", scenario.why_missing("page_A_0"), full_exchange)
    evidence.attach(full_exchange, *scenario.trail(*scenario.pages))
    paged: list[str] = []
    for name in scenario.pages:
        page = scenario.step(name)
        paged += list(scenario.listed(name))
        if page.response_body.get("total") != total:
            raise fail(
                "RC-18",
                scenario.trail("list_A_before_deletes", name),
                "total changes with the page",
                f"{name} says total {page.response_body.get('total')!r}; the full listing says {total!r}",
                check="list_pages",
            )
    repeated = sorted({i for i in paged if paged.count(i) > 1})
    left_out = sorted(full.keys() - set(paged))
    extra = sorted(set(paged) - full.keys())
    if repeated or left_out or extra:
        problems = [
            f"{label}: {', '.join(ids)}"
            for label, ids in (("on two pages", repeated), ("on no page", left_out), ("only on a page", extra))
            if ids
        ]
        raise fail(
            "RC-18",
            scenario.trail("list_A_before_deletes", *scenario.pages),
            "pages do not split the listing",
            f"{len(scenario.pages)} pages against the full listing of {len(full)}: {'; '.join(problems)}",
            check="list_pages",
        )


def _listing_items(scenario: ScenarioRecord, name: str) -> list[dict[str, Any]]:
    scenario.listed(name)  # inconclusive unless the listing answered 200 with a list
    return _backups_in(scenario.step(name))


@pytest.mark.req("RC-20")
def test_backups_list_vm_filter_without_project_header(scenario: ScenarioRecord, evidence) -> None:
    """1. the VM's listing without X-Project-ID shows that VM's backups only, the same ones as with it
    2. the key's whole listing (no header) shows nothing of another account."""
    vm_id = scenario.vm_id
    scoped_name, unscoped_name = "list_A_before_deletes", "list_A_unscoped_before_deletes"
    unscoped = _listing_items(scenario, unscoped_name)
    evidence.attach(*scenario.trail(scoped_name, unscoped_name))
    strangers = [b["id"] for b in unscoped if b.get("product_vm") not in (None, vm_id)]
    if strangers:
        raise fail(
            "RC-20",
            scenario.trail(scoped_name, unscoped_name),
            "vm_id filter ignored without X-Project-ID",
            f"listBackups?vm_id={vm_id} without X-Project-ID shows {len(strangers)} backups of other VMs "
            f"(first: {strangers[0]})",
            check="list_filters",
        )
    scoped_exchange, unscoped_exchange = scenario.step(scoped_name), scenario.step(unscoped_name)
    if _is_complete(scoped_exchange) and _is_complete(unscoped_exchange):
        scoped = scenario.listed(scoped_name).keys()
        differ = sorted(scoped ^ {b["id"] for b in unscoped})
        if differ:
            raise fail(
                "RC-20",
                scenario.trail(scoped_name, unscoped_name),
                "the VM's listing depends on X-Project-ID",
                f"with the header {len(scoped)} backups, without it {len(unscoped)}; "
                f"shown by only one of them: {', '.join(differ[:5])}",
                check="list_filters",
            )
    account = next((scenario.data(f"ready_{label}").get("account_id") for label in scenario.ids), None)
    if not isinstance(account, str):
        return  # the backups do not say their account: nothing to compare the key's listing with
    wide = "list_all_unscoped_after_reset"
    evidence.attach(scenario.step(wide))
    items = _listing_items(scenario, wide)
    own = set(scenario.ids.values())
    mislabelled = [b["id"] for b in items if b["id"] in own and b.get("account_id") not in (None, account)]
    if mislabelled:
        # The listing puts the run's own backups in another account: its account_id is not the owner,
        # so it cannot tell whose the other backups are. That the views disagree is RC-17's finding.
        raise inconclusive(
            wide,
            f"the listing shows the run's own backup {mislabelled[0]} with an account_id other than {account} "
            "(its ready view's), so its account_id field cannot show whose the other backups are",
            scenario.step(wide),
        )
    leaked = [b["id"] for b in items if b.get("account_id") not in (None, account)]
    if leaked:
        raise fail(
            "RC-20",
            scenario.step(wide),
            "listing shows another account's backups",
            f"without X-Project-ID the key's listing shows {len(leaked)} backups whose account_id is not "
            f"{account}, the account of the run's own backups (first: {leaked[0]})",
            check="list_filters",
        )


@pytest.mark.req("RC-20")
def test_backups_list_invisible_vm_lists_nothing(scenario: ScenarioRecord, evidence) -> None:
    """The vm_id of a VM the key cannot see (another account's, or a UUID of no VM) lists nothing."""
    for name in ("list_invisible_vm", "list_invisible_vm_unscoped"):
        exchange = scenario.step(name)
        evidence.attach(exchange)
        if exchange.status is not None and 400 <= exchange.status < 500:
            continue  # refusing the filter lists nothing too (its body is RC-14's, judged on every answer)
        shown = _listing_items(scenario, name)
        # Only what the page shows: a total that disagrees with it is P-TOTALS' finding (RC-18).
        if shown:
            raise fail(
                "RC-20",
                exchange,
                "a VM the key cannot see lists backups",
                f"listBackups?vm_id={scenario.invisible_vm_id} ({name}) shows {len(shown)} backups; "
                "the key cannot see that VM, so nothing may be listed",
                check="list_filters",
            )
