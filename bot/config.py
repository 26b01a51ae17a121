"""Typed settings, read once at start and passed down.

Sources, highest priority first:

1. environment variables (the names in ``SETTINGS_TABLE``),
2. the TOML file named by ``STARPOD_CONFIG``, else ``./starpod-bot.toml`` when it exists,
3. the defaults below.

One exception, kept from the seed: the backend API key is resolved from the file's
``[providers.anthropic] api_key`` first and from ``ANTHROPIC_API_KEY`` second.

Every setting is declared once in ``SETTINGS_TABLE`` (env name, file path, where it lands),
so error messages, the README table and the loader cannot drift apart. Secrets are
``SecretStr``: they never show in ``repr``, logs or error messages.

Why plain pydantic models and not ``pydantic-settings``: the names here follow no prefix or
nesting scheme that library can derive (``PORT``, ``DATABASE_URL``, ``ANTHROPIC_API_KEY`` next
to ``STARPOD_…``), lists are comma-separated rather than JSON, gateway keys are
``name:role:key`` items, two file keys sit outside their section (``instance_backend_url``,
``providers.anthropic.api_key``), and the API key reverses the env-over-file order. On
``BaseSettings`` each of those needs a custom settings source or a ``NoDecode`` field, the
table would still be needed for the README and the error lines, and ``load_settings(env=…)``
would have to feed a mapping through a source instead of reading it directly. The
table-driven loader below is shorter than those sources, so the dependency was dropped.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError

DEFAULT_CONFIG_FILE = "starpod-bot.toml"


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its env variable, its place in the TOML file, and a short description."""

    env: str | None
    file: str  # dotted path in the TOML file
    target: str  # dotted path in ``Settings``
    description: str
    kind: Literal["str", "list", "keys"] = "str"


