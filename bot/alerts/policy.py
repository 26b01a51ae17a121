"""The alert rules the feature works with: where incidents go, when they escalate, when an
instance counts as flapping. Routing is Alertmanager's route tree, flattened: the first
glob that matches an instance's name picks its channel."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import AlertSettings

PROBLEM_STATUSES = frozenset({"error", "unknown"})
"""Instance statuses (lower case) that open an incident."""


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """The alert settings the service works with (see :class:`bot.config.AlertSettings`)."""

    channel: str | None = None
    mention: str | None = None
    routes: dict[str, str] = field(default_factory=dict)
    escalate_after: timedelta = timedelta(minutes=30)
    flap_changes: int = 4
    flap_window: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> AlertPolicy:
        """Build from the typed settings."""
        return cls(
            channel=settings.channel or None,
            mention=settings.mention or None,
            routes=dict(settings.routes),
            escalate_after=timedelta(minutes=settings.escalate_after_mins),
            flap_changes=settings.flap_changes,
            flap_window=timedelta(minutes=settings.flap_window_mins),
        )

    def channel_for(self, instance_name: str | None) -> str | None:
        """The channel of an instance: the first route whose glob matches its name."""
        if instance_name:
            for pattern, channel in self.routes.items():
                if fnmatch.fnmatchcase(instance_name, pattern):
                    return channel
        return self.channel


def instance_label(instance_id: str, name: str | None) -> str:
    """``pod-7 (a1b2c3d4)``, or the short id alone for an unnamed instance (plain text)."""
    return f"{name} ({instance_id[:8]})" if name else instance_id[:8]
