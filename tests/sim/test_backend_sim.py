"""The Starpod backend simulator, exercised over real HTTP on 127.0.0.1 with plain httpx."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_ssh_private_key

from bot.sim.backend import BackendSimulator, serve
from bot.sim.backend_logs import GARBAGE_LINES, LOG_INTERVAL_SECS
from bot.sim.backend_wire import Variant, instance_wire, list_json

if TYPE_CHECKING:
    from tests.conftest import FakeClock  # the shared fake_clock fixture's type

INSTANCE_KEYS = {"id", "name", "status", "region", "created_at", "updated_at"}
HEALTH_KEYS = {"cpu_percent", "memory_mb", "disk_mb", "last_heartbeat", "uptime_secs"}
LOG_KEYS = {"timestamp", "level", "message"}
SSH_KEYS = {"host", "port", "user", "private_key"}
KEY = "sekrit-key"


@pytest.fixture
async def sim(fake_clock: FakeClock) -> AsyncIterator[BackendSimulator]:
    """A simulator on a fake clock whose transitions take one (fake) second."""
    async with BackendSimulator(clock=fake_clock, seed=7, transition_secs=1.0) as s:
        yield s


@pytest.fixture
async def http(sim: BackendSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url, timeout=5.0) as client:
        yield client


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (polling) until the server has seen what the test sent; the deadline is there
    only to fail instead of hanging (generous: a loaded machine is slow, not wrong)."""
    deadline = asyncio.get_running_loop().time() + 30
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met within 30 s")
        await asyncio.sleep(0.01)


