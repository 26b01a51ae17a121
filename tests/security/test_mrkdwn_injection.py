"""mrkdwn injection: names, statuses, error bodies and log lines render inert in Slack.

An instance named with Slack's control sequences (``<!channel>``, ``<@U…>``, a link, an
HTML entity), a status the backend made up to carry one (it comes back in a 409 error body),
and log lines carrying them: through the real bot into the Slack emulator. Nothing the bot
posted may contain those sequences live: they must arrive escaped (``&lt;!channel&gt;``),
so Slack shows them as typed and pings nobody.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.backend.models import Instance, LogEntry, LogLevel
from bot.slack.blocks.logs import log_answer

OPERATOR = "U0OPERATOR"
EVIL = "<!channel> <@U0ADMIN> &lt;b&gt; <http://evil.example|click> <!subteam^S0X>"
LIVE = ("<!channel>", "<!here>", "<@U0ADMIN>", "<http://evil", "<!subteam^S0X>", "&lt;b&gt;")


def _texts(bot: Any) -> list[str]:
    """Every text Slack parses as mrkdwn: message fallbacks and ``mrkdwn`` text objects.

    ``plain_text`` objects (button labels, confirm dialogs) are never parsed for mentions or
    links, so a raw name there is shown as typed and is inert by construction.
    """
    snapshot = bot.slack.snapshot()
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "plain_text":
                return
            for key, item in value.items():
                if key == "text" and isinstance(item, str):
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk({k: v for k, v in snapshot.items() if k not in ("calls", "responses")})
    walk([post["body"] for post in snapshot["responses"]])
    return found


async def test_names_statuses_and_error_bodies_render_inert(
    bot: Any, reliability_figures: dict[str, object]
) -> None:
    evil_id = bot.sim.add_instance(name=EVIL, region="<!here>")
    odd_id = bot.sim.add_instance(name="odd-status")
    bot.sim.set_status(odd_id, "<!here>")  # its 409 body says "instance is <!here>"
    answers = [
        await bot.command("list", user=OPERATOR),
        await bot.command(f"health {evil_id[:8]}", user=OPERATOR),
        await bot.command(f"restart {odd_id[:8]}", user=OPERATOR),
        await bot.command(f"history {evil_id[:8]}", user=OPERATOR),
        await bot.command(f"pause {evil_id[:8]}", user=OPERATOR),
        await bot.command("health <!channel>", user=OPERATOR),
    ]
    seen = "\n".join(bot.visible(a) for a in answers)
    assert "&lt;!channel&gt;" in seen and "&lt;!here&gt;" in seen  # shown, as text
    texts = _texts(bot)
    live = sorted({seq for text in texts for seq in LIVE if seq in text})
    assert live == [], [t for t in texts if any(seq in t for seq in LIVE)]
    reliability_figures.update(messages_checked=len(texts), live_sequences=0)


def test_log_lines_render_inert() -> None:
    instance = Instance.model_validate({"id": "a1b2c3d4-0000", "name": EVIL, "status": "running"})
    now = datetime(2026, 3, 14, tzinfo=UTC)
    entries = [
        LogEntry(timestamp=now, level=LogLevel.ERROR, message=EVIL),
        LogEntry(timestamp=now, level=LogLevel.INFO, message="```" + EVIL + "```"),
    ]
    answer = log_answer(instance, entries, fetched=2, tail=50)
    texts = [answer.reply.text, *(b["text"]["text"] for b in answer.reply.blocks if "text" in b)]
    assert not any(seq in text for text in texts for seq in LIVE), texts
