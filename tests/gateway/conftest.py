"""Fixtures for the gateway tests: the gateway served over real HTTP on 127.0.0.1.

It runs on uvicorn in front of the backend simulator and a real SQLite file (migrated), with
three keys: ``viewer-key`` (viewer), ``operator-key`` (operator), ``admin-key`` (admin).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
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
from bot.store.audit import AuditLog
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


class ThreadedGateway:
    """The gateway over a simulator and a SQLite file, on a background thread's own loop.

    Schemathesis drives the gateway from synchronous tests through its real CLI, so the
    gateway cannot share the test's event loop. ``faults`` go to the simulator's
    ``set_faults``; ``backend_requests`` is what the simulator served, once stopped.
    """

    def __init__(
        self,
        db_path: Path,
        *,
        keys: list[GatewayKey],
        seed: int = 0,
        faults: dict[str, float] | None = None,
        client_timeout: float = 30.0,
    ) -> None:
        self.db_path = db_path
        self.url = ""
        self.backend_requests = 0
        self._keys = keys
        self._seed = seed
        self._faults = faults or {}
        self._client_timeout = client_timeout
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="gateway-under-test", daemon=True)

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the gateway did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self.url

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with (
            BackendSimulator(transition_secs=0, seed=self._seed) as sim,
            Database(f"sqlite:///{self.db_path}") as db,
        ):
            sim.seed_instances(5)
            sim.set_faults(**self._faults)  # type: ignore[arg-type]
            await db.upgrade()
            async with InstanceClient(
                sim.url, timeout=self._client_timeout, retry_backoff=0
            ) as client:
                deps = GatewayDeps(
                    client=client,
                    db=db,
                    keys=KeyRing(self._keys),
                    audit=AuditLog(db, utc_now),
                    clock=utc_now,
                )
                app = Starlette(routes=gateway_routes_for(deps))
                async with serve_web(app) as server:
                    self.url = server.url
                    self._ready.set()
                    await self._stop.wait()
            self.backend_requests = sim.requests_total


def run_schemathesis(
    url: str,
    api_key: str,
    *,
    checks: str,
    seed: int,
    max_examples: int,
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``schemathesis run`` (the real CLI) against the gateway's OpenAPI document.

    ``cwd``: schemathesis keeps a cache folder in the working directory.
    """
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{url}/api/openapi.json",
        "--header",
        f"X-API-Key: {api_key}",
        "--checks",
        checks,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(max_examples),
        "--workers",
        "1",
        "--seed",
        str(seed),
        "--no-color",
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env
    )
