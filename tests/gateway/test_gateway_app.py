"""The gateway as a FastAPI app: its edges on the wire, its document, and its layer."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import httpx
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from bot.backend.client import InstanceClient
from bot.catalog import SPECS, Subcommand
from bot.gateway import GatewayDeps, KeyRing, gateway_routes_for
from bot.gateway.routes import gateway_router
from bot.store.audit import AuditLog, latest_audit
from bot.store.slack_models import AuditEntry
from bot.web.server import serve_web
from tests.gateway.conftest import KEYS, GatewayUnderTest, gateway_keys


def utc_now() -> datetime:
    return datetime.now(UTC)


def test_the_gateway_imports_nothing_from_slack() -> None:
    # bot.gateway.app: the whole gateway (the package alone loads the FastAPI side lazily).
    code = (
        "import sys, bot.gateway.app; print(sorted(m for m in sys.modules if m.startswith('bot.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "bot.gateway.routes" in loaded
    assert "bot.slack" not in loaded


def test_each_route_needs_the_role_slack_needs_for_it() -> None:
    routes = [r for r in gateway_router().routes if isinstance(r, APIRoute) and r.include_in_schema]
    assert {r.name for r in routes} == {
        "list",
        "get",
        "create",
        "kill",
        "pause",
        "restart",
        "health",
        "history",
    }
    for route in routes:
        action = route.name
        needed = SPECS[Subcommand.LIST if action == "get" else Subcommand(action)].role
        assert route.description == f"Needs the {needed.label} role."


async def test_the_key_is_judged_before_the_body(gateway: GatewayUnderTest) -> None:
    headers = {"content-type": "application/json"}
    async with gateway.client() as anonymous, gateway.client("viewer") as viewer:
        no_key = await anonymous.post("/api/instances", content=b"{nope", headers=headers)
        low_role = await viewer.post("/api/instances", content=b"{nope", headers=headers)
    assert no_key.status_code == 401 and no_key.headers["www-authenticate"] == "X-API-Key"
    assert low_role.status_code == 403
    assert [e.result for e in await _audit(gateway)] == ["refused", "refused"]


async def test_body_limits_and_content_types(gateway: GatewayUnderTest) -> None:
    async with gateway.client("operator") as http:
        too_large = await http.post("/api/instances", content=b" " * (64 * 1024 + 1))
        plain_text = await http.post(
            "/api/instances", content=b'{"name": "typed"}', headers={"content-type": "text/plain"}
        )
    assert too_large.status_code == 413 and too_large.json()["status"] == 413
    assert plain_text.status_code == 201 and plain_text.json()["name"] == "typed"
    assert [e.result for e in await _audit(gateway)] == ["ok", "usage"]


async def test_router_edges_answer_json(gateway: GatewayUnderTest) -> None:
    instance_id = gateway.sim.add_instance(name="edges", status="running")
    async with gateway.client("admin") as http:
        newline = await http.get("/api/instances/a%0Ab")
        slash = await http.get("/api/instances/", follow_redirects=False)
        wrong = await http.put(f"/api/instances/{instance_id}")
        head = await http.head(f"/api/instances/{instance_id}")
    assert newline.status_code == 404 and "No instance matches" in newline.json()["error"]
    assert slash.status_code == 404 and slash.json()["status"] == 404
    assert wrong.status_code == 405
    assert wrong.headers["allow"].split(", ") == ["GET", "DELETE", "HEAD"]
    assert head.status_code == 200
    actions = [(e.action, e.result, (e.args or "").split()[0]) for e in await _audit(gateway)]
    assert actions == [("get", "ok", "HEAD"), ("get", "usage", "GET")]


async def test_the_document_is_generated_from_the_routes(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as http:
        document = (await http.get("/api/openapi.json")).json()
    assert document["servers"] == [{"url": "/api"}]
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": document["components"]["securitySchemes"]["apiKey"]["description"],
    }
    operations = {
        op["operationId"]: (method, path)
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    assert operations == {
        "listInstances": ("get", "/instances"),
        "createInstance": ("post", "/instances"),
        "getInstance": ("get", "/instances/{ref}"),
        "killInstance": ("delete", "/instances/{ref}"),
        "pauseInstance": ("post", "/instances/{ref}/pause"),
        "restartInstance": ("post", "/instances/{ref}/restart"),
        "instanceHealth": ("get", "/instances/{ref}/health"),
        "instanceHistory": ("get", "/instances/{ref}/history"),
    }
    create = document["paths"]["/instances"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is False and set(body["properties"]) == {"name", "region"}
    assert create["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }


async def test_the_document_names_the_public_url(gateway: GatewayUnderTest) -> None:
    async with InstanceClient(gateway.sim.url, retry_backoff=0) as client:
        deps = GatewayDeps(
            client=client,
            db=gateway.db,
            keys=KeyRing(gateway_keys()),
            audit=AuditLog(gateway.db, utc_now),
            clock=utc_now,
        )
        app = Starlette(routes=gateway_routes_for(deps, public_url="https://bot.example.com/"))
        async with serve_web(app) as server, httpx.AsyncClient(base_url=server.url) as http:
            document = (await http.get("/api/openapi.json")).json()
            listed = await http.get("/api/instances", headers={"X-API-Key": KEYS["viewer"]})
    assert document["servers"] == [{"url": "https://bot.example.com/api"}]
    assert listed.status_code == 200


async def _audit(gw: GatewayUnderTest) -> list[AuditEntry]:
    async with gw.db.session() as session:
        return await latest_audit(session, limit=100)


async def test_a_bug_is_a_500_with_an_id_in_the_answer_and_the_audit(
    gateway: GatewayUnderTest,
) -> None:
    instance_id = gateway.sim.add_instance(status="running")

    async def drop_restarts(session: AsyncSession) -> None:
        await session.execute(text("DROP TABLE restart_attempts"))

    await gateway.db.run(drop_restarts)
    async with gateway.client("viewer") as http:
        broken = await http.get(f"/api/instances/{instance_id}/history")
    assert broken.status_code == 500
    message = broken.json()["error"]
    assert message.startswith("internal error; the bot's log has id ")
    [entry] = await _audit(gateway)
    assert (entry.result, entry.detail) == ("error", f"internal error {message.split()[-1]}")
