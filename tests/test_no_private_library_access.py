"""A guard: the bot reads and patches no private attribute of a library.

APScheduler's executors, slack-sdk's Socket Mode client and uvicorn's signal handling
all have supported extension points (see bot/scheduling.py, bot/slack/socket_mode.py,
bot/web/server.py); this keeps the old patches from coming back.
"""

from __future__ import annotations

import re
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"

FORBIDDEN = (
    r"\._executors\b",
    r"\b_pending_futures\b",
    r"\.send_socket_mode_response\s*=",
    r"\.install_signal_handlers\s*=",
    r"\.capture_signals\s*=",
    r"\._async_listener_runner\b",
    r"\._async_middleware_list\b",
    r"\._async_listeners\b",
    r"\._value2member_map_\b",
    r"\._member_map_\b",
)


def test_no_private_library_attribute_is_read_or_patched() -> None:
    found = []
    for path in sorted(BOT.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for pattern in FORBIDDEN:
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(BOT.parent)}:{number}: {line.strip()}")
    assert found == []
