"""Anonymous gateway floods: rate limited per client, audited in aggregate, pruned in time.

Every request with a bad key used to write its own audit row with up to 500 characters of
path (200 of them filled a 2 MB volume) and the audit log was never pruned. The gateway
here is the real FastAPI app served over HTTP on loopback, on a real SQLite file or the
real PostgreSQL, in front of the backend simulator; time is the fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from bot.backend.client import InstanceClient
from bot.config import GatewayKey
from bot.gateway import GatewayDeps, KeyRing, gateway_routes_for
from bot.gateway.auth_failures import AuthFailures
from bot.sim.backend import BackendSimulator
from bot.store.audit import AuditLog, record_audit
from bot.store.database import Database
from bot.store.slack_models import AuditEntry
from bot.web.server import serve_web
from tests.conftest import FakeClock

VIEWER_KEY = "flood-viewer-key-0001"
Clock = Callable[[], datetime]


@pytest.fixture(params=["sqlite_store", "pg_store"])
def store(request: pytest.FixtureRequest) -> Database:
    """The same test on a real SQLite file and on the real PostgreSQL."""
    db = request.getfixturevalue(request.param)
    assert isinstance(db, Database)
    return db


@asynccontextmanager
async def served_gateway(
    sim: BackendSimulator, db: Database, clock: Clock, failures: AuthFailures
) -> AsyncIterator[str]:
    """The gateway with one viewer key, on a free port; yields its URL."""
    keys = [GatewayKey(name="viewer", role="viewer", key=SecretStr(VIEWER_KEY))]
    async with InstanceClient(sim.url, retry_backoff=0) as client:
        deps = GatewayDeps(
            client=client,
            db=db,
            keys=KeyRing(keys),
            audit=AuditLog(db, clock),
            clock=clock,
            auth_failures=failures,
        )
        async with serve_web(Starlette(routes=gateway_routes_for(deps))) as server:
            yield server.url


def from_address(url: str, address: str) -> httpx.AsyncClient:
    """A client whose connections leave from ``address`` (any 127.x.y.z on loopback)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=url, transport=transport, timeout=10)


async def audit_rows(db: Database) -> list[AuditEntry]:
    async with db.session() as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


async def audit_bytes(db: Database) -> int:
    """What the audit log takes on disk: the SQLite file and its WAL, or the PG table."""
    if db.sqlite_path is not None:
        files = [db.sqlite_path, db.sqlite_path.with_name(db.sqlite_path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists())
    async with db.session() as session:
        size = await session.scalar(text("SELECT pg_total_relation_size('audit_log')"))
    return int(size or 0)


async def test_a_thousand_bad_keys_write_one_row_a_minute_and_answer_429_past_ten(
    store: Database,
    backend_sim: BackendSimulator,
    fake_clock: FakeClock,
    utc_clock: Clock,
    reliability_figures: dict[str, object],
) -> None:
    backend_sim.seed_instances(2)
    long_path = "/api/instances/" + "x" * 200 + "/history?limit=" + "9" * 250
    statuses: list[int] = []
    bytes_before = await audit_bytes(store)
    async with (
        served_gateway(backend_sim, store, utc_clock, AuthFailures(limit=10)) as url,
        from_address(url, "127.0.0.1") as attacker,
        from_address(url, "127.0.0.2") as neighbour,
    ):
        for n in range(1000):
            headers = {"X-API-Key": f"guess-{n}"} if n < 10 or n % 2 else {}
            response = await attacker.get(long_path, headers=headers)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["status"] == 429
        throttled = await attacker.get(long_path, headers={"X-API-Key": f"guess-{n}"})
        # The attacker's right key is refused too while throttled: a 429 says nothing.
        right_key = await attacker.get("/api/instances", headers={"X-API-Key": VIEWER_KEY})
        # Another client is not throttled by the first one's failures.
        other = await neighbour.get("/api/instances", headers={"X-API-Key": VIEWER_KEY})
        other_wrong = await neighbour.get("/api/instances", headers={"X-API-Key": "nope"})
        rows_during = await audit_rows(store)
        bytes_grown = await audit_bytes(store) - bytes_before
        wait = 60 - utc_clock().second  # Retry-After: the rest of the minute

        fake_clock.advance(60)  # the next minute: the attacker may try again
        again_wrong = await attacker.get("/api/instances", headers={"X-API-Key": "guess-again"})
        again_right = await attacker.get("/api/instances", headers={"X-API-Key": VIEWER_KEY})
        rows_after = await audit_rows(store)

    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429] * 990
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == str(wait)
    assert right_key.status_code == 429
    assert other.status_code == 200 and other_wrong.status_code == 401
    assert again_wrong.status_code == 401 and again_right.status_code == 200
    assert backend_sim.calls[("list", "")] == 2  # the neighbour's call and the last one

    # During the flood: one row for the attacker, one for the neighbour's wrong key, one
    # for the neighbour's list; no path anywhere in the refused rows.
    refused = [r for r in rows_during if r.result == "refused"]
    assert [(r.action, r.user_id) for r in refused] == [("auth_failed", "gateway:unknown")] * 2
    assert all(r.args is None and r.instance_id is None for r in refused)
    assert all("x" * 20 not in (r.detail or "") and len(r.detail or "") < 200 for r in refused)
    # After the minute: the attacker's row has its final count, and a new minute a new row.
    first = next(r for r in rows_after if r.id == refused[0].id)
    assert first.detail is not None and first.detail.startswith(
        "1002 refused gateway request(s) from 127.0.0.1"
    )
    assert "(10 wrong keys, 992 answered 429)" in first.detail
    attacker_rows = [r for r in rows_after if "from 127.0.0.1" in (r.detail or "")]
    assert len(attacker_rows) == 2
    reliability_figures.update(
        database=store.dialect,
        bad_key_requests=1002,
        answered_401=statuses.count(401),
        answered_429=statuses.count(429) + 2,
        audit_rows_for_them=len([r for r in rows_during if "from 127.0.0.1" in (r.detail or "")]),
        audit_detail_bytes_max=max(len((r.detail or "").encode()) for r in refused),
        audit_bytes_grown=bytes_grown,
    )


