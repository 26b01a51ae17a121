"""The objects every listener uses, built once by ``create_app`` from settings and deps."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import Settings
from bot.instances import InstanceActions
from bot.slack.access import Access
from bot.slack.dedupe import ClickDeduper
from bot.slack.deps import SlackDeps
from bot.slack.home import HomeService
from bot.slack.slots import WorkSlots
from bot.store.audit import AUDIT_OBSERVER, AuditLog
from bot.store.deliveries import DeliveryLog
from bot.store.kill_confirmations import KillConfirmations


@dataclass
class Services:
    """Settings, dependencies, and the Slack surface's own helpers."""

    settings: Settings
    deps: SlackDeps
    access: Access
    audit: AuditLog
    actions: InstanceActions
    clicks: ClickDeduper = field(default_factory=ClickDeduper)
    work: WorkSlots = field(default_factory=WorkSlots)
    # Both live in the database, so every replica sees the same ones.
    deliveries: DeliveryLog = field(init=False)
    kill_confirmations: KillConfirmations = field(init=False)
    home: HomeService = field(init=False)

    def __post_init__(self) -> None:
        self.deliveries = DeliveryLog(self.deps.db, self.deps.clock)
        self.kill_confirmations = KillConfirmations(self.deps.db, self.deps.clock)
        self.home = HomeService(
            self.deps,
            self.access,
            self.audit,
            refresh_secs=self.settings.slack.home_refresh_secs,
        )

    @classmethod
    def build(cls, settings: Settings, deps: SlackDeps) -> Services:
        """Wire access control, the audit log and instance actions to the dependencies."""
        return cls(
            settings=settings,
            deps=deps,
            access=Access(settings.access, deps.web, group_ttl=deps.group_cache_secs),
            audit=AuditLog(deps.db, deps.clock, observer=deps.extra.get(AUDIT_OBSERVER)),
            actions=deps.actions
            or InstanceActions(
                deps.backend,
                deps.db,
                clock=deps.clock,
                poll_interval=deps.action_poll_interval,
                poll_timeout=deps.action_poll_timeout,
            ),
            work=WorkSlots(deps.work_slots),
        )
