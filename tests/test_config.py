"""Settings: env over file, the seed's API-key rule, clear errors, hidden secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import SETTINGS_TABLE, load_settings
from bot.errors import ConfigError

FILE = """
instance_backend_url = "https://file.example.com/api/v1/"
[providers.anthropic]
api_key = "file-key"
[backend]
timeout_secs = 12
[slack]
bot_token = "xoxb-file"
[database]
url = "sqlite:///./file.db"
[http]
port = 4000
public_url = "https://bot.example.com/"
[alerts]
channel = "C0FILE"
[access]
admins = ["U1", "S2"]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "starpod-bot.toml"
    path.write_text(FILE)
    return path


def test_defaults_without_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.backend.url is None
    assert settings.backend.timeout_secs == 30
    assert settings.slack.api_url == "https://slack.com/api/"
    assert settings.database.url == "sqlite:///./starpod-bot.db"
    assert settings.http.port == 3000
    assert not settings.access.configured


def test_file_is_read_and_env_wins(config_file: Path) -> None:
    env = {
        "STARPOD_CONFIG": str(config_file),
        "STARPOD_INSTANCE_BACKEND_URL": "https://env.example.com",
        "PORT": "5000",
        "STARPOD_ALERT_CHANNEL": "C0ENV",
        "STARPOD_ACCESS_OPERATORS": "U7, U8",
    }
    settings = load_settings(env)
    assert settings.backend.url == "https://env.example.com"
    assert settings.backend.timeout_secs == 12
    assert settings.http.port == 5000
    assert settings.http.public_url == "https://bot.example.com"
    assert settings.alerts.channel == "C0ENV"
    assert settings.access.admins == ["U1", "S2"]
    assert settings.access.operators == ["U7", "U8"]
    assert settings.slack.bot_token is not None
    assert settings.slack.bot_token.get_secret_value() == "xoxb-file"


def test_api_key_file_wins_over_env_as_the_seed_says(config_file: Path) -> None:
    env = {"STARPOD_CONFIG": str(config_file), "ANTHROPIC_API_KEY": "env-key"}
    settings = load_settings(env)
    assert settings.backend.api_key is not None
    assert settings.backend.api_key.get_secret_value() == "file-key"
    only_env = load_settings({"ANTHROPIC_API_KEY": "env-key"}, config_file=Path("/dev/null"))
    assert only_env.backend.api_key is not None
    assert only_env.backend.api_key.get_secret_value() == "env-key"


def test_secrets_never_show_in_repr(config_file: Path) -> None:
    settings = load_settings(
        {"STARPOD_CONFIG": str(config_file), "SLACK_SIGNING_SECRET": "sign-me"}
    )
    text = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in ("file-key", "xoxb-file", "sign-me"):
        assert secret not in text


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"STARPOD_BACKEND_TIMEOUT": "-1"}, "STARPOD_BACKEND_TIMEOUT"),
        ({"STARPOD_INSTANCE_BACKEND_URL": "ftp://x"}, "STARPOD_INSTANCE_BACKEND_URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"STARPOD_GATEWAY_KEYS": "nocolons"}, "STARPOD_GATEWAY_KEYS"),
        ({"STARPOD_WEBHOOK_URL": "https://hooks.example"}, "STARPOD_WEBHOOK_SECRET"),
        ({"STARPOD_WEBHOOK_URL": "hooks.example", "STARPOD_WEBHOOK_SECRET": "s"}, "WEBHOOK_URL"),
        ({"STARPOD_PAGERDUTY_EVENTS_URL": "ftp://x"}, "STARPOD_PAGERDUTY_EVENTS_URL"),
        ({"ANTHROPIC_API_KEY": "sk-1\r\nX-Evil: 1"}, "ANTHROPIC_API_KEY"),
    ],
)
def test_malformed_values_name_the_setting(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env, config_file=Path("/dev/null"))
    assert names in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "sk-1" not in str(caught.value)  # a secret's value is never echoed


def test_missing_required_setting_says_how_to_set_it(tmp_path: Path) -> None:
    settings = load_settings({}, config_file=Path("/dev/null"))
    with pytest.raises(ConfigError) as caught:
        settings.require_backend_url()
    assert "STARPOD_INSTANCE_BACKEND_URL" in str(caught.value)
    assert "instance_backend_url" in str(caught.value)
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        settings.require("slack.bot_token")


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"STARPOD_CONFIG": str(bad)})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"STARPOD_CONFIG": str(tmp_path / "missing.toml")})


def test_gateway_keys_from_env() -> None:
    settings = load_settings(
        {"STARPOD_GATEWAY_KEYS": "ci:operator:k1,dash:viewer:k2"}, config_file=Path("/dev/null")
    )
    assert [(k.name, k.role) for k in settings.gateway.keys] == [
        ("ci", "operator"),
        ("dash", "viewer"),
    ]


def test_every_setting_has_a_unique_env_name() -> None:
    names = [spec.env for spec in SETTINGS_TABLE if spec.env]
    assert len(names) == len(set(names))


def test_audit_retention_from_env_file_and_default(tmp_path: Path) -> None:
    path = tmp_path / "starpod-bot.toml"
    path.write_text("[database]\naudit_retention_days = 90\n")
    assert load_settings({}, config_file=Path("/dev/null")).database.audit_retention_days == 365
    assert load_settings({}, config_file=path).database.audit_retention_days == 90
    env = {"STARPOD_AUDIT_RETENTION_DAYS": "30"}
    assert load_settings(env, config_file=path).database.audit_retention_days == 30
    with pytest.raises(ConfigError, match="STARPOD_AUDIT_RETENTION_DAYS"):
        load_settings({"STARPOD_AUDIT_RETENTION_DAYS": "0"}, config_file=Path("/dev/null"))


def test_paging_settings_default_off_and_keep_their_secrets() -> None:
    none = load_settings({}, config_file=Path("/dev/null")).paging
    assert none.pagerduty_routing_key is None and none.webhook_url is None
    assert none.pagerduty_events_url == "https://events.pagerduty.com/v2/enqueue"
    env = {
        "STARPOD_PAGERDUTY_ROUTING_KEY": "pd-routing-key-123",
        "STARPOD_WEBHOOK_URL": "https://hooks.example/starpod",
        "STARPOD_WEBHOOK_SECRET": "hook-secret-456",
    }
    paging = load_settings(env, config_file=Path("/dev/null")).paging
    assert paging.pagerduty_routing_key is not None
    assert paging.pagerduty_routing_key.get_secret_value() == "pd-routing-key-123"
    assert paging.webhook_url == "https://hooks.example/starpod"
    shown = repr(paging) + str(paging)
    assert "pd-routing-key-123" not in shown and "hook-secret-456" not in shown
