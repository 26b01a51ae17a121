"""The monitor with a real store: history, no repeated announcements, events in the transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, text

from bot.monitor import EventKind, HealthMonitor, MonitorEvent
from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from bot.store.models import RestartAttempt, StatusChange
from bot.store.queries import (
    heartbeat_history,
    last_statuses,
    record_status_change,
    status_history,
)
from tests.support.heartbeats import stored_samples

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from tests.conftest import FakeClock
    from tests.monitor.conftest import Recorder

MakeMonitor = Callable[..., HealthMonitor]


def at(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


async def _count(db: Database, model: type) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_history_rows_match_what_the_simulator_served(
    sim: BackendSimulator, fake_clock: FakeClock, make_monitor: MakeMonitor, db: Database
) -> None:
    ids = sim.seed_instances(4)
    sim.seed_instances(1, status="paused")
    watched = ids[2]
    monitor = make_monitor(db)
    served: list[tuple[datetime, dict[str, object]]] = []
    swept_at: list[datetime] = []
    for sweep in range(5):
        if sweep == 2:
            sim.set_status(watched, "paused")
        if sweep == 3:
            sim.set_status(watched, "running")
        await monitor.sweep_once()
        swept_at.append(at(fake_clock))
        if sim.instance(watched)["status"] == "running":
            served.append((at(fake_clock), sim.health(watched)))
        fake_clock.advance(30)

    async with db.session() as s:
        samples = await heartbeat_history(s, watched, since=at(fake_clock) - timedelta(hours=1))
        changes = list(reversed(await status_history(s, watched)))
        stored = await last_statuses(s)
    assert len(samples) == len(served) == 4
    for sample, (sampled_at, health) in zip(samples, served, strict=True):
        assert sample.sampled_at == sampled_at
        assert sample.cpu_percent == health["cpu_percent"]
        assert sample.memory_mb == health["memory_mb"]
        assert sample.disk_mb == health["disk_mb"]
        assert int(sample.last_heartbeat.timestamp()) == health["last_heartbeat"]
        assert sample.uptime_secs == health["uptime_secs"]
    assert [(c.from_status, c.to_status, c.cause) for c in changes] == [
        (None, "running", "backend"),
        ("running", "paused", "backend"),
        ("paused", "running", "backend"),
    ]
    assert [c.at for c in changes] == [swept_at[0], swept_at[2], swept_at[3]]
    # Paused instances are listed and recorded, never sampled.
    assert len(stored) == 5 and sorted(stored.values()).count("paused") == 1
    assert await stored_samples(db) == 4 * 4 + 1 * 3 + 0


async def test_a_restarted_monitor_process_does_not_announce_again(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    db: Database,
) -> None:
    ids = sim.seed_instances(3)
    sim.set_status(ids[1], "paused")
    first = make_monitor(db)
    await first.sweep_once()
    sim.stop_heartbeat(ids[0], sticky=True)
    fake_clock.advance(100)
    report = await first.sweep_once()
    assert report.restarted == [ids[0]]
    assert [c[:2] for c in recorder.calls] == [(ids[0], "error")]

    # A new process: fresh memory, same database. Nothing it sees is news, and the
    # restart budget it reads from the store defers the second restart by a minute.
    recorder.calls.clear()
    recorder.events.clear()
    second = make_monitor(db)
    fake_clock.advance(30)
    report = await second.sweep_once()
    assert report.changes == [] and report.restarted == []
    assert recorder.calls == []
    assert [e.kind for e in recorder.events] == [EventKind.RESTART_DEFERRED]
    assert recorder.events[0].attempt == 2
    fake_clock.advance(30)
    report = await second.sweep_once()
    assert report.restarted == [ids[0]] and sim.calls[("restart", ids[0])] == 2
    async with db.session() as s:
        rows = (await s.scalars(select(RestartAttempt).order_by(RestartAttempt.id))).all()
    assert [(r.instance_id, r.cause, r.ok) for r in rows] == [(ids[0], "monitor", True)] * 2
    assert rows[1].at - rows[0].at == timedelta(seconds=60)


async def test_a_change_recorded_by_someone_else_is_not_recorded_or_announced_twice(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    db: Database,
) -> None:
    ids = sim.seed_instances(2)
    monitor = make_monitor(db)
    await monitor.sweep_once()
    # A user pauses from Slack: the command records its own change.
    sim.set_status(ids[0], "paused")
    await db.run(
        lambda s: record_status_change(
            s,
            instance_id=ids[0],
            from_status="running",
            to_status="paused",
            at=at(fake_clock),
            cause="user",
            actor="U123",
        )
    )
    fake_clock.advance(30)
    report = await monitor.sweep_once()
    assert report.changes == [] and recorder.calls == [] and recorder.events == []
    async with db.session() as s:
        history = await status_history(s, ids[0])
        assert (await last_statuses(s))[ids[0]] == "paused"
    assert [(c.to_status, c.cause) for c in history] == [("paused", "user"), ("running", "backend")]


async def test_event_handlers_run_inside_the_transaction_each_in_a_savepoint(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    db: Database,
) -> None:
    ids = sim.seed_instances(2)
    seen_in_transaction: list[int] = []

    async def sees_the_change(session: AsyncSession | None, event: MonitorEvent) -> None:
        assert session is not None
        if event.kind == EventKind.STALE:
            count = await session.scalar(
                select(func.count())
                .select_from(StatusChange)
                .where(StatusChange.instance_id == event.instance_id)
                .where(StatusChange.to_status == "error")
            )
            seen_in_transaction.append(int(count or 0))

    async def writes_then_fails(session: AsyncSession | None, event: MonitorEvent) -> None:
        assert session is not None
        await session.execute(
            text("UPDATE instances SET name = 'from-failing-handler' WHERE id = :id"),
            {"id": event.instance_id},
        )
        raise RuntimeError("boom: rolled back alone")

    async def writes(session: AsyncSession | None, event: MonitorEvent) -> None:
        assert session is not None
        if event.kind == EventKind.RESTART_ATTEMPTED:
            await session.execute(
                text("UPDATE instances SET region = 'touched-by-handler' WHERE id = :id"),
                {"id": event.instance_id},
            )

    monitor = make_monitor(db).on_event(sees_the_change).on_event(writes_then_fails)
    monitor.on_event(writes)
    await monitor.sweep_once()
    sim.stop_heartbeat(ids[0])
    fake_clock.advance(100)
    report = await monitor.sweep_once()
    assert report.restarted == [ids[0]]
    assert seen_in_transaction == [1]
    async with db.session() as s:
        row = (
            await s.execute(
                text("SELECT name, region FROM instances WHERE id = :id"), {"id": ids[0]}
            )
        ).one()
        changes = await status_history(s, ids[0])
    assert row.name != "from-failing-handler" and row.region == "touched-by-handler"
    assert changes[0].to_status == "error" and changes[0].cause == "monitor"
    assert changes[0].reason == "heartbeat stale: 100 s old (timeout 90 s)"
    # The failing handler did not stop the others.
    assert [e.kind for e in recorder.events] == [EventKind.STALE, EventKind.RESTART_ATTEMPTED]


async def test_first_sweep_records_every_instance_and_announces_only_errors(
    sim: BackendSimulator,
    fake_clock: FakeClock,
    make_monitor: MakeMonitor,
    recorder: Recorder,
    db: Database,
) -> None:
    running = sim.seed_instances(30)
    broken = sim.seed_instances(1, status="error")
    stale = running[0]
    sim.stop_heartbeat(stale)
    fake_clock.advance(120)
    monitor = make_monitor(db)
    report = await monitor.sweep_once()
    assert len(report.changes) == 31 + 1
    assert sorted(c[:2] for c in recorder.calls) == sorted([(broken[0], "error"), (stale, "error")])
    async with db.session() as s:
        history = list(reversed(await status_history(s, stale)))
    assert [(c.from_status, c.to_status, c.cause) for c in history] == [
        (None, "running", "backend"),
        ("running", "error", "monitor"),
    ]
    assert report.restarted == [stale]
    assert await _count(db, StatusChange) == 32


async def test_unchanged_rows_are_rewritten_only_every_few_minutes(
    sim: BackendSimulator, fake_clock: FakeClock, make_monitor: MakeMonitor, db: Database
) -> None:
    ids = sim.seed_instances(3)
    monitor = make_monitor(db)
    t0 = at(fake_clock)
    await monitor.sweep_once()

    async def last_seen() -> dict[str, datetime]:
        async with db.session() as s:
            rows = await s.execute(text("SELECT id, last_seen FROM instances"))
            return {row.id: row.last_seen for row in rows}

    fake_clock.advance(30)
    sim.set_status(ids[1], "paused")
    await monitor.sweep_once()
    seen = await last_seen()
    # The changed row is written at once; the unchanged ones keep their last refresh.
    assert _as_utc(seen[ids[1]]) == at(fake_clock)
    assert _as_utc(seen[ids[0]]) == _as_utc(seen[ids[2]]) == t0
    async with db.session() as s:
        assert (await last_statuses(s))[ids[1]] == "paused"
    fake_clock.advance(300)
    await monitor.sweep_once()
    assert {_as_utc(v) for v in (await last_seen()).values()} == {at(fake_clock)}


def _as_utc(value: datetime | str) -> datetime:
    # Raw SQL on SQLite returns the stored text; PostgreSQL returns an aware datetime.
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)
