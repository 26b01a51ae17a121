"""The incident message's buttons, clicked in the emulator on the real Slack app.

The Slack app (Bolt, Starlette, uvicorn on 127.0.0.1) gets the real AlertService as its
``alerts`` dependency; roles: U0ADMIN admin, U0OPERATOR operator (through group S0OPS),
U0VIEWER viewer. The emulator keeps real time here (Bolt refuses requests signed with a
timestamp far from now); the backend, monitor and alerts stay on the fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from bot.backend.client import InstanceClient
from bot.config import Settings
from bot.instances import Actor, InstanceLocks, Lease, Verb
from bot.sim.slack import Message, SlackEmulator
from bot.slack import SlackDeps, SshLinkService, build_web_client, create_app
from bot.slack.middleware import INTERRUPTED
from bot.slack.services import Services
from bot.store.alert_models import AlertMute
from bot.store.audit import latest_audit
from bot.store.models import RestartAttempt
from bot.store.slack_models import AuditEntry
from bot.tasks import TaskTracker
from bot.web.app import create_web_app
from bot.web.server import WebServer, bind_socket
from tests.alerts.conftest import Harness

ADMIN, OPERATOR, VIEWER = "U0ADMIN", "U0OPERATOR", "U0VIEWER"


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    """The emulator on the real clock (signed requests must carry a current timestamp)."""
    async with SlackEmulator() as emulator:
        emulator.add_usergroup("S0OPS", [OPERATOR])
        yield emulator


@dataclass
class Running:
    h: Harness
    url: str
    root: Message
    victim: str
    services: Services
    listeners: TaskTracker  # the clicks' work, as the runtime tracks it (drained on shutdown)

    async def click(self, action_id: str, user: str) -> Message:
        """Click a button of the incident's root; returns the clicker's ephemeral answer."""
        emulator = self.h.slack
        before = len(emulator.ephemerals(user))
        answer = await emulator.send_block_action(
            f"{self.url}/slack/events", action_id=action_id, user_id=user, message_ts=self.root.ts
        )
        assert answer.status_code == 200, answer.text
        await emulator.wait_for(lambda: len(emulator.ephemerals(user)) > before, 30)
        return emulator.ephemerals(user)[before]

    async def audit(self, count: int = 1) -> list[AuditEntry]:
        """The audit log, once it holds ``count`` rows (each click writes one when done)."""
        deadline = asyncio.get_running_loop().time() + 30  # only to fail, not to hang
        while True:
            async with self.h.db.session() as session:
                rows = await latest_audit(session, limit=20)
            if len(rows) >= count:
                return rows
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} audit rows, found {len(rows)}")
            await asyncio.sleep(0.02)

    async def current_root(self) -> Message:
        await self.h.deliver()
        message = self.h.slack.find_message(self.root.ts)
        assert message is not None
        return message


@contextlib.asynccontextmanager
async def serving(
    make_harness: Callable[..., Harness], client: InstanceClient, *, work_slots: int = 8
) -> AsyncIterator[Running]:
    """A stale instance's incident, posted, with the Slack app listening for clicks."""
    h = make_harness(budget=0)  # no auto-restarts: only the buttons act
    emulator = h.slack
    sock = bind_socket()
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    settings = Settings.model_validate(
        {
            "backend": {"url": h.sim.url},
            "slack": {
                "bot_token": emulator.bot_token,
                "signing_secret": emulator.signing_secret,
                "api_url": emulator.api_url,
            },
            "access": {"admins": [ADMIN], "operators": ["S0OPS"], "viewers": [VIEWER]},
        }
    )
    links = SshLinkService.from_settings(settings, h.db, clock=h.utc)
    deps = SlackDeps(
        backend=client,
        db=h.db,
        web=build_web_client(settings),
        ssh_links=links,
        clock=h.utc,
        alerts=h.service,
        work_slots=work_slots,
    )
    services = Services.build(settings, deps)
    listeners = TaskTracker("Slack listeners")
    server = WebServer(
        create_web_app(
            slack_app=create_app(settings, deps, services=services, start_work=listeners.track),
            signing_secret=settings.slack.signing_secret,
            ssh_links=links,
        ),
        sock=sock,
    )
    await server.start()
    try:
        ids = h.sim.seed_instances(3)
        await h.sweep()
        victim = ids[0]
        h.sim.stop_heartbeat(victim)
        h.advance(100)
        await h.sweep()
        await h.deliver()
        [root] = h.channel()
        yield Running(h, url, root, victim, services, listeners)
    finally:
        await server.stop()


@pytest.fixture
async def running(
    make_harness: Callable[..., Harness], client: InstanceClient
) -> AsyncIterator[Running]:
    """A stale instance's incident, posted, with the Slack app listening for clicks."""
    async with serving(make_harness, client) as running:
        yield running


