"""``starpod-bot demo`` end to end: the real bot process against the simulator and emulator.

These run the command as a newcomer would (with intervals shortened so the stale instance
is caught within seconds), read the playground's state over HTTP, and check the process
tree starts and stops cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.demo.conftest import DemoProcess, alert_messages

pytestmark = pytest.mark.slow

StartDemo = Callable[..., Awaitable[DemoProcess]]


async def wait_for_state(
    demo: DemoProcess,
    predicate: Callable[[dict[str, Any]], Any],
    *,
    timeout: float,  # noqa: ASYNC109
    what: str,
) -> Any:
    """Poll the playground's state until ``predicate`` returns something truthy."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = await demo.state()
        found = predicate(state)
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(
        f"{what} did not happen within {timeout} s; alerts: "
        f"{[m['text'] for m in alert_messages(state)] if state else '?'}\n{demo.output()}"
    )


async def test_demo_catches_restarts_and_resolves_the_stale_instance(
    fast_demo: StartDemo,
) -> None:
    demo = await fast_demo("--duration", "16")
    name = demo.stale_name

    def resolved_incident(state: dict[str, Any]) -> dict[str, Any] | None:
        for message in alert_messages(state):
            if name in message["text"] and message["text"].startswith("Resolved"):
                return message
        return None

    incident = await wait_for_state(
        demo, resolved_incident, timeout=15, what=f"a resolved incident for {name}"
    )
    # It was announced open first (with on-call mentioned), then edited to resolved.
    first_versions = [edit["text"] for edit in incident["edits"]]
    assert any("Open" in text and "subteam" in text for text in first_versions), first_versions
    assert incident["replies"], "restart and recovery notes go to the incident's thread"
    assert len(alert_messages(await demo.state())) == 1, "one message per incident"
    code = await demo.wait_exit(timeout=40)
    assert code == 0, demo.output()
    assert "demo: stopping" in demo.output()
    assert "Traceback" not in demo.output()


async def test_ctrl_c_stops_the_bot_and_the_servers(fast_demo: StartDemo) -> None:
    demo = await fast_demo()
    bot_pid = demo.bot_pid
    assert demo.process is not None
    demo.process.send_signal(signal.SIGINT)
    assert await demo.wait_exit(timeout=20) == 0, demo.output()
    assert not _alive(bot_pid), "the bot outlived the demo"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        for url in (f"{demo.bot_url}/healthz", f"{demo.playground_url}/"):
            try:
                async with http.get(url):
                    raise AssertionError(f"{url} still answers after Ctrl-C")
            except aiohttp.ClientConnectionError:
                pass


async def test_a_dying_bot_is_reported_and_stops_the_demo(fast_demo: StartDemo) -> None:
    demo = await fast_demo()
    bot_pid = demo.bot_pid
    os.kill(bot_pid, signal.SIGKILL)
    assert await demo.wait_exit(timeout=20) == 1
    assert "the bot was killed by signal 9" in demo.output()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes; only a running process counts.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_busy_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "demo",
            "--port",
            str(port),
            "--bot-port",
            "0",
            cwd=str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use; choose another with --port" in output.decode()


async def test_demo_in_socket_mode_answers_the_playground_over_the_socket(
    fast_demo: StartDemo,
) -> None:
    demo = await fast_demo("--socket-mode")
    assert "Bot (Socket Mode):" in demo.output()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        body = {"text": "/starpod list", "user": "U0OPERATOR", "channel": "C0OPS"}
        async with http.post(f"{demo.playground_url}/playground/command", json=body) as answer:
            assert answer.status == 200, await answer.text()
        async with http.get(f"{demo.bot_url}/readyz") as ready:
            checks = (await ready.json())["checks"]
    assert checks["slack socket"] == "ok"

    def listed(state: dict[str, Any]) -> bool:
        return any(demo.stale_name in str(m) for m in state["ephemerals"])

    await wait_for_state(demo, listed, timeout=10, what="the list answered over the socket")
    bot_pid = demo.bot_pid
    await demo.stop()
    assert demo.process is not None and demo.process.returncode == 0, demo.output()
    assert not _alive(bot_pid), "the bot outlived the demo"
    assert "Traceback" not in demo.output()
