"""Schemathesis against the gateway while its backend fails: still no 500.

``tests/gateway`` runs schemathesis against a healthy backend. Here the simulator behind the
gateway answers 20 % 500s, 5 % garbage bodies and 5 % hangs (longer than the client's
timeout), so every generated request also meets a failing backend. The gateway must turn
each failure into its documented 502/503 (or pass on 400/404/409/422), never a 500 of its own.

The gateway runs on a thread's own event loop (uvicorn on 127.0.0.1) because schemathesis
drives it from a synchronous test, through its real CLI.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.backend.client import InstanceClient
from bot.config import GatewayKey
from bot.gateway import GatewayDeps, KeyRing, gateway_routes_for
from bot.sim.backend import BackendSimulator
from bot.slack.audit import AuditLog
from bot.store.database import Database
from bot.web.server import serve_web

LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"
MAX_EXAMPLES = 100 if LONG else 10
ADMIN_KEY = "chaos-admin-key-0001"
HERE = Path(__file__).parent


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _FlakyGateway:
    """The gateway and a faulty simulator on a background thread's loop, until :meth:`stop`."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.url = ""
        self.backend_requests = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="flaky-gateway", daemon=True)

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
        keys = KeyRing([GatewayKey(name="chaos", role="admin", key=SecretStr(ADMIN_KEY))])
        async with (
            BackendSimulator(transition_secs=0, seed=9) as sim,
            Database(f"sqlite:///{self.db_path}") as db,
        ):
            sim.seed_instances(5)
            sim.set_faults(error_rate=0.2, garbage_rate=0.05, timeout_rate=0.05, hang_secs=1.0)
            await db.upgrade()
            async with InstanceClient(sim.url, timeout=0.3, retry_backoff=0) as client:
                deps = GatewayDeps(
                    client=client,
                    db=db,
                    keys=keys,
                    audit=AuditLog(db, _utc_now),
                    clock=_utc_now,
                )
                app = Starlette(routes=gateway_routes_for(deps))
                async with serve_web(app) as server:
                    self.url = server.url
                    self._ready.set()
                    await self._stop.wait()
            self.backend_requests = sim.requests_total


@pytest.fixture
def flaky_gateway(tmp_path: Path) -> Iterator[_FlakyGateway]:
    served = _FlakyGateway(tmp_path / "bot.db")
    served.start()
    yield served
    served.stop()


def test_gateway_never_answers_500_while_its_backend_fails(
    flaky_gateway: _FlakyGateway, tmp_path: Path, reliability_figures: dict[str, object]
) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{flaky_gateway.url}/api/openapi.json",
        "--header",
        f"X-API-Key: {ADMIN_KEY}",
        "--checks",
        "no_internal_error",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--seed",
        "2",
        "--no-color",
    ]
    # cwd: schemathesis keeps a cache folder in the working directory.
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    flaky_gateway.stop()
    assert flaky_gateway.backend_requests > 0
    reliability_figures.update(
        max_examples_per_operation=MAX_EXAMPLES,
        backend_requests=flaky_gateway.backend_requests,
        server_errors=0,
    )
