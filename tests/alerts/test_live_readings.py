"""Every edit of an incident's root shows the heartbeat age and health as of the edit."""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.sim.slack import Message
from tests.alerts.conftest import Harness


def heartbeat_age(message: Message | None) -> str:
    assert message is not None
    match = re.search(r"\*Heartbeat age\*\\n([^\"']+)", str(message.blocks))
    assert match, message.blocks
    return match.group(1)


async def test_an_edit_without_a_new_event_still_shows_the_current_heartbeat_age(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(budget=0)
    ids = h.sim.seed_instances(2)
    await h.sweep()
    h.sim.stop_heartbeat(ids[1], sticky=True)
    h.advance(100)
    await h.sweep()
    await h.deliver()
    [root] = h.channel()
    opened_age = heartbeat_age(root)

    h.advance(600)  # ten minutes on, with no status change
    await h.sweep()
    [incident] = await h.incidents()
    await h.service.acknowledge(incident.id, "U0ANA")
    await h.deliver()
    edited = h.slack.find_message(root.ts)
    assert heartbeat_age(edited) != opened_age
    assert heartbeat_age(edited).startswith("11 m"), heartbeat_age(edited)
