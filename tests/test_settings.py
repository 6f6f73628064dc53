"""Settings: precedence, validation with one line naming the setting, safety switches."""

from __future__ import annotations

import pytest

from conformance.settings import REDACTED, SettingsError, resolve

VM = "2b1f8a4e-6f0d-4d3e-9a51-0c9d7b6e5a41"
PROJECT = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
LIVE = {
    "RAFF_BASE_URL": "https://staging.example.test",
    "RAFF_API_KEY": "k-secret-value",
    "RAFF_PROJECT_ID": PROJECT,
    "RAFF_VM_ID": VM,
}


def test_settings_default_is_embedded_mock() -> None:
    settings = resolve({}, {})
    assert settings.base_url is None
    assert settings.max_backups == 8


def test_settings_option_beats_environment() -> None:
    settings = resolve({"vm_id": "11111111-2222-4333-8444-555555555555"}, LIVE)
    assert settings.vm_id == "11111111-2222-4333-8444-555555555555"
    assert settings.project_id == PROJECT


@pytest.mark.parametrize("missing", ["RAFF_API_KEY", "RAFF_PROJECT_ID", "RAFF_VM_ID"])
def test_settings__base_url_without_required(missing: str) -> None:
    env = {k: v for k, v in LIVE.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        resolve({}, env)


def test_settings__id_not_uuid() -> None:
    with pytest.raises(SettingsError, match=r"RAFF_VM_ID.*not a UUID"):
        resolve({}, LIVE | {"RAFF_VM_ID": "vm-1"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RAFF_BASE_URL", "ftp://x"),
        ("RAFF_RATE_LIMIT", "45"),
        ("RAFF_READY_TIMEOUT", "soon"),
        ("RAFF_ALLOW_WRITES", "maybe"),
        ("RAFF_PROFILE", "fast"),
    ],
)
def test_settings__malformed_value_names_setting(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        resolve({}, LIVE | {name: value})


def test_settings_live_target_is_read_only_without_opt_in() -> None:
    settings = resolve({}, LIVE)
    assert not settings.writes_allowed and not settings.restores_allowed
    assert resolve({}, LIVE | {"RAFF_ALLOW_WRITES": "1"}).writes_allowed
    assert not resolve({}, LIVE | {"RAFF_ALLOW_WRITES": "1"}).restores_allowed
    assert resolve({}, LIVE | {"RAFF_ALLOW_WRITES": "1", "RAFF_ALLOW_RESTORE": "1"}).restores_allowed


def test_settings_production_needs_its_own_flag() -> None:
    production = LIVE | {"RAFF_BASE_URL": "https://api.rafftechnologies.com", "RAFF_ALLOW_WRITES": "1"}
    assert not resolve({}, production).writes_allowed
    assert resolve({}, production | {"RAFF_ALLOW_PRODUCTION": "1"}).writes_allowed


def test_settings_profile_follows_target() -> None:
    assert resolve({}, {}).effective_profile == "thorough"
    assert resolve({}, LIVE).effective_profile == "bounded"
    assert resolve({"profile": "smoke"}, LIVE).effective_profile == "smoke"


def test_settings_describe_redacts_key() -> None:
    line = resolve({}, LIVE).describe()
    assert "k-secret-value" not in line and REDACTED in line
