"""InstanceClient against the real backend simulator over 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from aiohttp import web

from bot.backend import (
    AmbiguousInstance,
    BackendProtocolError,
    BackendStatusError,
    BackendUnavailable,
    InstanceClient,
    InstanceNotFound,
    InstanceStatus,
    LogLevel,
)
from bot.sim.backend import BackendSimulator
from bot.sim.process import free_port


@pytest.fixture
async def client(backend_sim: BackendSimulator) -> AsyncIterator[InstanceClient]:
    async with InstanceClient(backend_sim.url, retry_backoff=0.01) as c:
        yield c


async def test_create_then_get_list_and_health(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    created = await client.create_instance(name="my-bot", region="us-east-1")
    assert created.name == "my-bot" and created.region == "us-east-1"
    assert isinstance(created.created_at, datetime) and created.created_at.tzinfo is not None
    fetched = await client.get_instance(created.id)
    assert fetched.id == created.id
    assert fetched.known_status is InstanceStatus.RUNNING  # transitions settle at once here
    listed = await client.list_instances()
    assert [i.id for i in listed] == [created.id]
    health = await client.get_health(created.id)
    assert 0 <= health.cpu_percent <= 100
    assert health.last_heartbeat.tzinfo is not None
    assert backend_sim.calls[("health", created.id)] == 1


async def test_pause_restart_kill_follow_the_lifecycle(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    [iid] = backend_sim.seed_instances(1)
    paused = await client.pause_instance(iid)
    assert paused is None or paused.id == iid
    assert (await client.get_instance(iid)).status == "paused"
    await client.restart_instance(iid)
    assert (await client.get_instance(iid)).status == "running"
    assert await client.kill_instance(iid) is None
    assert (await client.get_instance(iid)).status == "stopped"


async def test_ssh_info_carries_a_fresh_key_hidden_from_repr(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    [iid] = backend_sim.seed_instances(1)
    first = await client.get_ssh_info(iid)
    second = await client.get_ssh_info(iid)
    assert first.private_key and "PRIVATE KEY" in first.private_key
    assert first.private_key != second.private_key
    assert first.private_key not in repr(first)
    assert first.user and first.host and first.port > 0
    assert first.command().startswith("ssh ")


async def test_logs_stream_exact_tail_with_levels(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    [iid] = backend_sim.seed_instances(1)
    entries = [e async for e in client.stream_logs(iid, tail=120)]
    assert len(entries) == 120
    assert {e.level for e in entries} == set(LogLevel)
    assert all(e.timestamp is not None for e in entries)


async def test_logs_default_tail_is_50(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    [iid] = backend_sim.seed_instances(1)
    assert len([e async for e in client.stream_logs(iid)]) == 50


async def test_malformed_log_lines_mid_stream_do_not_stop_it(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    [iid] = backend_sim.seed_instances(1)
    backend_sim.log_garbage = True
    entries = [e async for e in client.stream_logs(iid, tail=200)]
    # Every good line arrives; garbage lines become info entries, blank ones vanish.
    assert len(entries) >= 200
    assert sum(e.level is LogLevel.ERROR for e in entries) > 0


async def test_variant_backend_is_understood(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    backend_sim.set_variant(
        capitalised_status=True, rfc3339_times=True, plaintext_logs=True, extra_fields=True
    )
    backend_sim.inline_health = True
    [iid] = backend_sim.seed_instances(1)
    [instance] = await client.list_instances()
    assert instance.status_raw == "Running" and instance.status == "running"
    assert instance.is_running
    assert instance.created_at is not None and instance.created_at.tzinfo is not None
    assert instance.health is not None and instance.health.last_heartbeat.tzinfo is not None
    entries = [e async for e in client.stream_logs(iid, tail=40)]
    assert len(entries) == 40
    assert {e.level for e in entries} >= {LogLevel.ERROR, LogLevel.WARN, LogLevel.INFO}


async def test_extended_statuses_are_kept_raw(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    backend_sim.set_variant(extended_statuses=True)
    [iid] = backend_sim.seed_instances(1)
    backend_sim.set_status(iid, "provisioning")
    instance = await client.get_instance(iid)
    assert instance.status == "provisioning" and instance.known_status is None
    assert not instance.is_running


async def test_404_carries_status_and_body(client: InstanceClient) -> None:
    with pytest.raises(BackendStatusError) as caught:
        await client.get_instance("nope")
    assert caught.value.status_code == 404
    assert str(caught.value) == "Backend returned 404 for GET /instances/nope: Not Found"


async def test_409_on_an_illegal_transition(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    [iid] = backend_sim.seed_instances(1, status="stopped")
    with pytest.raises(BackendStatusError) as caught:
        await client.pause_instance(iid)
    assert caught.value.status_code == 409
    assert f"Backend returned 409 for POST /instances/{iid}/pause: Cannot" in str(caught.value)


async def test_500_is_not_retried_and_shows_its_body(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    [iid] = backend_sim.seed_instances(1)
    backend_sim.set_faults(error_rate=1.0)
    with pytest.raises(BackendStatusError, match=r"500 for GET .*Internal Server Error"):
        await client.get_health(iid)
    assert backend_sim.calls[("health", iid)] == 1


async def test_get_retries_503_twice_but_post_never(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    [iid] = backend_sim.seed_instances(1)
    backend_sim.set_faults(down=True)
    with pytest.raises(BackendStatusError) as caught:
        await client.get_health(iid)
    assert caught.value.status_code == 503
    assert backend_sim.calls[("health", iid)] == 3
    with pytest.raises(BackendStatusError):
        await client.restart_instance(iid)
    assert backend_sim.calls[("restart", iid)] == 1


async def test_get_recovers_when_the_backend_comes_back_between_retries(
    backend_sim: BackendSimulator,
) -> None:
    [iid] = backend_sim.seed_instances(1)
    backend_sim.set_faults(down=True)

    async def heal() -> None:
        await asyncio.sleep(0.05)
        backend_sim.set_faults()

    async with InstanceClient(backend_sim.url, retry_backoff=0.1) as client:
        healer = asyncio.create_task(heal())
        health = await client.get_health(iid)
        await healer
    assert health.uptime_secs >= 0


async def test_garbage_body_is_a_protocol_error(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    [iid] = backend_sim.seed_instances(1)
    backend_sim.set_faults(garbage_rate=1.0)
    with pytest.raises(BackendProtocolError, match="unreadable answer for GET"):
        await client.get_health(iid)
    with pytest.raises(BackendProtocolError):
        await client.list_instances()


async def test_timeout_is_backend_unavailable(backend_sim: BackendSimulator) -> None:
    [iid] = backend_sim.seed_instances(1)
    backend_sim.set_faults(timeout_rate=1.0, hang_secs=5)
    async with InstanceClient(backend_sim.url, timeout=0.2, retry_backoff=0.01) as client:
        with pytest.raises(BackendUnavailable, match="timed out"):
            await client.get_health(iid)
    # A read timeout is not retried: the backend is slow, not gone.
    assert backend_sim.calls[("health", iid)] == 1


async def test_connection_refused_is_backend_unavailable() -> None:
    async with InstanceClient(f"http://127.0.0.1:{free_port()}", retry_backoff=0.01) as client:
        with pytest.raises(BackendUnavailable, match="Backend unreachable for GET /instances"):
            await client.list_instances()


async def test_resolve_by_id_prefix_and_name(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    ids = backend_sim.seed_instances(30)
    target = ids[7]
    by_id = await client.resolve(target)
    assert by_id.id == target
    prefix = next(
        target[:n] for n in range(1, 37) if sum(i.startswith(target[:n]) for i in ids) == 1
    )
    assert (await client.resolve(prefix, acting=False)).id == target
    assert (await client.resolve(prefix.upper(), acting=False)).id == target
    name = backend_sim.instance(target)["name"]
    assert (await client.resolve(name)).id == target


async def test_resolve_none_and_ambiguous(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    first = backend_sim.add_instance(name="twin", id="abcd1111-0000-4000-8000-000000000001")
    second = backend_sim.add_instance(name="twin", id="abcd2222-0000-4000-8000-000000000002")
    with pytest.raises(AmbiguousInstance) as caught:
        await client.resolve("abcd")
    assert {c.id for c in caught.value.candidates} == {first, second}
    assert "abcd1111" in str(caught.value) and "abcd2222" in str(caught.value)
    with pytest.raises(AmbiguousInstance):
        await client.resolve("twin")
    with pytest.raises(InstanceNotFound, match="No instance matches 'zzz'"):
        await client.resolve("zzz")
    with pytest.raises(InstanceNotFound):
        await client.resolve("ffffffff-0000-4000-8000-000000000000")


async def test_user_supplied_ids_cannot_change_the_path(client: InstanceClient) -> None:
    with pytest.raises(BackendStatusError) as caught:
        await client.get_instance("../instances?x=1")
    assert caught.value.status_code == 404


@pytest.mark.parametrize("ref", ["../instances?x=1", "a/b", "x#y", "%2e%2e", "é", " "])
async def test_user_supplied_ids_cannot_change_a_health_path(
    backend_sim: BackendSimulator, client: InstanceClient, ref: str
) -> None:
    [iid] = backend_sim.seed_instances(1)
    with pytest.raises(BackendStatusError) as caught:
        await client.get_health(ref)
    assert caught.value.status_code == 404
    assert (await client.get_health(iid)).last_heartbeat.tzinfo is not None  # a plain id


async def test_bearer_key_is_checked_by_the_backend() -> None:
    async with BackendSimulator(api_key="sekrit", transition_secs=0) as sim:
        sim.seed_instances(2)
        async with InstanceClient(sim.url, "sekrit") as good:
            assert len(await good.list_instances()) == 2
        async with InstanceClient(sim.url) as anonymous:
            with pytest.raises(BackendStatusError) as caught:
                await anonymous.list_instances()
        assert caught.value.status_code == 401


class HeaderRecorder:
    """A tiny real server that records the headers and paths it receives."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, dict(request.headers)))
        return web.json_response([])


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[HeaderRecorder, str]]:
    rec = HeaderRecorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield rec, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_auth_header_present_with_a_key_and_absent_without(
    recorder: tuple[HeaderRecorder, str],
) -> None:
    rec, url = recorder
    async with InstanceClient(url, "k-123") as client:
        await client.list_instances()
    async with InstanceClient(url) as client:
        await client.list_instances()
    assert rec.seen[0][1]["Authorization"] == "Bearer k-123"
    assert "Authorization" not in rec.seen[1][1]


