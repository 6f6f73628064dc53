"""Preflight: the settings are right before any test runs, so a user's mistake is never blamed on
the server.

Local checks (``check_local``: the report directory is writable, ``--baseline`` and ``--compare``
parse) run in ``pytest_configure``; target checks (``check_target``: the server answers, the key
is accepted, the project is usable, the VMs exist and belong to it) and the budget check
(``backups_needed``) run once the tests are collected, before the first one. Every problem is a
``PreflightError`` with one line naming the setting and what the server said; the plugin turns it
into pytest's usage error (exit code 4). Nothing here changes state on the server: it only reads.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from conformance.checks import json_value
from conformance.exchange import Exchange
from conformance.settings import OPTIONS, Settings, run_token_of

# Backups the recorded scenario creates (conformance/scenario.py): A1..A7 on RAFF_VM_ID and B1 on
# RAFF_SECOND_VM_ID when it is set.
SCENARIO_BACKUPS_FIRST_VM = 7
SCENARIO_BACKUPS_SECOND_VM = 1


class PreflightError(Exception):
    """A setting is wrong; the message is the one line to show."""


def check_local(settings: Settings, report_dir: Path, baseline: str | None, compare: str | None) -> None:
    """Report directory writable, baseline and comparison files readable and well-formed."""
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=report_dir, prefix=".raff-write-test-"):
            pass
    except OSError as error:
        raise PreflightError(
            f"{OPTIONS['report_dir'].env} / {OPTIONS['report_dir'].flag}: cannot write to {report_dir} "
            f"({error.strerror or error})"
        ) from None
    if baseline:
        from conformance.report import load_baseline
        from conformance.report.compare import BaselineError

        try:
            load_baseline(Path(baseline))
        except (OSError, BaselineError, ValueError) as error:
            raise PreflightError(f"--baseline {baseline}: {_one_line(error)}") from None
        except Exception as error:  # a YAML parser error: its message says where
            raise PreflightError(f"--baseline {baseline}: not a YAML or JSON baseline ({_one_line(error)})") from None
    if compare:
        try:
            previous = json.loads(Path(compare).read_text(encoding="utf-8"))
        except OSError as error:
            raise PreflightError(f"--compare {compare}: {error.strerror or error}") from None
        except ValueError as error:
            raise PreflightError(f"--compare {compare}: not a results.json file (not JSON: {error})") from None
        if not isinstance(previous, dict) or not isinstance(previous.get("findings"), list):
            raise PreflightError(f"--compare {compare}: not a results.json file (no 'findings' list)")


def check_target(settings: Settings, *, timeout: float = 15.0) -> list[str]:
    """Read-only checks of the target; returns notes worth a line in the header (nothing wrong)."""
    notes: list[str] = []
    base = (settings.base_url or "").rstrip("/")
    key_headers = {"X-API-Key": settings.api_key or "", "Accept": "application/json"}
    with httpx.Client(base_url=base, timeout=httpx.Timeout(timeout, connect=5.0), trust_env=settings.trust_env) as http:
        # The key and the project, with one harmless read.
        project_headers = {**key_headers, "X-Project-ID": settings.project_id or ""}
        listing = _get(http, settings, "/api/v1/backups", headers=project_headers, params={"limit": 1})
        if listing.status_code == 401:
            raise PreflightError(f"RAFF_API_KEY was rejected by {base} ({_said(listing)})")
        if listing.status_code in (400, 403, 404) and _is_json_error(listing):
            raise PreflightError(
                f"RAFF_PROJECT_ID {settings.project_id} was refused by {base} (listBackups {_said(listing)})"
            )
        if listing.status_code != 200 or json_value(_body(listing)) is None:
            raise PreflightError(
                f"RAFF_BASE_URL {base}: GET /api/v1/backups answered {_said(listing)}, not the API's JSON listing; "
                "is the base URL right?"
            )
        for name in ("vm_id", "second_vm_id"):
            vm_id = getattr(settings, name)
            if vm_id:
                notes += _check_vm(http, settings, name, vm_id, key_headers)
    if settings.second_vm_id and settings.second_vm_id == settings.vm_id:
        raise PreflightError("RAFF_SECOND_VM_ID: must be another VM than RAFF_VM_ID")
    return notes


def _check_vm(http: httpx.Client, settings: Settings, name: str, vm_id: str, headers: dict[str, str]) -> list[str]:
    env = OPTIONS[name].env
    shown = _get(http, settings, f"/api/v1/vms/{vm_id}", headers=headers)
    if shown.status_code == 404:
        raise PreflightError(f"{env} {vm_id} is not a VM this key can see (getVM {_said(shown)})")
    if shown.status_code != 200:
        raise PreflightError(f"{env} {vm_id}: getVM answered {_said(shown)}")
    data = (json_value(_body(shown)) or {}).get("data") if isinstance(json_value(_body(shown)), dict) else None
    if not isinstance(data, dict) or data.get("id") != vm_id:
        # A stateless mock (Prism) answers any id with its example VM: nothing to compare against.
        return [f"getVM does not echo {env} {vm_id}: cannot tell whether it belongs to RAFF_PROJECT_ID"]
    project = data.get("project_id")
    if project and settings.project_id and project != settings.project_id:
        raise PreflightError(
            f"{env} {vm_id} belongs to project {project}, not RAFF_PROJECT_ID {settings.project_id} (getVM)"
        )
    return []


# -- sharing a VM with another run of the suite --------------------------------------------------
#
# The API has no tag a run could put on a VM, so a run marks its VMs with what it creates anyway:
# every backup it creates carries its run token in its name (Settings.run_prefix). Before the first
# write (here, and again in BackupFactory before the first create on each VM) a run lists each of
# its VMs: a backup of another run of the suite that is still in progress or younger than
# Settings.other_run_stale_after (by the server's own clock: the listing's Date header) means
# that run is still writing there. Older ones are the leftovers of an aborted run and are left
# alone. Two runs that check at the same instant both see nothing: BackupFactory.claim_vms (right
# before the scenario's first reset) and _claim_after (after the first create) break that tie, and
# what either sees of the other is a foreign write (state.py).

IN_PROGRESS = frozenset({"pending", "creating", "restoring"})
OTHER_RUN_POLL_S = 5.0


@dataclass(frozen=True)
class OtherRun:
    """Another run of the suite seen on one of this run's VMs, by its newest backup there."""

    token: str
    vm_id: str
    backup_id: str
    prefix: str  # its names' start, up to its token: what `raff-conformance sweep --prefix` takes
    created_at: str | None
    age_s: float | None  # by the server's clock; None when created_at or the Date could not be read
    in_progress: bool

    def describe(self, env: str) -> str:
        age = f"{self.age_s:.0f}s ago" if self.age_s is not None else "at an unknown time"
        state = ", still in progress" if self.in_progress else ""
        return f"run {self.token} is writing to {env} {self.vm_id} (its backup {self.backup_id} created {age}{state})"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (created_at) or an HTTP date (Date), as an aware datetime; else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def other_runs(backups: list[Any], own_token: str, vm_id: str, now: datetime, stale_after: float) -> list[OtherRun]:
    """The other runs of the suite whose backups in ``backups`` say they are still active, newest first.

    Active: a backup still in progress, or one created less than ``stale_after`` seconds before
    ``now``. A backup whose created_at cannot be read counts as active (it may be; waiting or
    stopping is the safe side, and the message says how to go on).
    """
    newest: dict[str, OtherRun] = {}
    for backup in backups:
        if not isinstance(backup, dict):
            continue
        token = run_token_of(backup.get("name"))
        if token is None or token == own_token:
            continue
        created = parse_time(backup.get("created_at"))
        age = max(0.0, (now - created).total_seconds()) if created is not None else None
        in_progress = backup.get("status") in IN_PROGRESS
        if not in_progress and age is not None and age >= stale_after:
            continue
        name = str(backup.get("name"))
        prefix = name[: name.index(token) + len(token)]
        seen = OtherRun(token, vm_id, str(backup.get("id")), prefix, backup.get("created_at"), age, in_progress)
        known = newest.get(token)
        if known is None or (age is not None and (known.age_s is None or age < known.age_s)):
            newest[token] = seen
    return sorted(newest.values(), key=lambda run: run.age_s if run.age_s is not None else -1.0)


