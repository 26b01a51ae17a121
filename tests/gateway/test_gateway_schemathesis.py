"""Schemathesis against a live gateway backed by the simulator: no 500s, no schema violations.

The gateway runs in a thread of its own (uvicorn on 127.0.0.1, the backend simulator and a
SQLite file on that thread's loop), because schemathesis drives it from synchronous tests.
Examples are few per operation, so the run stays well under a minute.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.applications import Starlette

from bot.backend.client import InstanceClient
from bot.gateway import GatewayDeps, KeyRing, gateway_routes_for
from bot.sim.backend import BackendSimulator
from bot.slack.audit import AuditLog
from bot.store.database import Database
from bot.web.server import serve_web
from tests.gateway.conftest import KEYS, gateway_keys

MAX_EXAMPLES = 15
TIME_LIMIT = 90


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _ServedGateway:
    """The gateway on a background thread's event loop, until :meth:`stop`."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.url = ""
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
            BackendSimulator(transition_secs=0) as sim,
            Database(f"sqlite:///{self.db_path}") as db,
        ):
            sim.seed_instances(5)
            await db.upgrade()
            async with InstanceClient(sim.url, retry_backoff=0) as client:
                deps = GatewayDeps(
                    client=client,
                    db=db,
                    keys=KeyRing(gateway_keys()),
                    audit=AuditLog(db, _utc_now),
                    clock=_utc_now,
                )
                app = Starlette(routes=gateway_routes_for(deps))
                async with serve_web(app) as server:
                    self.url = server.url
                    self._ready.set()
                    await self._stop.wait()


@pytest.fixture(scope="module")
def served_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    served = _ServedGateway(tmp_path_factory.mktemp("gateway") / "bot.db")
    url = served.start()
    yield url
    served.stop()


def test_gateway_conforms_to_its_openapi_document(served_gateway: str, tmp_path: Path) -> None:
    """``schemathesis run`` with every check: exit 0 means no 500 and no schema violation."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{served_gateway}/api/openapi.json",
        "--header",
        f"X-API-Key: {KEYS['admin']}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--seed",
        "1",
        "--no-color",
    ]
    # cwd: schemathesis keeps a cache folder in the working directory.
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIME_LIMIT, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
