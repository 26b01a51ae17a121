"""Hostile parameters and odd ids: every parameter is bounded (4xx, never 500), and
resolving a prefix or a name costs at most one fleet list per few seconds, shared by the
gateway and the instance actions (which the Slack commands resolve through).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette

from bot.backend.client import InstanceClient
from bot.backend.fleet_cache import FleetCache
from bot.backend.models import Instance
from bot.gateway import GatewayDeps, KeyRing, gateway_routes_for
from bot.instances import InstanceActions
from bot.sim.backend import BackendSimulator
from bot.store.audit import AuditLog
from bot.store.database import Database
from bot.web.server import serve_web
from tests.gateway.conftest import KEYS, GatewayUnderTest, gateway_keys, utc_now
from tests.support.databases import migrated, sqlite_url


async def test_every_parameter_is_bounded_with_a_4xx(gateway: GatewayUnderTest) -> None:
    a = gateway.sim.seed_instances(1)[0]
    async with gateway.client("viewer") as http:
        huge_limit = await http.get(f"/api/instances/{a}/history", params={"limit": "9" * 5000})
        long_ref = await http.get("/api/instances/" + "r" * 256)
        longest_ref = await http.get("/api/instances/" + "r" * 255)
        long_status = await http.get("/api/instances", params={"status": "s" * 33})
        long_region = await http.get("/api/instances", params={"region": "e" * 65})
        long_path = await http.get("/api/nothing/" + "p" * 5000)
    assert huge_limit.status_code == 422
    assert huge_limit.json() == {
        "error": "limit must be a whole number from 1 to 200",
        "status": 422,
    }
    for response in (long_ref, long_status, long_region):
        assert response.status_code == 422, response.text
        assert response.json()["status"] == 422 and len(response.text) < 200
    assert longest_ref.status_code == 404  # at the bound: looked up, not refused
    assert long_path.status_code == 404 and len(long_path.text) < 300
    # Only the reference at the bound reached the backend (one fleet list).
    assert gateway.sim.requests_total == 1


@asynccontextmanager
async def gateway_and_actions(
    sim: BackendSimulator, tmp_path: Path, *, fleet_cache_secs: float = 3.0
) -> AsyncIterator[tuple[httpx.AsyncClient, InstanceActions]]:
    """The gateway (viewer and operator keys) and the instance actions on one backend client."""
    async with (
        migrated(sqlite_url(tmp_path / "bot.db")) as db,
        InstanceClient(sim.url, retry_backoff=0, fleet_cache_secs=fleet_cache_secs) as client,
    ):
        actions = InstanceActions(client, db, clock=utc_now)
        deps = _deps(client, db, actions)
        async with (
            serve_web(Starlette(routes=gateway_routes_for(deps))) as server,
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        ):
            yield http, actions


def _deps(client: InstanceClient, db: Database, actions: InstanceActions) -> GatewayDeps:
    return GatewayDeps(
        client=client,
        db=db,
        keys=KeyRing(gateway_keys()),
        audit=AuditLog(db, utc_now),
        clock=utc_now,
        actions=actions,
    )


async def test_odd_ids_from_every_caller_share_one_fleet_list(
    backend_sim: BackendSimulator, tmp_path: Path
) -> None:
    ids = backend_sim.seed_instances(20)
    viewer = {"X-API-Key": KEYS["viewer"]}
    # A time to live no run outlasts: the sharing is under test, not the expiry (a loaded
    # machine may take longer than the default 3 s for these 50 calls).
    async with gateway_and_actions(backend_sim, tmp_path, fleet_cache_secs=3600) as (
        http,
        actions,
    ):
        answers = await asyncio.gather(
            *(http.get(f"/api/instances/pod-{n % 20 + 1:03d}", headers=viewer) for n in range(30)),
            *(http.get(f"/api/instances/{ids[n][:13]}/health", headers=viewer) for n in range(10)),
        )
        # The Slack commands resolve through the same instance actions and client.
        by_name = await asyncio.gather(*(actions.resolve("pod-007") for _ in range(10)))
        # A status changed behind the cache's back is seen: the picked instance is fetched.
        backend_sim.set_status(ids[6], "paused")
        paused = await http.get("/api/instances/pod-007", headers=viewer)
    assert [r.status_code for r in answers] == [200] * 40
    assert {i.id for i in by_name} == {ids[6]}
    assert paused.json()["status"] == "paused"
    assert backend_sim.calls[("list", "")] == 1


async def test_without_the_cache_every_odd_id_lists_the_fleet(
    backend_sim: BackendSimulator, tmp_path: Path
) -> None:
    # The control: with no time to live, the same calls each cost a list.
    backend_sim.seed_instances(3)
    async with gateway_and_actions(backend_sim, tmp_path, fleet_cache_secs=0) as (http, actions):
        for _ in range(5):
            assert (
                await http.get("/api/instances/pod-001", headers={"X-API-Key": KEYS["viewer"]})
            ).status_code == 200
        await actions.resolve("pod-002")
    assert backend_sim.calls[("list", "")] == 6


async def test_an_instance_created_by_the_bot_is_found_by_name_at_once(
    backend_sim: BackendSimulator, tmp_path: Path
) -> None:
    backend_sim.seed_instances(2)
    operator = {"X-API-Key": KEYS["operator"]}
    async with gateway_and_actions(backend_sim, tmp_path) as (http, _actions):
        assert (await http.get("/api/instances/pod-001", headers=operator)).status_code == 200
        created = await http.post("/api/instances", json={"name": "fresh-one"}, headers=operator)
        found = await http.get("/api/instances/fresh-one", headers=operator)
    assert created.status_code == 201
    assert found.status_code == 200 and found.json()["id"] == created.json()["id"]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_fleet_cache_lives_its_ttl_and_shares_failures() -> None:
    clock = _Clock()
    started = asyncio.Event()
    release = asyncio.Event()
    calls: list[float] = []
    fail = False

    async def fetch() -> list[Instance]:
        calls.append(clock.now)
        started.set()
        await release.wait()
        if fail:
            raise RuntimeError("backend down")
        return []

    cache = FleetCache(fetch, ttl=3.0, clock=clock)
    first = asyncio.ensure_future(cache.get())
    await started.wait()
    others = [asyncio.ensure_future(cache.get()) for _ in range(5)]
    release.set()
    assert [await f for f in (first, *others)] == [([], True)] * 6
    assert await cache.get() == ([], False)
    clock.now += 2
    assert await cache.get() == ([], False)
    clock.now += 1  # the TTL is over: the next misses fetch again, together
    fail = True
    started.clear()
    release.clear()
    misses = [asyncio.ensure_future(cache.get()) for _ in range(3)]
    await started.wait()
    release.set()
    failures = await asyncio.gather(*misses, return_exceptions=True)
    assert all(isinstance(f, RuntimeError) for f in failures)
    assert calls == [100.0, 103.0]  # one fetch per TTL, shared by concurrent misses
