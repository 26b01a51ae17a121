"""The simulator's admin API under ``/_sim/``: its controls over HTTP, for another process.

Unauthenticated JSON on loopback (the demo and benchmarks run the simulator apart):

| request | body | does |
| --- | --- | --- |
| ``POST /_sim/seed`` | ``{"count", "status"?, "region"?, "name_prefix"?}`` | seed → ids |
| ``POST /_sim/instances`` | ``{"name"?, "region"?, "status"?, "id"?}`` | add one → id |
| ``POST /_sim/instances/{id}/stop-heartbeat`` | ``{"sticky"?}`` | ``stop_heartbeat`` |
| ``POST /_sim/instances/{id}/resume-heartbeat`` | | ``resume_heartbeat`` |
| ``POST /_sim/instances/{id}/stall`` | ``{"after_secs", "survives_restarts"?}`` | schedule_stall |
| ``POST /_sim/instances/{id}/status`` | ``{"status"}`` | ``set_status`` |
| ``POST /_sim/faults`` | ``set_faults`` keywords (lists: ``endpoints``, ``drip_ids``) | same |
| ``POST /_sim/variant`` | ``set_variant`` keywords | ``set_variant`` |
| ``POST /_sim/inline-health`` | ``{"enabled"}`` | sets ``inline_health`` |
| ``POST /_sim/log-garbage`` | ``{"enabled"}`` | sets ``log_garbage`` |
| ``POST /_sim/ssh-keys`` | ``{"enabled"}`` | sets ``ssh_keys`` |
| ``GET /_sim/state`` | | counts by status, counters, settings |
| ``POST /_sim/reset`` | | ``reset`` |

Answers are ``{"ok": true, ...}`` (seed adds ``"ids"``, add ``"id"``). Bad input answers 400
with a short text, an unknown instance 404 ``Not Found``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from bot.sim.backend import BackendSimulator

_FAULT_KEYS = frozenset(
    {
        "error_rate",
        "timeout_rate",
        "garbage_rate",
        "latency_secs",
        "hang_secs",
        "endpoints",
        "down",
        "logs_endless",
        "drip_ids",
        "drip_secs",
    }
)
_VARIANT_KEYS = frozenset(
    {"capitalised_status", "rfc3339_times", "plaintext_logs", "extended_statuses", "extra_fields"}
)

AdminAction = Callable[[dict[str, Any], str], Any]


class _BadRequest(Exception):
    pass


def _ok(result: Any = None) -> web.Response:
    body = {"ok": True} if result is None else {"ok": True, **result}
    return web.json_response(body)


def _only(body: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    unknown = set(body) - allowed
    if unknown:
        raise _BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    return body


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise _BadRequest(f"{key} must be true or false")
    return value


def _admin(action: AdminAction) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Parse the JSON body, run the action, map its errors to 400/404."""

    async def handler(request: web.Request) -> web.Response:
        raw = await request.read()
        body: Any = {}
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                return web.Response(status=400, text="Bad Request: body is not JSON")
        if not isinstance(body, dict):
            return web.Response(status=400, text="Bad Request: body must be a JSON object")
        try:
            result = action(body, request.match_info.get("id", ""))
        except KeyError:
            return web.Response(status=404, text="Not Found")
        except (_BadRequest, ValueError, TypeError) as exc:
            return web.Response(status=400, text=f"Bad Request: {exc}")
        return _ok(result)

    return handler


def add_admin_routes(app: web.Application, sim: BackendSimulator, *, prefix: str = "") -> None:
    """Register the ``/_sim/`` routes for ``sim`` on ``app``."""

    def seed(body: dict[str, Any], _id: str) -> dict[str, Any]:
        _only(body, frozenset({"count", "status", "region", "name_prefix"}))
        count = body.get("count")
        if not isinstance(count, int) or isinstance(count, bool):
            raise _BadRequest("count must be an integer")
        ids = sim.seed_instances(
            count,
            status=body.get("status", "running"),
            region=body.get("region"),
            name_prefix=str(body.get("name_prefix", "pod")),
        )
        return {"ids": ids}

    def add(body: dict[str, Any], _id: str) -> dict[str, Any]:
        _only(body, frozenset({"name", "region", "status", "id"}))
        new_id = sim.add_instance(
            name=body.get("name"),
            region=body.get("region"),
            status=body.get("status", "running"),
            id=body.get("id"),
        )
        return {"id": new_id}

    def stop_heartbeat(body: dict[str, Any], instance_id: str) -> None:
        _only(body, frozenset({"sticky"}))
        sim.stop_heartbeat(instance_id, sticky=_flag(body, "sticky"))

    def resume_heartbeat(body: dict[str, Any], instance_id: str) -> None:
        sim.resume_heartbeat(instance_id)

    def stall(body: dict[str, Any], instance_id: str) -> None:
        _only(body, frozenset({"after_secs", "survives_restarts"}))
        after = body.get("after_secs")
        if not isinstance(after, int | float) or isinstance(after, bool):
            raise _BadRequest("after_secs must be a number")
        survives = body.get("survives_restarts", 0)
        if not isinstance(survives, int) or isinstance(survives, bool) or survives < 0:
            raise _BadRequest("survives_restarts must be a whole number, 0 or more")
        sim.schedule_stall(instance_id, float(after), survives_restarts=survives)

    def status(body: dict[str, Any], instance_id: str) -> None:
        _only(body, frozenset({"status"}))
        sim.set_status(instance_id, body.get("status"))  # type: ignore[arg-type]

    def faults(body: dict[str, Any], _id: str) -> dict[str, Any]:
        _only(body, _FAULT_KEYS)
        sim.set_faults(**body)
        return {"faults": sim.faults.as_dict()}

    def variant(body: dict[str, Any], _id: str) -> dict[str, Any]:
        _only(body, _VARIANT_KEYS)
        sim.set_variant(**{key: _flag(body, key) for key in body})
        return {"variant": sim.variant.as_dict()}

    def setter(attribute: str) -> AdminAction:
        def set_flag(body: dict[str, Any], _id: str) -> None:
            _only(body, frozenset({"enabled"}))
            setattr(sim, attribute, _flag(body, "enabled"))

        return set_flag

    def reset(body: dict[str, Any], _id: str) -> None:
        sim.reset()

    async def state(_request: web.Request) -> web.Response:
        return web.json_response(sim.state())

    base = f"{prefix}/_sim"
    r = app.router
    r.add_post(f"{base}/seed", _admin(seed))
    r.add_post(f"{base}/instances", _admin(add))
    r.add_post(f"{base}/instances/{{id}}/stop-heartbeat", _admin(stop_heartbeat))
    r.add_post(f"{base}/instances/{{id}}/resume-heartbeat", _admin(resume_heartbeat))
    r.add_post(f"{base}/instances/{{id}}/stall", _admin(stall))
    r.add_post(f"{base}/instances/{{id}}/status", _admin(status))
    r.add_post(f"{base}/faults", _admin(faults))
    r.add_post(f"{base}/variant", _admin(variant))
    r.add_post(f"{base}/inline-health", _admin(setter("inline_health")))
    r.add_post(f"{base}/log-garbage", _admin(setter("log_garbage")))
    r.add_post(f"{base}/ssh-keys", _admin(setter("ssh_keys")))
    r.add_post(f"{base}/reset", _admin(reset))
    r.add_get(f"{base}/state", state, allow_head=False)
