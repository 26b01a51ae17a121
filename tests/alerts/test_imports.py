"""Every alerts module imports on its own, first, in a fresh interpreter (no import cycle
with the Slack app, which registers the incident buttons), and nothing runs on import."""

from __future__ import annotations

import asyncio
import sys

import pytest

pytestmark = pytest.mark.slow

MODULES = (
    "bot.alerts.service",
    "bot.slack.incident_buttons",
    "bot.alerts.blocks",
    "bot.alerts.jobs",
)


async def test_each_module_imports_first_in_a_fresh_interpreter() -> None:
    async def load(module: str) -> tuple[str, int, bytes]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            f"import {module}; import threading, asyncio; "
            "assert threading.active_count() == 1, 'a thread started on import'",
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        return module, proc.returncode or 0, err

    results = await asyncio.gather(*(load(m) for m in MODULES))
    failed = {module: err.decode()[-400:] for module, code, err in results if code != 0}
    assert failed == {}
