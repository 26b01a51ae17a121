"""Keeping the channel quiet: storms, the unreachable backend, flapping, mutes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from tests.alerts.conftest import ONCALL, Harness


async def start(h: Harness, count: int) -> list[str]:
    ids = h.sim.seed_instances(count)
    await h.sweep()
    await h.deliver()
    return ids


async def test_two_hundred_stale_at_once_is_one_fleet_message_and_no_restarts(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 210)
    for victim in ids[:200]:
        h.sim.stop_heartbeat(victim)
    h.advance(100)
    report = await h.sweep()
    assert report.storm and len(report.stale_ids) == 200
    assert report.restarted == [], "no per-instance restarts in a storm sweep"
    await h.deliver()

    [root] = h.channel()
    assert root.text.startswith(ONCALL)
    assert "Storm: 200 instances have a stale heartbeat" in str(root.blocks)
    assert "and 190 more" in str(root.blocks)
    [fleet] = await h.incidents()
    assert fleet.scope == "fleet" and len(fleet.facts["members"]) == 200

    # A straggler going stale while the storm is on joins it quietly.
    h.sim.stop_heartbeat(ids[205])
    h.advance(100)
    await h.sweep()
    await h.service.run_housekeeping()  # the fleet incident's members are recounted
    await h.deliver()
    assert len(h.channel()) == 1 and len(await h.incidents()) == 1
    [fleet] = await h.incidents()
    assert len(fleet.facts["members"]) == 201
    assert "Storm: 201 instances" in str(h.slack.find_message(root.ts).blocks)  # type: ignore[union-attr]

    # Half come back: the message says so, the incident stays open.
    for victim in ids[:100]:
        h.sim.resume_heartbeat(victim)
    h.advance(30)
    await h.sweep()
    await h.service.run_housekeeping()
    [fleet] = await h.incidents()
    assert fleet.state == "open" and len(fleet.facts["members"]) == 101

    # Everything comes back: one thread reply, the root resolved.
    for victim in [*ids[100:200], ids[205]]:
        h.sim.resume_heartbeat(victim)
    h.advance(30)
    await h.sweep()
    done = await h.service.run_housekeeping()
    await h.deliver()
    [fleet] = await h.incidents()
    assert fleet.state == "resolved" and done.resolved == [fleet.id]
    [resolved] = h.replies(root)
    assert "all 201 stale instances recovered" in resolved.text
    assert "Resolved" in str(h.slack.find_message(root.ts).blocks)  # type: ignore[union-attr]
    assert len(h.channel()) == 1
    assert h.slack.violations() == []


async def test_unreachable_backend_is_one_fleet_incident_until_it_answers(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    await start(h, 5)
    h.sim.set_faults(down=True)
    for _ in range(5):
        h.advance(30)
        await h.sweep()
    await h.deliver()
    [root] = h.channel()
    assert "Backend unreachable" in str(root.blocks) and root.text.startswith(ONCALL)

    h.sim.set_faults()
    h.advance(30)
    await h.sweep()
    await h.deliver()
    [fleet] = await h.incidents()
    assert fleet.state == "resolved" and fleet.kind == "backend_unreachable"
    assert "Resolved" in str(h.slack.find_message(root.ts).blocks)  # type: ignore[union-attr]
    assert len(h.channel()) == 1


async def cycle(h: Harness, victim: str) -> None:
    """One flap: the heartbeat stops, the monitor restarts it, it comes back."""
    h.sim.stop_heartbeat(victim)
    h.advance(100)
    await h.sweep()  # stale → auto-restart revives it
    h.advance(10)
    await h.sweep()  # recovered


async def test_a_flapping_instance_is_one_incident_that_goes_quiet(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(budget=50, delays=(0,))
    ids = await start(h, 3)
    victim = ids[0]
    for _ in range(3):
        await cycle(h, victim)
    await h.deliver()
    [root] = h.channel()
    [incident] = await h.incidents()
    assert incident.flapping and incident.state == "open"
    replies_when_flapping = len(h.replies(root))
    assert any("Flapping" in r.text for r in h.replies(root))

    for _ in range(4):
        await cycle(h, victim)
    await h.deliver()
    assert len(h.channel()) == 1 and len(await h.incidents()) == 1
    assert len(h.replies(root)) == replies_when_flapping, "flaps after the mark post nothing"
    final = h.slack.find_message(root.ts)
    assert final is not None and "flapping" in str(final.blocks)

    # Steady for a whole window: housekeeping resolves it, once.
    h.advance(16 * 60)
    await h.sweep()
    done = await h.service.run_housekeeping()
    assert done.resolved == [incident.id]
    assert (await h.service.run_housekeeping()).resolved == []
    await h.deliver()
    [incident] = await h.incidents()
    assert incident.state == "resolved"
    assert "Stopped flapping" in h.replies(root)[-1].text


async def test_muted_instance_raises_nothing_and_the_end_of_the_mute_is_said(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 3)
    victim = ids[1]
    result = await h.service.mute(victim, h.utc() + timedelta(hours=1), True, "U0OPERATOR")
    assert result.no_restart and not result.replaced

    h.sim.stop_heartbeat(victim)
    h.advance(100)
    report = await h.sweep()
    assert report.stale_ids == [victim]
    assert report.restarted == [], "--no-restart: the guard stops the auto-restart"
    await h.deliver()
    assert h.channel() == [], "muted: no alert"
    [incident] = await h.incidents()
    assert incident.state == "open" and not incident.announced, "still recorded"

    h.sim.resume_heartbeat(victim)
    h.advance(30)
    await h.sweep()  # recovers while muted: resolved silently
    await h.deliver()
    assert h.channel() == []

    h.advance(40 * 60)
    assert (await h.service.run_housekeeping()).mutes_ended == []
    h.advance(30 * 60)
    assert (await h.service.run_housekeeping()).mutes_ended == [victim]
    assert (await h.service.run_housekeeping()).mutes_ended == []
    await h.deliver()
    [notice] = h.channel()
    assert "are on again" in notice.text and "expired" in str(notice.blocks)
    assert "<@U0OPERATOR>" in str(notice.blocks)
    assert await h.service.restart_guard(victim)


async def test_an_incident_still_open_when_the_mute_ends_is_announced_then(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 3)
    victim = ids[2]
    await h.service.mute(victim, h.utc() + timedelta(minutes=30), True, "U0OPERATOR")
    assert not await h.service.restart_guard(victim)
    h.sim.stop_heartbeat(victim)
    h.advance(100)
    await h.sweep()
    await h.deliver()
    assert h.channel() == []

    result = await h.service.unmute(victim, "U0ADMIN")
    assert result.was_muted
    assert not (await h.service.unmute(victim, "U0ADMIN")).was_muted
    await h.deliver()
    notice, root = h.channel()
    assert "unmuted by <@U0ADMIN>" in str(notice.blocks)
    assert "still open" in str(notice.blocks)
    assert root.text.startswith(ONCALL) and "heartbeat stale" in root.text
    # Unmuted: the next sweep restarts it, in the incident's thread.
    assert await h.service.restart_guard(victim)
    h.advance(30)
    report = await h.sweep()
    assert report.restarted == [victim]
    await h.deliver()
    assert [r.text.split(" ")[0] for r in h.replies(root)] == ["🔁"]


async def test_muting_an_instance_with_an_open_incident_says_so_in_its_thread(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(budget=0)
    ids = await start(h, 2)
    h.sim.set_status(ids[0], "error")
    h.advance(30)
    await h.sweep()
    await h.deliver()
    [root] = h.channel()
    await h.service.mute(ids[0], h.utc() + timedelta(hours=1), False, "U0OPERATOR")
    await h.deliver()
    [note] = h.replies(root)
    assert "muted until" in note.text and "<@U0OPERATOR>" in str(note.blocks)
