"""Typed models of the backend's objects, tolerant of the variants real backends send.

- ``status`` may be capitalised or outside the five known values: the raw value is kept
  (``status_raw``), ``status`` is its lower-case form, ``known_status`` the enum or None.
- Timestamps may be unix seconds (int or float) or RFC 3339 strings; they become
  timezone-aware UTC datetimes.
- Extra fields are ignored; ``health`` may be inline, null or absent.
- A health number the bot cannot hold (NaN, infinity, past the heartbeat columns' 32 or
  64 bits) makes that one body unreadable, never the sweep that records it; a name,
  region or status longer than its column is cut to it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Self, TypeVar, overload

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator


class InstanceStatus(StrEnum):
    """The five statuses of the seed's lifecycle."""

    CREATING = "creating"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


class LogLevel(StrEnum):
    ERROR = "error"
    WARN = "warn"
    INFO = "info"
    DEBUG = "debug"


def parse_timestamp(value: Any) -> datetime:
    """Unix seconds (int, float or digit string) or RFC 3339 → aware UTC datetime.

    Raises ``ValueError`` for anything else, including times no datetime can hold
    (``1e300``): pydantic turns only ``ValueError`` into a validation error.
    """
    try:
        return _parse_timestamp(value)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"timestamp out of range: {value!r}") from exc


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), tz=UTC)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"not a timestamp: {value!r}")


def _whole_number(value: Any) -> Any:
    # Some backends send 512.0 for memory; accept it, still reject "lots".
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, float):
        if math.isinf(value):
            raise ValueError("an infinite number is not a whole number")
        return round(value)
    return value


# What the bot can hold of a health reading: the heartbeat columns (bot/store/models.py) are
# 32-bit for megabytes (2 PiB) and 64-bit for seconds, and not NULL. A number past them, or
# a NaN, is refused here, for that one body: stored, it failed the whole sweep's transaction.
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]
# The bounds come before the validator: pydantic then checks them in the int schema itself,
# which the fast path (bot/backend/fast_path.py) reuses as it is.
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Megabytes = Annotated[int, Field(ge=INT32[0], le=INT32[1]), BeforeValidator(_whole_number)]
Seconds = Annotated[int, Field(ge=INT64[0], le=INT64[1]), BeforeValidator(_whole_number)]
Percent = Annotated[float, Field(allow_inf_nan=False)]

# The instances table's columns (bot/store/models.py): a longer name, region or status is
# cut to them. PostgreSQL refused the row, and with it the sweep's whole slice, every sweep.
ID_MAX = 128  # refused past it: an id cut short would name another instance
NAME_MAX = 255
REGION_MAX = 64
STATUS_MAX = 64


def cut_to(limit: int) -> Callable[[Any], Any]:
    """A validator that cuts text to ``limit`` characters (anything else passes untouched)."""

    def cut(value: Any) -> Any:
        return value[:limit] if isinstance(value, str) and len(value) > limit else value

    return cut


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HealthInfo(_Wire):
    cpu_percent: Percent
    memory_mb: Megabytes
    disk_mb: Megabytes
    last_heartbeat: Timestamp
    uptime_secs: Seconds

    def heartbeat_age(self, now: datetime) -> float:
        """Seconds since the last heartbeat (never negative: clocks differ a little)."""
        return max(0.0, (now - self.last_heartbeat).total_seconds())


_DERIVED = ("status", "is_running")
T = TypeVar("T")


class _Once(Generic[T]):
    """A property worked out on first read and then kept in the instance's ``__dict__``.

    ``functools.cached_property`` without its per-read lock (Python 3.11): a sweep reads
    ``status`` several times for each of 10,000 instances. Pydantic compares and dumps
    fields only, so the kept value changes neither.
    """

    def __init__(self, fn: Callable[[Any], T]) -> None:
        self._fn = fn
        self._name = fn.__name__
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> T | Self:
        if obj is None:
            return self
        value = obj.__dict__[self._name] = self._fn(obj)
        return value


class Instance(_Wire):
    model_config = ConfigDict(ignored_types=(_Once,))

    id: str = Field(max_length=ID_MAX)
    name: Annotated[str | None, BeforeValidator(cut_to(NAME_MAX))] = None
    status_raw: str = Field(alias="status")
    region: Annotated[str | None, BeforeValidator(cut_to(REGION_MAX))] = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    health: HealthInfo | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("status_raw", mode="before")
    @classmethod
    def _status_text(cls, value: Any) -> Any:
        if value is None:
            return "unknown"
        return value[:STATUS_MAX] if isinstance(value, str) else value

    @_Once
    def status(self) -> str:
        """The status in lower case, whatever the backend sent (``Running`` → ``running``)."""
        # Interned: the few statuses are shared by every instance the monitor remembers,
        # rather than one string per instance and sweep.
        return sys.intern(self.status_raw.strip().lower() or "unknown")

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; the cached ``status`` and ``is_running`` are worked out again from it."""
        copied = super().model_copy(update=update, deep=deep)
        for name in _DERIVED:
            copied.__dict__.pop(name, None)
        return copied

    @property
    def known_status(self) -> InstanceStatus | None:
        try:
            return InstanceStatus(self.status)
        except ValueError:
            return None

    @_Once
    def is_running(self) -> bool:
        return self.status == InstanceStatus.RUNNING

    @property
    def short_id(self) -> str:
        """The first 8 characters of the id: what users type and read."""
        return self.id[:8]

    @property
    def label(self) -> str:
        """A human label: ``name (short id)`` or the short id alone."""
        return f"{self.name} ({self.short_id})" if self.name else self.short_id


class LogEntry(_Wire):
    timestamp: Timestamp | None = None
    level: LogLevel = LogLevel.INFO
    message: str = ""


class SshInfo(_Wire):
    host: str
    port: WholeNumber = 22
    user: str
    # The ephemeral key never shows in repr or logs.
    private_key: str | None = Field(default=None, repr=False)

    def command(self, *, identity_file: str | None = None) -> str:
        """The ``ssh`` command line a user can paste."""
        parts = ["ssh"]
        if identity_file:
            parts += ["-i", identity_file]
        if self.port != 22:
            parts += ["-p", str(self.port)]
        parts.append(f"{self.user}@{self.host}")
        return " ".join(parts)
