"""End to end: simulator → monitor → AlertService → outbox → delivery → Slack emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from bot.sim.slack import Message
from tests.alerts.conftest import ALERTS, ONCALL, Harness


def shown(message: Message) -> str:
    """Everything a reader sees in a message: fallback text and blocks."""
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def action_ids(message: Message) -> list[str]:
    return [
        element["action_id"]
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


async def start(h: Harness, count: int = 3) -> list[str]:
    """Seed ``count`` healthy instances and let the monitor see them once."""
    ids = h.sim.seed_instances(count)
    await h.sweep()
    await h.deliver()
    return ids


async def test_stale_opens_incident_restarts_in_thread_and_resolves(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h)
    assert h.channel() == [], "healthy instances raise nothing"
    victim = ids[1]
    name = h.sim.instance(victim)["name"]

    h.sim.stop_heartbeat(victim)
    h.advance(100)
    report = await h.sweep()
    assert report.restarted == [victim]
    await h.deliver()

    [root] = h.channel()
    assert root.text.startswith(ONCALL), "the on-call group is mentioned on open"
    text = shown(root)
    assert name in text and victim[:8] in text
    assert "heartbeat stale" in text and "Open" in text
    assert "Heartbeat age" in text and "CPU" in text, "age and health snapshot are shown"
    assert action_ids(root) == [
        "starpod.incident.ack",
        "starpod.incident.restart",
        "starpod.incident.logs",
        "starpod.incident.mute",
    ]
    [restart] = h.replies(root)
    assert "auto-restart 1 of 3" in restart.text

    h.advance(30)
    await h.sweep()
    await h.deliver()

    root = h.slack.find_message(root.ts)
    assert root is not None and root.edited
    assert "Resolved after 30 s" in shown(root)
    assert "starpod.incident.ack" not in action_ids(root)
    replies = h.replies(root)
    assert [r.text.split(" ")[0] for r in replies] == ["🔁", "✅"]
    assert "Recovered after 30 s" in replies[1].text
    assert len(h.channel()) == 1, "follow-ups never become new top-level messages"

    [incident] = await h.incidents()
    assert incident.state == "resolved" and incident.restart_attempts == 1
    assert incident.root_ts == root.ts and incident.channel == ALERTS
    assert h.slack.violations() == []


async def test_recurrence_while_open_is_a_thread_follow_up(
    make_harness: Callable[..., Harness],
) -> None:
    # No auto-restart budget beyond the first restart: the instance stays broken.
    h = make_harness(budget=1)
    ids = await start(h, 1)  # health faults hit every instance: keep one
    victim = ids[0]
    h.sim.stop_heartbeat(victim, sticky=True)
    h.advance(100)
    await h.sweep()
    # The health call now fails three times in a row: stale → health unknown.
    h.sim.set_faults(error_rate=1.0, endpoints=["health"])
    for _ in range(3):
        h.advance(30)
        await h.sweep()
    await h.deliver()

    [root] = h.channel()
    [incident] = await h.incidents()
    assert incident.kind == "health_unknown" and incident.state == "open"
    texts = [r.text for r in h.replies(root)]
    assert any("health check failing now" in t for t in texts), texts
    assert len(await h.incidents()) == 1


async def test_budget_exhaustion_re_mentions_on_call_in_thread(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(budget=2, delays=(0, 0))
    ids = await start(h)
    victim = ids[2]
    h.sim.stop_heartbeat(victim, sticky=True)  # restarts never bring it back
    for _ in range(4):
        h.advance(100)
        await h.sweep()
    await h.deliver()

    [root] = h.channel()
    replies = h.replies(root)
    restarts = [r for r in replies if r.text.startswith("🔁")]
    escalations = [r for r in replies if "📣" in r.text]
    assert len(restarts) == 2
    assert len(escalations) == 1
    assert ONCALL in escalations[0].text and "gave up" in escalations[0].text
    assert escalations[0].reply_broadcast, "the escalation is shown in the channel too"
    [incident] = await h.incidents()
    assert incident.exhausted_at is not None
    assert "budget" in shown(h.slack.find_message(root.ts) or root).lower()


async def test_unacknowledged_incident_escalates_once_after_the_configured_time(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(budget=0, escalate_after=timedelta(minutes=30))
    ids = await start(h, 2)
    h.sim.set_status(ids[0], "error")  # the backend itself reports the error
    h.advance(30)
    await h.sweep()
    await h.deliver()
    [root] = h.channel()
    assert "in error" in shown(root)

    h.advance(29 * 60)
    assert (await h.service.run_housekeeping()).escalated == []
    h.advance(2 * 60)
    first = await h.service.run_housekeeping()
    second = await h.service.run_housekeeping()
    await h.deliver()
    assert len(first.escalated) == 1 and second.escalated == []
    escalations = [r for r in h.replies(root) if "📣" in r.text]
    assert len(escalations) == 1 and ONCALL in escalations[0].text


async def test_acknowledged_incident_is_edited_and_does_not_escalate(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(budget=0, escalate_after=timedelta(minutes=5))
    ids = await start(h, 2)
    h.sim.set_status(ids[1], "error")
    h.advance(30)
    await h.sweep()
    [incident] = await h.incidents()

    first = await h.service.acknowledge(str(incident.id), "U0OPERATOR")
    again = await h.service.acknowledge(incident.id, "U0OTHER")
    assert first.ok and first.by == "U0OPERATOR"
    assert again.outcome == "already" and again.by == "U0OPERATOR"
    assert (await h.service.acknowledge(999, "U0OPERATOR")).outcome == "not_found"
    await h.deliver()

    [root] = h.channel()
    assert "Acknowledged by <@U0OPERATOR>" in shown(root)
    assert "starpod.incident.ack" not in action_ids(root)
    h.advance(10 * 60)
    assert (await h.service.run_housekeeping()).escalated == []
    [view] = await h.service.open_incidents()
    assert view.state == "acknowledged" and "acknowledged by U0OPERATOR" in view.summary
