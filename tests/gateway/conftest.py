"""Fixtures for the gateway tests: the gateway served over real HTTP on 127.0.0.1.

It runs on uvicorn in front of the backend simulator and a real SQLite file (migrated), with
three keys: ``viewer-key`` (viewer), ``operator-key`` (operator), ``admin-key`` (admin).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.backend.client import InstanceClient
from bot.config import GatewayKey
from bot.gateway import GatewayDeps, KeyRing, gateway_routes_for
from bot.metrics import Metrics, create_metrics
from bot.sim.backend import BackendSimulator
from bot.slack.audit import AuditLog
from bot.store.database import Database
from bot.web.server import serve_web

KEYS = {"viewer": "viewer-key-0001", "operator": "operator-key-0002", "admin": "admin-key-0003"}


def gateway_keys() -> list[GatewayKey]:
    """One key per role, named after it."""
    return [GatewayKey(name=role, role=role, key=SecretStr(key)) for role, key in KEYS.items()]  # type: ignore[arg-type]


@dataclass
class GatewayUnderTest:
    """A served gateway and what it talks to."""

    url: str
    sim: BackendSimulator
    db: Database
    metrics: Metrics

    def client(self, role: str | None = None) -> httpx.AsyncClient:
        """An HTTP client to the gateway, sending the key of ``role`` (None: no key)."""
        headers = {"X-API-Key": KEYS[role]} if role else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)


def utc_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def gateway(tmp_path: Path, backend_sim: BackendSimulator) -> AsyncIterator[GatewayUnderTest]:
    """The gateway with three keys, on a free port."""
    async with Database(f"sqlite:///{tmp_path / 'bot.db'}") as db:
        await db.upgrade()
        metrics = create_metrics()
        async with InstanceClient(
            backend_sim.url, retry_backoff=0, observer=metrics.observe_backend
        ) as client:
            deps = GatewayDeps(
                client=client,
                db=db,
                keys=KeyRing(gateway_keys()),
                audit=AuditLog(db, utc_now),
                clock=utc_now,
                metrics=metrics,
            )
            app = Starlette(routes=gateway_routes_for(deps))
            async with serve_web(app) as server:
                yield GatewayUnderTest(server.url, backend_sim, db, metrics)
