"""One typed settings object for a run, resolved once: pytest option > environment > default.

Tests never read the environment themselves; they get ``Settings`` through fixtures.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

PRODUCTION_HOST = "api.rafftechnologies.com"
REDACTED = "[REDACTED]"
# The suite's own fixed fake keys start with this: they are not secrets, so evidence and curl
# commands show them as sent (report.model holds the same prefix for the report's redaction).
FAKE_KEY_PREFIX = "conformance-fake-"
WRONG_KEY = f"{FAKE_KEY_PREFIX}key-never-issued"
PROFILES = ("thorough", "bounded", "smoke")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the setting."""


@dataclass(frozen=True)
class Option:
    """How one setting is given: pytest option, environment variable, help text."""

    flag: str
    env: str
    help: str
    kind: str = "str"  # str | uuid | float | int | bool


OPTIONS: dict[str, Option] = {
    "base_url": Option("--base-url", "RAFF_BASE_URL", "API base URL; unset = start the bundled mock"),
    "api_key": Option("--api-key", "RAFF_API_KEY", "API key sent as X-API-Key (never printed)"),
    "project_id": Option("--project-id", "RAFF_PROJECT_ID", "project (X-Project-ID) the suite works in", "uuid"),
    "vm_id": Option("--vm-id", "RAFF_VM_ID", "a VM the suite may back up and reset", "uuid"),
    "second_vm_id": Option(
        "--second-vm-id", "RAFF_SECOND_VM_ID", "optional second VM of the same project (RC-09, model run)", "uuid"
    ),
    "other_project_vm_id": Option(
        "--other-project-vm-id", "RAFF_OTHER_PROJECT_VM_ID", "optional VM of the same account, other project", "uuid"
    ),
    "other_account_vm_id": Option(
        "--other-account-vm-id", "RAFF_OTHER_ACCOUNT_VM_ID", "optional VM the key's account does not own", "uuid"
    ),
    "other_account_api_key": Option(
        "--other-account-api-key",
        "RAFF_OTHER_ACCOUNT_API_KEY",
        "optional key of another account (never printed): its reads must see nothing the run created",
    ),
    "allow_writes": Option(
        "--allow-writes",
        "RAFF_ALLOW_WRITES",
        "let state-changing tests run against a server other than the bundled mock",
        "bool",
    ),
    "allow_restore": Option(
        "--allow-restore", "RAFF_ALLOW_RESTORE", "the VM is disposable: restore tests may overwrite its disk", "bool"
    ),
    "allow_production": Option(
        "--allow-production", "RAFF_ALLOW_PRODUCTION", f"permit writes against {PRODUCTION_HOST}", "bool"
    ),
    "strict_spec": Option("--strict-spec", "RAFF_STRICT_SPEC", "spec gaps fail the run too", "bool"),
    "profile": Option("--raff-profile", "RAFF_PROFILE", f"Hypothesis profile: {', '.join(PROFILES)}"),
    "report_dir": Option("--report-dir", "RAFF_REPORT_DIR", "where report.html, junit.xml, results.json go"),
    "ready_timeout": Option(
        "--ready-timeout", "RAFF_READY_TIMEOUT", "seconds to wait for a backup/restore to be ready", "float"
    ),
    "request_timeout": Option("--request-timeout", "RAFF_REQUEST_TIMEOUT", "read timeout of one request, s", "float"),
    "rate_limit": Option("--rate-limit", "RAFF_RATE_LIMIT", "client request-rate cap, requests/s (<30)", "float"),
    "max_backups": Option("--max-backups", "RAFF_MAX_BACKUPS", "most backups a run may create", "int"),
    "name_prefix": Option("--name-prefix", "RAFF_NAME_PREFIX", "prefix of names of backups the suite creates"),
    "wait_for_other_run": Option(
        "--wait-for-other-run",
        "RAFF_WAIT_FOR_OTHER_RUN",
        "seconds to wait for another run of the suite on the same VM before stopping (0: stop at once, exit 4)",
        "float",
    ),
}