SETTINGS_TABLE: tuple[SettingSpec, ...] = (
    SettingSpec(
        "STARPOD_INSTANCE_BACKEND_URL",
        "instance_backend_url",
        "backend.url",
        "Starpod instance backend base URL",
    ),
    SettingSpec(
        "ANTHROPIC_API_KEY",
        "providers.anthropic.api_key",
        "backend.api_key",
        "backend API key (the file wins over the env here, as in the seed)",
    ),
    SettingSpec(
        "STARPOD_BACKEND_TIMEOUT",
        "backend.timeout_secs",
        "backend.timeout_secs",
        "deadline of one backend request in seconds: connect, headers and body together (30)",
    ),
    SettingSpec("SLACK_BOT_TOKEN", "slack.bot_token", "slack.bot_token", "Slack bot token xoxb-…"),
    SettingSpec(
        "SLACK_SIGNING_SECRET",
        "slack.signing_secret",
        "slack.signing_secret",
        "Slack signing secret (HTTP mode)",
    ),
    SettingSpec(
        "SLACK_APP_TOKEN",
        "slack.app_token",
        "slack.app_token",
        "Slack app-level token xapp-… (enables Socket Mode)",
    ),
    SettingSpec("SLACK_API_URL", "slack.api_url", "slack.api_url", "Slack Web API base URL"),
    SettingSpec(
        "STARPOD_HOME_REFRESH_SECS",
        "slack.home_refresh_secs",
        "slack.home_refresh_secs",
        "App Home: changes within this many seconds refresh an open Home once (2)",
    ),
    SettingSpec(
        "DATABASE_URL",
        "database.url",
        "database.url",
        "SQLite or PostgreSQL URL (sqlite:///./starpod-bot.db)",
    ),
    SettingSpec(
        "STARPOD_AUDIT_RETENTION_DAYS",
        "database.audit_retention_days",
        "database.audit_retention_days",
        "audit log rows kept this many days, then pruned (365)",
    ),
    SettingSpec("PORT", "http.port", "http.port", "HTTP port of the bot's web server (3000)"),
    SettingSpec("STARPOD_HTTP_HOST", "http.host", "http.host", "address to listen on (0.0.0.0)"),
    SettingSpec(
        "STARPOD_PUBLIC_URL",
        "http.public_url",
        "http.public_url",
        "the bot's public URL (enables one-time SSH key links)",
    ),
    SettingSpec(
        "STARPOD_ALERT_CHANNEL", "alerts.channel", "alerts.channel", "channel id for alerts"
    ),
    SettingSpec(
        "STARPOD_ALERT_MENTION",
        "alerts.mention",
        "alerts.mention",
        "on-call mention, e.g. <!subteam^S0123>",
    ),
    SettingSpec(
        "STARPOD_ESCALATE_AFTER_MINS",
        "alerts.escalate_after_mins",
        "alerts.escalate_after_mins",
        "re-mention on-call when an incident is still open after N minutes (30)",
    ),
    SettingSpec(
        "STARPOD_PAGERDUTY_ROUTING_KEY",
        "paging.pagerduty_routing_key",
        "paging.pagerduty_routing_key",
        "PagerDuty Events API v2 integration key (pages PagerDuty when set)",
    ),
    SettingSpec(
        "STARPOD_PAGERDUTY_EVENTS_URL",
        "paging.pagerduty_events_url",
        "paging.pagerduty_events_url",
        "PagerDuty Events API endpoint (https://events.pagerduty.com/v2/enqueue)",
    ),
    SettingSpec(
        "STARPOD_WEBHOOK_URL",
        "paging.webhook_url",
        "paging.webhook_url",
        "URL that receives the incident events as signed JSON (none: off)",
    ),
    SettingSpec(
        "STARPOD_WEBHOOK_SECRET",
        "paging.webhook_secret",
        "paging.webhook_secret",
        "HMAC-SHA256 key of the webhook's X-Starpod-Signature (needed with the URL)",
    ),
    SettingSpec(
        "STARPOD_ROLE",
        "role",
        "role",
        "what this process runs: all, web (Slack, gateway) or worker (sweeps, alerts) (all)",
    ),
    SettingSpec(
        "STARPOD_WORKER_NICE",
        "monitor.worker_nice",
        "monitor.worker_nice",
        "CPU niceness a worker process takes at start under normal scheduling, 0-19 "
        "(10; 0: unchanged)",
    ),
    SettingSpec(
        "STARPOD_WORKER_SCHEDULING",
        "monitor.worker_scheduling",
        "monitor.worker_scheduling",
        "CPU scheduling of a worker process: idle (only CPU time nothing else wants) or "
        "normal (at STARPOD_WORKER_NICE) (idle)",
    ),
    SettingSpec(
        "STARPOD_MONITOR_INTERVAL",
        "monitor.interval_secs",
        "monitor.interval_secs",
        "health sweep interval in seconds (30)",
    ),
    SettingSpec(
        "STARPOD_HEARTBEAT_TIMEOUT",
        "monitor.heartbeat_timeout_secs",
        "monitor.heartbeat_timeout_secs",
        "heartbeat age that counts as stale, seconds (90)",
    ),
    SettingSpec(
        "STARPOD_ACCESS_ADMINS",
        "access.admins",
        "access.admins",
        "admins: Slack user ids U… or group ids S…, comma-separated",
        "list",
    ),
    SettingSpec(
        "STARPOD_ACCESS_OPERATORS",
        "access.operators",
        "access.operators",
        "operators: user or group ids",
        "list",
    ),
    SettingSpec("STARPOD_ACCESS_VIEWERS", "access.viewers", "access.viewers", "viewers", "list"),
    SettingSpec(
        "STARPOD_ACCESS_CHANNELS",
        "access.channels",
        "access.channels",
        "channels where commands are accepted (empty: all)",
        "list",
    ),
    SettingSpec(
        "STARPOD_SSH_KEY_SECRET",
        "ssh.key_secret",
        "ssh.key_secret",
        "Fernet key encrypting one-time SSH keys at rest (random per process if unset)",
    ),
    SettingSpec(
        "STARPOD_SSH_LINK_TTL",
        "ssh.link_ttl_secs",
        "ssh.link_ttl_secs",
        "lifetime of a one-time SSH key link, seconds (300)",
    ),
    SettingSpec(
        "STARPOD_GATEWAY_KEYS",
        "gateway.keys",
        "gateway.keys",
        "gateway API keys as name:role:key, comma-separated (none: gateway off)",
        "keys",
    ),
    SettingSpec("LOG_FORMAT", "log.format", "log.format", "text or json"),
    SettingSpec("LOG_LEVEL", "log.level", "log.level", "DEBUG, INFO, WARNING, ERROR"),
)


