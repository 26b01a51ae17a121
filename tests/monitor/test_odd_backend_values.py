"""One instance the backend describes with values no column holds must not stop the sweep.

Python backends write ``NaN`` and ``Infinity`` as bare words and any integer at all, and
names of any length; the models read them. The columns are not NULL, 32- or 64-bit, and
``VARCHAR(n)`` on PostgreSQL: SQLite refuses NaN in a NOT NULL column and integers past
2**63, PostgreSQL integers past a column's range and text past its length. Before these
tests, one such instance failed its slice's transaction every sweep: no heartbeat, status
or restart recorded for the 500 instances beside it. Now an odd number makes that one
health body unreadable (the instance turns unknown, saying which field) and odd text is cut.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import BigInteger, Integer, select

from bot.backend.client import InstanceClient
from bot.backend.errors import BackendProtocolError
from bot.backend.models import INT32, INT64, NAME_MAX, REGION_MAX, STATUS_MAX, HealthInfo
from bot.monitor import EventKind, HealthMonitor, MonitorEvent
from bot.monitor.policy import HEALTH_FAILURES_FOR_UNKNOWN
from bot.store.database import Database
from bot.store.models import HeartbeatHead, InstanceRow
from tests.support.heartbeats import stored_samples

NOW = 1_764_547_200
GOOD = {"cpu_percent": 12.5, "memory_mb": 512, "disk_mb": 2048, "uptime_secs": 60}
ODD: dict[str, dict[str, Any]] = {
    "nan-cpu": {"cpu_percent": math.nan},
    "inf-cpu": {"cpu_percent": math.inf},
    "huge-memory": {"memory_mb": 10**20},
    "negative-disk": {"disk_mb": -(2**40)},
    "huge-uptime": {"uptime_secs": 2**70},
}


class OddBackend:
    """A backend on 127.0.0.1 with a good instance and one answering with odd values."""

    def __init__(
        self, odd_id: str, listed: dict[str, Any] | None = None, unreadable: int = 0
    ) -> None:
        self.odd_id = odd_id
        self.ids = ["aaaaaaaa-0000-0000-0000-000000000000", odd_id]
        self.listed = listed or {}  # what the list says of the odd instance besides its id
        self.unreadable = unreadable  # more rows: no id, an id too long to keep (alternately)
        self.runner: web.AppRunner | None = None
        self.url = ""

    def health(self, instance_id: str, now: float) -> dict[str, Any]:
        odd = ODD.get(instance_id, {}) if instance_id == self.odd_id else {}
        return {**GOOD, "last_heartbeat": int(now), **odd}

    async def start(self, clock: Callable[[], float]) -> None:
        async def listing(_request: web.Request) -> web.Response:
            rows = [{"id": i, "name": i, "status": "running"} for i in self.ids]
            if len(rows) > 1:
                rows[1].update(self.listed)
            for n in range(self.unreadable):
                rows.append({"id": None if n % 2 else f"{n}" * 200, "status": "running"})
            return web.json_response(rows)

        async def health(request: web.Request) -> web.Response:
            # json.dumps writes NaN/Infinity as bare words, as Python backends do.
            return web.json_response(self.health(request.match_info["id"], clock()))

        app = web.Application()
        app.router.add_get("/instances", listing)
        app.router.add_get("/instances/{id}/health", health)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture(params=sorted(ODD))
async def odd_backend(request: pytest.FixtureRequest, fake_clock: Any) -> AsyncIterator[OddBackend]:
    backend = OddBackend(request.param)
    await backend.start(fake_clock)
    try:
        yield backend
    finally:
        assert backend.runner is not None
        await backend.runner.cleanup()


async def test_odd_numbers_in_one_health_body_do_not_stop_the_sweep(
    odd_backend: OddBackend, db: Database, utc_clock: Callable[[], datetime], fake_clock: Any
) -> None:
    good = odd_backend.ids[0]
    events = []
    async with InstanceClient(odd_backend.url, timeout=5.0, retry_backoff=0) as client:
        monitor = HealthMonitor(client, store=db).with_clock(utc_clock)
        monitor.on_event(lambda _session, event: _record(events, event))
        for _ in range(HEALTH_FAILURES_FOR_UNKNOWN):
            report = await monitor.sweep_once()
            assert report.swept and report.instances == len(odd_backend.ids)
            fake_clock.advance(30)
    # Every sweep recorded: the good instance's heartbeats are all there.
    assert await stored_samples(db) == HEALTH_FAILURES_FOR_UNKNOWN
    statuses = await _stored_statuses(db)
    assert statuses[good] == "running"
    # The odd one is what a health check that keeps failing makes it, saying why.
    odd, field = odd_backend.odd_id, next(iter(ODD[odd_backend.odd_id]))
    unknown = [e for e in events if e.kind == EventKind.HEALTH_UNKNOWN]
    assert [e.instance_id for e in unknown] == [odd] and statuses[odd] == "unknown"
    assert field in (unknown[0].detail or ""), unknown[0].detail


async def test_a_name_region_or_status_longer_than_its_column_is_cut_not_refused(
    db: Database, utc_clock: Callable[[], datetime], fake_clock: Any
) -> None:
    long = {"name": "n" * 300, "region": "r" * 100, "status": "Running" + " " * 100}
    backend = OddBackend("nan-cpu", listed=long)
    await backend.start(fake_clock)
    try:
        async with InstanceClient(backend.url, timeout=5.0, retry_backoff=0) as client:
            monitor = HealthMonitor(client, store=db).with_clock(utc_clock)
            report = await monitor.sweep_once()
    finally:
        assert backend.runner is not None
        await backend.runner.cleanup()
    assert report.swept and report.instances == 2 and report.running == 2
    async with db.session() as session:
        row = await session.get(InstanceRow, "nan-cpu")
    assert row is not None
    assert (row.name, row.region, row.status) == ("n" * NAME_MAX, "r" * REGION_MAX, "running")
    assert await stored_samples(db) == 1  # the good one's: nan-cpu's health is unreadable


@pytest.mark.parametrize("unreadable", [1, 2, 40])
async def test_instances_the_bot_cannot_read_are_left_out_of_the_list_not_the_fleet(
    db: Database,
    utc_clock: Callable[[], datetime],
    fake_clock: Any,
    caplog: pytest.LogCaptureFixture,
    unreadable: int,
) -> None:
    good = ["aaaaaaaa-0000-0000-0000-000000000000", "bbbbbbbb-0000-0000-0000-000000000000"]
    backend = OddBackend(good[1], unreadable=unreadable)
    await backend.start(fake_clock)
    try:
        async with InstanceClient(backend.url, timeout=5.0, retry_backoff=0) as client:
            listed = await client.list_instances()
            monitor = HealthMonitor(client, store=db).with_clock(utc_clock)
            report = await monitor.sweep_once()
            unreadable_rows = backend.unreadable
            backend.unreadable = 0  # the backend mends them: nothing to say
            await client.list_instances()
            backend.unreadable = unreadable_rows  # and breaks them again: said again
            await client.list_instances()
            backend.ids = []  # only the unreadable rows: nothing to watch is an error
            with pytest.raises(BackendProtocolError, match="unreadable answer for GET /instances"):
                await client.list_instances()
    finally:
        assert backend.runner is not None
        await backend.runner.cleanup()
    assert [i.id for i in listed] == good
    assert report.swept and report.instances == 2 and report.backend_error is None
    assert await stored_samples(db) == 2
    # Said once while the count stays the same (a sweep lists again), again after a clean
    # list, with the reason.
    said = [r.getMessage() for r in caplog.records if "cannot read" in r.getMessage()]
    assert len(said) == 2, said
    assert all(f"listed {unreadable} instances the bot cannot read" in line for line in said)
    assert "id: String should have at most 128 characters" in said[0]


async def _record(events: list[MonitorEvent], event: MonitorEvent) -> None:
    events.append(event)


async def _stored_statuses(db: Database) -> dict[str, str]:
    async with db.session() as session:
        rows = await session.execute(select(InstanceRow.id, InstanceRow.status))
        return {instance_id: status for instance_id, status in rows}


def test_a_health_readings_bounds_are_what_the_heartbeat_columns_hold() -> None:
    # One rule in two shapes: the model refuses what the columns cannot hold.
    bounds = {Integer: INT32, BigInteger: INT64}
    schema = HealthInfo.__pydantic_core_schema__["schema"]["fields"]  # type: ignore[index]
    for name in ("memory_mb", "disk_mb", "uptime_secs"):
        column = HeartbeatHead.__table__.c[name]
        inner = schema[name]["schema"]["schema"]  # under the whole-number BeforeValidator
        assert (inner["ge"], inner["le"]) == bounds[type(column.type)], name
    assert not HeartbeatHead.__table__.c.cpu_percent.nullable
    assert schema["cpu_percent"]["schema"]["allow_inf_nan"] is False


def test_an_instances_text_limits_are_its_columns() -> None:
    columns = InstanceRow.__table__.c
    assert (columns.name.type.length, columns.region.type.length) == (NAME_MAX, REGION_MAX)
    assert columns.status.type.length == STATUS_MAX