# Every backup a run creates carries its run token in its name ({prefix}-run<8 hex>-...), so that
# another run of the suite on the same VM sees it (the API has no tag a run could write instead).
RUN_TOKEN = re.compile(r"(?:^|-)(run[0-9a-f]{8})(?:-|$)")


def new_run_token() -> str:
    return f"run{uuid.uuid4().hex[:8]}"


def run_token_of(name: object) -> str | None:
    """The run token in a backup's name, or None for a backup no run of the suite named."""
    match = RUN_TOKEN.search(name) if isinstance(name, str) else None
    return match.group(1) if match else None


@dataclass(frozen=True)
class Settings:
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never in a traceback or log line
    project_id: str | None = None
    vm_id: str | None = None
    second_vm_id: str | None = None
    other_project_vm_id: str | None = None
    other_account_vm_id: str | None = None
    other_account_api_key: str | None = field(default=None, repr=False)  # a secret like api_key
    allow_writes: bool = False
    allow_restore: bool = False
    allow_production: bool = False
    strict_spec: bool = False
    profile: str | None = None
    report_dir: str = "reports"
    ready_timeout: float | None = None
    request_timeout: float = 30.0
    rate_limit: float = 20.0
    max_backups: int = 8
    name_prefix: str = "raffconf"
    wait_for_other_run: float = 0.0
    # This run's token, in the name of every backup it creates (see RUN_TOKEN); one per run, handed
    # to pytest-xdist workers by the controller.
    run_token: str = field(default_factory=new_run_token)
    # Filled in by the session when it starts the bundled mock.
    embedded_mock: bool = field(default=False)
    # Seconds before the first poll of a backup that is not ready yet (the interval then grows).
    poll_interval: float = field(default=0.1)

    # Explicitly given (option or environment), not the default: the model run on a real server needs it.
    max_backups_given: bool = field(default=False)

    @property
    def run_prefix(self) -> str:
        """The start of every backup name this run gives: the prefix, then the run token."""
        return f"{self.name_prefix}-{self.run_token}"

    @property
    def other_run_stale_after(self) -> float:
        """Seconds after which another run's newest backup no longer says that run is active.

        A live run creates its next backup at most about one ready wait after the last one, so an
        active run always has a backup younger than two ready waits (at least 10 minutes); older
        ones are the leftovers of an aborted run (``raff-conformance sweep`` removes them).
        """
        return max(600.0, 2 * self.effective_ready_timeout)

    @property
    def is_mock(self) -> bool:
        """The target is the bundled mock this run starts (no RAFF_BASE_URL) or has started.

        Only that server may be used without budget or opt-ins. A loopback URL is not a mock: it
        may be a local build of the API or a port-forward to staging.
        """
        return self.embedded_mock or not self.base_url

    @property
    def trust_env(self) -> bool:
        """Whether HTTP clients take proxies, netrc and CA bundles from the environment.

        Not for the bundled mock: this run started it on loopback, and an HTTP_PROXY without a
        NO_PROXY for 127.0.0.1 (common behind a company proxy) would send its traffic away.
        """
        return not self.is_mock

    @property
    def is_loopback(self) -> bool:
        if not self.base_url:
            return True  # the bundled mock will be started on loopback
        host = urlsplit(self.base_url or "").hostname or ""
        return host in ("localhost", "::1") or host.startswith("127.")

    @property
    def is_production(self) -> bool:
        return (urlsplit(self.base_url or "").hostname or "").lower() == PRODUCTION_HOST

    @property
    def writes_allowed(self) -> bool:
        if self.is_mock:
            return True
        if self.is_production and not self.allow_production:
            return False
        return self.allow_writes

    @property
    def restores_allowed(self) -> bool:
        return self.is_mock or (self.writes_allowed and self.allow_restore)

    @property
    def backup_budget(self) -> int | None:
        """Most backups the run may create: RAFF_MAX_BACKUPS on a real server, unbounded on the bundled mock."""
        return None if self.is_mock else self.max_backups

    @property
    def effective_profile(self) -> str:
        return self.profile or ("thorough" if self.is_mock else "bounded")

    @property
    def effective_ready_timeout(self) -> float:
        return self.ready_timeout if self.ready_timeout is not None else (30.0 if self.is_mock else 900.0)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.api_key, self.other_account_api_key) if s)

    def describe(self) -> str:
        """One line for pytest's header, key redacted."""
        target = "bundled mock" if self.is_mock else ("live" if not self.is_loopback else "loopback server")
        key = REDACTED if self.api_key else "(none)"
        return (
            f"raff-conformance: target={target} base_url={self.base_url} api_key={key} project={self.project_id} "
            f"vm={self.vm_id} profile={self.effective_profile} writes={'on' if self.writes_allowed else 'off'} "
            f"restore={'on' if self.restores_allowed else 'off'}"
        )

    def with_mock(self, credentials: Mapping[str, str]) -> Settings:
        """These settings pointed at the bundled mock, its seeded IDs filling what is unset."""
        values: dict[str, Any] = {"base_url": credentials["RAFF_BASE_URL"], "embedded_mock": True}
        for name, option in OPTIONS.items():
            if option.env in credentials and name != "base_url" and getattr(self, name) in (None, ""):
                values[name] = credentials[option.env]
        return replace(self, **values)


