"""Any body a backend sends → a model or ``BackendProtocolError``, through the real client.

Hypothesis writes the bytes a scripted server on loopback answers with: model-shaped JSON
whose fields hold any JSON value (timestamps from 1970 to far past year 9999, ``Infinity``,
huge integers, nested junk), arbitrary JSON, and raw bytes. The real
:class:`~bot.backend.client.InstanceClient` reads them over a real socket; whatever comes, a
call returns its model (or ``None`` for an empty pause/restart answer) or raises
``BackendProtocolError``. Anything else would escape as an unexpected error in Slack, or
stop every sweep of the monitor.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from bot.backend.client import InstanceClient
from bot.backend.errors import BackendProtocolError
from bot.backend.fast_path import health_from_json, instances_from_json
from bot.backend.models import HealthInfo, Instance, SshInfo

pytestmark = pytest.mark.slow

# Test modules cannot import each other (importlib mode): the budget is read here too.
FUZZ_EXAMPLES = int(os.environ.get("STARPOD_FUZZ_EXAMPLES", "150"))

_timestamp = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=4_102_444_800),
    st.floats(allow_nan=True, allow_infinity=True),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.text(alphabet="0123456789-:TZz.+ ", max_size=30),
    st.sampled_from(
        [
            "2026-03-14T10:05:00Z",
            "99999999999999999999",
            "1e400",
            "-0",
            "1780000000",
            "1780000000.5",
            "²",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
        ]
    ),
)
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    _timestamp,
)
_json = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)
_number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True)
)
_health = st.fixed_dictionaries(
    {},
    optional={
        "cpu_percent": st.one_of(_number, _json),
        "memory_mb": st.one_of(_number, _json),
        "disk_mb": st.one_of(_number, _json),
        "last_heartbeat": _timestamp,
        "uptime_secs": st.one_of(_number, _json),
        "extra": _json,
    },
)
_instance = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=40), st.integers(), _json),
        "name": st.one_of(st.none(), st.text(max_size=40), _json),
        "status": st.one_of(
            st.sampled_from(["running", "Running", "deleting", "", "   "]), st.text(), _json
        ),
        "region": st.one_of(st.none(), st.text(max_size=20), _json),
        "created_at": _timestamp,
        "updated_at": _timestamp,
        "health": st.one_of(st.none(), _health, _json),
    },
)
_ssh = st.fixed_dictionaries(
    {},
    optional={
        "host": st.one_of(st.text(max_size=30), _json),
        "port": st.one_of(_number, _json),
        "user": st.one_of(st.text(max_size=20), _json),
        "private_key": st.one_of(st.none(), st.text(max_size=60), _json),
    },
)
_document = st.one_of(
    _instance,
    _health,
    _ssh,
    st.lists(_instance, max_size=5),
    st.fixed_dictionaries({"instances": st.one_of(st.lists(_instance, max_size=3), _json)}),
    _json,
)
# Python backends write NaN/Infinity as bare words; json.dumps does too.
body = st.one_of(
    _document.map(lambda doc: json.dumps(doc).encode()),
    st.binary(max_size=200),
    st.sampled_from([b"", b"   ", b"null", b"[" * 50_000 + b"]" * 50_000, b'{"a":' * 5000]),
)
ENDPOINTS = ("get", "list", "health", "ssh", "create", "pause", "restart")


async def _call(client: InstanceClient, endpoint: str) -> object:
    iid = "0b7c3e1a-5d6f-4a8b-9c0d-1e2f3a4b5c6d"
    if endpoint == "get":
        return await client.get_instance(iid)
    if endpoint == "list":
        return await client.list_instances()
    if endpoint == "health":
        return await client.get_health(iid)
    if endpoint == "ssh":
        return await client.get_ssh_info(iid)
    if endpoint == "create":
        return await client.create_instance(name="fuzz")
    if endpoint == "pause":
        return await client.pause_instance(iid)
    return await client.restart_instance(iid)


def _expected_type(endpoint: str, result: object) -> bool:
    if endpoint == "list":
        return isinstance(result, list) and all(isinstance(i, Instance) for i in result)
    if endpoint == "health":
        return isinstance(result, HealthInfo)
    if endpoint == "ssh":
        return isinstance(result, SshInfo)
    if endpoint in ("pause", "restart"):
        return result is None or isinstance(result, Instance)
    return isinstance(result, Instance)


@pytest.fixture
def outcomes() -> Counter[str]:
    return Counter()


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
    ],
)
@given(raw=body, endpoint=st.sampled_from(ENDPOINTS))
@example(raw=b'{"id":"x","status":"running","created_at":1e300}', endpoint="get")
@example(raw=b'{"id":"x","status":"running","updated_at":1000000000000000000}', endpoint="get")
@example(
    raw=b'{"cpu_percent":1,"memory_mb":Infinity,"disk_mb":1,"last_heartbeat":1,"uptime_secs":1}',
    endpoint="health",
)
@example(raw=b"[" * 50_000 + b"]" * 50_000, endpoint="list")
async def test_any_backend_body_gives_a_model_or_a_protocol_error(
    scripted: Any,
    scripted_client: InstanceClient,
    outcomes: Counter[str],
    reliability_figures: dict[str, object],
    raw: bytes,
    endpoint: str,
) -> None:
    scripted.answer.status = 201 if endpoint == "create" else 200
    scripted.answer.chunks = [raw]
    try:
        result = await _call(scripted_client, endpoint)
    except BackendProtocolError as exc:
        outcomes["protocol_error"] += 1
        # The message names the request and stays one readable line.
        assert exc.method in ("GET", "POST") and "\n" not in str(exc)
    else:
        outcomes["model"] += 1
        assert _expected_type(endpoint, result), (endpoint, result)
    reliability_figures["bad_inputs_tried"] = sum(outcomes.values())
    reliability_figures.update(outcomes)


_TOLERANT_LIST = TypeAdapter(list[Instance])
# Bodies near the common shape, where the two paths meet: every field well-formed (times
# across the whole range a datetime holds and past it), then maybe one of them odd.
# Unix seconds at every order of magnitude up to past the largest a datetime holds, and
# negative ones (hypothesis alone keeps to small numbers and bounds).
_seconds = st.one_of(
    st.integers(min_value=0, max_value=12).flatmap(
        lambda e: st.integers(min_value=10**e, max_value=10 ** (e + 1))
    ),
    st.integers(max_value=0),
)
_near_health = st.fixed_dictionaries(
    {
        "cpu_percent": st.one_of(st.floats(allow_nan=False), st.integers()),
        "memory_mb": st.integers(),
        "disk_mb": st.integers(),
        "last_heartbeat": _seconds,
        "uptime_secs": st.integers(),
    }
)


def _one_odd(base: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def spoil(doc: dict[str, Any], field: str, value: Any, drop: bool) -> dict[str, Any]:
        spoiled = dict(doc)
        if drop:
            spoiled.pop(field, None)
        else:
            spoiled[field] = value
        return spoiled

    return st.one_of(
        base,
        st.builds(
            spoil,
            base,
            st.sampled_from([*HealthInfo.model_fields, "id", "status", "created_at", "health"]),
            st.one_of(_number, _timestamp, _json),
            st.booleans(),
        ),
    )


_near_instance = st.fixed_dictionaries(
    {
        "id": st.text(max_size=12),
        "status": st.one_of(st.text(max_size=12), st.text(min_size=60, max_size=70)),
    },
    optional={
        "name": st.one_of(st.none(), st.text(max_size=12), st.text(min_size=250, max_size=260)),
        "region": st.one_of(st.none(), st.text(max_size=12), st.text(min_size=60, max_size=70)),
        "created_at": st.one_of(st.none(), _seconds),
        "updated_at": st.one_of(st.none(), _seconds),
        "health": st.one_of(st.none(), _one_odd(_near_health)),
    },
)
_near = st.one_of(_one_odd(_near_health), st.lists(_one_odd(_near_instance), max_size=4)).map(
    lambda doc: json.dumps(doc).encode()
)


def _outcome(parse: Any, raw: bytes) -> tuple[object, ...]:
    """What a parser makes of ``raw``, comparable even with NaN inside: each model as JSON
    with the fields its body set and its derived status, or the validation errors."""
    try:
        got = parse(raw)
    except ValidationError as exc:
        # Without ctx: it may hold the exception raised, and exceptions compare by identity.
        errors = [(e["type"], e["loc"], e["msg"], e["input"]) for e in exc.errors()]
        return ("refused", repr(errors))
    read = []
    for model in got if isinstance(got, list) else [got]:
        health = getattr(model, "health", None)
        read.append(
            (
                type(model).__name__,
                model.model_dump_json(),
                model.model_fields_set,
                getattr(model, "status", None),
                health.model_fields_set if health is not None else None,
            )
        )
    return ("read", read)


@settings(
    max_examples=FUZZ_EXAMPLES * 2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=st.one_of(_near, body))
@example(raw=b'{"cpu_percent":1,"memory_mb":-3,"disk_mb":1,"last_heartbeat":-1,"uptime_secs":1}')
@example(
    raw=b'{"cpu_percent":1,"memory_mb":1,"disk_mb":1,"last_heartbeat":253402300800,"uptime_secs":1}'
)
@example(
    raw=b'[{"id":"a","status":"running","health":{"cpu_percent":1,"memory_mb":1,'
    b'"disk_mb":1,"last_heartbeat":true,"uptime_secs":1}}]'
)
@example(raw=json.dumps([{"id": "a", "status": "running", "name": "n" * 256}]).encode())
@example(raw=json.dumps([{"id": "a", "status": "s" * 65, "region": "r" * 65}]).encode())
def test_the_fast_path_and_the_tolerant_models_read_any_body_alike(raw: bytes) -> None:
    # The fast path (bot/backend/fast_path.py) is a stricter copy of the models' rules: it may
    # hand a body to the tolerant models, never read one differently or refuse one they read.
    assert _outcome(health_from_json, raw) == _outcome(HealthInfo.model_validate_json, raw)
    assert _outcome(instances_from_json, raw) == _outcome(_TOLERANT_LIST.validate_json, raw)
