"""Fixtures for the alerts tests: everything real, on one fake clock.

The backend simulator, the monitor, the alert service and the delivery job all read the
same :class:`~tests.conftest.FakeClock`, so advancing it moves heartbeats, sweeps, back-offs
and mute expiries together. Slack is the emulator on loopback, reached by a real
``AsyncWebClient``; the store is a migrated SQLite file (and PostgreSQL where a test asks
for it and ``STARPOD_TEST_POSTGRES_URL`` is set).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.alerts.delivery import DeliveryReport, OutboxDelivery
from bot.alerts.service import AlertPolicy, AlertService
from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor, SweepReport
from bot.sim.backend import BackendSimulator
from bot.sim.slack import Message, SlackEmulator
from bot.store.alert_models import AlertIncident, AlertOutbox
from bot.store.database import Database
from tests.support.databases import migrated, sqlite_url

if TYPE_CHECKING:
    from tests.conftest import FakeClock

ALERTS = "C0ALERTS"
ONCALL = "<!subteam^S0ONCALL>"


@pytest.fixture
async def sim(fake_clock: FakeClock) -> AsyncIterator[BackendSimulator]:
    """The backend simulator on the fake clock; transitions settle at once."""
    async with BackendSimulator(clock=fake_clock, seed=5, transition_secs=0) as s:
        yield s


@pytest.fixture
async def client(sim: BackendSimulator) -> AsyncIterator[InstanceClient]:
    """The real backend client pointed at the simulator."""
    async with InstanceClient(sim.url, timeout=5.0, retry_backoff=0) as c:
        yield c


@pytest.fixture
async def slack(fake_clock: FakeClock) -> AsyncIterator[SlackEmulator]:
    """The Slack emulator on the fake clock."""
    async with SlackEmulator(clock=fake_clock) as emulator:
        yield emulator


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "alerts.db"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite file."""
    async with migrated(sqlite_url(db_path)) as database:
        yield database


def web_client(slack: SlackEmulator) -> AsyncWebClient:
    """A real slack-sdk client for the emulator, without retry handlers (delivery retries)."""
    return AsyncWebClient(
        token=slack.bot_token, base_url=slack.api_url, timeout=5, retry_handlers=[]
    )


@dataclass
class Harness:
    """The bot's alert path, assembled as the runtime does, with helpers for the tests."""

    sim: BackendSimulator
    slack: SlackEmulator
    db: Database
    clock: FakeClock
    utc: Callable[[], datetime]
    monitor: HealthMonitor
    service: AlertService
    delivery: OutboxDelivery
    sweeps: list[SweepReport] = field(default_factory=list)

    def advance(self, secs: float) -> None:
        """Move every clock forward."""
        self.clock.advance(secs)

    async def sweep(self) -> SweepReport:
        """One monitor sweep now."""
        report = await self.monitor.sweep_once()
        self.sweeps.append(report)
        return report

    async def deliver(self) -> DeliveryReport:
        """Run the delivery job once (everything due now)."""
        return await self.delivery.run_once()

    def channel(self, channel: str = ALERTS) -> list[Message]:
        """Top-level messages of the alert channel, oldest first."""
        return self.slack.messages(channel)

    def replies(self, root: Message) -> list[Message]:
        """The thread replies under ``root``."""
        return self.slack.thread(root.channel, root.ts)[1:]

    async def incidents(self) -> list[AlertIncident]:
        """Every incident, oldest first."""
        async with self.db.session() as session:
            return list(await session.scalars(select(AlertIncident).order_by(AlertIncident.id)))

    async def outbox(self) -> list[AlertOutbox]:
        """Every outbox row, oldest first."""
        async with self.db.session() as session:
            return list(await session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)))


def build_service(
    db: Database,
    slack: SlackEmulator,
    utc: Callable[[], datetime],
    *,
    holder: str = "test",
    **policy: object,
) -> AlertService:
    """An AlertService + delivery for the emulator's alert channel (no nudges: tests
    run the delivery job themselves)."""
    settings: dict[str, object] = {"channel": ALERTS, "mention": ONCALL}
    settings.update(policy)
    delivery = OutboxDelivery(
        db,
        web_client(slack),
        clock=utc,
        holder=holder,
        base_backoff=timedelta(seconds=1),
        max_backoff=timedelta(seconds=30),
    )
    return AlertService(
        db,
        policy=AlertPolicy(**settings),
        delivery=delivery,
        clock=utc,
        nudge=False,  # type: ignore[arg-type]
    )


@pytest.fixture
def make_harness(
    sim: BackendSimulator,
    client: InstanceClient,
    slack: SlackEmulator,
    db: Database,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
) -> Callable[..., Harness]:
    """Build the monitor (timeout 90 s) wired to an AlertService, all on the fake clock."""

    def build(
        *, budget: int = 3, delays: tuple[float, ...] = (0, 60, 300), **policy: object
    ) -> Harness:
        service = build_service(db, slack, utc_clock, **policy)
        monitor = (
            HealthMonitor(client, store=db)
            .with_clock(utc_clock)
            .with_heartbeat_timeout(timedelta(seconds=90))
            .with_restart_budget(budget, timedelta(minutes=30), delays)
        )
        service.attach(monitor)
        assert service.delivery is not None
        return Harness(
            sim=sim,
            slack=slack,
            db=db,
            clock=fake_clock,
            utc=utc_clock,
            monitor=monitor,
            service=service,
            delivery=service.delivery,
        )

    return build