async def test_base_url_with_a_prefix_and_trailing_slash(
    recorder: tuple[HeaderRecorder, str],
) -> None:
    rec, url = recorder
    async with InstanceClient(url + "/api/v1/") as client:
        await client.list_instances()
    assert rec.seen[0][0] == "/api/v1/instances"


async def test_simulator_under_a_prefix() -> None:
    async with BackendSimulator(transition_secs=0, path_prefix="/api/v1") as sim:
        sim.seed_instances(3)
        async with InstanceClient(sim.url) as client:
            assert len(await client.list_instances()) == 3


async def test_observer_sees_every_request(backend_sim: BackendSimulator) -> None:
    seen: list[tuple[str, str]] = []
    [iid] = backend_sim.seed_instances(1)
    async with InstanceClient(
        backend_sim.url, observer=lambda kind, outcome, secs: seen.append((kind, outcome))
    ) as client:
        await client.get_health(iid)
        with pytest.raises(BackendStatusError):
            await client.get_instance("missing")
    assert seen == [("health", "200"), ("get", "404")]


async def test_a_large_list_is_parsed_off_the_event_loop_all_the_same(
    backend_sim: BackendSimulator, client: InstanceClient
) -> None:
    backend_sim.inline_health = True
    ids = backend_sim.seed_instances(2000)
    listed = await client.list_instances()
    assert [i.id for i in listed] == ids
    assert all(i.health is not None for i in listed)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"id": "a1", "status": "Running"}]',
        b'  [{"id": "a1", "status": "Running", "extra": 1}]',
        b'{"instances": [{"id": "a1", "status": "Running"}]}',
        b'{"items": [{"id": "a1", "status": "running"}], "next": null}',
    ],
)
async def test_list_accepts_a_bare_array_or_an_envelope(body: bytes) -> None:
    async def handle(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/instances", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with InstanceClient(f"http://127.0.0.1:{runner.addresses[0][1]}") as client:
            [instance] = await client.list_instances()
    finally:
        await runner.cleanup()
    assert (instance.id, instance.status) == ("a1", "running")
