"""The gateway over real HTTP: roles, audit, errors, history, and the off switch."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from bot.gateway import gateway_routes_for
from bot.instances import Actor, InstanceLocks, Lease, Verb
from bot.store.audit import latest_audit
from bot.store.models import RestartAttempt, StatusChange
from bot.web.server import serve_web
from tests.gateway.conftest import GatewayUnderTest

ROLES = ("viewer", "operator", "admin")
# action → (method, path template, lowest role allowed, success status)
ACTIONS: dict[str, tuple[str, str, str, int]] = {
    "list": ("GET", "/api/instances", "viewer", 200),
    "get": ("GET", "/api/instances/{id}", "viewer", 200),
    "health": ("GET", "/api/instances/{id}/health", "viewer", 200),
    "history": ("GET", "/api/instances/{id}/history", "viewer", 200),
    "create": ("POST", "/api/instances", "operator", 201),
    "pause": ("POST", "/api/instances/{id}/pause", "operator", 200),
    "restart": ("POST", "/api/instances/{id}/restart", "operator", 200),
    "kill": ("DELETE", "/api/instances/{id}", "admin", 204),
}


async def _audit(gw: GatewayUnderTest) -> list[Any]:
    async with gw.db.session() as session:
        return await latest_audit(session, limit=100)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ACTIONS))
async def test_role_by_action_matrix(gateway: GatewayUnderTest, role: str, action: str) -> None:
    method, template, lowest, ok_status = ACTIONS[action]
    instance_id = gateway.sim.add_instance(name="matrix", status="running")
    allowed = ROLES.index(role) >= ROLES.index(lowest)
    async with gateway.client(role) as http:
        response = await http.request(
            method, template.format(id=instance_id), json={} if action == "create" else None
        )
    if allowed:
        assert response.status_code == ok_status, response.text
    else:
        assert response.status_code == 403
        body = response.json()
        assert body["status"] == 403
        assert f"the {lowest} role is needed" in body["error"]
    [entry] = await _audit(gateway)
    assert (entry.source, entry.user_id, entry.action) == ("gateway", f"gateway:{role}", action)
    assert entry.result == ("ok" if allowed else "refused")
    assert entry.duration_ms is not None
    if action != "list" and (allowed or action != "create"):
        assert entry.instance_id is not None


async def test_missing_or_unknown_key_is_401_and_audited(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as http:
        missing = await http.get("/api/instances")
        wrong = await http.get("/api/instances", headers={"X-API-Key": "viewer-key-0002"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json() == {"error": "missing or unknown X-API-Key header", "status": 401}
        assert response.headers["www-authenticate"] == "X-API-Key"
    # Failed authentications are audited in aggregate: one row per client per minute.
    entries = await _audit(gateway)
    assert [(e.user_id, e.action, e.result) for e in entries] == [
        ("gateway:unknown", "auth_failed", "refused")
    ]
    assert entries[0].args is None
    assert gateway.sim.requests_total == 0


async def test_list_filters_and_instance_shape(gateway: GatewayUnderTest) -> None:
    gateway.sim.seed_instances(3, region="eu-west-1")
    paused = gateway.sim.add_instance(name="sleepy", region="us-east-1", status="paused")
    async with gateway.client("viewer") as http:
        everything = (await http.get("/api/instances")).json()
        only_paused = (await http.get("/api/instances", params={"status": "PAUSED"})).json()
        in_eu = (await http.get("/api/instances", params={"region": "eu-west-1"})).json()
        by_name = (await http.get("/api/instances/sleepy")).json()
        health = (await http.get(f"/api/instances/{everything[0]['id']}/health")).json()
    assert len(everything) == 4 and len(in_eu) == 3
    assert [i["id"] for i in only_paused] == [paused]
    assert by_name["id"] == paused and by_name["status"] == "paused"
    assert set(by_name) == {"id", "name", "status", "region", "created_at", "updated_at", "health"}
    assert health["stale"] is False and health["heartbeat_age_secs"] >= 0


async def test_unknown_ambiguous_and_backend_refusals(gateway: GatewayUnderTest) -> None:
    a = gateway.sim.add_instance(name="same", status="paused")
    b = gateway.sim.add_instance(name="same", status="running")
    async with gateway.client("operator") as http:
        unknown = await http.get("/api/instances/nothing-like-this")
        ambiguous = await http.get("/api/instances/same")
        refused = await http.post(f"/api/instances/{a}/pause")  # already paused
    assert unknown.status_code == 404
    assert "No instance matches 'nothing-like-this'" in unknown.json()["error"]
    assert ambiguous.status_code == 409
    assert sorted(ambiguous.json()["candidates"]) == sorted([a, b])
    assert refused.status_code == 409
    assert refused.json()["error"].startswith(f"Backend returned 409 for POST /instances/{a}/pause")
    results = [e.result for e in await _audit(gateway)]
    assert results == ["error", "usage", "usage"]


async def test_an_action_needs_four_characters_of_a_prefix_a_read_does_not(
    gateway: GatewayUnderTest,
) -> None:
    """The same rule as Slack and the CLI (bot.backend.refs): 422 and the candidates."""
    solo = gateway.sim.add_instance(name="solo", id="zq12-0000-4000-8000-000000000000")
    async with gateway.client("operator") as http:
        short = await http.post("/api/instances/z/pause")
        read = await http.get("/api/instances/z")
        unknown = await http.get("/api/instances/sol")
        untouched = gateway.sim.instance(solo)["status"]
        enough = await http.post("/api/instances/zq12/pause")
    assert short.status_code == 422
    assert short.json()["candidates"] == [solo]
    assert short.json()["error"].startswith("'z' is too short to act on")
    assert untouched == "running"
    assert read.status_code == 200 and read.json()["id"] == solo
    assert unknown.status_code == 404 and "did you mean solo?" in unknown.json()["error"]
    assert enough.status_code == 200 and enough.json()["id"] == solo


async def test_backend_failures_map_to_502_and_503(gateway: GatewayUnderTest) -> None:
    instance_id = gateway.sim.add_instance(status="running")
    async with gateway.client("viewer") as http:
        gateway.sim.set_faults(error_rate=1.0)
        broken = await http.get(f"/api/instances/{instance_id}")
        gateway.sim.set_faults()
        await gateway.sim.stop()
        gone = await http.get("/api/instances")
    assert broken.status_code == 502
    assert "Backend returned 500" in broken.json()["error"]
    assert gone.status_code == 503
    assert gone.json()["error"].startswith("Backend unreachable for GET /instances")


async def test_create_validates_its_body(gateway: GatewayUnderTest) -> None:
    async with gateway.client("operator") as http:
        created = await http.post("/api/instances", json={"name": "new-one", "region": "eu-west-1"})
        bad = {
            "not json": await http.post("/api/instances", content=b"{nope"),
            "array": await http.post("/api/instances", json=["x"]),
            "number name": await http.post("/api/instances", json={"name": 7}),
            "extra field": await http.post("/api/instances", json={"nmae": "typo"}),
            "empty name": await http.post("/api/instances", json={"name": ""}),
        }
    assert created.status_code == 201
    assert created.json()["name"] == "new-one" and created.json()["region"] == "eu-west-1"
    assert {k: r.status_code for k, r in bad.items()} == {
        "not json": 400,
        "array": 422,
        "number name": 422,
        "extra field": 422,
        "empty name": 422,
    }
    assert "name" in bad["number name"].json()["error"]
    assert len(gateway.sim.instance_ids()) == 1


async def test_actions_show_in_history_with_the_key_name(gateway: GatewayUnderTest) -> None:
    instance_id = gateway.sim.add_instance(name="hist", status="running")
    async with gateway.client("operator") as http:
        paused = await http.post(f"/api/instances/{instance_id}/pause")
        restarted = await http.post(f"/api/instances/{instance_id[:8]}/restart")
    async with gateway.client("viewer") as http:
        history = (await http.get(f"/api/instances/{instance_id}/history")).json()
        limited = await http.get(f"/api/instances/{instance_id}/history", params={"limit": 1})
        bad_limit = await http.get(f"/api/instances/{instance_id}/history", params={"limit": 0})
    assert paused.json()["status"] == "paused" and restarted.json()["status"] == "running"
    changes = [(c["from_status"], c["to_status"], c["actor"]) for c in history["changes"]]
    assert changes == [
        ("paused", "running", "gateway:operator"),
        ("running", "paused", "gateway:operator"),
    ]
    assert [(r["cause"], r["actor"], r["ok"]) for r in history["restarts"]] == [
        ("user", "gateway:operator", True)
    ]
    assert len(limited.json()["changes"]) == 1
    assert bad_limit.status_code == 422
    async with gateway.db.session() as session:
        causes = set(await session.scalars(select(StatusChange.cause)))
    assert causes == {"user"}


async def test_history_of_a_recorded_instance_needs_no_backend(gateway: GatewayUnderTest) -> None:
    instance_id = gateway.sim.add_instance(status="running")
    async with gateway.client("operator") as http:
        await http.post(f"/api/instances/{instance_id}/pause")
        await gateway.sim.stop()
        history = await http.get(f"/api/instances/{instance_id}/history")
    assert history.status_code == 200
    assert history.json()["changes"][0]["to_status"] == "paused"


async def test_unknown_paths_and_methods_answer_json(gateway: GatewayUnderTest) -> None:
    async with gateway.client("admin") as http:
        missing = await http.get("/api/nothing")
        wrong_method = await http.patch("/api/instances")
        spec = await http.get("/api/openapi.json", headers={"X-API-Key": ""})
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert wrong_method.status_code == 405 and wrong_method.json()["status"] == 405
    assert set(wrong_method.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert spec.status_code == 200
    assert spec.json()["openapi"] == "3.1.0"
    assert "/instances/{ref}/history" in spec.json()["paths"]


async def test_gateway_calls_are_counted_as_commands(gateway: GatewayUnderTest) -> None:
    async with gateway.client("viewer") as http:
        await http.get("/api/instances")
        await http.delete("/api/instances/x")
    text = (await gateway.metrics.render()).decode()
    assert 'starpod_commands_total{result="ok",source="gateway",subcommand="list"} 1.0' in text
    assert 'starpod_commands_total{result="refused",source="gateway",subcommand="kill"} 1.0' in text


async def test_off_without_keys_answers_404_everywhere() -> None:
    app = Starlette(routes=gateway_routes_for(None))
    async with serve_web(app) as server:
        import httpx

        async with httpx.AsyncClient(base_url=server.url) as http:
            responses = [
                await http.get("/api/instances", headers={"X-API-Key": "anything"}),
                await http.post("/api/instances"),
                await http.get("/api/openapi.json"),
            ]
    assert [r.status_code for r in responses] == [404, 404, 404]
    assert responses[0].json()["error"] == "the gateway is off: no gateway keys are configured"


async def test_an_action_in_progress_elsewhere_is_a_409_not_a_failure(
    gateway: GatewayUnderTest,
) -> None:
    instance_id = gateway.sim.add_instance(name="held", status="running")
    # A Slack user on another replica is restarting it right now.
    locks = InstanceLocks(gateway.db, holder="replica-b")
    lease = await locks.acquire(instance_id, Verb.RESTART, Actor.slack("U0ANA"))
    assert isinstance(lease, Lease)
    async with gateway.client("admin") as http:
        busy = await http.post(f"/api/instances/{instance_id}/restart")
        kill = await http.delete(f"/api/instances/{instance_id}")
        await locks.release(lease)
        restarted = await http.post(f"/api/instances/{instance_id}/restart")
    assert busy.status_code == kill.status_code == 409
    assert "restart by U0ANA is already in progress" in busy.json()["error"]
    assert gateway.sim.calls[("restart", instance_id)] == 1
    assert gateway.sim.calls[("kill", instance_id)] == 0
    assert restarted.status_code == 200
    async with gateway.db.session() as session:
        attempts = list(await session.scalars(select(RestartAttempt)))
    assert [(a.actor, a.ok) for a in attempts] == [("gateway:admin", True)]
