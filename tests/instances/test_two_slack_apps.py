"""End to end: two Slack apps (two replicas, two engines, one database), one restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp

from bot.backend.client import InstanceClient
from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.slack import SlackDeps, SshLinkService, build_web_client, create_app
from bot.store.database import Database
from bot.web.app import create_web_app
from bot.web.server import WebServer, bind_socket
from tests.slack.conftest import ADMIN, CHANNEL, OPERATOR, Bot, OffsetClock, make_settings


@asynccontextmanager
async def replica(
    emulator: SlackEmulator, sim: BackendSimulator, db: Database
) -> AsyncIterator[Bot]:
    """One bot replica: its own web server, Slack app, backend client and engine."""
    sock = bind_socket()
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    settings = make_settings(emulator, sim.url, url, access=True)
    clock = OffsetClock()
    async with (
        InstanceClient(sim.url, retry_backoff=0.01) as backend,
        aiohttp.ClientSession() as session,
    ):
        links = SshLinkService.from_settings(settings, db, clock=clock)
        deps = SlackDeps(
            backend=backend,
            db=db,
            web=build_web_client(settings, session=session),
            ssh_links=links,
            clock=clock,
            action_poll_interval=0.03,
            action_poll_timeout=30.0,
        )
        app = create_app(settings, deps)
        web_app = create_web_app(
            slack_app=app, signing_secret=settings.slack.signing_secret, ssh_links=links
        )
        server = WebServer(web_app, sock=sock)
        await server.start()
        try:
            yield Bot(url, emulator, sim, db, settings, deps, clock, app)
        finally:
            await server.stop()


async def test_two_users_on_two_replicas_one_restart_one_told_it_is_in_progress(
    slack_emulator: SlackEmulator,
    sim: BackendSimulator,
    db: Database,
    replica_db: Database,
) -> None:
    slack_emulator.add_usergroup("S0OPS", [OPERATOR])
    sim.transition_secs = 600  # the resume runs until the test lets it end
    instance_id = sim.add_instance(name="shared-1", status="paused")
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(replica(slack_emulator, sim, db))
        second = await stack.enter_async_context(replica(slack_emulator, sim, replica_db))

        reply = await first.slash("restart shared-1", user=OPERATOR)
        assert reply.status_code == 200
        # The announcement is posted while the first replica holds the instance's lease.
        await first.channel_message(lambda m: m.text.startswith("Restarting shared-1"))

        answer = await second.ask("restart shared-1", user=ADMIN)
        text = str(answer.blocks)
        assert "⏳" in text and "<@U0OPERATOR> started a restart" in text
        assert "still running" in text and "failed" not in text.lower()

        sim.set_status(instance_id, "running")  # the resume ends
        done = await first.channel_message(lambda m: "running again after" in m.text)
        assert "<@U0OPERATOR>" in str(done.blocks)

        assert sim.calls[("restart", instance_id)] == 1
        assert len(slack_emulator.messages(CHANNEL)) == 1, "one announcement, no failure"
        entries = await first.wait_audit(2)
        results = {e.user_id: (e.result, e.detail) for e in entries}
        assert results[OPERATOR][0] == "ok"
        assert "already in progress" in (results[ADMIN][1] or "")
        assert slack_emulator.violations() == []
