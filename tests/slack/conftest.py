"""A running bot, end to end, on loopback.

The Slack emulator sends signed requests to the real web app (Starlette + Bolt adapter)
served by uvicorn on 127.0.0.1; the bot uses the real InstanceClient against the backend
simulator, the real Web API client against the emulator, and a real SQLite file migrated
with ``upgrade()``. Tests assert on what the emulator received.

Users: U0ADMIN (admin), U0OPERATOR (operator through the group S0OPS), U0VIEWER (viewer),
U0NOBODY (no role). ``open_bot`` runs with no access configuration at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp

from bot.alerts.service import AlertService
from bot.backend.client import InstanceClient
from bot.blockkit.ids import BlockId, confirmed_block_id
from bot.config import Settings
from bot.monitor import HealthMonitor
from bot.sim.backend import BackendSimulator
from bot.sim.slack import BotReply, Message, SlackEmulator
from bot.slack import SlackDeps, SshLinkService, build_web_client, create_app
from bot.store.audit import latest_audit
from bot.store.database import Database
from bot.store.kill_confirmations import KillConfirmations
from bot.store.slack_models import AuditEntry
from bot.web.app import create_web_app
from bot.web.server import WebServer, bind_socket
from tests.support.databases import migrated, sqlite_url

ADMIN, OPERATOR, VIEWER, NOBODY = "U0ADMIN", "U0OPERATOR", "U0VIEWER", "U0NOBODY"
CHANNEL = "C0OPS"


class OffsetClock:
    """Real time plus an offset tests can move forward (the simulator keeps real time)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Bot:
    """The running bot and everything around it."""

    url: str
    emulator: SlackEmulator
    sim: BackendSimulator
    db: Database
    settings: Settings
    deps: SlackDeps
    clock: OffsetClock
    app: AsyncApp
    ids: list[str] = field(default_factory=list)

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    async def slash(
        self, text: str, *, user: str = OPERATOR, channel: str = CHANNEL, **kw: Any
    ) -> BotReply:
        """Send `/starpod <text>`; the bot must ack with an empty 200."""
        reply = await self.emulator.send_slash_command(
            self.events_url, text, user_id=user, channel_id=channel, **kw
        )
        return reply

    async def ask(
        self, text: str, *, user: str = OPERATOR, channel: str = CHANNEL, wait: float = 30.0
    ) -> Message:
        """Send a command and return the next ephemeral answer the user gets."""
        before = len(self.emulator.ephemerals(user))
        reply = await self.slash(text, user=user, channel=channel)
        assert reply.status_code == 200, reply.text
        assert reply.text == "", "the ack must be empty: answers go through response_url"
        await self.emulator.wait_for(lambda: len(self.emulator.ephemerals(user)) > before, wait)
        return self.emulator.ephemerals(user)[before]

    async def click(
        self, message: Message, action_id: str, *, user: str = OPERATOR, **kw: Any
    ) -> BotReply:
        """Click an element of a stored message (the emulator checks it is really there)."""
        reply = await self.emulator.send_block_action(
            self.events_url, action_id=action_id, user_id=user, message_ts=message.ts, **kw
        )
        assert reply.status_code == 200, reply.text
        return reply

    async def click_for_answer(
        self,
        message: Message,
        action_id: str,
        *,
        user: str = OPERATOR,
        wait: float = 30.0,
        **kw: Any,
    ) -> Message:
        before = len(self.emulator.ephemerals(user))
        await self.click(message, action_id, user=user, **kw)
        await self.emulator.wait_for(lambda: len(self.emulator.ephemerals(user)) > before, wait)
        return self.emulator.ephemerals(user)[before]

    async def kill_block_id(self, user: str, instance_id: str) -> str:
        """The block id of a kill button the bot showed ``user`` for ``instance_id``.

        A kill runs only from a confirmation the bot issued: a click built by hand needs
        one, as a click on a health card or a kill prompt carries it.
        """
        token = await KillConfirmations(self.db, self.clock).issue(
            instance_id=instance_id, user_id=user
        )
        return confirmed_block_id(BlockId.CARD_ACTIONS, token)

    def use_alerts(self) -> AlertService:
        """Give the bot the real alert service on its database, built as ``bot.wiring`` does.

        Nudges are off, so nothing is sent behind a test's back: a test that wants the
        outbox delivered runs ``alerts.delivery.run_once()`` itself.
        """
        alerts = AlertService.from_settings(self.settings, self.db, clock=self.clock, nudge=False)
        self.deps.alerts = alerts
        return alerts

    async def use_monitor(self, alerts: AlertService | None = None) -> HealthMonitor:
        """Give the bot the real health monitor (on its backend client and database, events
        going to ``alerts``), swept once; the fixture stops it."""
        settings = self.settings
        monitor = HealthMonitor.from_settings(
            self.deps.backend, self.db, settings.monitor, settings.alerts, clock=self.clock
        )
        if alerts is not None:
            alerts.attach(monitor)
        self.deps.monitor = monitor
        await monitor.sweep_once()
        return monitor

    async def audit(self, *, instance_id: str | None = None, limit: int = 50) -> list[AuditEntry]:
        async with self.db.session() as session:
            return await latest_audit(session, instance_id=instance_id, limit=limit)

    async def wait_audit(self, count: int, wait: float = 30.0) -> list[AuditEntry]:
        """Wait until ``count`` audit rows exist (each request writes one when it is done)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            rows = await self.audit(limit=count + 10)
            if len(rows) >= count:
                return rows
            if loop.time() > deadline:
                raise TimeoutError(f"expected {count} audit rows, found {len(rows)}")
            await asyncio.sleep(0.02)

    async def channel_message(
        self, predicate: Callable[[Message], bool], *, channel: str = CHANNEL, wait: float = 30.0
    ) -> Message:
        found: list[Message] = []

        def check() -> bool:
            found[:] = [m for m in self.emulator.messages(channel) if predicate(m)]
            return bool(found)

        await self.emulator.wait_for(check, wait)
        return found[-1]


def message_text(message: Message) -> str:
    """Everything a user can read in a message."""
    return message.visible_text()


def make_settings(
    emulator: SlackEmulator,
    sim_url: str,
    public_url: str | None,
    *,
    access: bool,
    alert_channel: str | None = None,
) -> Settings:
    data: dict[str, Any] = {
        "backend": {"url": sim_url},
        "slack": {
            "bot_token": emulator.bot_token,
            "signing_secret": emulator.signing_secret,
            "api_url": emulator.api_url,
        },
        "http": {"public_url": public_url},
        "monitor": {"heartbeat_timeout_secs": 90},
    }
    if access:
        data["access"] = {"admins": [ADMIN], "operators": ["S0OPS"], "viewers": [VIEWER]}
    if alert_channel is not None:
        data["alerts"] = {"channel": alert_channel}
        # App Home refreshes after changes, quickly enough for a test to wait on.
        data["slack"]["home_refresh_secs"] = 0.05
    return Settings.model_validate(data)


@pytest.fixture
async def sim() -> AsyncIterator[BackendSimulator]:
    """A backend simulator whose transitions take 0.1 s (so polling is exercised)."""
    async with BackendSimulator(transition_secs=0.1, seed=7) as simulator:
        yield simulator


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated(sqlite_url(tmp_path / "bot.db")) as database:
        yield database


async def _running_bot(
    emulator: SlackEmulator,
    sim: BackendSimulator,
    db: Database,
    *,
    access: bool,
    public_url: bool = True,
    alert_channel: str | None = None,
) -> AsyncIterator[Bot]:
    emulator.add_usergroup("S0OPS", [OPERATOR])
    sock = bind_socket()
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    settings = make_settings(
        emulator, sim.url, url if public_url else None, access=access, alert_channel=alert_channel
    )
    clock = OffsetClock()
    web = build_web_client(settings)
    async with InstanceClient(sim.url, retry_backoff=0.01) as backend:
        links = SshLinkService.from_settings(settings, db, clock=clock)
        deps = SlackDeps(
            backend=backend,
            db=db,
            web=web,
            ssh_links=links,
            clock=clock,
            action_poll_interval=0.03,
            action_poll_timeout=3.0,
        )
        app = create_app(settings, deps)
        server = WebServer(
            create_web_app(
                slack_app=app, signing_secret=settings.slack.signing_secret, ssh_links=links
            ),
            sock=sock,
        )
        await server.start()
        ids = sim.seed_instances(5)
        try:
            yield Bot(url, emulator, sim, db, settings, deps, clock, app, ids)
        finally:
            await server.stop()
            if isinstance(deps.monitor, HealthMonitor):
                await deps.monitor.stop()  # steps down: its lease on the database ends
            # Let listener tasks still running after the last assertion end quietly.
            await asyncio.sleep(0.05)


@pytest.fixture
async def bot(
    slack_emulator: SlackEmulator, sim: BackendSimulator, db: Database
) -> AsyncIterator[Bot]:
    """The bot with roles configured (admin, operators group, viewer)."""
    async for running in _running_bot(slack_emulator, sim, db, access=True):
        yield running


@pytest.fixture
async def open_bot(
    slack_emulator: SlackEmulator, sim: BackendSimulator, db: Database
) -> AsyncIterator[Bot]:
    """The bot with no access configuration: everyone is an operator."""
    async for running in _running_bot(slack_emulator, sim, db, access=False):
        yield running


@pytest.fixture
async def home_bot(
    slack_emulator: SlackEmulator, sim: BackendSimulator, db: Database
) -> AsyncIterator[Bot]:
    """The bot with roles, announcing actions from App Home and modals in C0ALERTS."""
    async for running in _running_bot(
        slack_emulator, sim, db, access=True, alert_channel="C0ALERTS"
    ):
        yield running


@pytest.fixture
async def private_bot(
    slack_emulator: SlackEmulator, sim: BackendSimulator, db: Database
) -> AsyncIterator[Bot]:
    """The bot without a public URL (no one-time links)."""
    async for running in _running_bot(slack_emulator, sim, db, access=True, public_url=False):
        yield running