@pytest.fixture
async def one_slot(
    make_harness: Callable[..., Harness], client: InstanceClient
) -> AsyncIterator[Running]:
    """The same, with a single work slot for everything the Slack app does."""
    async with serving(make_harness, client, work_slots=1) as running:
        yield running


async def test_operator_acknowledges_and_a_second_click_says_who_did(running: Running) -> None:
    answer = await running.click("starpod.incident.ack", OPERATOR)
    assert "You acknowledged incident #1" in answer.text
    # A colleague clicks the same button before the edited message reaches them.
    again = await running.click("starpod.incident.ack", ADMIN)
    assert "already acknowledged by <@U0OPERATOR>" in str(again.blocks)
    root = await running.current_root()
    assert "Acknowledged by <@U0OPERATOR>" in str(root.blocks)
    assert "starpod.incident.ack" not in str(root.blocks), "nothing left to acknowledge"
    [incident] = await running.h.incidents()
    assert incident.state == "acknowledged" and incident.acknowledged_by == OPERATOR

    entries = await running.audit(2)
    acks = [e for e in entries if e.action == "acknowledge"]
    assert {(e.user_id, e.result) for e in acks} == {(OPERATOR, "ok"), (ADMIN, "ok")}
    assert all(e.instance_id == running.victim for e in acks)
    assert running.h.slack.violations() == []


async def test_viewer_may_not_acknowledge(running: Running) -> None:
    answer = await running.click("starpod.incident.ack", VIEWER)
    assert "operator" in answer.text.lower() or "operator" in str(answer.blocks).lower()
    [incident] = await running.h.incidents()
    assert incident.state == "open" and incident.acknowledged_by is None
    root = await running.current_root()
    assert not root.edited
    [entry] = [e for e in await running.audit() if e.action == "acknowledge"]
    assert entry.user_id == VIEWER and entry.result == "refused"


async def test_viewer_reads_the_logs_but_may_not_restart_or_mute(running: Running) -> None:
    logs = await running.click("starpod.incident.logs", VIEWER)
    assert "```" in str(logs.blocks), "the log lines come as a code block"
    refused = await running.click("starpod.incident.restart", VIEWER)
    assert "operator" in str(refused.blocks).lower()
    refused = await running.click("starpod.incident.mute", VIEWER)
    assert "operator" in str(refused.blocks).lower()
    results = {(e.action, e.result) for e in await running.audit(3)}
    assert results == {("logs", "ok"), ("restart", "refused"), ("mute", "refused")}


async def test_restart_now_restarts_records_who_and_says_so_in_the_thread(
    running: Running,
) -> None:
    emulator = running.h.slack
    await emulator.send_block_action(
        f"{running.url}/slack/events",
        action_id="starpod.incident.restart",
        user_id=OPERATOR,
        message_ts=running.root.ts,
    )

    async def restarted() -> bool:
        async with running.h.db.session() as session:
            rows = list(await session.scalars(select(RestartAttempt)))
        return any(r.cause == "user" and r.actor == OPERATOR and r.ok for r in rows)

    for _ in range(250):  # the click is handled in a task after the ack
        if await restarted():
            break
        await asyncio.sleep(0.02)
    assert await restarted()
    await running.h.deliver()
    replies = running.h.replies(running.root)
    assert any("restarted it by hand" in str(r.blocks) for r in replies)
    [note] = [r for r in replies if "restarted it by hand" in str(r.blocks)]
    assert f"<@{OPERATOR}>" in str(note.blocks)
    # The notification's text is plain: the user as an id, never <@…> or &lt;@…&gt;.
    assert note.text == f"🔄 @{OPERATOR} restarted it by hand."

    # The monitor sees it recover: the incident resolves in the same thread.
    running.h.advance(30)
    await running.h.sweep()
    root = await running.current_root()
    assert "Resolved" in str(root.blocks)
    assert f"restarted by hand by <@{OPERATOR}>" in str(root.blocks)


async def test_restart_now_while_a_user_restarts_it_says_so_and_restarts_nothing(
    running: Running,
) -> None:
    # A user on another replica is restarting the instance by hand right now.
    locks = InstanceLocks(running.h.db, holder="replica-b", clock=running.h.utc)
    lease = await locks.acquire(running.victim, Verb.RESTART, Actor.slack(ADMIN))
    assert isinstance(lease, Lease)
    answer = await running.click("starpod.incident.restart", OPERATOR)
    await locks.release(lease)
    text = str(answer.blocks)
    assert "⏳" in text and "<@U0ADMIN> started a restart" in text and "still running" in text
    assert "failed" not in text.lower()
    assert running.h.sim.calls[("restart", running.victim)] == 0
    async with running.h.db.session() as session:
        assert list(await session.scalars(select(RestartAttempt))) == []
    [entry] = [e for e in await running.audit() if e.action == "restart"]
    assert entry.user_id == OPERATOR and "already in progress" in (entry.detail or "")


