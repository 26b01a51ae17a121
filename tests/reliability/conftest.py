"""Fixtures for the chaos tests: the simulator and the monitor on one fake clock, real stores.

Sizes: CI runs every chaos test scaled down; ``STARPOD_LONG_TESTS=1`` (set by
``bench/reliability.py``) runs the full-size versions the issue names (60 sweeps over a
larger fleet, 10,000 instances, 60 s of load). :data:`LONG` and :func:`size` say which.

Copied in small from ``tests/monitor/conftest.py`` (test folders cannot import each other):
the fake-clock simulator, the UTC view of the clock, migrated SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.delivery import OutboxDelivery
from bot.alerts.service import AlertPolicy, AlertService
from bot.backend.client import InstanceClient
from bot.blockkit.ids import BlockId, confirmed_block_id
from bot.config import GatewayKey, Settings
from bot.gateway import GatewayDeps, KeyRing, gateway_routes_for
from bot.monitor import HealthMonitor, MonitorEvent, SweepReport
from bot.sim.backend import BackendSimulator
from bot.sim.slack import Message, SlackEmulator
from bot.slack import SlackDeps, SshLinkService, build_web_client, create_app
from bot.store.audit import AuditLog
from bot.store.database import Database
from bot.store.kill_confirmations import KillConfirmations
from bot.web.app import create_web_app
from bot.web.server import WebServer, bind_socket

if TYPE_CHECKING:
    from tests.conftest import FakeClock

LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"


def size(ci: int, long: int) -> int:
    """The CI size, or the full size when ``STARPOD_LONG_TESTS=1``."""
    return long if LONG else ci


@pytest.fixture
async def sim(fake_clock: FakeClock) -> AsyncIterator[BackendSimulator]:
    """A simulator on the shared fake clock; transitions settle at once."""
    async with BackendSimulator(clock=fake_clock, seed=7, transition_secs=0) as s:
        yield s


class EventLog:
    """Collects the monitor's events (handler) and the seed's callbacks."""

    def __init__(self) -> None:
        self.events: list[MonitorEvent] = []
        self.callbacks: list[tuple[str, str]] = []

    async def handler(self, _session: Any, event: MonitorEvent) -> None:
        self.events.append(event)

    def callback(self, instance_id: str, status: str, _health: object) -> None:
        self.callbacks.append((instance_id, status))

    def of(self, kind: str) -> list[MonitorEvent]:
        return [e for e in self.events if e.kind == kind]


@pytest.fixture
def event_log() -> EventLog:
    return EventLog()


# -- the whole bot in this process: Slack app + web server + monitor + alerts + delivery -----

ALERTS = "C0ALERTS"
OPS = "C0OPS"
ONCALL = "<!subteam^S0ONCALL>"
ADMIN, OPERATOR, VIEWER, NOBODY = "U0ADMIN", "U0OPERATOR", "U0VIEWER", "U0NOBODY"
# What a user sees when the bot hit a bug instead of answering (bot.slack.blocks.answers).
UNEXPECTED = "Something went wrong"


def chaos_settings(
    slack: SlackEmulator, backend_url: str, public_url: str | None, *, access: bool
) -> Settings:
    """Settings as the runtime would read them from the environment, for the emulator."""
    data: dict[str, Any] = {
        "backend": {"url": backend_url, "timeout_secs": 0.3},
        "slack": {
            "bot_token": slack.bot_token,
            "signing_secret": slack.signing_secret,
            "api_url": slack.api_url,
        },
        "http": {"public_url": public_url},
        "alerts": {"channel": ALERTS, "mention": ONCALL},
        "monitor": {"heartbeat_timeout_secs": 90},
    }
    if access:
        data["access"] = {"admins": [ADMIN], "operators": ["S0OPS"], "viewers": [VIEWER]}
    return Settings.model_validate(data)


@dataclass
class ChaosBot:
    """The bot's parts, assembled as the runtime assembles them, on loopback.

    The backend simulator, the monitor, the alerts and their delivery run on the fake clock
    (so 60 sweeps take seconds); Slack's side (signed requests) keeps real time, since Bolt
    refuses timestamps more than five minutes off.
    """

    sim: BackendSimulator
    slack: SlackEmulator
    db: Database
    clock: FakeClock
    utc: Callable[[], datetime]
    client: InstanceClient
    monitor: HealthMonitor
    service: AlertService
    delivery: OutboxDelivery
    deps: SlackDeps
    url: str
    events: EventLog

    UNEXPECTED = UNEXPECTED

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    @staticmethod
    def visible(message: Message) -> str:
        """Everything a user can read in ``message``."""
        return visible_text(message)

    async def kill_block_id(self, user: str, instance_id: str) -> str:
        """The block id of a kill button the bot showed ``user`` for ``instance_id`` (a kill
        runs only from a confirmation the bot issued; a hand-built click needs one)."""
        token = await KillConfirmations(self.db, self.utc).issue(
            instance_id=instance_id, user_id=user
        )
        return confirmed_block_id(BlockId.CARD_ACTIONS, token)

    async def sweep(self) -> SweepReport:
        """One monitor sweep, then one delivery run (as the scheduler would do)."""
        report = await self.monitor.sweep_once()
        await self.delivery.run_once()
        return report

    async def command(
        self, text: str, *, user: str = OPERATOR, channel: str = OPS, wait: float = 30.0
    ) -> Message:
        """Send ``/starpod text``; return the answer the user gets (ephemeral or in channel)."""
        ephemerals = len(self.slack.ephemerals(user))
        posts = len(self.slack.messages(channel))
        reply = await self.slack.send_slash_command(
            self.events_url, text, user_id=user, channel_id=channel
        )
        assert reply.status_code == 200, (text, reply.status_code, reply.text)

        def answered() -> bool:
            return (
                len(self.slack.ephemerals(user)) > ephemerals
                or len(self.slack.messages(channel)) > posts
            )

        await self.slack.wait_for(answered, wait, what=f"an answer to /starpod {text}")
        if len(self.slack.ephemerals(user)) > ephemerals:
            return self.slack.ephemerals(user)[ephemerals]
        return self.slack.messages(channel)[posts]


def visible_text(message: Message) -> str:
    """Everything a user can read in a message."""
    return message.visible_text()


@asynccontextmanager
async def running_bot(
    sim: BackendSimulator,
    slack: SlackEmulator,
    db: Database,
    clock: FakeClock,
    *,
    access: bool = True,
    public_url: bool = True,
    backend_timeout: float = 0.3,
    api_key: str | None = None,
    gateway_keys: dict[str, str] | None = None,
) -> AsyncIterator[ChaosBot]:
    """Start the bot's web server, Slack app, monitor, alerts and delivery; stop them after.

    ``api_key`` is sent to the backend; ``gateway_keys`` (role → key) turns the gateway on.
    """
    slack.add_usergroup("S0OPS", [OPERATOR])
    sock = bind_socket()
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    settings = chaos_settings(slack, sim.url, url if public_url else None, access=access)

    def utc() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    events = EventLog()
    async with InstanceClient(sim.url, api_key, timeout=backend_timeout, retry_backoff=0) as client:
        monitor = (
            HealthMonitor(client, store=db)
            .with_clock(utc)
            .with_heartbeat_timeout(timedelta(seconds=90))
            .on_event(events.handler)
            .on_status_change(events.callback)
        )
        delivery_web = AsyncWebClient(
            token=slack.bot_token, base_url=slack.api_url, timeout=5, retry_handlers=[]
        )
        delivery = OutboxDelivery(
            db,
            delivery_web,
            clock=utc,
            holder="chaos",
            base_backoff=timedelta(seconds=1),
            max_backoff=timedelta(seconds=30),
        )
        service = AlertService(
            db,
            policy=AlertPolicy(channel=ALERTS, mention=ONCALL),
            delivery=delivery,
            clock=utc,
            nudge=False,
        )
        service.attach(monitor)
        web = build_web_client(settings)
        links = SshLinkService.from_settings(settings, db, clock=utc)
        deps = SlackDeps(
            backend=client,
            db=db,
            web=web,
            ssh_links=links,
            clock=utc,
            monitor=monitor,
            alerts=service,  # type: ignore[arg-type]
            action_poll_interval=0.03,
            action_poll_timeout=3.0,
        )
        app = create_app(settings, deps)
        extra: list[Any] = []
        if gateway_keys:
            keys = KeyRing(
                [
                    GatewayKey(name=role, role=role, key=SecretStr(key))  # type: ignore[arg-type]
                    for role, key in gateway_keys.items()
                ]
            )
            gateway = GatewayDeps(
                client=client, db=db, keys=keys, audit=AuditLog(db, utc), clock=utc
            )
            extra = gateway_routes_for(gateway)
        server = WebServer(
            create_web_app(
                slack_app=app,
                signing_secret=settings.slack.signing_secret,
                ssh_links=links,
                extra_routes=extra,
            ),
            sock=sock,
        )
        await server.start()
        try:
            yield ChaosBot(
                sim, slack, db, clock, utc, client, monitor, service, delivery, deps, url, events
            )
        finally:
            await server.stop()
            await asyncio.sleep(0.05)  # let listener tasks still running end quietly
            if web.session is not None and not web.session.closed:
                await web.session.close()


StartBot = Callable[..., Any]


@pytest.fixture
def start_bot(slack_emulator: SlackEmulator, fake_clock: FakeClock) -> Callable[..., Any]:
    """``async with start_bot(sim, db, **options) as bot:`` runs :func:`running_bot`."""

    def start(sim: BackendSimulator, db: Database, **options: Any) -> Any:
        return running_bot(sim, slack_emulator, db, fake_clock, **options)

    return start