def _convert(name: str, option: Option, raw: Any) -> Any:
    if raw is None:
        return None
    if option.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("", "0", "false", "no", "off"):
            return False
        raise SettingsError(f"{option.env} / {option.flag}: expected 1/0/true/false, got {raw!r}")
    text = str(raw).strip()
    if option.kind == "uuid":
        try:
            uuid.UUID(text)
        except ValueError:
            raise SettingsError(f"{option.env} / {option.flag}: not a UUID: {text!r}") from None
        return text
    if option.kind in ("float", "int"):
        try:
            value = float(text) if option.kind == "float" else int(text)
        except ValueError:
            raise SettingsError(f"{option.env} / {option.flag}: expected a number, got {text!r}") from None
        if value <= 0 and name not in ("max_backups", "wait_for_other_run"):
            raise SettingsError(f"{option.env} / {option.flag}: must be positive, got {text!r}")
        return value
    return text


def resolve(options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from pytest options (by setting name) over environment variables over defaults.

    Raises SettingsError naming the first problem found.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, option in OPTIONS.items():
        raw = options.get(name)
        if raw is None:
            raw = environ.get(option.env) or None
        value = _convert(name, option, raw)
        if value is not None:
            values[name] = value
    settings = Settings(**values, max_backups_given="max_backups" in values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    if settings.base_url:
        parts = urlsplit(settings.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"RAFF_BASE_URL / --base-url: not an http(s) URL: {settings.base_url!r}")
        for name in ("api_key", "project_id", "vm_id"):
            if not getattr(settings, name):
                option = OPTIONS[name]
                raise SettingsError(f"{option.env} / {option.flag}: required when RAFF_BASE_URL is set")
    if settings.profile and settings.profile not in PROFILES:
        raise SettingsError(f"RAFF_PROFILE / --raff-profile: one of {', '.join(PROFILES)}, got {settings.profile!r}")
    if settings.rate_limit >= 30:
        raise SettingsError("RAFF_RATE_LIMIT / --rate-limit: must stay below the documented 30 requests/s")
    if settings.max_backups < 0:
        raise SettingsError("RAFF_MAX_BACKUPS / --max-backups: must be zero or more")
    if settings.wait_for_other_run < 0:
        raise SettingsError("RAFF_WAIT_FOR_OTHER_RUN / --wait-for-other-run: must be zero or more seconds")


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings) if f.name in OPTIONS]