async def test_restart_now_with_the_backend_failing_records_and_says_the_failure(
    running: Running,
) -> None:
    running.h.sim.set_faults(error_rate=1.0, endpoints=["get", "restart"])
    answer = await running.click("starpod.incident.restart", OPERATOR)
    running.h.sim.set_faults()
    assert "Restarting" in answer.text and "failed" in answer.text
    async with running.h.db.session() as session:
        [attempt] = list(await session.scalars(select(RestartAttempt)))
    assert (attempt.actor, attempt.ok, attempt.source) == (OPERATOR, False, "incident")
    assert attempt.error and "500" in attempt.error
    await running.h.deliver()
    assert any("tried to restart it" in str(r.blocks) for r in running.h.replies(running.root))


async def test_restart_now_cut_short_by_shutdown_says_the_outcome_is_unknown(
    running: Running,
) -> None:
    sim = running.h.sim
    sim.set_faults(latency_secs=60, endpoints=["restart"])  # the backend takes its time
    emulator = running.h.slack
    before = len(emulator.ephemerals(OPERATOR))
    await emulator.send_block_action(
        f"{running.url}/slack/events",
        action_id="starpod.incident.restart",
        user_id=OPERATOR,
        message_ts=running.root.ts,
    )
    await emulator.wait_for(lambda: sim.calls[("restart", running.victim)] == 1, 30)
    # Shutdown's grace runs out while the backend call is in flight.
    assert await running.listeners.drain(0.05) == 1
    sim.set_faults()
    await emulator.wait_for(lambda: len(emulator.ephemerals(OPERATOR)) > before, 30)
    answer = emulator.ephemerals(OPERATOR)[before]
    assert "outcome unknown" in answer.text and "failed" not in answer.text.lower()
    assert f"/starpod health {running.victim}" in answer.text
    # Nothing failed that we saw: no failed attempt recorded, nothing said in the thread.
    async with running.h.db.session() as session:
        assert list(await session.scalars(select(RestartAttempt))) == []
    await running.h.deliver()
    assert not any("tried to restart" in str(r.blocks) for r in running.h.replies(running.root))
    [entry] = [e for e in await running.audit() if e.action == "restart"]
    assert entry.detail == INTERRUPTED  # the audit's own word for work cut short


async def test_mute_button_mutes_for_an_hour(running: Running) -> None:
    answer = await running.click("starpod.incident.mute", OPERATOR)
    assert "muted until" in str(answer.blocks)
    async with running.h.db.session() as session:
        [mute] = list(await session.scalars(select(AlertMute)))
    assert mute.instance_id == running.victim and mute.actor == OPERATOR
    assert (mute.until - running.h.utc()).total_seconds() == pytest.approx(3600, abs=5)
    await running.h.deliver()
    assert any("muted until" in r.text for r in running.h.replies(running.root))


async def slash(running: Running, text: str, user: str = OPERATOR) -> Message:
    """Send `/starpod <text>` from the alert channel; returns the user's ephemeral answer."""
    emulator = running.h.slack
    before = len(emulator.ephemerals(user))
    answer = await emulator.send_slash_command(
        f"{running.url}/slack/events", text, user_id=user, channel_id="C0ALERTS"
    )
    assert answer.status_code == 200, answer.text
    await emulator.wait_for(lambda: len(emulator.ephemerals(user)) > before, 30)
    return emulator.ephemerals(user)[before]


async def test_slash_mute_no_restart_then_unmute_go_through_the_alerts_feature(
    running: Running,
) -> None:
    h, victim = running.h, running.victim
    emulator = h.slack
    before = len(h.channel())
    answer = await emulator.send_slash_command(
        f"{running.url}/slack/events",
        f"mute {victim[:8]} 2h --no-restart",
        user_id=OPERATOR,
        channel_id="C0ALERTS",
    )
    assert answer.status_code == 200
    # The Slack app announces the mute in the channel it was typed in.
    await emulator.wait_for(lambda: len(h.channel()) > before, 30)
    async with h.db.session() as session:
        [mute] = list(await session.scalars(select(AlertMute)))
    assert mute.no_restart and mute.instance_id == victim and mute.ended_at is None
    assert not await h.service.restart_guard(victim)

    await emulator.send_slash_command(
        f"{running.url}/slack/events", f"unmute {victim[:8]}", user_id=OPERATOR, channel_id="C0OPS"
    )
    await emulator.wait_for(lambda: len(emulator.messages("C0OPS")) == 1, 30)
    async with h.db.session() as session:
        [mute] = list(await session.scalars(select(AlertMute)))
    assert mute.ended_how == "unmuted" and mute.ended_by == OPERATOR
    assert await h.service.restart_guard(victim)
    await h.deliver()
    notices = [m for m in h.channel() if "are on again" in m.text]
    assert len(notices) == 1 and "unmuted by <@U0OPERATOR>" in str(notices[0].blocks)


