"""Maintenance windows: no incidents while they run, their start and end said once each.

Everything real on one fake clock: the simulator, the monitor, the alert service, the
outbox delivery to the Slack emulator, a migrated SQLite file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

import pytest

from bot.alerts.maintenance_rules import ALL, Start, check_start, check_target, covers, parse_start
from tests.alerts.conftest import ONCALL, Harness


async def start(h: Harness, count: int, prefix: str) -> list[str]:
    ids = h.sim.seed_instances(count, name_prefix=prefix)
    return ids


async def first_sweep(h: Harness) -> None:
    await h.sweep()
    await h.deliver()


def texts(h: Harness) -> list[str]:
    return [m.text for m in h.channel()]


async def test_no_incident_opens_during_a_window_and_its_start_and_end_are_said_once(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    web = await start(h, 2, "web")
    db = await start(h, 1, "db")
    await first_sweep(h)
    added = await h.service.maintenance.add(
        "web-*",
        h.utc(),
        timedelta(hours=1),
        no_restart=True,
        reason="kernel <!channel> upgrade",
        actor="U0OPERATOR",
    )
    assert [m.split(" (")[0] for m in added.matching] == ["web-001", "web-002"]
    await h.deliver()
    [started] = h.channel()
    assert started.text == f"Maintenance #{added.window.id} started"
    shown = str(started.blocks)
    assert "web-001" in shown and "db-003" not in shown and "auto-restart is off" in shown
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown, "the reason is escaped"
    assert (await h.service.run_housekeeping()).maintenance_started == [], "said once"

    h.sim.stop_heartbeat(web[0])
    h.sim.stop_heartbeat(db[0])
    h.advance(100)
    report = await h.sweep()
    assert sorted(report.stale_ids) == sorted([web[0], db[0]])
    assert report.restarted == [db[0]], "--no-restart holds the window's instances"
    assert not await h.service.restart_guard(web[0])
    assert await h.service.restart_guard(db[0])
    await h.deliver()
    incidents = await h.incidents()
    assert [i.instance_id for i in incidents] == [db[0]], "no incident for web-001"
    assert texts(h)[1].startswith(ONCALL) and "db-003" in texts(h)[1]

    h.advance(3600)
    housekeeping = await h.service.run_housekeeping()
    assert housekeeping.maintenance_ended == [added.window.id]
    assert (await h.service.run_housekeeping()).maintenance_ended == []
    await h.deliver()
    ended, root = h.channel()[2:]
    assert ended.text == f"Maintenance #{added.window.id} ended"
    assert "Still unhealthy, alerting again: web-001" in str(ended.blocks)
    # What maintenance left broken pages now, once.
    assert root.text.startswith(ONCALL) and "web-001" in root.text
    opened = [i for i in await h.incidents() if i.instance_id == web[0]]
    assert len(opened) == 1 and opened[0].state == "open"
    assert await h.service.restart_guard(web[0]), "auto-restart is back after the window"


async def test_an_open_incident_is_told_in_its_thread_and_stays_open_quietly(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(budget=0)
    ids = await start(h, 2, "api")
    await first_sweep(h)
    h.sim.set_status(ids[0], "error")
    h.advance(30)
    await h.sweep()
    await h.deliver()
    [root] = h.channel()
    added = await h.service.maintenance.add(
        ALL, h.utc(), timedelta(minutes=30), no_restart=False, reason=None, actor="U0ADMIN"
    )
    await h.deliver()
    [note] = h.replies(root)
    assert f"Maintenance #{added.window.id} started" in note.text
    assert "<@U0ADMIN>" in str(note.blocks) and "auto-restart stays on" in str(note.blocks)
    [notice] = h.channel()[1:]
    assert "every instance" in str(notice.blocks)
    [incident] = await h.incidents()
    assert incident.state == "open"

    # Another instance breaks during the window: nothing opens, nothing is said.
    h.sim.set_status(ids[1], "error")
    h.advance(30)
    await h.sweep()
    await h.deliver()
    assert len(await h.incidents()) == 1
    assert len(h.channel()) == 2 and len(h.replies(root)) == 1


async def test_a_storm_of_instances_in_maintenance_opens_no_fleet_incident(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 8, "batch")
    await first_sweep(h)
    await h.service.maintenance.add(
        "batch-*", h.utc(), timedelta(hours=2), no_restart=True, reason=None, actor="U0OPERATOR"
    )
    for instance_id in ids:
        h.sim.stop_heartbeat(instance_id)
    h.advance(100)
    report = await h.sweep()
    assert sorted(report.stale_ids) == sorted(ids)
    assert report.restarted == []
    await h.deliver()
    assert await h.incidents() == []
    assert [m.text.split(" ")[0] for m in h.channel()] == ["Maintenance"]


async def test_a_planned_window_starts_later_and_a_cancelled_one_says_so(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 2, "cache")
    await first_sweep(h)
    windows = h.service.maintenance
    later = await windows.add(
        "cache-001",
        h.utc() + timedelta(minutes=30),
        timedelta(hours=1),
        no_restart=True,
        reason=None,
        actor="U0OPERATOR",
    )
    never = await windows.add(
        "cache-002",
        h.utc() + timedelta(minutes=30),
        timedelta(hours=1),
        no_restart=False,
        reason=None,
        actor="U0OPERATOR",
    )
    await h.deliver()
    assert h.channel() == [], "nothing is said before a window starts"
    assert await h.service.restart_guard(ids[0]), "not started: auto-restart still on"
    assert [w.state(h.utc()) for w in await windows.listing()] == ["scheduled", "scheduled"]

    cancelled = await windows.cancel(never.window.id, "U0ADMIN")
    assert cancelled.outcome == "cancelled"
    assert (await windows.cancel(never.window.id, "U0ADMIN")).outcome == "already"
    assert (await windows.cancel(999, "U0ADMIN")).outcome == "not_found"

    h.advance(30 * 60)
    report = await h.service.run_housekeeping()
    assert report.maintenance_started == [later.window.id], "a cancelled window never starts"
    assert not await h.service.restart_guard(ids[0])
    stopped = await windows.cancel(later.window.id, "U0ADMIN")
    assert stopped.outcome == "cancelled"
    assert await h.service.restart_guard(ids[0]), "cancelled: auto-restart on at once"
    await h.deliver()
    started, ended = h.channel()
    assert started.text == f"Maintenance #{later.window.id} started"
    assert ended.text == f"Maintenance #{later.window.id} cancelled"
    assert "cancelled by <@U0ADMIN>" in str(ended.blocks)
    assert (await h.service.run_housekeeping()).maintenance_ended == []
    states = {w.id: w.state(h.utc()) for w in await windows.listing()}
    assert states == {later.window.id: "cancelled", never.window.id: "cancelled"}
    h.advance(2 * 3600)
    assert (await windows.cancel(later.window.id, "U0ADMIN")).outcome == "already"


async def test_bad_windows_are_refused_with_one_line_and_nothing_is_stored(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    windows = h.service.maintenance
    now = h.utc()
    cases = [
        ("web-[1", now, timedelta(hours=1), "never closes"),
        ("web,db", now, timedelta(hours=1), "not a name glob"),
        ("web-*", now, timedelta(days=8), "from 1 minute to 7 days"),
        ("web-*", now, timedelta(seconds=30), "from 1 minute to 7 days"),
        ("web-*", now + timedelta(days=91), timedelta(hours=1), "at most 90 days ahead"),
    ]
    for target, starts_at, length, problem in cases:
        with pytest.raises(ValueError, match=problem) as caught:
            await windows.add(
                target, starts_at, length, no_restart=False, reason=None, actor="U0OPERATOR"
            )
        assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="limited to 200"):
        await windows.add(
            "web-*", now, timedelta(hours=1), no_restart=False, reason="x" * 201, actor="U0OP"
        )
    assert await windows.listing() == []


# -- the rules, pure ---------------------------------------------------------------------------

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def test_starts_read_as_typed() -> None:
    assert parse_start("now").resolve(NOW) == NOW
    assert parse_start("NOW").resolve(NOW) == NOW
    assert parse_start("+30m").resolve(NOW) == NOW + timedelta(minutes=30)
    assert parse_start("+2h").resolve(NOW) == NOW + timedelta(hours=2)
    assert parse_start("+1d").resolve(NOW) == NOW + timedelta(days=1)
    assert parse_start("16:30") == Start(clock=time(16, 30))
    assert parse_start("16:30").resolve(NOW) == NOW.replace(hour=16, minute=30)
    # A time of day already past is tomorrow's; one typed in the same minute is now.
    assert parse_start("09:00").resolve(NOW) == NOW.replace(hour=9) + timedelta(days=1)
    assert parse_start("15:00").resolve(NOW + timedelta(seconds=40)) == NOW
    assert parse_start("2026-12-01T22:00Z").resolve(NOW) == datetime(2026, 12, 1, 22, tzinfo=UTC)
    assert parse_start("2026-12-01 22:00").resolve(NOW) == datetime(2026, 12, 1, 22, tzinfo=UTC)
    assert parse_start("2026-12-01T23:00+01:00").resolve(NOW) == datetime(
        2026, 12, 1, 22, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tomorrow", "is not a start time"),
        ("25:00", "is not a time of day"),
        ("12:75", "is not a time of day"),
        ("+30", "is not a start time"),
        ("2026-13-01T10:00", "is not a start time"),
        ("`rm`", "is not a start time"),
    ],
)
def test_bad_starts_say_what_is_accepted(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        parse_start(text)
    assert "`now`" in str(caught.value) and "``" not in str(caught.value)


def test_starts_in_the_past_or_too_far_ahead_are_refused() -> None:
    check_start(NOW - timedelta(seconds=30), NOW)  # the same minute: fine
    with pytest.raises(ValueError, match="in the past"):
        check_start(NOW - timedelta(hours=1), NOW)
    with pytest.raises(ValueError, match="90 days ahead"):
        check_start(NOW + timedelta(days=100), NOW)


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("", "not a name glob"),
        ("web-[12", "never closes"),
        ("web-[[1]]", "nests"),
        ("web/1", "not a name glob"),
        ("<!channel>", "not a name glob"),
        ("x" * 101, "at most 100 characters"),
    ],
)
def test_bad_globs_are_refused(target: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_target(target)


def test_a_glob_covers_names_case_insensitively_and_an_exact_id() -> None:
    assert check_target("ALL") == ALL and check_target(" web-* ") == "web-*"
    assert covers(ALL, "i-1", None)
    assert covers("web-*", "i-1", "Web-7")
    assert covers("web-[12]", "i-1", "web-2") and not covers("web-[12]", "i-1", "web-3")
    assert not covers("web-*", "i-1", None) and not covers("web-*", "i-1", "db-1")
    assert covers("a1b2c3", "a1b2c3", "db-1")