class BackendSettings(BaseModel):
    """The Starpod instance backend."""

    url: str | None = None
    api_key: SecretStr | None = None
    timeout_secs: float = Field(default=30.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _check_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        # It is sent in a header line: a line break in it would add headers of its own.
        if value is not None and not value.get_secret_value().isprintable():
            raise ValueError("must be printable characters only (no line breaks)")
        return value


class SlackSettings(BaseModel):
    """Slack credentials and the Web API location."""

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    # Changes seen within this window refresh each open App Home once (views.publish).
    home_refresh_secs: float = Field(default=2.0, ge=0.01, le=600)

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


class DatabaseSettings(BaseModel):
    url: str = "sqlite:///./starpod-bot.db"
    # Audit rows older than this are deleted by the hourly prune (bot.wiring).
    audit_retention_days: int = Field(default=365, ge=1, le=36500)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        problem = database_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


# scheme://[user[:password]@]host[:port][/database]: the parts judged here.
_URL = re.compile(
    r"^(?P<scheme>[a-z0-9+]+)://(?:[^@/?]*@)?(?P<host>\[[^\]]*\]|[^:/?]*)(?::(?P<port>[^/?]*))?"
)


def database_url_problem(url: str) -> str | None:
    """What is wrong with a database URL as written, in a few words; None when it reads well.

    Only the spelling is judged here (whether the database can be reached is the store's
    question, :class:`bot.store.database.Database`), with a regular expression rather than
    SQLAlchemy, whose import would slow every CLI command. The URL itself is never
    repeated: it may hold a password.
    """
    match = _URL.match(url.strip())
    scheme = match.group("scheme").split("+")[0] if match else ""
    if match is None or scheme not in ("sqlite", "postgresql", "postgres"):
        return "must be a sqlite:///path or postgresql://… URL"
    host, port = match.group("host"), match.group("port")
    if port:
        if not port.isdigit():
            return f"the port {port!r} is not a number"
        if not 0 < int(port) < 65536:
            return f"the port {int(port)} is out of range (1-65535)"
    if scheme == "sqlite" and host:
        return (
            f"sqlite://{host} has two slashes: write sqlite:///{host} for a path relative "
            "to the working folder, sqlite:////… for an absolute one"
        )
    return None


class HttpSettings(BaseModel):
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=0, le=65535)
    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None


class AlertSettings(BaseModel):
    channel: str | None = None
    mention: str | None = None
    # Instance-name glob → channel id; the first match wins, else ``channel``.
    routes: dict[str, str] = Field(default_factory=dict)
    escalate_after_mins: float = Field(default=30, gt=0)
    flap_changes: int = Field(default=4, ge=2)
    flap_window_mins: float = Field(default=15, gt=0)
    storm_min_instances: int = Field(default=5, ge=1)
    storm_share: float = Field(default=0.5, gt=0, le=1)


def _http_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


class PagingSettings(BaseModel):
    """Paging beyond Slack: PagerDuty's Events API v2 and a generic outgoing webhook."""

    pagerduty_routing_key: SecretStr | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None

    @field_validator("pagerduty_events_url")
    @classmethod
    def _check_events_url(cls, value: str) -> str:
        return _http_url(value) or "https://events.pagerduty.com/v2/enqueue"

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @model_validator(mode="after")
    def _signed(self) -> PagingSettings:
        # An unsigned webhook would let anyone who learns the URL forge incidents.
        if self.webhook_url and not (
            self.webhook_secret and self.webhook_secret.get_secret_value()
        ):
            raise ValueError(
                "STARPOD_WEBHOOK_URL needs STARPOD_WEBHOOK_SECRET: every event is signed"
            )
        return self


