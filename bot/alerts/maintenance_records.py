"""Plain values of maintenance windows: the view of one window and the results of commands.

Frozen snapshots built from rows (never the ORM objects), so the Block Kit builders stay
pure and callers keep them after the session closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from bot.alerts.maintenance_rules import covers
from bot.store.maintenance_models import MaintenanceWindow
from bot.store.models import InstanceRow

WindowState = Literal["scheduled", "active", "ended", "cancelled"]


def window_stream(window_id: int) -> str:
    """The outbox stream of one window's notices (its start is sent before its end)."""
    return f"maintenance:{window_id}"


@dataclass(frozen=True, slots=True)
class WindowView:
    """A snapshot of one window (never the ORM row)."""

    id: int
    target: str
    starts_at: datetime
    ends_at: datetime
    no_restart: bool
    reason: str | None
    actor: str
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None

    @classmethod
    def from_row(cls, row: MaintenanceWindow) -> WindowView:
        """Copy a row."""
        return cls(
            id=row.id,
            target=row.target,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            no_restart=bool(row.no_restart),
            reason=row.reason,
            actor=row.actor,
            cancelled_at=row.cancelled_at,
            cancelled_by=row.cancelled_by,
        )

    def state(self, now: datetime) -> WindowState:
        """Where the window is at ``now``."""
        if self.cancelled_at is not None and self.cancelled_at < self.ends_at:
            return "cancelled"
        if now >= self.ends_at:
            return "ended"
        return "active" if now >= self.starts_at else "scheduled"

    def holds(self, instance_id: str, name: str | None) -> bool:
        """True when the window covers this instance (whatever the time)."""
        return covers(self.target, instance_id, name)


@dataclass(frozen=True, slots=True)
class AddResult:
    """A window just planned, and the known instances it covers now (labels)."""

    window: WindowView
    matching: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CancelResult:
    """``cancelled``; or why not: ``not_found``, ``ended``, ``already`` (cancelled before)."""

    window_id: int
    outcome: Literal["cancelled", "not_found", "ended", "already"]
    window: WindowView | None = None


@dataclass(frozen=True, slots=True)
class EndedWindow:
    """A window whose end was just announced, with the covered instances still unhealthy."""

    window: WindowView
    unhealthy: tuple[InstanceRow, ...]


@dataclass(slots=True)
class AnnounceReport:
    """What one :meth:`MaintenanceWindows.announce` said."""

    started: list[int] = field(default_factory=list)
    ended: list[EndedWindow] = field(default_factory=list)
