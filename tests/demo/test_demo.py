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


def incident_of(state: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The incident root message about ``name`` in #alerts (one per incident)."""
    roots = [m for m in alert_messages(state) if f"{name} (" in m["text"]]
    assert len(roots) <= 1, "one message per incident"
    return roots[0] if roots else None


def notes(state: dict[str, Any]) -> list[str]:
    """The sidebar's 'About this demo' lines."""
    return list(state["extra"]["notes"])


async def test_demo_heals_one_instance_and_pages_on_call_for_the_wedged_one(
    fast_demo: StartDemo,
) -> None:
    demo = await fast_demo("--duration", "45")
    healing, wedged = demo.healing_name, demo.wedged_name

    def healed(state: dict[str, Any]) -> dict[str, Any] | None:
        # The root is edited before the recovery reply is posted: wait for both.
        found = incident_of(state, healing)
        if not found or not found["text"].startswith("Resolved") or not found["replies"]:
            return None
        return found if found["replies"][-1]["text"].startswith("✅ Recovered") else None

    incident = await wait_for_state(demo, healed, timeout=20, what=f"{healing} healed")
    # Announced open first (on-call mentioned), restarted once by the bot, then resolved.
    assert any("Open" in e["text"] and "subteam" in e["text"] for e in incident["edits"])
    replies = [r["text"] for r in incident["replies"]]
    # The thread opens with the diagnostics (logs, health, history), then the restart.
    assert replies[0].startswith(f"Diagnostics for {healing}"), replies
    assert replies[1].startswith("🔁 auto-restart 1 of 2"), replies
    assert replies[-1].startswith("✅ Recovered"), replies
    assert (await _note_about(demo, healing, "U0OPERATOR")).startswith(f"✅ *{healing}* is back")

    def gave_up(state: dict[str, Any]) -> dict[str, Any] | None:
        found = incident_of(state, wedged)
        if found and any("Auto-restart gave up" in r["text"] for r in found["replies"]):
            return found
        return None

    incident = await wait_for_state(demo, gave_up, timeout=30, what=f"{wedged} paged on-call")
    replies = [r["text"] for r in incident["replies"]]
    assert replies[0].startswith(f"Diagnostics for {wedged}"), replies
    assert [r.split(":")[0] for r in replies[1:3]] == [
        "🔁 auto-restart 1 of 2",
        "🔁 auto-restart 2 of 2",
    ]
    page = next(r for r in replies if "gave up" in r)
    assert page.startswith("<!subteam^S0ONCALL|@oncall>"), page
    assert incident["text"].startswith("<!subteam^S0ONCALL|@oncall> Open:")
    assert "the bot gave up after 2 restarts" in await _note_about(demo, wedged, "U0OPERATOR")

    # A person restarts it from the incident's own button: the heartbeat comes back and the
    # bot resolves the incident.
    restart = next(
        (block["block_id"], element)
        for block in incident["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "starpod.incident.restart"
    )
    await demo.act(incident["ts"], restart[0], restart[1], user="U0OPERATOR")

    def resolved(state: dict[str, Any]) -> dict[str, Any] | None:
        found = incident_of(state, wedged)
        return found if found and found["text"].startswith("Resolved") else None

    incident = await wait_for_state(demo, resolved, timeout=20, what=f"{wedged} resolved")
    assert any("restarted it by hand" in r["text"] for r in incident["replies"])
    state = await demo.state()
    assert f"✅ *{wedged}* is back after a person's restart: incident resolved." in notes(state)
    assert not any("gave up" in note or "in about" in note for note in notes(state))
    await demo.stop()
    assert "Traceback" not in demo.output()


async def test_the_sidebar_follows_the_user_switch(fast_demo: StartDemo) -> None:
    demo = await fast_demo()
    operator = notes(await demo.state("U0OPERATOR"))
    viewer = notes(await demo.state("U0VIEWER"))
    admin = notes(await demo.state("U0ADMIN"))
    assert any(n.startswith("You act as *operator*") for n in operator)
    assert any(n.startswith("You act as *viewer*") for n in viewer)
    assert any(n.startswith("You act as *admin*") for n in admin)
    assert not any(n.startswith("You act as *operator*") for n in viewer + admin)


async def _note_about(demo: DemoProcess, name: str, user: str) -> str:
    return next(n for n in notes(await demo.state(user)) if f"*{name}*" in n)


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
        return any(demo.wedged_name in str(m) for m in state["ephemerals"])

    await wait_for_state(demo, listed, timeout=10, what="the list answered over the socket")
    bot_pid = demo.bot_pid
    await demo.stop()
    assert demo.process is not None and demo.process.returncode == 0, demo.output()
    assert not _alive(bot_pid), "the bot outlived the demo"
    assert "Traceback" not in demo.output()