class WorkerScheduling(StrEnum):
    """The CPU scheduling a worker process takes at start (``STARPOD_WORKER_SCHEDULING``)."""

    #: Linux's SCHED_IDLE: the CPU time no other task wants; a waking web process preempts.
    IDLE = "idle"
    #: The normal policy, at ``monitor.worker_nice``.
    NORMAL = "normal"


class MonitorSettings(BaseModel):
    interval_secs: float = Field(default=30, gt=0)
    heartbeat_timeout_secs: float = Field(default=90, gt=0)
    restart_budget: int = Field(default=3, ge=0)
    restart_window_mins: float = Field(default=30, gt=0)
    restart_delays_secs: list[float] = Field(default_factory=lambda: [0.0, 60.0, 300.0])
    health_concurrency: int = Field(default=50, ge=1, le=1000)
    # Instances fetched, decided and recorded together: a sweep's working set.
    slice_size: int = Field(default=1000, ge=1, le=100_000)
    retention_raw_days: int = Field(default=7, ge=1)
    retention_hourly_days: int = Field(default=90, ge=1)
    # A worker process (role "worker") lowers its CPU priority at start, so on a shared
    # host the web process's Slack acknowledgements go first (bot.worker_priority).
    worker_scheduling: WorkerScheduling = WorkerScheduling.IDLE
    worker_nice: int = Field(default=10, ge=0, le=19)


class AccessSettings(BaseModel):
    admins: list[str] = Field(default_factory=list)
    operators: list[str] = Field(default_factory=list)
    viewers: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)

    @property
    def configured(self) -> bool:
        """True when any role list is set; with none, everyone is an operator."""
        return bool(self.admins or self.operators or self.viewers)


class SshSettings(BaseModel):
    key_secret: SecretStr | None = None
    link_ttl_secs: float = Field(default=300, gt=0, le=3600)


class GatewayKey(BaseModel):
    name: str
    role: Literal["viewer", "operator", "admin"]
    key: SecretStr


class GatewaySettings(BaseModel):
    keys: list[GatewayKey] = Field(default_factory=list)


class LogSettings(BaseModel):
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Role(StrEnum):
    """What one ``starpod-bot run`` process runs (``--role``, ``STARPOD_ROLE``)."""

    #: Everything in one process: Slack, the gateway, the monitor, alerts.
    ALL = "all"
    #: Slack's side: commands, clicks, Socket Mode, the gateway, SSH key links.
    WEB = "web"
    #: The sweeps' side: the monitor, alerts, housekeeping; probes and metrics only.
    WORKER = "worker"


