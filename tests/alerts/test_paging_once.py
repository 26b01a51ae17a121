"""The on-call group is paged once per reason, whatever restarts, failovers and replays do.

Each "restart" builds a new monitor and AlertService on the same database, as a new bot
process (or a new leader) would: the monitor's memory of what it announced is gone, so
the store alone must say that the page went out.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.alerts.conftest import ONCALL, Harness

RESTARTS = 5


def pages(h: Harness) -> list[str]:
    """Every message that reached Slack with the on-call mention (posts, not edits)."""
    return [
        str(c.args.get("text"))
        for c in h.slack.calls_to("chat.postMessage")
        if c.ok and ONCALL in str(c.args.get("text"))
    ]


async def exhaust(h: Harness) -> str:
    """One instance that restarts never heal, until its budget of 2 runs out."""
    ids = h.sim.seed_instances(2)
    await h.sweep()
    victim = ids[1]
    h.sim.stop_heartbeat(victim, sticky=True)
    for _ in range(4):
        h.advance(100)
        await h.sweep()
    await h.deliver()
    return victim


async def test_budget_exhausted_pages_once_across_restarts_and_the_root_is_not_re_edited(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(budget=2, delays=(0, 0))
    await exhaust(h)
    first = pages(h)
    assert len(first) == 2, "the root and the 'gave up' escalation"
    updates_before = len(h.slack.calls_to("chat.update"))

    for _ in range(RESTARTS):
        h = make_harness(budget=2, delays=(0, 0))
        h.advance(30)
        await h.sweep()
        await h.deliver()

    assert pages(h) == first, "no page repeated after a restart"
    assert len(h.slack.calls_to("chat.update")) == updates_before, (
        "start-up edits a root only when its content changed"
    )
    [root] = h.channel()
    assert len([r for r in h.replies(root) if "gave up" in r.text]) == 1


async def test_acknowledged_incident_pages_no_more_but_restarts_go_on(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(budget=2, delays=(0, 0))
    ids = h.sim.seed_instances(2)
    await h.sweep()
    victim = ids[1]
    h.sim.stop_heartbeat(victim, sticky=True)
    h.advance(100)
    await h.sweep()
    await h.deliver()
    [incident] = await h.incidents()
    assert (await h.service.acknowledge(incident.id, "U0ANA")).outcome == "acknowledged"
    for _ in range(3):
        h.advance(100)
        await h.sweep()
    await h.deliver()

    [root] = h.channel()
    replies = h.replies(root)
    assert len([r for r in replies if r.text.startswith("🔁")]) == 2, "restarts went on"
    [gave_up] = [r for r in replies if "gave up" in r.text]
    assert ONCALL not in gave_up.text and "acknowledged" in gave_up.text.lower()
    assert len(pages(h)) == 1, "only the root paged"
    final = h.slack.find_message(root.ts)
    assert final is not None and "no more pages to on-call" in str(final.blocks)