def list_vm(http: Any, settings: Settings, vm_id: str) -> tuple[list[Any] | None, datetime]:
    """One listing of the VM's backups (read-only) and the server's time of it (its Date header)."""
    headers = {"X-API-Key": settings.api_key or "", "X-Project-ID": settings.project_id or ""}
    response = http.get("/api/v1/backups", headers=headers, params={"vm_id": vm_id, "limit": 1000})
    now = parse_time(response.headers.get("date")) or datetime.now(UTC)
    body = json_value(_body(response)) if response.status_code == 200 else None
    data = body.get("data") if isinstance(body, dict) else None
    return (data if isinstance(data, list) else None), now


def vm_env(settings: Settings, vm_id: str) -> str:
    return OPTIONS["second_vm_id"].env if vm_id == settings.second_vm_id else OPTIONS["vm_id"].env


def wait_for_other_runs(
    settings: Settings,
    lister: Callable[[str], tuple[list[Any] | None, datetime]],
    say: Callable[[str], None],
    *,
    enforce: bool = True,
) -> dict[str, set[str]]:
    """Wait (up to RAFF_WAIT_FOR_OTHER_RUN) until no other run of the suite is active on the run's
    VMs; PreflightError naming it and how to wait if one still is. Returns the ids of the backups
    each VM holds now (the start of the run's watch for foreign writes)."""
    deadline = time.monotonic() + settings.wait_for_other_run
    announced: set[str] = set()
    while True:
        listed: dict[str, set[str]] = {}
        active: list[OtherRun] = []
        for vm_id in filter(None, (settings.vm_id, settings.second_vm_id)):
            data, now = lister(vm_id)
            listed[vm_id] = {str(b.get("id")) for b in data or [] if isinstance(b, dict) and b.get("id")}
            active += other_runs(data or [], settings.run_token, vm_id, now, settings.other_run_stale_after)
        if not active or not enforce:  # a read-only run writes nothing another run could meet
            return listed
        first = active[0]
        env = vm_env(settings, first.vm_id)
        if time.monotonic() >= deadline:
            if settings.wait_for_other_run:
                raise PreflightError(
                    f"{first.describe(env)}, still after waiting {settings.wait_for_other_run:.0f}s "
                    f"({OPTIONS['wait_for_other_run'].env}); wait longer, use another VM, or, if that run was aborted, "
                    f"delete its backups: raff-conformance sweep --prefix {first.prefix}"
                )
            raise PreflightError(
                f"{first.describe(env)}: two runs on one VM would judge each other's writes; set "
                f"{OPTIONS['wait_for_other_run'].env}=1800 to wait for it, use another VM, or, if that run was "
                f"aborted, delete its backups: raff-conformance sweep --prefix {first.prefix}"
            )
        if first.token not in announced:
            announced.add(first.token)
            until = datetime.fromtimestamp(time.time() + max(0.0, deadline - time.monotonic()), UTC)
            say(
                f"{first.describe(env)}; waiting for it to end until {until:%H:%M:%S} UTC "
                f"({OPTIONS['wait_for_other_run'].env}={settings.wait_for_other_run:.0f})"
            )
        time.sleep(min(OTHER_RUN_POLL_S, max(0.0, deadline - time.monotonic())))


