"""Two real Runtimes on one PostgreSQL, each with its own Socket Mode connection.

Slack (the emulator) hands each envelope to one connection; two users restarting one
instance at the same moment through the two replicas get one restart, and the other is told
it is in progress. One replica leads the health sweeps, the other stands by.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack

from bot.config import Settings
from bot.runtime import Runtime
from bot.sim.backend import BackendSimulator
from bot.sim.slack import VIA_SOCKET, SlackEmulator

MakeSettings = Callable[..., Settings]
CHANNEL = "C0OPS"


async def test_two_replicas_each_connect_and_one_restart_happens(
    make_settings: MakeSettings,
    backend_sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    pg_empty_url: str,
) -> None:
    backend_sim.transition_secs = 600  # the restart runs until the test lets it end
    instance_id = backend_sim.add_instance(name="shared-1", status="paused")
    settings = make_settings(
        SLACK_APP_TOKEN=slack_emulator.app_token, SLACK_SIGNING_SECRET="", DATABASE_URL=pg_empty_url
    )
    async with AsyncExitStack() as stack:
        # One after the other: the first one migrates the database.
        first = await stack.enter_async_context(Runtime(settings))
        second = await stack.enter_async_context(Runtime(settings))
        await slack_emulator.wait_for_socket(2)
        links = slack_emulator.socket_mode.open_connections
        assert len(links) == 2
        assert first.monitor is not None and second.monitor is not None
        assert [first.monitor.is_leader, second.monitor.is_leader] == [True, False]

        for user in ("U0OPERATOR", "U0ADMIN"):  # round-robin: one envelope per connection
            await slack_emulator.send_slash_command(
                VIA_SOCKET, "restart shared-1", user_id=user, channel_id=CHANNEL
            )
        await slack_emulator.wait_for(
            lambda: any(
                "⏳" in str(m.blocks)
                for u in ("U0OPERATOR", "U0ADMIN")
                for m in slack_emulator.ephemerals(u)
            ),
            10,
            what="the second restart told it is in progress",
        )
        backend_sim.set_status(instance_id, "running")  # the restart ends
        await slack_emulator.wait_for(
            lambda: any("running again after" in m.text for m in slack_emulator.messages(CHANNEL)),
            10,
            what="the restart announced as done",
        )
    acked = slack_emulator.socket_mode.acked()
    assert len({e.connection_id for e in acked}) == 2, "each replica took one envelope"
    assert backend_sim.calls[("restart", instance_id)] == 1
    [announcement] = slack_emulator.messages(CHANNEL)
    assert "failed" not in announcement.text.lower()
    assert slack_emulator.violations() == []