async def test_counts_are_exact_when_every_failure_is_written(
    sqlite_store: Database, backend_sim: BackendSimulator, utc_clock: Clock
) -> None:
    failures = AuthFailures(limit=3, write_every_secs=0)
    async with (
        served_gateway(backend_sim, sqlite_store, utc_clock, failures) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        answers = [
            (await http.get("/api/instances", headers=headers)).status_code
            for headers in ({}, {}, {"X-API-Key": "a"}, {"X-API-Key": "b"}, {"X-API-Key": "c"})
        ]
        after = await http.get("/api/instances", headers={"X-API-Key": "d"})
    # Keyless requests guess nothing: only the three wrong keys count against the limit.
    assert answers == [401] * 5
    assert after.status_code == 429 and after.json()["error"].startswith("too many requests")
    [row] = await audit_rows(sqlite_store)
    assert row.detail is not None
    assert row.detail.startswith("6 refused gateway request(s) from 127.0.0.1")
    assert row.detail.endswith("(3 wrong keys, 1 answered 429)")
    assert backend_sim.requests_total == 0


async def test_many_addresses_share_one_row_past_the_minutes_budget(
    sqlite_store: Database, backend_sim: BackendSimulator, utc_clock: Clock
) -> None:
    # An attacker with many addresses cannot open a row per request either.
    failures = AuthFailures(write_every_secs=0, max_rows_per_minute=2)
    async with served_gateway(backend_sim, sqlite_store, utc_clock, failures) as url:
        for host in range(1, 7):
            async with from_address(url, f"127.0.0.{host}") as http:
                for _ in range(2):
                    answer = await http.get("/api/instances", headers={"X-API-Key": "wrong"})
                    assert answer.status_code == 401
    details = [r.detail or "" for r in await audit_rows(sqlite_store)]
    assert len(details) == 3
    assert details[0].startswith("2 refused gateway request(s) from 127.0.0.1 ")
    assert details[1].startswith("2 refused gateway request(s) from 127.0.0.2 ")
    assert details[2].startswith("8 refused gateway request(s) from 4 more client(s) ")


async def test_audit_rows_older_than_the_retention_are_pruned(
    store: Database, utc_clock: Clock
) -> None:
    now = utc_clock()
    ages_days = [800, 400, 366, 364, 10, 0]

    async def seed(session: AsyncSession) -> None:
        for age in ages_days:
            await record_audit(
                session,
                at=now - timedelta(days=age),
                user_id=f"U{age}",
                channel_id=None,
                source="gateway",
                action="list",
            )

    await store.run(seed)
    audit = AuditLog(store, utc_clock)
    # A batch of 1 makes the prune loop: every old row goes, whatever the batch.
    assert await audit.prune(keep_days=365, batch=1) == 3
    assert [r.user_id for r in await audit_rows(store)] == ["U364", "U10", "U0"]
    assert await audit.prune(keep_days=365) == 0
    assert await audit.prune(keep_days=5) == 2
    assert [r.user_id for r in await audit_rows(store)] == ["U0"]
    async with store.session() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 1


async def test_the_scheduled_prune_job_applies_the_retention(
    sqlite_store: Database, utc_clock: Clock
) -> None:
    from bot.scheduling import new_scheduler
    from bot.wiring import AUDIT_PRUNE_JOB_ID, register_audit_prune

    async def seed(session: AsyncSession) -> None:
        for age in (40, 20):
            await record_audit(
                session,
                at=utc_clock() - timedelta(days=age),
                user_id=f"U{age}",
                channel_id=None,
                source="gateway",
                action="list",
            )

    await sqlite_store.run(seed)
    scheduler = new_scheduler()
    register_audit_prune(scheduler, AuditLog(sqlite_store, utc_clock), keep_days=30)
    job = scheduler.get_job(AUDIT_PRUNE_JOB_ID)
    assert job is not None
    await job.func()
    assert [r.user_id for r in await audit_rows(sqlite_store)] == ["U20"]
