"""The diagnostics reply: first in every announced instance incident's thread.

The real monitor and backend simulator, the real AlertService, outbox and delivery on a
SQLite file, the Slack emulator; the logs are read by the production backend client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from bot.alerts.diagnostics import (
    LINE_CHARS,
    LOG_LINES,
    Change,
    Diagnostics,
    LogsRead,
    diagnostics_message,
)
from bot.backend.client import InstanceClient
from bot.backend.models import LogEntry, LogLevel
from bot.sim.slack import Message
from tests.alerts.conftest import Harness
from tests.alerts.test_incident_flow import start


def with_diagnostics(h: Harness, client: InstanceClient, deadline_secs: float = 8.0) -> Harness:
    """Turn the diagnostics reply on, as ``AlertService.from_settings`` does with a client."""
    h.delivery.diagnostics = Diagnostics(h.db, client, clock=h.utc, deadline_secs=deadline_secs)
    h.service.notifier.diagnostics = True
    return h


def code_lines(message: Message) -> list[str]:
    text = json.dumps(message.blocks, ensure_ascii=False)
    body = json.loads(text)
    for block in body:
        shown = (block.get("text") or {}).get("text", "")
        if "```" in shown:
            return shown.split("```")[1].splitlines()
    return []


async def open_stale(h: Harness) -> tuple[str, Message, list[Message]]:
    ids = await start(h)
    victim = ids[0]
    h.sim.stop_heartbeat(victim, sticky=True)
    h.advance(100)
    await h.sweep()
    assert h.sim.calls[("logs", victim)] == 0, "deciding the incident never reads logs"
    await h.deliver()
    [root] = h.channel()
    return victim, root, h.replies(root)


async def test_the_thread_starts_with_logs_health_and_history(
    make_harness: Callable[..., Harness], client: InstanceClient
) -> None:
    h = with_diagnostics(make_harness(), client)
    victim, _, replies = await open_stale(h)
    diagnostics, restart = replies[0], replies[1]
    assert "auto-restart 1 of 3" in restart.text, "the diagnostics come first, then the rest"
    assert diagnostics.text.startswith("Diagnostics for")
    shown = json.dumps(diagnostics.blocks, ensure_ascii=False)
    lines = code_lines(diagnostics)
    assert 0 < len(lines) <= LOG_LINES
    assert all((" ERROR " in line or " WARN " in line) for line in lines), lines
    assert "24 h avg" in shown and "*CPU*" in shown and "*Uptime*" in shown
    assert "Last status changes" in shown and "seen by the monitor" in shown
    assert "running → error" in shown
    [button] = [e for b in diagnostics.blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == "starpod.incident.logs" and button["value"] == "1"
    assert h.sim.calls[("logs", victim)] == 1


async def test_a_failing_backend_gives_one_line_and_the_rest_still_comes(
    make_harness: Callable[..., Harness], client: InstanceClient
) -> None:
    h = with_diagnostics(make_harness(), client)
    h.sim.set_faults(error_rate=1.0, endpoints=["logs"])
    _, _, replies = await open_stale(h)
    shown = json.dumps(replies[0].blocks, ensure_ascii=False)
    assert "logs unavailable: " in shown and "500" in shown
    assert shown.count("logs unavailable") == 1
    assert "*CPU*" in shown and "Last status changes" in shown
    assert replies[0].text.endswith("logs unavailable")


async def test_a_slow_backend_is_cut_at_the_deadline(
    make_harness: Callable[..., Harness], client: InstanceClient
) -> None:
    h = with_diagnostics(make_harness(), client, deadline_secs=0.3)
    h.sim.set_faults(latency_secs=30, endpoints=["logs"])
    _, _, replies = await open_stale(h)
    shown = json.dumps(replies[0].blocks, ensure_ascii=False)
    assert "logs unavailable: the backend did not answer in 0.3 s" in shown


def test_hostile_log_lines_are_escaped_cut_and_bounded() -> None:
    at = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    hostile = [
        LogEntry(timestamp=at, level=LogLevel.ERROR, message="<!channel> ``` *bold* " + "x" * 500)
        for _ in range(LOG_LINES)
    ]
    change = Change(at, "running", "<!here>", "user", "U0ANA", "because <@U0BOB>")
    message = diagnostics_message(7, "pod <!everyone>", LogsRead(hostile, read=99), None, [change])
    shown = json.dumps(message.blocks, ensure_ascii=False)
    assert "<!channel>" not in shown and "<!here>" not in shown and "<!everyone>" not in shown
    assert "<@U0BOB>" not in shown and "<@U0ANA>" in shown, "only the actor is a mention"
    logs = message.blocks[1]["text"]["text"]
    assert logs.count("```") == 2, "a ``` in a line cannot close the block"
    assert len(logs) <= 3000
    assert all(len(line) <= LINE_CHARS + 40 for line in logs.split("```")[1].splitlines())
