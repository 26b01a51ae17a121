"""What the monitor tells the rest of the bot: events, and its own status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.backend.models import HealthInfo, Instance


class EventKind(StrEnum):
    """Every kind of :class:`MonitorEvent`.

    A status change yields exactly one event whose kind is the most specific of
    ``stale`` (running → error on a stale heartbeat), ``health_unknown`` (the health call
    failed 3 times in a row), ``recovered`` (error/unknown → running) or
    ``status_changed`` (anything else). All four carry ``from_status`` and ``to_status``.
    """

    STATUS_CHANGED = "status_changed"
    STALE = "stale"
    RECOVERED = "recovered"
    HEALTH_UNKNOWN = "health_unknown"
    RESTART_ATTEMPTED = "restart_attempted"
    RESTART_FAILED = "restart_failed"
    RESTART_BUDGET_EXHAUSTED = "restart_budget_exhausted"
    RESTART_DEFERRED = "restart_deferred"
    BACKEND_UNREACHABLE = "backend_unreachable"
    BACKEND_RECOVERED = "backend_recovered"
    STORM = "storm"


STATUS_CHANGE_KINDS = frozenset(
    {EventKind.STATUS_CHANGED, EventKind.STALE, EventKind.RECOVERED, EventKind.HEALTH_UNKNOWN}
)


@dataclass(frozen=True, slots=True)
class MonitorEvent:
    """One thing the monitor saw or did.

    ``instance`` is the backend's view of the instance (None for fleet-wide events);
    ``health`` the health data of this sweep when there is some; ``detail`` a one-line
    human explanation (e.g. ``heartbeat stale: 134 s old (timeout 90 s)``); ``attempt``
    the auto-restart number for restart events; ``stale_ids`` the stale instances of a
    storm; ``until`` when a deferred restart becomes due or an exhausted budget frees up.
    """

    kind: EventKind
    at: datetime
    instance: Instance | None = None
    instance_id: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    health: HealthInfo | None = None
    detail: str = ""
    attempt: int | None = None
    stale_ids: tuple[str, ...] = ()
    until: datetime | None = None

    @property
    def is_status_change(self) -> bool:
        """True for the four kinds that record a status change."""
        return self.kind in STATUS_CHANGE_KINDS


EventHandler = Callable[["AsyncSession | None", MonitorEvent], Awaitable[None]]
"""``async def handler(session, event)``; ``session`` is None when the monitor has no store."""

StatusCallback = Callable[[str, str, "HealthInfo | None"], Any]
"""The seed's callback: ``fn(instance_id, status, health)``, sync or async."""

RestartGuard = Callable[[str], "bool | Awaitable[bool]"]
"""``fn(instance_id)`` returning False to skip an auto-restart (e.g. a ``--no-restart`` mute)."""


@dataclass(frozen=True, slots=True)
class MonitorStatus:
    """The monitor's own health, for ``/starpod status`` and the readiness probe."""

    last_sweep_at: datetime | None
    last_sweep_secs: float | None
    last_error: str | None
    is_leader: bool
    standing_by: bool
    backend_reachable: bool
    consecutive_backend_failures: int
    instances_tracked: int
    stale_count: int
    running: bool = False
    # Why the monitor is not doing its job (a stalled sweep, an undecidable election), or
    # None; see bot.monitor.liveness.
    problem: str | None = None