def check_other_runs(
    settings: Settings, say: Callable[[str], None], *, enforce: bool = True, timeout: float = 15.0
) -> dict[str, set[str]]:
    """Preflight's read-only check, before any test: no other run of the suite is writing to the
    run's VMs (or it ended within RAFF_WAIT_FOR_OTHER_RUN). Returns each VM's backups now."""
    base = (settings.base_url or "").rstrip("/")
    with httpx.Client(base_url=base, timeout=httpx.Timeout(timeout, connect=5.0), trust_env=settings.trust_env) as http:

        def lister(vm_id: str) -> tuple[list[Any] | None, datetime]:
            try:
                return list_vm(http, settings, vm_id)
            except httpx.HTTPError as error:
                raise PreflightError(f"RAFF_BASE_URL {base} cannot be reached ({type(error).__name__})") from None

        return wait_for_other_runs(settings, lister, say, enforce=enforce)


def backups_needed(settings: Settings, uses_scenario: bool) -> dict[str, int]:
    """What the selected tests create, by purpose (tests that adapt to what is left are not counted)."""
    if not uses_scenario or not settings.writes_allowed:
        return {}
    need = {f"the recorded scenario on {OPTIONS['vm_id'].env}": SCENARIO_BACKUPS_FIRST_VM}
    if settings.second_vm_id:
        need[f"the recorded scenario on {OPTIONS['second_vm_id'].env}"] = SCENARIO_BACKUPS_SECOND_VM
    return need


def check_budget(settings: Settings, need: dict[str, int]) -> None:
    budget = settings.backup_budget
    total = sum(need.values())
    if budget is None or total <= budget:
        return
    parts = ", ".join(f"{n} for {what}" for what, n in need.items())
    raise PreflightError(
        f"RAFF_MAX_BACKUPS={budget} is too small: the selected tests create {total} backups ({parts}); "
        f"raise it to {total}, or leave out the state-changing tests (-m 'not writes')"
    )


def _get(http: httpx.Client, settings: Settings, path: str, **kwargs: Any) -> httpx.Response:
    try:
        return http.get(path, **kwargs)
    except httpx.HTTPError as error:
        raise PreflightError(
            f"RAFF_BASE_URL {settings.base_url} cannot be reached ({type(error).__name__}: {str(error) or 'no answer'})"
        ) from None


def _body(response: httpx.Response) -> Any:
    return Exchange.from_httpx(response, None).response_body


def _is_json_error(response: httpx.Response) -> bool:
    body = json_value(_body(response))
    return isinstance(body, dict) and any(isinstance(body.get(k), str) for k in ("error", "message"))


def _said(response: httpx.Response) -> str:
    """``401 {"error": …, "message": …}`` in one short line."""
    body = _body(response)
    value = json_value(body)
    if isinstance(value, dict) and isinstance(value.get("message") or value.get("error"), str):
        text = str(value.get("message") or value.get("error"))
    else:
        text = (body if isinstance(body, str) else json.dumps(body)) if body is not None else "no body"
    text = " ".join(text.split())
    return f"{response.status_code} {text[:120]}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]