async def test_slash_status_lists_the_open_incidents(running: Running) -> None:
    answer = await slash(running, "status", user=VIEWER)
    name = running.h.sim.instance(running.victim)["name"]
    assert f"#1 {name} ({running.victim[:8]}): heartbeat stale" in str(answer.blocks)


async def test_incident_buttons_wait_for_a_work_slot(one_slot: Running) -> None:
    running = one_slot
    emulator = running.h.slack
    slots = running.services.work
    # The only slot is taken: a /starpod mute waits for Slack to answer its announcement.
    emulator.hold_answers({"chat.postMessage"})
    await emulator.send_slash_command(
        f"{running.url}/slack/events", f"mute {running.victim[:8]} 1h", user_id=ADMIN
    )
    await emulator.wait_for(lambda: len(emulator.messages("C0OPS")) == 1)
    # The click is acknowledged at once, then waits for a slot before it does anything.
    answer = await emulator.send_block_action(
        f"{running.url}/slack/events",
        action_id="starpod.incident.ack",
        user_id=OPERATOR,
        message_ts=running.root.ts,
    )
    assert answer.status_code == 200 and answer.text == ""
    await emulator.wait_for(lambda: slots.queued == 1, what="the click waits for a slot")
    [incident] = await running.h.incidents()
    assert incident.state == "open" and emulator.ephemerals(OPERATOR) == []

    emulator.release_answers()
    await emulator.wait_for(lambda: len(emulator.ephemerals(OPERATOR)) == 1)
    assert "You acknowledged incident #1" in emulator.ephemerals(OPERATOR)[0].text
    [incident] = await running.h.incidents()
    assert incident.state == "acknowledged" and incident.acknowledged_by == OPERATOR
    rows = await running.audit(2)
    assert [(e.action, e.result) for e in rows] == [("acknowledge", "ok"), ("mute", "ok")]


async def test_a_click_on_a_gone_incident_is_answered_and_audited_once(running: Running) -> None:
    emulator = running.h.slack
    answer = await emulator.send_block_action(
        f"{running.url}/slack/events",
        action_id="starpod.incident.restart",
        value="999",
        user_id=OPERATOR,
        channel_id="C0ALERTS",
    )
    assert answer.status_code == 200
    await emulator.wait_for(lambda: len(emulator.ephemerals(OPERATOR)) == 1)
    assert "Incident #999 does not exist" in emulator.ephemerals(OPERATOR)[0].text
    [entry] = await running.audit(1)
    assert (entry.action, entry.result, entry.args) == ("restart", "error", "incident #999")
    assert running.h.sim.calls[("restart", running.victim)] == 0


async def test_a_refused_incident_click_never_reaches_its_handler(running: Running) -> None:
    refused = await running.click("starpod.incident.restart", VIEWER)
    assert "operator" in str(refused.blocks).lower()
    [entry] = await running.audit(1)
    assert (entry.action, entry.result) == ("restart", "refused")
    assert running.h.sim.calls[("restart", running.victim)] == 0
    async with running.h.db.session() as session:
        assert list(await session.scalars(select(RestartAttempt))) == []


async def test_reset_restart_budget_button_is_for_operators_and_audited(running: Running) -> None:
    # budget=0: the stale instance's budget is spent at once, so the root offers the reset.
    root = await running.current_root()
    assert "starpod.incident.budget_reset" in str(root.blocks)
    refused = await running.click("starpod.incident.budget_reset", VIEWER)
    assert "operator" in str(refused.blocks).lower()
    answer = await running.click("starpod.incident.budget_reset", OPERATOR)
    assert "You reset the auto-restart budget" in answer.text
    entries = await running.audit(2)
    results = {(e.user_id, e.action, e.result) for e in entries}
    assert results == {(VIEWER, "budget", "refused"), (OPERATOR, "budget", "ok")}
    [ok] = [e for e in entries if e.result == "ok"]
    assert ok.instance_id == running.victim and "incident #1" in (ok.detail or "")
    await running.h.deliver()
    notes = [r for r in running.h.replies(running.root) if "♻️" in r.text]
    assert len(notes) == 1 and f"<@{OPERATOR}>" in str(notes[0].blocks)
