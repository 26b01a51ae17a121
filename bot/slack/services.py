"""The objects every listener uses, built once by ``create_app`` from settings and deps."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import Settings
from bot.slack.access import Access
from bot.slack.dedupe import ClickDeduper, InFlight
from bot.slack.deps import SlackDeps
from bot.slack.slots import WorkSlots
from bot.store.audit import AUDIT_OBSERVER, AuditLog


@dataclass
class Services:
    """Settings, dependencies, and the Slack surface's own helpers."""

    settings: Settings
    deps: SlackDeps
    access: Access
    audit: AuditLog
    clicks: ClickDeduper = field(default_factory=ClickDeduper)
    inflight: InFlight = field(default_factory=InFlight)
    work: WorkSlots = field(default_factory=WorkSlots)

    @classmethod
    def build(cls, settings: Settings, deps: SlackDeps) -> Services:
        """Wire access control and the audit log to the given dependencies."""
        return cls(
            settings=settings,
            deps=deps,
            access=Access(settings.access, deps.web, group_ttl=deps.group_cache_secs),
            audit=AuditLog(deps.db, deps.clock, observer=deps.extra.get(AUDIT_OBSERVER)),
            work=WorkSlots(deps.work_slots),
        )
