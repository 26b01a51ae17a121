"""Schemathesis against the gateway while its backend fails: still no 500.

``tests/gateway`` runs schemathesis against a healthy backend. Here the simulator behind the
gateway answers 20 % 500s, 5 % garbage bodies and 5 % hangs (longer than the client's
timeout), so every generated request also meets a failing backend. The gateway must turn
each failure into its documented 502/503 (or pass on 400/404/409/422), never a 500 of its own.

The gateway runs on a thread's own event loop (uvicorn on 127.0.0.1) because schemathesis
drives it from a synchronous test, through its real CLI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import GatewayKey
from tests.gateway.conftest import ThreadedGateway, run_schemathesis

pytestmark = pytest.mark.slow

LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"
MAX_EXAMPLES = 100 if LONG else 10
ADMIN_KEY = "chaos-admin-key-0001"
HERE = Path(__file__).parent


@pytest.fixture
def flaky_gateway(tmp_path: Path) -> Iterator[ThreadedGateway]:
    served = ThreadedGateway(
        tmp_path / "bot.db",
        keys=[GatewayKey(name="chaos", role="admin", key=SecretStr(ADMIN_KEY))],
        seed=9,
        faults={"error_rate": 0.2, "garbage_rate": 0.05, "timeout_rate": 0.05, "hang_secs": 1.0},
        client_timeout=0.3,
    )
    served.start()
    yield served
    served.stop()


def test_gateway_never_answers_500_while_its_backend_fails(
    flaky_gateway: ThreadedGateway, tmp_path: Path, reliability_figures: dict[str, object]
) -> None:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    result = run_schemathesis(
        flaky_gateway.url,
        ADMIN_KEY,
        checks="no_internal_error",
        seed=2,
        max_examples=MAX_EXAMPLES,
        cwd=tmp_path,
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    flaky_gateway.stop()
    assert flaky_gateway.backend_requests > 0
    reliability_figures.update(
        max_examples_per_operation=MAX_EXAMPLES,
        backend_requests=flaky_gateway.backend_requests,
        server_errors=0,
    )
