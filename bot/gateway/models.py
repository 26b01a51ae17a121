"""The gateway's JSON shapes: one pydantic model each, the source of the OpenAPI schemas.

Requests are validated with these models and responses built from them, so the document
served at ``/api/openapi.json`` (generated from the same classes) cannot drift from what
the API does.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from bot.backend.models import HealthInfo, Instance

MAX_NAME = 255
MAX_REGION = 64
MAX_HISTORY = 200


class CreateInstanceIn(BaseModel):
    """``POST /api/instances``: both fields optional; the backend picks what is missing."""

    model_config = ConfigDict(extra="forbid", strict=True, title="CreateInstance")

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    region: str | None = Field(default=None, min_length=1, max_length=MAX_REGION)


class HealthOut(BaseModel):
    """An instance's health, with the heartbeat's age judged against the monitor's timeout."""

    model_config = ConfigDict(title="Health")

    cpu_percent: float
    memory_mb: int
    disk_mb: int
    last_heartbeat: datetime
    uptime_secs: int
    heartbeat_age_secs: float = Field(ge=0)
    stale: bool = Field(description="heartbeat older than the monitor's heartbeat timeout")

    @classmethod
    def build(cls, health: HealthInfo, *, now: datetime, timeout_secs: float) -> HealthOut:
        """From the backend's health and the current time."""
        age = health.heartbeat_age(now)
        return cls(
            cpu_percent=health.cpu_percent,
            memory_mb=health.memory_mb,
            disk_mb=health.disk_mb,
            last_heartbeat=health.last_heartbeat,
            uptime_secs=health.uptime_secs,
            heartbeat_age_secs=age,
            stale=age > timeout_secs,
        )


class InstanceOut(BaseModel):
    """An instance as the backend describes it; ``status`` is lower-case."""

    model_config = ConfigDict(title="Instance")

    id: str
    name: str | None
    status: str
    region: str | None
    created_at: datetime | None
    updated_at: datetime | None
    health: HealthOut | None

    @classmethod
    def build(cls, instance: Instance, *, now: datetime, timeout_secs: float) -> InstanceOut:
        """From the backend's instance."""
        health = instance.health
        return cls(
            id=instance.id,
            name=instance.name,
            status=instance.status,
            region=instance.region,
            created_at=instance.created_at,
            updated_at=instance.updated_at,
            health=HealthOut.build(health, now=now, timeout_secs=timeout_secs) if health else None,
        )


class StatusChangeOut(BaseModel):
    """One recorded status change; ``cause`` is monitor, user or backend."""

    model_config = ConfigDict(title="StatusChange", from_attributes=True)

    at: datetime
    from_status: str | None
    to_status: str
    cause: str
    actor: str | None
    reason: str | None


class RestartOut(BaseModel):
    """One restart the bot asked for (by the monitor or a user) and whether it worked."""

    model_config = ConfigDict(title="Restart", from_attributes=True)

    at: datetime
    cause: str
    actor: str | None
    ok: bool
    error: str | None


class HistoryOut(BaseModel):
    """The latest status changes and restarts of one instance, newest first."""

    model_config = ConfigDict(title="History")

    instance_id: str
    changes: list[StatusChangeOut]
    restarts: list[RestartOut]


class ErrorOut(BaseModel):
    """Every error answer: a message a person can act on, and the HTTP status again."""

    model_config = ConfigDict(title="Error")

    error: str
    status: int
    candidates: list[str] | None = Field(
        default=None, description="the matching instance ids when a reference is ambiguous"
    )
