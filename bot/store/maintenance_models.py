"""The ``maintenance_windows`` table: planned quiet for instances whose name matches a glob.

A window is kept after it ends (``/starpod maintenance list`` and the audit say what was
planned). ``start_announced_at`` and ``end_announced_at`` are written in the transaction
that queues the announcement in the outbox, so each is said once, whichever replica leads
and however often it restarts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.base import Base, UtcDateTime
from bot.store.models import BigId

MAX_TARGET = 100
MAX_REASON = 200


class MaintenanceWindow(Base):
    """One window: which instances (``target``: a name glob or ``all``), from when, how long."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (Index(None, "cancelled_at", "ends_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(MAX_TARGET))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # True: the monitor does not auto-restart matching instances during the window.
    no_restart: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    # Slack user id of who planned it.
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    start_announced_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_announced_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return (
            f"MaintenanceWindow(id={self.id!r}, target={self.target!r}, "
            f"starts_at={self.starts_at.isoformat()}, ends_at={self.ends_at.isoformat()})"
        )
