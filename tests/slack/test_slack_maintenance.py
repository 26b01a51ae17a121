"""`/starpod maintenance add|list|cancel` through Slack: the real app, the emulator, the
real alert service on the bot's database; audited; bad input answered in one line."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.store.maintenance_models import MaintenanceWindow
from tests.slack.conftest import ADMIN, CHANNEL, OPERATOR, VIEWER, Bot, message_text

ALERTS = "C0ALERTS"


async def windows(bot: Bot) -> list[MaintenanceWindow]:
    async with bot.db.session() as session:
        return list(await session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.id)))


async def test_plan_list_and_cancel_a_window(bot: Bot) -> None:
    bot.settings.alerts.channel = ALERTS
    alerts = bot.use_alerts()
    await bot.use_monitor(alerts)  # the store knows the instances' names, as in production
    # Slack sends "<" as "&lt;".
    await bot.slash('maintenance add pod-00[12] now 2h --no-restart --reason "disk &lt;swap&gt;"')
    planned = await bot.channel_message(lambda m: m.text.startswith("Maintenance #"))
    shown = message_text(planned)
    assert f"<@{OPERATOR}> planned maintenance #1" in shown
    assert "instances matching `pod-00[12]`" in shown and "Auto-restart is off" in shown
    assert "disk &lt;swap&gt;" in shown, "the reason is escaped"
    assert "pod-001" in shown and "pod-002" in shown and "pod-003" not in shown
    [window] = await windows(bot)
    assert (window.target, window.no_restart, window.actor) == ("pod-00[12]", True, OPERATOR)
    assert (window.ends_at - window.starts_at).total_seconds() == 7200
    [entry] = await bot.wait_audit(1)
    assert (entry.action, entry.result) == ("maintenance", "ok")
    assert entry.detail is not None and entry.detail.startswith("planned #1 pod-00[12]")

    # Started at once: said in the alert channel through the outbox.
    assert alerts.delivery is not None
    await alerts.delivery.run_once()
    [started] = bot.emulator.messages(ALERTS)
    assert started.text == "Maintenance #1 started"

    listing = message_text(await bot.ask("maintenance list", user=ADMIN))
    assert "*#1* 🛠 now" in listing and "`pod-00[12]`" in listing

    await bot.slash("maintenance cancel #1", user=ADMIN)
    cancelled = await bot.channel_message(lambda m: m.text == "Maintenance #1 cancelled")
    assert f"<@{ADMIN}> cancelled maintenance #1" in message_text(cancelled)
    await alerts.delivery.run_once()
    assert [m.text for m in bot.emulator.messages(ALERTS)] == [
        "Maintenance #1 started",
        "Maintenance #1 cancelled",
    ]
    again = message_text(await bot.ask("maintenance cancel 1", user=ADMIN))
    assert "Maintenance #1 was already cancelled." in again
    rows = await bot.wait_audit(4)
    assert [r.action for r in rows] == ["maintenance"] * 4
    assert rows[0].result == "error" and rows[1].detail is not None
    assert rows[1].detail.startswith("cancelled #1")
    assert bot.emulator.violations() == []


async def test_viewers_may_not_plan_or_list(bot: Bot) -> None:
    bot.use_alerts()
    for text in ("maintenance list", "maintenance add all now 1h"):
        answer = message_text(await bot.ask(text, user=VIEWER))
        assert "You need the operator role" in answer
    assert [r.result for r in await bot.wait_audit(2)] == ["refused", "refused"]
    assert await windows(bot) == []
    assert bot.emulator.messages(CHANNEL) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("maintenance", "needs `add`, `list` or `cancel`"),
        ("maintenance adx all now 1h", "Did you mean `add`?"),
        ("maintenance add web-[1 now 1h", "never closes"),
        ("maintenance add web/1 now 1h", "is not a name glob"),
        ("maintenance add web-* soon 1h", "is not a start time"),
        ("maintenance add web-* 25:00 1h", "is not a time of day"),
        ("maintenance add web-* now 8d", "lasts at most 7 days"),
        ("maintenance add web-* now 30", "needs a unit"),
        ("maintenance add web-* now", "needs a name glob"),
        ("maintenance cancel x", "is not a window id"),
        ("maintenance list --no-restart", "takes no options"),
    ],
)
async def test_bad_maintenance_text_gets_the_usage_line(bot: Bot, text: str, expected: str) -> None:
    bot.use_alerts()
    shown = message_text(await bot.ask(text))
    assert expected in shown and "Usage:" in shown
    [entry] = await bot.wait_audit(1)
    assert entry.result == "usage"
    assert await windows(bot) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("maintenance add all 2020-01-01T10:00Z 1h", "is in the past"),
        ("maintenance add all 2099-01-01T10:00Z 1h", "at most 90 days ahead"),
        ("maintenance cancel 42", "There is no maintenance window #42"),
    ],
)
async def test_windows_the_bot_cannot_plan_are_answered(bot: Bot, text: str, expected: str) -> None:
    bot.use_alerts()
    shown = message_text(await bot.ask(text))
    assert expected in shown
    [entry] = await bot.wait_audit(1)
    assert entry.result == "error"
    assert await windows(bot) == []
    assert bot.emulator.messages(CHANNEL) == []


async def test_without_the_alerts_feature_it_says_so(bot: Bot) -> None:
    shown = message_text(await bot.ask("maintenance list"))
    assert "need the alerts feature" in shown