class Settings(BaseModel):
    """All settings, grouped. Build with :func:`load_settings`."""

    backend: BackendSettings = Field(default_factory=BackendSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    paging: PagingSettings = Field(default_factory=PagingSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    ssh: SshSettings = Field(default_factory=SshSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    log: LogSettings = Field(default_factory=LogSettings)
    #: What this process runs: everything, Slack's side, or the sweeps' side.
    role: Role = Role.ALL
    config_file: str | None = None

    @property
    def serves_slack(self) -> bool:
        """Slack's side here: commands, clicks, the gateway (roles all and web)."""
        return self.role != Role.WORKER

    @property
    def runs_monitor(self) -> bool:
        """The sweeps' side here: the monitor, alerts, housekeeping (roles all and worker)."""
        return self.role != Role.WEB

    def require_backend_url(self) -> str:
        """The backend URL, or a ConfigError telling how to set it."""
        if not self.backend.url:
            raise ConfigError(missing_message("backend.url"))
        return self.backend.url

    def require(self, target: str) -> Any:
        """The value at ``target`` (e.g. ``"slack.bot_token"``), or a ConfigError naming it."""
        value: Any = self
        for part in target.split("."):
            value = getattr(value, part)
        if value in (None, "", []):
            raise ConfigError(missing_message(target))
        return value.get_secret_value() if isinstance(value, SecretStr) else value


def spec_for(target: str) -> SettingSpec | None:
    """The table row that fills ``target``."""
    return next((spec for spec in SETTINGS_TABLE if spec.target == target), None)


def missing_message(target: str) -> str:
    """One line that names a missing setting and how to set it."""
    spec = spec_for(target)
    if spec is None:
        return f"setting {target} is not set"
    how = f"export {spec.env}=…" if spec.env else ""
    return (
        f"{spec.description} is not set: {how} or set {spec.file} in {DEFAULT_CONFIG_FILE}"
    ).replace(":  or", ": set")


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        tree = tree.setdefault(part, {})
    tree[parts[-1]] = value


def _get_path(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _parse_keys(raw: str) -> list[dict[str, str]]:
    keys = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, rest = item.partition(":")
        role, sep2, key = rest.partition(":")
        if not (sep and sep2 and name and key):
            raise ConfigError(
                "STARPOD_GATEWAY_KEYS must be name:role:key items separated by commas"
            )
        keys.append({"name": name, "role": role, "key": key})
    return keys


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for spec in SETTINGS_TABLE:
        if spec.env is None or spec.env not in env or env[spec.env] == "":
            continue
        raw = env[spec.env]
        value: Any = raw
        if spec.kind == "list":
            value = [part.strip() for part in raw.split(",") if part.strip()]
        elif spec.kind == "keys":
            value = _parse_keys(raw)
        _set_path(tree, spec.target, value)
    return tree


def _from_file(data: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    # Sections map one to one, except the two keys the seed placed elsewhere.
    for section in Settings.model_fields:
        if isinstance(data.get(section), Mapping):
            tree[section] = dict(data[section])
    if (url := data.get("instance_backend_url")) is not None:
        _set_path(tree, "backend.url", url)
    if (key := _get_path(data, "providers.anthropic.api_key")) is not None:
        _set_path(tree, "backend.api_key", key)
    return tree


def _merge(low: dict[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(low)
    for key, value in high.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist (STARPOD_CONFIG)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _field_name(loc: tuple[Any, ...]) -> str:
    return setting_name(".".join(str(part) for part in loc if not isinstance(part, int)))


def setting_name(target: str) -> str:
    """How messages name the setting that fills ``target``: ``DATABASE_URL (database.url)``."""
    spec = spec_for(target)
    if spec is None:
        return target
    return f"{spec.env} ({spec.file})" if spec.env else spec.file


def _reason(error: Any) -> str:
    """A validator's own words, without pydantic's "Value error, " in front."""
    cause = error.get("ctx", {}).get("error")
    return str(cause) if error.get("type") == "value_error" and cause else str(error["msg"])


def load_settings(
    env: Mapping[str, str] | None = None, *, config_file: str | Path | None = None
) -> Settings:
    """Read settings from ``env`` (default ``os.environ``) and the TOML file.

    Raises ConfigError with one line per bad field, naming the env variable and file key.
    """
    env = os.environ if env is None else env
    path: Path | None
    if config_file is not None:
        path = Path(config_file)
    elif env.get("STARPOD_CONFIG"):
        path = Path(env["STARPOD_CONFIG"])
    else:
        path = Path(DEFAULT_CONFIG_FILE) if Path(DEFAULT_CONFIG_FILE).is_file() else None
    file_tree = _from_file(_read_file(path)) if path is not None else {}
    env_tree = _from_env(env)
    merged = _merge(file_tree, env_tree)
    # The seed resolves the key from the file first, then the env variable.
    file_key = _get_path(file_tree, "backend.api_key")
    if file_key:
        _set_path(merged, "backend.api_key", file_key)
    if path is not None:
        merged["config_file"] = str(path)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        lines = [
            f"invalid setting {_field_name(err['loc'])}: {_reason(err)}" for err in exc.errors()
        ]
        raise ConfigError("; ".join(lines)) from None
