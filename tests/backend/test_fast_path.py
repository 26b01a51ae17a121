"""Health bodies and instance lists: the common shape's strict path and the tolerant path
give the same result."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from bot.backend import HealthInfo, Instance, InstanceClient
from bot.backend.fast_path import (
    MAX_UNIX_SECS,
    common_health,
    common_instances,
    health_from_json,
    instances_from_json,
)
from bot.sim.backend import BackendSimulator
from tests.conftest import FakeClock

# The simulator's variants (bot/sim/backend_wire.py) that change a health body, and
# whether the body keeps the contract's common shape.
VARIANTS: list[tuple[dict[str, bool], bool]] = [
    ({}, True),
    ({"extra_fields": True}, True),
    ({"capitalised_status": True, "extended_statuses": True}, True),
    ({"rfc3339_times": True}, False),
    (
        {
            "capitalised_status": True,
            "rfc3339_times": True,
            "plaintext_logs": True,
            "extended_statuses": True,
            "extra_fields": True,
        },
        False,
    ),
]


@pytest.fixture
async def frozen_sim(fake_clock: FakeClock) -> AsyncIterator[BackendSimulator]:
    """A simulator whose clock stands still: every read of a health body gives the same."""
    async with BackendSimulator(transition_secs=0, clock=fake_clock) as sim:
        yield sim


def tolerant(body: bytes) -> HealthInfo:
    return HealthInfo.model_validate_json(body)


def tolerant_list(body: bytes) -> list[Instance]:
    return TypeAdapter(list[Instance]).validate_json(body)


def same_instances(got: list[Instance], expected: list[Instance]) -> None:
    assert got == expected and all(type(i) is Instance for i in got)
    for g, e in zip(got, expected, strict=True):
        assert (g.status, g.is_running, g.known_status) == (e.status, e.is_running, e.known_status)
        assert g.model_fields_set == e.model_fields_set


@pytest.mark.parametrize(("variant", "common"), VARIANTS)
async def test_both_paths_agree_on_the_simulators_variants(
    frozen_sim: BackendSimulator, variant: dict[str, bool], common: bool
) -> None:
    frozen_sim.set_variant(**variant)
    ids = frozen_sim.seed_instances(5)
    async with (
        httpx.AsyncClient(base_url=frozen_sim.url) as raw,
        InstanceClient(frozen_sim.url) as short,  # the default transport's short path
        InstanceClient(frozen_sim.url, transport=httpx.AsyncHTTPTransport()) as ordinary,
    ):
        for iid in ids:
            body = (await raw.get(f"/instances/{iid}/health")).content
            expected = tolerant(body)
            assert (common_health(body) is not None) is common
            for got in (
                health_from_json(body),
                await short.get_health(iid),
                await ordinary.get_health(iid),
            ):
                assert type(got) is HealthInfo and got == expected
                assert got.last_heartbeat.utcoffset() == expected.last_heartbeat.utcoffset()
                assert got.model_fields_set == expected.model_fields_set


def body(**changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "cpu_percent": 37.25,
        "memory_mb": 1834,
        "disk_mb": 10240,
        "last_heartbeat": 1_764_547_200,
        "uptime_secs": 86_400,
    }
    fields.update(changes)
    return json.dumps({k: v for k, v in fields.items() if v is not ...}).encode()


COMMON = [
    body(),
    body(cpu_percent=12),  # an integer where a float is expected: both read 12.0
    body(last_heartbeat=0),
    body(last_heartbeat=20_000_000_000),  # unix seconds, never read as milliseconds
    body(last_heartbeat=MAX_UNIX_SECS),
    body(gpu=None, load_avg=[1.2, 0.9]),
]
UNUSUAL = [
    body(memory_mb=512.0),
    body(memory_mb=512.7),
    body(disk_mb="2048"),
    body(uptime_secs=True),
    body(last_heartbeat=1_764_547_200.75),
    body(last_heartbeat="1764547200"),
    body(last_heartbeat="2026-03-14T10:05:00Z"),
    body(last_heartbeat="2026-03-14T10:05:00+02:00"),
    body(last_heartbeat="2026-03-14T10:05:00"),  # naive: read as UTC
    body(last_heartbeat=-1),
]
REFUSED = [
    body(memory_mb="lots"),
    body(memory_mb=float("inf")).replace(b"Infinity", b"1e400"),
    body(last_heartbeat=MAX_UNIX_SECS + 1),
    body(last_heartbeat=1e300),
    body(last_heartbeat=None),
    body(uptime_secs=...),
    b"[]",
    b"not json",
]


@pytest.mark.parametrize("raw", COMMON)
def test_the_common_shape_takes_the_strict_path(raw: bytes) -> None:
    fast = common_health(raw)
    assert fast is not None and type(fast) is HealthInfo
    assert fast == tolerant(raw) and fast.last_heartbeat == tolerant(raw).last_heartbeat
    # pydantic-core's own UTC (TzInfo(0)): equal to datetime.UTC, named UTC, offset 0.
    assert fast.last_heartbeat.tzinfo == UTC and fast.last_heartbeat.tzname() == "UTC"


@pytest.mark.parametrize("raw", UNUSUAL)
def test_an_unusual_body_takes_the_tolerant_path_with_the_same_result(raw: bytes) -> None:
    assert common_health(raw) is None
    assert health_from_json(raw) == tolerant(raw)


@pytest.mark.parametrize("raw", REFUSED)
def test_a_bad_body_raises_the_tolerant_error(raw: bytes) -> None:
    assert common_health(raw) is None
    same_refusal(health_from_json, tolerant, raw)


def same_refusal(
    ours: Callable[[bytes], object], theirs: Callable[[bytes], object], raw: bytes
) -> None:
    """Both parsers refuse ``raw`` with the same errors."""
    refusals = []
    for parse in (ours, theirs):
        with pytest.raises(ValidationError) as refused:
            parse(raw)
        # Without ctx: it may hold the exception raised, and exceptions compare by identity.
        refusals.append(
            [(e["type"], e["loc"], e["msg"], e["input"]) for e in refused.value.errors()]
        )
    assert refusals[0] == refusals[1]


@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize(("variant", "common"), VARIANTS)
async def test_both_paths_agree_on_the_simulators_lists(
    frozen_sim: BackendSimulator, variant: dict[str, bool], common: bool, inline: bool
) -> None:
    frozen_sim.set_variant(**variant)
    frozen_sim.inline_health = inline
    ids = frozen_sim.seed_instances(6)
    frozen_sim.set_status(ids[1], "paused")
    async with (
        httpx.AsyncClient(base_url=frozen_sim.url) as raw,
        InstanceClient(frozen_sim.url) as client,
        InstanceClient(frozen_sim.url, transport=httpx.AsyncHTTPTransport()) as ordinary,
    ):
        body = (await raw.get("/instances")).content
        expected = tolerant_list(body)
        assert len(expected) == 6 and (expected[0].health is not None) is inline
        assert (common_instances(body) is not None) is common
        same_instances(instances_from_json(body), expected)
        same_instances(await client.list_instances(), expected)
        same_instances(await ordinary.list_instances(), expected)


def listing(*changes: dict[str, Any]) -> bytes:
    """Three instances of the common shape; ``changes`` alter the first ones."""
    items: list[dict[str, Any]] = [
        {
            "id": f"0000000{n}-1111-2222-3333-444444444444",
            "name": f"pod-{n}",
            "status": "running",
            "region": "eu-west-1",
            "created_at": 1_764_000_000,
            "updated_at": 1_764_500_000,
        }
        for n in range(3)
    ]
    for item, change in zip(items, changes, strict=False):
        item.update(change)
    return json.dumps([{k: v for k, v in i.items() if v is not ...} for i in items]).encode()


COMMON_LISTS = [
    listing(),
    listing({"name": None, "region": None, "created_at": None, "updated_at": None}),
    listing({"created_at": ..., "updated_at": ..., "name": ..., "region": ...}),
    listing({"status": "Running"}, {"status": "provisioning"}),
    listing({"health": None}, {"health": json.loads(body())}),
    listing({"image": "x", "tags": ["a"], "owner": {"team": "t"}}),
    b"[]",
]
UNUSUAL_LISTS = [
    listing({"id": 42}),
    listing({}, {"status": None}),
    listing({"created_at": "2026-03-14T10:05:00Z"}),
    listing({"updated_at": 1_764_500_000.5}),
    listing({}, {}, {"health": json.loads(body(memory_mb=512.0))}),
]
REFUSED_LISTS = [
    listing({"id": None}),
    listing({"status": 3}),
    listing({"health": {"cpu_percent": 1}}),
    b'{"instances": []}',
]


@pytest.mark.parametrize("raw", COMMON_LISTS)
def test_a_common_list_takes_the_strict_path(raw: bytes) -> None:
    fast = common_instances(raw)
    assert fast is not None
    same_instances(fast, tolerant_list(raw))


@pytest.mark.parametrize("raw", UNUSUAL_LISTS)
def test_an_unusual_list_takes_the_tolerant_path_with_the_same_result(raw: bytes) -> None:
    assert common_instances(raw) is None
    same_instances(instances_from_json(raw), tolerant_list(raw))


@pytest.mark.parametrize("raw", REFUSED_LISTS)
def test_a_bad_list_raises_the_tolerant_error(raw: bytes) -> None:
    assert common_instances(raw) is None
    same_refusal(instances_from_json, tolerant_list, raw)
