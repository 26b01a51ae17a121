"""Schemathesis against a live gateway backed by the simulator: no 500s, no schema violations.

The gateway runs in a thread of its own (uvicorn on 127.0.0.1, the backend simulator and a
SQLite file on that thread's loop), because schemathesis drives it from synchronous tests.
Examples are few per operation, so the run stays well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.conftest import KEYS, ThreadedGateway, gateway_keys, run_schemathesis

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 15
TIME_LIMIT = 90


@pytest.fixture(scope="module")
def served_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    served = ThreadedGateway(tmp_path_factory.mktemp("gateway") / "bot.db", keys=gateway_keys())
    url = served.start()
    yield url
    served.stop()


def test_gateway_conforms_to_its_openapi_document(served_gateway: str, tmp_path: Path) -> None:
    """``schemathesis run`` with every check: exit 0 means no 500 and no schema violation."""
    result = run_schemathesis(
        served_gateway,
        KEYS["admin"],
        checks="all",
        seed=1,
        max_examples=MAX_EXAMPLES,
        cwd=tmp_path,
        timeout=TIME_LIMIT,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