def _tick(t: float) -> int:
    return int(t // 5) * 5


def _from_rfc3339(value: str) -> int:
    assert value.endswith("Z"), value
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


# -- endpoints and lifecycle -------------------------------------------------------------------


async def test_create_answers_201_creating_then_running_after_the_transition(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    t0 = fake_clock.now
    r = await http.post("/instances", json={"name": "my-bot", "region": "us-east-1"})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == INSTANCE_KEYS
    assert uuid.UUID(body["id"]).version == 4
    assert body["name"] == "my-bot" and body["region"] == "us-east-1"
    assert body["status"] == "creating"
    assert body["created_at"] == body["updated_at"] == int(t0)

    fake_clock.advance(0.5)
    assert (await http.get(f"/instances/{body['id']}")).json()["status"] == "creating"
    fake_clock.advance(0.5)
    got = (await http.get(f"/instances/{body['id']}")).json()
    assert got["status"] == "running"
    assert got["updated_at"] == int(t0 + 1) and got["created_at"] == int(t0)
    health = (await http.get(f"/instances/{body['id']}/health")).json()
    assert health["uptime_secs"] == 0 and health["last_heartbeat"] == int(t0 + 1)
    fake_clock.advance(42)
    assert (await http.get(f"/instances/{body['id']}/health")).json()["uptime_secs"] == 42
    assert sim.calls[("create", "")] == 1


async def test_create_without_body_gives_null_name_and_bad_bodies_are_400(
    http: httpx.AsyncClient,
) -> None:
    r = await http.post("/instances")
    assert r.status_code == 201
    assert r.json()["name"] is None and r.json()["region"] is None
    for bad in (b"not json", b"[1, 2]", b'{"name": 5}'):
        r = await http.post("/instances", content=bad)
        assert r.status_code == 400 and r.text.startswith("Bad Request")


async def test_list_and_get_carry_health_only_when_inline(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    ids = sim.seed_instances(3)
    r = await http.get("/instances")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    listed = r.json()
    assert [i["id"] for i in listed] == ids
    assert [i["name"] for i in listed] == ["pod-001", "pod-002", "pod-003"]
    assert all(set(i) == INSTANCE_KEYS and i["status"] == "running" for i in listed)
    assert (await http.get(f"/instances/{ids[0]}")).json() == listed[0]

    sim.inline_health = True
    listed = (await http.get("/instances")).json()
    assert all(set(i) == INSTANCE_KEYS | {"health"} for i in listed)
    assert all(set(i["health"]) == HEALTH_KEYS for i in listed)
    single = (await http.get(f"/instances/{ids[1]}")).json()
    assert single["health"] == (await http.get(f"/instances/{ids[1]}/health")).json()
    assert sim.instance(ids[1]) == single


async def test_unknown_instance_and_unknown_path_are_404_not_found(
    http: httpx.AsyncClient,
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for method, path in (
        ("GET", f"/instances/{missing}"),
        ("DELETE", f"/instances/{missing}"),
        ("POST", f"/instances/{missing}/pause"),
        ("POST", f"/instances/{missing}/restart"),
        ("GET", f"/instances/{missing}/logs"),
        ("GET", f"/instances/{missing}/ssh"),
        ("GET", f"/instances/{missing}/health"),
        ("GET", "/no/such/path"),
    ):
        r = await http.request(method, path)
        assert (r.status_code, r.text) == (404, "Not Found"), (method, path)


async def test_kill_answers_204_and_stops_after_the_transition(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    [iid] = sim.seed_instances(1)
    r = await http.delete(f"/instances/{iid}")
    assert r.status_code == 204 and r.content == b""
    assert (await http.get(f"/instances/{iid}")).json()["status"] == "running"  # old status shows
    again = await http.delete(f"/instances/{iid}")
    assert again.status_code == 409 and again.text.startswith("Cannot stop")
    fake_clock.advance(1)
    assert (await http.get(f"/instances/{iid}")).json()["status"] == "stopped"
    again = await http.delete(f"/instances/{iid}")
    assert (again.status_code, again.text) == (409, "Cannot stop: instance is stopped")
    assert sim.calls[("kill", iid)] == 3


async def test_pause_and_restart_answer_the_updated_instance(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    [iid] = sim.seed_instances(1)
    r = await http.post(f"/instances/{iid}/pause")
    assert r.status_code == 200 and r.json()["id"] == iid and r.json()["status"] == "running"
    busy = await http.post(f"/instances/{iid}/restart")
    assert busy.status_code == 409 and busy.text.startswith("Cannot restart")
    fake_clock.advance(1)
    assert (await http.get(f"/instances/{iid}")).json()["status"] == "paused"
    r = await http.post(f"/instances/{iid}/pause")
    assert (r.status_code, r.text) == (409, "Cannot pause: instance is paused")

    r = await http.post(f"/instances/{iid}/restart")
    assert r.status_code == 200 and r.json()["status"] == "paused"
    fake_clock.advance(1)
    assert (await http.get(f"/instances/{iid}")).json()["status"] == "running"
    assert sim.calls[("pause", iid)] == 2 and sim.calls[("restart", iid)] == 2


async def test_restart_from_error_and_running_resets_uptime(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    [iid] = sim.seed_instances(1)
    assert (await http.get(f"/instances/{iid}/health")).json()["uptime_secs"] > 1000
    sim.set_status(iid, "error")
    assert (await http.get(f"/instances/{iid}")).json()["status"] == "error"
    assert (await http.post(f"/instances/{iid}/restart")).status_code == 200
    fake_clock.advance(1)
    assert (await http.get(f"/instances/{iid}")).json()["status"] == "running"
    assert (await http.get(f"/instances/{iid}/health")).json()["uptime_secs"] == 0
    fake_clock.advance(30)
    assert (await http.post(f"/instances/{iid}/restart")).status_code == 200
    fake_clock.advance(1)
    assert (await http.get(f"/instances/{iid}/health")).json()["uptime_secs"] == 0


async def test_illegal_transitions_on_stopped_and_creating_are_409(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    [stopped] = sim.seed_instances(1, status="stopped")
    [creating] = sim.seed_instances(1, status="creating")
    for iid, action, status in (
        (stopped, "pause", "stopped"),
        (stopped, "restart", "stopped"),
        (creating, "pause", "creating"),
        (creating, "restart", "creating"),
    ):
        r = await http.post(f"/instances/{iid}/{action}")
        assert (r.status_code, r.text) == (409, f"Cannot {action}: instance is {status}")
    # A kill works from creating (it is not stopped yet).
    assert (await http.delete(f"/instances/{creating}")).status_code == 204


async def test_extended_statuses_show_during_transitions(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    sim.set_variant(extended_statuses=True)

    async def status_of(iid: str) -> str:
        return (await http.get(f"/instances/{iid}")).json()["status"]

    created = (await http.post("/instances")).json()
    assert created["status"] == "provisioning"
    fake_clock.advance(1)
    assert await status_of(created["id"]) == "running"
    iid = created["id"]
    for request, label, settled in (
        (http.post(f"/instances/{iid}/pause"), "stopping", "paused"),
        (http.post(f"/instances/{iid}/restart"), "starting", "running"),
        (http.post(f"/instances/{iid}/restart"), "restarting", "running"),
        (http.delete(f"/instances/{iid}"), "deleting", "stopped"),
    ):
        assert (await request).status_code in (200, 204)
        assert await status_of(iid) == label
        fake_clock.advance(1)
        assert await status_of(iid) == settled


async def test_transition_settles_at_its_end_time_even_if_read_much_later(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    [iid] = sim.seed_instances(1)
    t0 = fake_clock.now
    await http.post(f"/instances/{iid}/pause")
    fake_clock.advance(500)
    got = (await http.get(f"/instances/{iid}")).json()
    assert got["status"] == "paused" and got["updated_at"] == int(t0 + 1)
    health = (await http.get(f"/instances/{iid}/health")).json()
    assert health["last_heartbeat"] == int(t0 + 1) - int(t0 + 1) % 5
    assert health["cpu_percent"] == 0.0 and health["uptime_secs"] == 0


# -- heartbeats --------------------------------------------------------------------------------


async def test_running_heartbeat_follows_the_clock_and_freezes_when_stopped(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    [iid] = sim.seed_instances(1)
    fake_clock.advance(7)
    health = (await http.get(f"/instances/{iid}/health")).json()
    assert health["last_heartbeat"] == _tick(fake_clock.now)
    sim.stop_heartbeat(iid)
    frozen = _tick(fake_clock.now)
    fake_clock.advance(120)
    health = (await http.get(f"/instances/{iid}/health")).json()
    assert health["last_heartbeat"] == frozen
    assert fake_clock.now - health["last_heartbeat"] >= 120
    assert (await http.get(f"/instances/{iid}")).json()["status"] == "running"  # stale, not error

    sim.resume_heartbeat(iid)
    assert (await http.get(f"/instances/{iid}/health")).json()["last_heartbeat"] == _tick(
        fake_clock.now
    )


async def test_restart_revives_a_stopped_heartbeat_unless_sticky(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    plain, sticky = sim.seed_instances(2)
    sim.stop_heartbeat(plain)
    sim.stop_heartbeat(sticky, sticky=True)
    frozen = _tick(fake_clock.now)
    fake_clock.advance(100)
    for iid in (plain, sticky):
        assert (await http.post(f"/instances/{iid}/restart")).status_code == 200
    fake_clock.advance(1)
    revived = (await http.get(f"/instances/{plain}/health")).json()
    stuck = (await http.get(f"/instances/{sticky}/health")).json()
    assert revived["last_heartbeat"] == int(fake_clock.now)
    assert stuck["last_heartbeat"] == frozen
    assert revived["uptime_secs"] == stuck["uptime_secs"] == 0
    fake_clock.advance(200)
    assert (await http.post(f"/instances/{sticky}/restart")).status_code == 200
    fake_clock.advance(1)
    assert (await http.get(f"/instances/{sticky}/health")).json()["last_heartbeat"] == frozen


async def test_scheduled_stall_stops_the_heartbeat_by_itself(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    [iid] = sim.seed_instances(1)
    t0 = fake_clock.now
    sim.schedule_stall(iid, 60)
    fake_clock.advance(30)
    assert (await http.get(f"/instances/{iid}/health")).json()["last_heartbeat"] == _tick(t0 + 30)
    fake_clock.advance(300)
    assert (await http.get(f"/instances/{iid}/health")).json()["last_heartbeat"] == _tick(t0 + 60)
    await http.post(f"/instances/{iid}/restart")
    fake_clock.advance(6)
    assert (await http.get(f"/instances/{iid}/health")).json()["last_heartbeat"] == _tick(
        fake_clock.now
    )


async def test_a_wedge_outlives_its_restarts_then_one_more_revives_it(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    [iid] = sim.seed_instances(1)
    t0 = fake_clock.now
    sim.schedule_stall(iid, 60, survives_restarts=2)
    # A restart before the wedge does not cancel it (a plain stall would be).
    assert (await http.post(f"/instances/{iid}/restart")).status_code == 200
    # Nor does a pause and a resume before it bring it forward.
    fake_clock.advance(10)
    assert (await http.post(f"/instances/{iid}/pause")).status_code == 200
    fake_clock.advance(10)
    assert (await http.post(f"/instances/{iid}/restart")).status_code == 200
    fake_clock.advance(10)
    assert (await http.get(f"/instances/{iid}/health")).json()["last_heartbeat"] == _tick(
        fake_clock.now
    )
    fake_clock.advance(70)
    frozen = _tick(t0 + 60)
    for _ in range(2):  # the two restarts it survives: the heartbeat stays where it stopped
        assert (await http.post(f"/instances/{iid}/restart")).status_code == 200
        fake_clock.advance(10)
        assert (await http.get(f"/instances/{iid}/health")).json()["last_heartbeat"] == frozen
    assert (await http.post(f"/instances/{iid}/restart")).status_code == 200
    fake_clock.advance(10)
    assert (await http.get(f"/instances/{iid}/health")).json()["last_heartbeat"] == _tick(
        fake_clock.now
    )


async def test_health_wanders_deterministically_within_plausible_bounds(
    fake_clock: FakeClock,
) -> None:
    async with (
        BackendSimulator(clock=fake_clock, seed=3) as one,
        BackendSimulator(clock=fake_clock, seed=3) as two,
        httpx.AsyncClient() as http,
    ):
        ids = one.seed_instances(20)
        assert two.seed_instances(20) == ids
        readings: list[list[dict[str, Any]]] = []
        for _ in range(6):
            a = [(await http.get(f"{one.url}/instances/{i}/health")).json() for i in ids]
            b = [(await http.get(f"{two.url}/instances/{i}/health")).json() for i in ids]
            assert a == b
            readings.append(a)
            fake_clock.advance(3_600)
    for per_time in readings:
        for h in per_time:
            assert isinstance(h["cpu_percent"], float) and 0.0 <= h["cpu_percent"] <= 100.0
            assert isinstance(h["memory_mb"], int) and h["memory_mb"] > 0
            assert isinstance(h["disk_mb"], int) and h["disk_mb"] > 0
    for index in range(len(ids)):
        cpus = {r[index]["cpu_percent"] for r in readings}
        disks = [r[index]["disk_mb"] for r in readings]
        assert len(cpus) > 1  # it wanders
        assert disks == sorted(disks) and disks[-1] > disks[0]  # and disk only grows


async def test_seeded_ids_are_deterministic_uuid4s(fake_clock: FakeClock) -> None:
    a = BackendSimulator(clock=fake_clock, seed=11)
    b = BackendSimulator(clock=fake_clock, seed=11)
    c = BackendSimulator(clock=fake_clock, seed=12)
    ids = a.seed_instances(5)
    assert ids == b.seed_instances(5)
    assert ids != c.seed_instances(5)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    a.reset()
    assert a.seed_instances(5) == ids


async def test_seeded_non_running_instances_have_frozen_heartbeats(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    ids = sim.seed_instances(3, status="paused", region="eu-west-1", name_prefix="idle")
    listed = (await http.get("/instances")).json()
    assert [(i["status"], i["region"], i["name"]) for i in listed] == [
        ("paused", "eu-west-1", "idle-001"),
        ("paused", "eu-west-1", "idle-002"),
        ("paused", "eu-west-1", "idle-003"),
    ]
    before = [(await http.get(f"/instances/{i}/health")).json() for i in ids]
    fake_clock.advance(1000)
    after = [(await http.get(f"/instances/{i}/health")).json() for i in ids]
    assert [h["last_heartbeat"] for h in before] == [h["last_heartbeat"] for h in after]
    assert all(h["last_heartbeat"] < fake_clock.now - 1000 for h in after)
    assert all(h["uptime_secs"] == 0 and h["cpu_percent"] == 0.0 for h in after)


# -- auth --------------------------------------------------------------------------------------


async def test_bearer_key_is_required_on_every_instance_endpoint(fake_clock: FakeClock) -> None:
    async with BackendSimulator(api_key=KEY, clock=fake_clock, transition_secs=0) as sim:
        [iid] = sim.seed_instances(1)
        endpoints = [
            ("POST", "/instances"),
            ("GET", "/instances"),
            ("GET", f"/instances/{iid}"),
            ("GET", f"/instances/{iid}/health"),
            ("GET", f"/instances/{iid}/logs?tail=3"),
            ("GET", f"/instances/{iid}/ssh"),
            ("POST", f"/instances/{iid}/pause"),
            ("POST", f"/instances/{iid}/restart"),
            ("DELETE", f"/instances/{iid}"),
        ]
        async with httpx.AsyncClient(base_url=sim.url) as http:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
                for method, path in endpoints:
                    r = await http.request(method, path, headers=headers)
                    assert (r.status_code, r.text) == (401, "Unauthorized"), (method, path)
            assert sim.instance(iid)["status"] == "running"  # nothing happened
            good = {"Authorization": f"Bearer {KEY}"}
            for method, path in endpoints:
                r = await http.request(method, path, headers=good)
                assert r.status_code in (200, 201, 204), (method, path, r.text)
            # The admin API stays open, for a simulator driven from another process.
            assert (await http.get("/_sim/state")).status_code == 200


async def test_no_key_configured_accepts_any_or_no_header(http: httpx.AsyncClient) -> None:
    assert (await http.get("/instances")).status_code == 200
    r = await http.get("/instances", headers={"Authorization": "Bearer whatever"})
    assert r.status_code == 200


# -- variants ----------------------------------------------------------------------------------


async def test_capitalised_status_variant(sim: BackendSimulator, http: httpx.AsyncClient) -> None:
    [iid] = sim.seed_instances(1)
    sim.set_variant(capitalised_status=True)
    assert (await http.get(f"/instances/{iid}")).json()["status"] == "Running"
    assert (await http.get("/instances")).json()[0]["status"] == "Running"
    sim.set_variant(capitalised_status=True, extended_statuses=True)
    sim.set_status(iid, "deleting")
    assert (await http.get(f"/instances/{iid}")).json()["status"] == "Deleting"


async def test_rfc3339_variant_renders_the_same_instants_as_strings(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    sim.inline_health = True
    [iid] = sim.seed_instances(1)
    plain = (await http.get(f"/instances/{iid}")).json()
    sim.set_variant(rfc3339_times=True)
    rfc = (await http.get(f"/instances/{iid}")).json()
    listed = (await http.get("/instances")).json()[0]
    health = (await http.get(f"/instances/{iid}/health")).json()
    assert listed == rfc
    for key in ("created_at", "updated_at"):
        assert isinstance(rfc[key], str) and _from_rfc3339(rfc[key]) == plain[key]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", health["last_heartbeat"])
    assert _from_rfc3339(health["last_heartbeat"]) == plain["health"]["last_heartbeat"]


async def test_extra_fields_variant_adds_unknown_fields_to_every_object(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    sim.inline_health = True
    [iid] = sim.seed_instances(1)
    sim.set_variant(extra_fields=True)
    inst = (await http.get(f"/instances/{iid}")).json()
    assert set(inst) > INSTANCE_KEYS | {"health"}
    assert set(inst["health"]) > HEALTH_KEYS
    assert set((await http.get(f"/instances/{iid}/health")).json()) > HEALTH_KEYS
    assert set((await http.get(f"/instances/{iid}/ssh")).json()) > SSH_KEYS
    lines = (await http.get(f"/instances/{iid}/logs?tail=3")).text.splitlines()
    assert all(set(json.loads(line)) > LOG_KEYS for line in lines)


LEVEL_WORDS = {
    "error": {"error", "err", "fatal"},
    "warn": {"warn", "warning"},
    "info": {"info"},
    "debug": {"debug", "trace"},
}


def _plain_shape(line: str, entry: dict[str, Any]) -> tuple[str, str]:
    """Which of the contract's plain-text shapes ``line`` is, and its level word.

    Checks along the way that the line carries ``entry``'s timestamp, level and message.
    """
    words = LEVEL_WORDS[entry["level"]]
    message = entry["message"]
    first, _, rest = line.partition(" ")
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first):
        assert _from_rfc3339(first) == entry["timestamp"]
        word, _, text = rest.partition(" ")
        assert word.lower() in words and text == message, line
        return "stamped", word
    if first.startswith("[") and first.endswith("]"):
        assert first[1:-1].lower() in words and rest == message, line
        return "bracketed", first[1:-1]
    if line == message:
        assert entry["level"] == "info"  # a client reads bare text as info
        return "bare", ""
    assert first.lower() in words and rest == message, line
    return "prefixed", first


async def test_plaintext_logs_variant_uses_the_contract_shapes(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    [iid] = sim.seed_instances(1)
    sim.set_variant(plaintext_logs=True)
    r = await http.get(f"/instances/{iid}/logs", params={"tail": 400})
    assert r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    entries = sim.log_entries(iid, tail=400)
    assert len(lines) == len(entries) == 400
    seen = [_plain_shape(line, entry) for line, entry in zip(lines, entries, strict=True)]
    assert {shape for shape, _ in seen} == {"stamped", "bracketed", "prefixed", "bare"}
    # The aliases the contract maps show up too.
    assert {"FATAL", "err", "WARNING", "TRACE"} <= {word for _, word in seen}


# -- logs --------------------------------------------------------------------------------------


async def test_logs_stream_exactly_tail_ndjson_entries(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    [iid] = sim.seed_instances(1)
    r = await http.get(f"/instances/{iid}/logs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers.get("transfer-encoding") == "chunked"
    entries = [json.loads(line) for line in r.text.splitlines()]
    assert len(entries) == 50
    assert entries == sim.log_entries(iid)
    assert all(set(e) == LOG_KEYS and isinstance(e["timestamp"], int) for e in entries)
    stamps = [e["timestamp"] for e in entries]
    assert stamps == sorted(stamps) and stamps[-1] <= fake_clock.now

    for tail in (1, 7, 250, 1234):
        async with http.stream("GET", f"/instances/{iid}/logs", params={"tail": tail}) as r:
            lines = [line async for line in r.aiter_lines()]
        assert len(lines) == tail
    levels = {json.loads(line)["level"] for line in lines}
    assert levels == {"error", "warn", "info", "debug"}
    assert sim.calls[("logs", iid)] == 5


async def test_logs_are_deterministic_and_end_when_the_instance_stops(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    [iid] = sim.seed_instances(1)
    first = (await http.get(f"/instances/{iid}/logs?tail=20")).text
    assert (await http.get(f"/instances/{iid}/logs?tail=20")).text == first
    await http.post(f"/instances/{iid}/pause")
    fake_clock.advance(1)
    paused_tail = (await http.get(f"/instances/{iid}/logs?tail=5")).text
    fake_clock.advance(600)
    assert (await http.get(f"/instances/{iid}/logs?tail=5")).text == paused_tail


async def test_logs_reject_a_bad_tail_with_400(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    [iid] = sim.seed_instances(1)
    for tail in ("0", "-1", "abc", "1.5", "100001", "", "٣"):
        r = await http.get(f"/instances/{iid}/logs", params={"tail": tail})
        assert r.status_code == 400 and r.text.startswith("Bad Request"), tail
    async with http.stream("GET", f"/instances/{iid}/logs?tail=100000") as r:
        assert r.status_code == 200
        first = await anext(r.aiter_lines())
    last = sim.log_entries(iid, tail=1)[0]
    assert json.loads(first)["timestamp"] == last["timestamp"] - 99_999 * LOG_INTERVAL_SECS


async def test_log_garbage_mode_intersperses_malformed_lines(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    [iid] = sim.seed_instances(1)
    sim.log_garbage = True
    raw = (await http.get(f"/instances/{iid}/logs?tail=60")).content
    lines = raw.split(b"\n")[:-1]
    good, bad = [], []
    for line in lines:
        try:
            entry = json.loads(line.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError is a ValueError too
            bad.append(line)
            continue
        good.append(entry)
    assert good == sim.log_entries(iid, tail=60)  # every good line is still there, in order
    assert b"" in bad  # an empty line
    assert any(not _is_utf8(line) for line in bad)  # invalid UTF-8
    assert any(line.startswith(b"{") for line in bad)  # broken JSON
    assert set(bad) <= set(GARBAGE_LINES)
    assert lines[0] not in bad  # garbage sits among good lines


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- ssh ---------------------------------------------------------------------------------------


async def test_ssh_hands_out_a_fresh_recorded_ed25519_key_per_call(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    [iid] = sim.seed_instances(1)
    first = (await http.get(f"/instances/{iid}/ssh")).json()
    second = (await http.get(f"/instances/{iid}/ssh")).json()
    assert set(first) == SSH_KEYS
    assert first["host"] == f"{iid[:8]}.sim.starpod.test"
    assert first["port"] == 22 and first["user"] == "starpod"
    assert first["private_key"] != second["private_key"]
    assert sim.issued_private_keys == [first["private_key"], second["private_key"]]
    key = load_ssh_private_key(first["private_key"].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    assert first["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")

    sim.ssh_keys = False
    assert (await http.get(f"/instances/{iid}/ssh")).json()["private_key"] is None
    assert len(sim.issued_private_keys) == 2


async def test_ssh_to_a_non_running_instance_is_409(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    [iid] = sim.seed_instances(1, status="paused")
    r = await http.get(f"/instances/{iid}/ssh")
    assert (r.status_code, r.text) == (409, "Cannot connect: instance is paused")
    assert sim.issued_private_keys == []


# -- faults ------------------------------------------------------------------------------------


async def test_error_rate_answers_500_on_chosen_endpoints_only(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    [iid] = sim.seed_instances(1)
    sim.set_faults(error_rate=1.0, endpoints={"health", "restart"})
    r = await http.get(f"/instances/{iid}/health")
    assert (r.status_code, r.text) == (500, "Internal Server Error")
    assert (await http.post(f"/instances/{iid}/restart")).status_code == 500
    assert (await http.get(f"/instances/{iid}")).status_code == 200
    assert sim.instance(iid)["status"] == "running" and sim.calls[("restart", iid)] == 1
    sim.set_faults(error_rate=1.0)
    assert (await http.get("/instances")).status_code == 500
    sim.set_faults()
    assert (await http.get(f"/instances/{iid}/health")).status_code == 200
    assert sim.calls[("health", iid)] == 2 and sim.requests_total == 5


async def test_garbage_rate_answers_200_with_an_unparseable_body(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    [iid] = sim.seed_instances(1)
    sim.set_faults(garbage_rate=1.0)
    for path in (f"/instances/{iid}/health", "/instances", f"/instances/{iid}"):
        r = await http.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        with pytest.raises(ValueError):
            json.loads(r.content)


async def test_timeout_rate_hangs_for_hang_secs_then_answers(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    [iid] = sim.seed_instances(1)
    sim.set_faults(timeout_rate=1.0, hang_secs=0.05)
    assert (await http.get(f"/instances/{iid}/health")).status_code == 200
    sim.set_faults(timeout_rate=1.0, hang_secs=60)
    with pytest.raises(httpx.ReadTimeout):
        await http.get(f"/instances/{iid}/health", timeout=0.2)
    # Stopping the server ends a hang at once: the request is answered, not cut off.
    pending = asyncio.create_task(http.get(f"/instances/{iid}/health", timeout=30))
    await _until(lambda: sim.calls[("health", iid)] == 3)
    await sim.stop()
    assert (await asyncio.wait_for(pending, timeout=5)).status_code == 200


async def test_latency_delays_every_request(sim: BackendSimulator, http: httpx.AsyncClient) -> None:
    sim.set_faults(latency_secs=30)
    with pytest.raises(httpx.ReadTimeout):
        await http.get("/instances", timeout=0.2)
    sim.set_faults(latency_secs=30, endpoints={"health"})
    assert (await http.get("/instances", timeout=2)).status_code == 200


async def test_down_answers_503_and_stop_start_refuses_then_returns_on_the_same_port(
    sim: BackendSimulator, http: httpx.AsyncClient
) -> None:
    [iid] = sim.seed_instances(1)
    sim.set_faults(down=True)
    r = await http.get(f"/instances/{iid}")
    assert (r.status_code, r.text) == (503, "Service Unavailable")
    sim.set_faults()
    url, port = sim.url, sim.port
    await sim.stop()
    assert not sim.running
    with pytest.raises(httpx.ConnectError):
        await http.get(f"/instances/{iid}")
    assert await sim.start(port=port) == url
    assert (await http.get(f"/instances/{iid}")).status_code == 200
    await sim.stop()
    assert await sim.start() == url  # port 0 after a stop means "the same port again"


async def test_bad_fault_settings_are_rejected(sim: BackendSimulator) -> None:
    for kwargs in ({"error_rate": 1.5}, {"latency_secs": -1}, {"endpoints": {"everything"}}):
        with pytest.raises(ValueError):
            sim.set_faults(**kwargs)


# -- admin API ---------------------------------------------------------------------------------


async def test_admin_api_drives_the_simulator(
    sim: BackendSimulator, http: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    r = await http.post("/_sim/seed", json={"count": 4, "status": "running"})
    ids = r.json()["ids"]
    assert r.status_code == 200 and len(ids) == 4 and sim.instance_ids() == ids
    added = (await http.post("/_sim/instances", json={"name": "solo", "status": "paused"})).json()
    assert sim.instance(added["id"])["status"] == "paused"

    await http.post(f"/_sim/instances/{ids[0]}/stop-heartbeat", json={"sticky": True})
    frozen = _tick(fake_clock.now)
    fake_clock.advance(200)
    assert sim.health(ids[0])["last_heartbeat"] == frozen
    await http.post(f"/_sim/instances/{ids[0]}/resume-heartbeat")
    assert sim.health(ids[0])["last_heartbeat"] == _tick(fake_clock.now)
    await http.post(f"/_sim/instances/{ids[1]}/stall", json={"after_secs": 10})
    await http.post(
        f"/_sim/instances/{ids[0]}/stall", json={"after_secs": 10, "survives_restarts": 1}
    )
    fake_clock.advance(100)
    assert sim.health(ids[1])["last_heartbeat"] == _tick(fake_clock.now - 90)
    await http.post(f"/instances/{ids[0]}/restart")
    fake_clock.advance(10)
    assert sim.health(ids[0])["last_heartbeat"] == _tick(fake_clock.now - 100)

    await http.post(f"/_sim/instances/{ids[2]}/status", json={"status": "error"})
    assert (await http.get(f"/instances/{ids[2]}")).json()["status"] == "error"

    await http.post("/_sim/variant", json={"capitalised_status": True})
    assert (await http.get(f"/instances/{ids[3]}")).json()["status"] == "Running"
    await http.post("/_sim/inline-health", json={"enabled": True})
    assert "health" in (await http.get(f"/instances/{ids[3]}")).json()
    await http.post("/_sim/log-garbage", json={"enabled": True})
    assert sim.log_garbage is True
    await http.post("/_sim/ssh-keys", json={"enabled": False})
    assert (await http.get(f"/instances/{ids[3]}/ssh")).json()["private_key"] is None

    r = await http.post("/_sim/faults", json={"error_rate": 1.0, "endpoints": ["health"]})
    assert r.json()["faults"]["endpoints"] == ["health"]
    assert (await http.get(f"/instances/{ids[3]}/health")).status_code == 500

    state = (await http.get("/_sim/state")).json()
    assert state["instances"] == 5
    assert state["by_status"] == {"running": 3, "error": 1, "paused": 1}
    assert state["calls_by_kind"]["health"] == 1 and state["requests_total"] == sim.requests_total
    assert {"kind": "ssh", "instance_id": ids[3], "count": 1} in state["calls"]
    assert state["variant"]["capitalised_status"] is True and state["inline_health"] is True

    assert (await http.post("/_sim/reset")).json() == {"ok": True}
    state = (await http.get("/_sim/state")).json()
    assert state["instances"] == 0 and state["requests_total"] == 0
    assert state["faults"]["error_rate"] == 0.0 and state["inline_health"] is False


async def test_admin_api_rejects_bad_input(sim: BackendSimulator, http: httpx.AsyncClient) -> None:
    [iid] = sim.seed_instances(1)
    for path, body in (
        ("/_sim/seed", {"count": "many"}),
        ("/_sim/seed", {"count": 1, "bogus": 1}),
        ("/_sim/faults", {"error_rate": 2}),
        ("/_sim/faults", {"endpoints": ["nope"]}),
        ("/_sim/variant", {"capitalised_status": "yes"}),
        ("/_sim/inline-health", {"enabled": 1}),
        (f"/_sim/instances/{iid}/status", {"status": ""}),
        (f"/_sim/instances/{iid}/stall", {"after_secs": "soon"}),
        (f"/_sim/instances/{iid}/stall", {"after_secs": 1, "survives_restarts": -1}),
        (f"/_sim/instances/{iid}/stall", {"after_secs": 1, "survives_restarts": 1.5}),
    ):
        r = await http.post(path, json=body)
        assert r.status_code == 400 and r.text.startswith("Bad Request"), (path, body)
    r = await http.post("/_sim/seed", content=b"{nope")
    assert r.status_code == 400
    r = await http.post("/_sim/instances/unknown/stop-heartbeat")
    assert (r.status_code, r.text) == (404, "Not Found")


# -- scale, prefix, runner ---------------------------------------------------------------------


async def test_ten_thousand_instances_are_listed_with_inline_health(fake_clock: FakeClock) -> None:
    async with (
        BackendSimulator(clock=fake_clock, inline_health=True) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=30) as http,
    ):
        ids = sim.seed_instances(10_000)
        sim.set_status(ids[17], "error")
        listed = (await http.get("/instances")).json()
        assert len(listed) == 10_000 and len({i["id"] for i in listed}) == 10_000
        assert [i["id"] for i in listed] == ids
        assert all(set(i["health"]) == HEALTH_KEYS for i in listed)
        assert listed[17]["status"] == "error" and listed[17]["health"]["cpu_percent"] == 0.0
        assert listed[9_999]["name"] == "pod-10000"


def test_fast_list_encoding_matches_the_generic_one(fake_clock: FakeClock) -> None:
    sim = BackendSimulator(clock=fake_clock, transition_secs=5)
    ids = sim.seed_instances(4) + sim.seed_instances(2, status="stopped")
    sim.add_instance(name='quote " and \\ and ünïcode', region=None)
    sim.set_status(ids[0], "error")
    sim.stop_heartbeat(ids[1])
    instances = [sim._instances[i] for i in sim.instance_ids()]
    instances[2].pause(fake_clock.now, 5)
    for variant in (Variant(), Variant(capitalised_status=True, extended_statuses=True)):
        for inline in (False, True):
            for _ in range(2):  # the second round reads the cached heads
                fast = json.loads(
                    list_json(instances, fake_clock.now, variant, inline_health=inline)
                )
                generic = [
                    instance_wire(i, fake_clock.now, variant, inline_health=inline)
                    for i in instances
                ]
                assert fast == generic
                fake_clock.advance(3)


async def test_path_prefix_mounts_every_route_under_it(fake_clock: FakeClock) -> None:
    async with BackendSimulator(clock=fake_clock, path_prefix="/api/v1/") as sim:
        assert sim.url.endswith("/api/v1")
        [iid] = sim.seed_instances(1)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{sim.url}/instances/{iid}")).status_code == 200
            assert (await http.get(f"{sim.url}/_sim/state")).status_code == 200
            bare = sim.url.removesuffix("/api/v1")
            assert (await http.get(f"{bare}/instances/{iid}")).status_code == 404


async def test_serve_runs_until_cancelled_and_stalls_one_instance() -> None:
    ready: asyncio.Queue[BackendSimulator] = asyncio.Queue()
    task = asyncio.create_task(
        serve(port=0, instances=3, api_key=KEY, stall_after=0.0, on_ready=ready.put_nowait)
    )
    sim = await asyncio.wait_for(ready.get(), timeout=10)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}) as http:
        listed = (await http.get(f"{sim.url}/instances")).json()
        assert len(listed) == 3 and {i["status"] for i in listed} == {"running"}
    first = sim.instance_ids()[0]
    assert sim._instances[first].heartbeat_stops_at is not None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not sim.running


async def test_module_runs_as_a_command_and_prints_its_url() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sim.backend",
        "--port",
        "0",
        "--instances",
        "5",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        async with httpx.AsyncClient() as http:
            assert len((await http.get(f"{match.group(0)}/instances")).json()) == 5
    finally:
        proc.terminate()
        await proc.wait()
