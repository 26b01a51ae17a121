"""Queries: what is written is what is read back, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from bot.store.database import Database
from bot.store.heartbeats.compaction import compact
from bot.store.heartbeats.reads import count_samples
from bot.store.models import InstanceRow
from bot.store.queries import (
    heartbeat_history,
    known_instances,
    last_statuses,
    record_heartbeats,
    record_restart,
    record_status_change,
    restarts_since,
    status_history,
    upsert_instances,
    uptime_ratio,
)
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot

T0 = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


async def _add_instances(db: Database, *ids: str, at: datetime = T0) -> None:
    snapshots = [InstanceSnapshot(i, f"name-{i}", "eu-west", "running") for i in ids]
    await db.run(lambda s: upsert_instances(s, instances=snapshots, seen_at=at))


def _sample(instance_id: str, at: datetime, n: int = 0) -> HeartbeatSampleIn:
    return HeartbeatSampleIn(
        instance_id=instance_id,
        sampled_at=at,
        cpu_percent=float(n % 100) + 0.5,
        memory_mb=512 + n,
        disk_mb=10_000 + n,
        last_heartbeat=at - timedelta(seconds=3),
        uptime_secs=3600 + n * 30,
    )


async def test_upsert_keeps_first_seen_and_refreshes_the_rest(db: Database) -> None:
    await _add_instances(db, "i-1", "i-2")
    later = T0 + timedelta(minutes=5)
    update = [
        InstanceSnapshot("i-1", "renamed", None, "Paused"),
        InstanceSnapshot("i-3", None, "us-east", "creating"),
    ]
    await db.run(lambda s: upsert_instances(s, instances=update, seen_at=later))

    async with db.session() as session:
        rows = {row.id: row for row in await known_instances(session)}
        statuses = await last_statuses(session)
    assert statuses == {"i-1": "Paused", "i-2": "running", "i-3": "creating"}
    one = rows["i-1"]
    assert (one.name, one.region, one.first_seen, one.last_seen) == ("renamed", None, T0, later)
    assert (rows["i-2"].first_seen, rows["i-2"].last_seen) == (T0, T0)
    assert (rows["i-3"].first_seen, rows["i-3"].region) == (later, "us-east")


async def test_upsert_with_a_repeated_id_keeps_the_last(db: Database) -> None:
    twice = [
        InstanceSnapshot("i-1", "a", None, "creating"),
        InstanceSnapshot("i-1", "b", None, "running"),
    ]
    await db.run(lambda s: upsert_instances(s, instances=twice, seen_at=T0))
    async with db.session() as session:
        [row] = await known_instances(session)
    assert (row.name, row.status) == ("b", "running")


async def test_known_instances_sorted_by_name(db: Database) -> None:
    snapshots = [
        InstanceSnapshot("z", "alpha", None, "running"),
        InstanceSnapshot("a", "beta", None, "running"),
    ]
    await db.run(lambda s: upsert_instances(s, instances=snapshots, seen_at=T0))
    async with db.session() as session:
        assert [row.id for row in await known_instances(session)] == ["z", "a"]


async def test_status_history_matches_what_was_written(db: Database) -> None:
    await _add_instances(db, "i-1", "i-2")
    written = [
        ("i-1", None, "running", T0, "monitor", None, None),
        ("i-1", "running", "paused", T0 + timedelta(minutes=1), "user", "U123", "lunch"),
        ("i-2", "running", "error", T0 + timedelta(minutes=2), "monitor", None, "stale heartbeat"),
        ("i-1", "paused", "Running", T0 + timedelta(minutes=3), "backend", None, None),
    ]
    for instance_id, before, after, at, cause, actor, reason in written:
        await db.run(
            lambda s, i=instance_id, b=before, a=after, t=at, c=cause, u=actor, r=reason: (
                record_status_change(
                    s, instance_id=i, from_status=b, to_status=a, at=t, cause=c, actor=u, reason=r
                )
            )
        )
    async with db.session() as session:
        history = await status_history(session, "i-1")
        latest_two = await status_history(session, "i-1", limit=2)
        other = await status_history(session, "i-2")
        # Recording history does not touch the instance's current status.
        statuses = await last_statuses(session)

    got = [
        (c.instance_id, c.from_status, c.to_status, c.at, c.cause, c.actor, c.reason)
        for c in history
    ]
    assert got == [w for w in reversed(written) if w[0] == "i-1"]
    assert [c.to_status for c in latest_two] == ["Running", "paused"]
    assert [(c.to_status, c.reason) for c in other] == [("error", "stale heartbeat")]
    assert all(c.at.tzinfo is not None for c in history)
    assert statuses == {"i-1": "running", "i-2": "running"}


async def test_status_change_for_an_unknown_instance_creates_a_placeholder(db: Database) -> None:
    await db.run(
        lambda s: record_status_change(
            s,
            instance_id="new",
            from_status="running",
            to_status="paused",
            at=T0,
            cause="user",
            actor="U1",
        )
    )
    async with db.session() as session:
        row = await session.get(InstanceRow, "new")
        history = await status_history(session, "new")
    assert row is not None
    assert (row.status, row.name, row.first_seen) == ("paused", None, T0)
    assert [c.actor for c in history] == ["U1"]


async def test_causes_are_checked(db: Database) -> None:
    await _add_instances(db, "i-1")
    with pytest.raises(ValueError, match="cause"):
        await db.run(
            lambda s: record_status_change(
                s, instance_id="i-1", from_status=None, to_status="x", at=T0, cause="cron"
            )
        )
    with pytest.raises(ValueError, match="cause"):
        await db.run(lambda s: record_restart(s, instance_id="i-1", at=T0, cause="backend"))
    # And by the database itself, for writers that bypass the query functions.
    with pytest.raises(IntegrityError):
        await db.run(
            lambda s: s.execute(
                text(
                    "INSERT INTO status_changes (instance_id, to_status, at, cause) "
                    "VALUES ('i-1', 'x', CURRENT_TIMESTAMP, 'cron')"
                )
            )
        )


async def test_restarts_round_trip(db: Database) -> None:
    await _add_instances(db, "i-1")
    attempts = [
        (T0, "monitor", None, True, None),
        (T0 + timedelta(minutes=10), "user", "U42", False, "503 Service Unavailable"),
        (T0 + timedelta(minutes=20), "monitor", None, True, None),
    ]
    for at, cause, actor, ok, error in attempts:
        await db.run(
            lambda s, t=at, c=cause, a=actor, o=ok, e=error: record_restart(
                s, instance_id="i-1", at=t, cause=c, actor=a, ok=o, error=e
            )
        )
    async with db.session() as session:
        everything = await restarts_since(session, "i-1", T0)
        recent = await restarts_since(session, "i-1", T0 + timedelta(minutes=10))
        none = await restarts_since(session, "other", T0)
    assert [(r.at, r.cause, r.actor, r.ok, r.error) for r in everything] == attempts
    assert [r.at for r in recent] == [a[0] for a in attempts[1:]]
    assert none == []


async def test_a_batch_of_ten_thousand_heartbeats(db: Database) -> None:
    ids = [f"i-{n:03d}" for n in range(100)]
    await _add_instances(db, *ids)
    samples = [
        _sample(ids[n % 100], T0 + timedelta(seconds=30 * (n // 100)), n) for n in range(10_000)
    ]
    await db.run(lambda s: record_heartbeats(s, samples=samples))

    async with db.session() as session:
        count = sum(await count_samples(session))
        history = await heartbeat_history(session, "i-007", since=T0)
    assert count == 10_000
    expected = [s for s in samples if s.instance_id == "i-007"]
    got = [
        HeartbeatSampleIn(
            h.instance_id,
            h.sampled_at,
            h.cpu_percent,
            h.memory_mb,
            h.disk_mb,
            h.last_heartbeat,
            h.uptime_secs,
        )
        for h in history
    ]
    assert got == expected


async def test_heartbeat_history_window(db: Database) -> None:
    await _add_instances(db, "i-1", "i-2")
    samples = [_sample("i-1", T0 + timedelta(minutes=m), m) for m in range(10)]
    samples.append(_sample("i-2", T0 + timedelta(minutes=3)))
    await db.run(lambda s: record_heartbeats(s, samples=samples))
    async with db.session() as session:
        window = await heartbeat_history(
            session, "i-1", since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=6)
        )
        open_ended = await heartbeat_history(session, "i-1", since=T0 + timedelta(minutes=8))
    # since is inclusive, until exclusive; other instances never leak in.
    assert [h.sampled_at.minute for h in window] == [3, 4, 5]
    assert [h.sampled_at.minute for h in open_ended] == [8, 9]


async def test_heartbeat_history_looks_up_keys_and_never_scans_samples(db: Database) -> None:
    ids = [f"i-{n:02d}" for n in range(50)]
    await _add_instances(db, *ids)
    samples = [
        _sample(ids[n % 50], T0 + timedelta(seconds=30 * (n // 50)), n) for n in range(20_000)
    ]
    # Two batches in the head, the older hours compacted into chunks: both paths are read.
    await db.run(lambda s: record_heartbeats(s, samples=samples[:15_000]))
    await db.run(lambda s: record_heartbeats(s, samples=samples[15_000:]))
    await compact(db, before=T0 + timedelta(hours=2))
    since, until = T0 + timedelta(hours=1), T0 + timedelta(hours=3, minutes=10)

    statements: list[tuple[str, object]] = []

    def capture(_conn: object, _cursor: object, sql: str, params: object, *_: object) -> None:
        statements.append((sql, params))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.session() as session:
            history = await heartbeat_history(session, "i-07", since=since, until=until)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    expected = [s for s in samples if s.instance_id == "i-07" and since <= s.sampled_at < until]
    assert [(h.sampled_at, h.cpu_percent) for h in history] == [
        (s.sampled_at, s.cpu_percent) for s in expected
    ]

    prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
    plans = []
    async with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            await conn.exec_driver_sql("ANALYZE")
            await conn.exec_driver_sql("SET enable_seqscan = off")
        for sql, params in statements:
            rows = await conn.exec_driver_sql(prefix + sql, params)  # type: ignore[arg-type]
            plans.append("\n".join(str(row[-1]) for row in rows))
    plan = "\n".join(plans)
    # Samples are reached by key (one lookup per chunk hour, one per head batch), never
    # by reading the tables through; only the small batch list may be scanned.
    for table in ("heartbeat_head", "heartbeat_chunks"):
        assert table in plan, plan
        assert f"SCAN {table}" not in plan and f"Seq Scan on {table}" not in plan, plan


async def test_uptime_ratio(db: Database) -> None:
    await _add_instances(db, "i-1")
    changes = [
        (None, "running", T0),
        ("running", "paused", T0 + timedelta(minutes=30)),
        ("paused", "Running", T0 + timedelta(minutes=45)),
        ("Running", "error", T0 + timedelta(minutes=90)),
    ]
    for before, after, at in changes:
        await db.run(
            lambda s, b=before, a=after, t=at: record_status_change(
                s, instance_id="i-1", from_status=b, to_status=a, at=t, cause="monitor"
            )
        )
    async with db.session() as session:
        # 10:00-12:00: running 30 + 45 minutes of 120.
        whole = await uptime_ratio(session, "i-1", since=T0, until=T0 + timedelta(hours=2))
        # Starting inside a running stretch: the state at `since` comes from the earlier change.
        inside = await uptime_ratio(
            session, "i-1", since=T0 + timedelta(minutes=15), until=T0 + timedelta(minutes=45)
        )
        # Before anything was recorded: time that is unknown is left out.
        partly_known = await uptime_ratio(
            session, "i-1", since=T0 - timedelta(hours=1), until=T0 + timedelta(minutes=30)
        )
        unknown = await uptime_ratio(
            session, "i-1", since=T0 - timedelta(hours=2), until=T0 - timedelta(hours=1)
        )
    assert whole == pytest.approx(75 / 120)
    assert inside == pytest.approx(15 / 30)
    assert partly_known == pytest.approx(1.0)
    assert unknown is None
