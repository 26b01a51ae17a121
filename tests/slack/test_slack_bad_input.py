"""Every bad input gets a clear ephemeral answer: never a stack trace, never silence."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, text

from bot.blockkit.ids import ActionId
from bot.sim.slack import Message
from bot.store.alert_models import AlertMute
from tests.slack.conftest import ADMIN, CHANNEL, OPERATOR, Bot, message_text


def assert_clean(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("restrat pod-001", "Did you mean `restart`?"),
        ("lgos pod-001", "Did you mean `logs`?"),
        ("stop pod-001", "Did you mean `pause` or `kill`?"),
        ("logs", "`logs` needs an instance"),
        ("logs pod-001 --tail 0", "1 to 10000"),
        ("logs pod-001 --tial 5", "Did you mean `--tail`?"),
        ("logs pod-001 --level loud", "error, warn, info, debug"),
        ('logs pod-001 --grep "open', "never closed"),
        ("list --status runing", "Did you mean `running`?"),
        ("mute pod-001 30", "needs a unit"),
        ("budget", "needs what to do and an instance"),
        ("budget rest pod-001", "Did you mean `reset`?"),
        ("budget reset", "`budget` needs an instance"),
        ("budget reset pod-001 pod-002", "Too many words"),
        ("health pod-001 extra", "Too many words"),
        ("xyzzy", "Unknown subcommand"),
    ],
)
async def test_usage_answers(bot: Bot, text: str, expected: str) -> None:
    answer = await bot.ask(text)
    shown = message_text(answer)
    assert expected in shown
    assert "Usage:" in shown
    assert answer.ephemeral_for == OPERATOR
    assert_clean(shown)
    [entry] = await bot.wait_audit(1)
    assert entry.result == "usage"
    assert bot.emulator.violations() == []


async def test_usage_line_shows_the_subcommand(bot: Bot) -> None:
    shown = message_text(await bot.ask("restrat pod-001"))
    assert "Usage: `/starpod restart &lt;id&gt;`" in shown  # escaped, shows as <id>


async def test_unknown_instance(bot: Bot) -> None:
    shown = message_text(await bot.ask("health nope-nope"))
    assert "No instance matches `nope-nope`" in shown
    assert "`/starpod list`" in shown


async def test_an_unknown_name_gets_the_nearest_names(bot: Bot) -> None:
    """Issue 16: `/starpod health pod` only said that nothing matched."""
    shown = message_text(await bot.ask("health pod"))
    assert "No instance matches `pod`" in shown
    assert "Did you mean `pod-001`, `pod-002` or `pod-003`?" in shown


async def test_an_action_needs_four_characters_of_a_prefix_a_read_does_not(bot: Bot) -> None:
    """Issue 16: `/starpod pause 8` paused pod-001."""
    solo = bot.sim.add_instance(name="solo", id="zq12-0000-4000-8000-000000000000")
    shown = message_text(await bot.ask("pause z"))
    assert "`z` is too short to act on: type at least 4 characters" in shown
    assert "Nothing was done" in shown
    assert solo in shown and "solo" in shown
    assert bot.sim.instance(solo)["status"] == "running"
    [entry] = await bot.wait_audit(1)
    assert entry.result == "error" and "too short" in (entry.detail or "")
    # Reading with the same prefix is harmless: the card comes back.
    card = message_text(await bot.ask("health z"))
    assert "*solo*" in card
    # Four characters act.
    await bot.slash("pause zq12")
    await bot.channel_message(lambda m: "paused after" in m.text)
    assert bot.sim.instance(solo)["status"] == "paused"


async def test_ambiguous_prefix_lists_the_candidates(bot: Bot) -> None:
    first = bot.ids[0]
    bot.sim.add_instance(name="twin", id=first[:6] + "00-0000-4000-8000-000000000000")
    shown = message_text(await bot.ask(f"health {first[:4]}"))
    assert "matches 2 instances" in shown
    assert first in shown and "twin" in shown
    assert "Type more of the id" in shown


async def test_backend_500_shows_status_and_body(bot: Bot) -> None:
    bot.sim.set_faults(error_rate=1.0, endpoints={"list"})
    shown = message_text(await bot.ask("list"))
    assert "500" in shown and "Internal Server Error" in shown
    assert_clean(shown)
    [entry] = await bot.wait_audit(1)
    assert entry.result == "error" and "500" in (entry.detail or "")


async def test_backend_down(bot: Bot) -> None:
    await bot.sim.stop()
    shown = message_text(await bot.ask("health pod-001", wait=10))
    assert "Backend unreachable" in shown
    assert "the bot itself is up" in shown
    assert_clean(shown)


async def test_backend_garbage(bot: Bot) -> None:
    bot.sim.set_faults(garbage_rate=1.0, endpoints={"list"})
    shown = message_text(await bot.ask("list"))
    assert "unreadable answer" in shown


def parsed_text(message: Message) -> str:
    """What Slack parses for mentions: the fallback text and every mrkdwn text object."""
    return message.mrkdwn_text()


async def test_an_instance_named_channel_pings_nobody(bot: Bot) -> None:
    bot.sim.add_instance(name="<!channel>", id="e0e0e0e0-0000-4000-8000-000000000000")
    bot.sim.add_instance(name="<@U0ADMIN> & co", id="e1e1e1e1-0000-4000-8000-000000000000")
    answers = [
        await bot.ask("list"),
        await bot.ask("health e0e0e0e0"),
        await bot.ask("history e0e0e0e0"),
        await bot.ask("kill e0e0e0e0", user=ADMIN),
        await bot.ask("logs e1e1e1e1"),
    ]
    await bot.slash("restart e0e0e0e0")
    announcement = await bot.channel_message(lambda m: "running again" in m.text)
    for message in [*answers, announcement, *announcement_versions(announcement)]:
        parsed = parsed_text(message)
        assert "<!channel>" not in parsed
        assert "<@U0ADMIN> &" not in parsed
    assert "&lt;!channel&gt;" in parsed_text(answers[0])
    assert "&lt;@U0ADMIN&gt; &amp; co" in parsed_text(answers[0])
    assert bot.emulator.violations() == []


def announcement_versions(message: Message) -> list[Message]:
    return [
        Message(ts=message.ts, channel=message.channel, text=v.text, blocks=v.blocks)
        for v in message.edits
    ]


async def test_unexpected_errors_show_an_id_and_are_logged(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    bot.use_alerts()
    # A real failure under the handler, not a stand-in: the mutes table is gone.
    async with bot.db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE alert_mutes"))
    with caplog.at_level(logging.ERROR):
        shown = message_text(await bot.ask("mute pod-001 1h"))
    assert "Something went wrong on my side (error id `" in shown
    assert_clean(shown)
    error_id = shown.split("error id `", 1)[1].split("`", 1)[0]
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
    [entry] = await bot.wait_audit(1)
    assert entry.result == "error" and error_id in (entry.detail or "")


async def test_mute_without_the_alerts_feature_says_so(bot: Bot) -> None:
    shown = message_text(await bot.ask("mute pod-001 2h"))
    assert "Muting arrives with the alerts feature; not available yet." in shown
    shown = message_text(await bot.ask("unmute pod-001"))
    assert "not available yet" in shown


async def alert_mutes(bot: Bot) -> list[AlertMute]:
    """Every mute the alert service recorded, oldest first."""
    async with bot.db.session() as session:
        return list(await session.scalars(select(AlertMute).order_by(AlertMute.id)))


async def test_mute_and_unmute_with_alerts(bot: Bot) -> None:
    bot.use_alerts()
    await bot.slash("mute pod-001 2h --no-restart")
    muted = await bot.channel_message(lambda m: "muted" in m.text)
    assert "Auto-restart is off too" in message_text(muted)
    [mute] = await alert_mutes(bot)
    assert mute.instance_id == bot.ids[0] and mute.no_restart and mute.actor == OPERATOR
    assert mute.ended_at is None
    assert 7190 < (mute.until - bot.clock()).total_seconds() <= 7200
    await bot.slash("unmute pod-001")
    await bot.channel_message(lambda m: "unmuted alerts for *pod-001*" in message_text(m))
    [mute] = await alert_mutes(bot)
    assert (mute.instance_id, mute.ended_how, mute.ended_by) == (bot.ids[0], "unmuted", OPERATOR)


async def test_unmute_in_the_alert_channel_is_not_said_twice(bot: Bot) -> None:
    bot.settings.alerts.channel = CHANNEL  # where the alerts feature posts its own notice
    alerts = bot.use_alerts()
    await bot.slash("mute pod-001 1h")  # the mute itself is announced here (nothing else does)
    await bot.channel_message(lambda m: "muted alerts" in message_text(m))
    answer = await bot.ask("unmute pod-001")
    assert "unmuted alerts for *pod-001*" in message_text(answer)
    assert alerts.delivery is not None
    await alerts.delivery.run_once()  # the alerts feature's own notice, sent now
    [notice] = [m for m in bot.emulator.messages(CHANNEL) if "are on again" in m.text]
    assert "unmuted by <@U0OPERATOR>" in message_text(notice)
    assert [m for m in bot.emulator.messages(CHANNEL) if "unmuted" in m.text] == []


async def test_unmute_of_an_instance_that_was_not_muted(bot: Bot) -> None:
    bot.use_alerts()
    answer = await bot.ask("unmute pod-002")
    assert "was not muted" in message_text(answer)


async def test_wrong_menu_value_is_answered(bot: Bot) -> None:
    page = await bot.ask("list")
    reply = await bot.emulator.send_block_action(
        bot.events_url,
        action_id=ActionId.ROW_MENU,
        user_id=OPERATOR,
        channel_id=CHANNEL,
        selected_option_value="explode:whatever",
        action_type="overflow",
    )
    assert reply.status_code == 200
    await bot.emulator.wait_for(
        lambda: any("not one I know" in m.text for m in bot.emulator.ephemerals(OPERATOR))
    )
    assert page is not None


async def test_budget_reset_with_alerts_is_announced_and_recorded(bot: Bot) -> None:
    from bot.store.models import RestartBudgetReset

    bot.use_alerts()
    await bot.slash("budget reset pod-001")
    said = await bot.channel_message(lambda m: "Restart budget" in m.text)
    assert f"<@{OPERATOR}> reset the auto-restart budget of *pod-001*" in message_text(said)
    async with bot.db.session() as session:
        [row] = list(await session.scalars(select(RestartBudgetReset)))
    assert (row.instance_id, row.actor, row.source) == (bot.ids[0], OPERATOR, "slack")
    [entry] = await bot.wait_audit(1)
    assert (entry.action, entry.result, entry.instance_id) == ("budget", "ok", bot.ids[0])


async def test_budget_reset_without_the_alerts_feature_says_so(bot: Bot) -> None:
    shown = message_text(await bot.ask("budget reset pod-001"))
    assert "alerts feature, which is not running" in shown
