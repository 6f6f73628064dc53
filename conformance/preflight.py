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
from pathlib import Path
from typing import Any

import httpx

from conformance.checks import json_value
from conformance.exchange import Exchange
from conformance.settings import OPTIONS, Settings

# Backups the recorded scenario creates (conformance/scenario.py): A1..A5 on RAFF_VM_ID and B1, B2
# on RAFF_SECOND_VM_ID when it is set.
SCENARIO_BACKUPS_FIRST_VM = 6
SCENARIO_BACKUPS_SECOND_VM = 2


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
    with httpx.Client(
        base_url=base, timeout=httpx.Timeout(timeout, connect=5.0), trust_env=settings.trust_env
    ) as http:
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
