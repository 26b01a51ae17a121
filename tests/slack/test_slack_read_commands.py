"""Read-only subcommands end to end: help, list, health, logs, history, audit, status."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.blockkit.ids import ActionId, BlockId, row_block_id
from bot.sim.slack import Message
from bot.store.queries import record_heartbeats, record_status_change, upsert_instances
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot
from tests.slack.conftest import ADMIN, OPERATOR, VIEWER, Bot, message_text


def block_ids(message: Message) -> list[str]:
    return [b.get("block_id", "") for b in message.blocks]


async def test_help_is_ephemeral_and_lists_every_subcommand(bot: Bot) -> None:
    answer = await bot.ask("help", user=VIEWER)
    text = message_text(answer)
    for word in (
        "list",
        "create",
        "health",
        "logs",
        "ssh",
        "pause",
        "restart",
        "kill",
        "history",
        "mute",
        "unmute",
        "audit",
        "status",
    ):
        assert f"/starpod {word}" in text
    assert "Your role: *viewer*" in text
    assert answer.ephemeral_for == VIEWER
    assert bot.emulator.messages("C0OPS") == []  # nothing in the channel
    assert bot.emulator.violations() == []


async def test_empty_command_shows_help(bot: Bot) -> None:
    assert "/starpod list" in message_text(await bot.ask(""))


async def test_help_topic(bot: Bot) -> None:
    text = message_text(await bot.ask("help logs"))
    assert "--tail 500 --level warn" in text


async def test_list_shows_every_instance_with_counts_and_menus(bot: Bot) -> None:
    bot.sim.set_status(bot.ids[0], "error")
    answer = await bot.ask("list", user=VIEWER)
    text = message_text(answer)
    assert "*5 instances*" in text and "🔴 1 error" in text and "🟢 4 running" in text
    for instance_id in bot.ids:
        assert row_block_id(instance_id) in block_ids(answer)
    # Broken first: the error instance is the first row.
    assert block_ids(answer)[1] == row_block_id(bot.ids[0])
    row = answer.blocks[1]
    assert row["accessory"]["type"] == "overflow"
    assert [o["text"]["text"] for o in row["accessory"]["options"]] == [
        "Health",
        "Logs",
        "SSH",
        "Restart",
        "Kill…",
    ]
    assert bot.emulator.violations() == []


async def test_list_filters_by_status_and_region(bot: Bot) -> None:
    bot.sim.set_status(bot.ids[1], "paused")
    paused = await bot.ask("list --status paused")
    rows = [b for b in block_ids(paused) if b.startswith(BlockId.LIST_ROW)]
    assert rows == [row_block_id(bot.ids[1])]
    region = bot.sim.instance(bot.ids[2])["region"]
    by_region = await bot.ask(f"list --region {region.upper()}")
    assert row_block_id(bot.ids[2]) in block_ids(by_region)
    nothing = await bot.ask("list --region mars-1")
    assert "No instance matches" in message_text(nothing)


async def test_500_instances_are_paged_within_slack_limits(bot: Bot) -> None:
    bot.sim.seed_instances(495, name_prefix="bulk")
    page = await bot.ask("list")
    seen: set[str] = set()
    pages = 0
    while True:
        pages += 1
        assert len(page.blocks) <= 50
        seen |= {b.split(":", 1)[1] for b in block_ids(page) if b.startswith(BlockId.LIST_ROW)}
        pager = next(b for b in page.blocks if b.get("block_id") == BlockId.LIST_PAGER)
        if not any(e["action_id"] == ActionId.LIST_PAGE_NEXT for e in pager["elements"]):
            break
        edits = len(page.edits)
        await bot.click(page, ActionId.LIST_PAGE_NEXT)
        # The page is replaced in place (response_url with replace_original).
        await bot.emulator.wait_for(lambda p=page, e=edits: len(p.edits) > e)
    assert pages == 25
    assert seen == set(bot.sim.instance_ids())
    assert bot.emulator.violations() == []


async def test_previous_page(bot: Bot) -> None:
    bot.sim.seed_instances(30)
    page = await bot.ask("list")
    await bot.click(page, ActionId.LIST_PAGE_NEXT)
    await bot.emulator.wait_for(lambda: len(page.edits) == 1)
    assert "Page 2 of 2" in message_text(page)
    await bot.click(page, ActionId.LIST_PAGE_PREV)
    await bot.emulator.wait_for(lambda: len(page.edits) == 2)
    assert "Page 1 of 2" in message_text(page)


async def _store_samples(bot: Bot, instance_id: str, now: datetime) -> None:
    async def write(session: Any) -> None:
        await upsert_instances(
            session,
            instances=[InstanceSnapshot(instance_id, "pod-001", "x", "running")],
            seen_at=now - timedelta(days=2),
        )
        await record_status_change(
            session,
            instance_id=instance_id,
            from_status=None,
            to_status="running",
            at=now - timedelta(days=2),
            cause="monitor",
        )
        samples = [
            HeartbeatSampleIn(
                instance_id=instance_id,
                sampled_at=now - timedelta(minutes=59) + timedelta(seconds=30 * i),
                cpu_percent=float(i % 100),
                memory_mb=500 + i,
                disk_mb=1000,
                last_heartbeat=now - timedelta(minutes=59) + timedelta(seconds=30 * i),
                uptime_secs=1000 + 30 * i,
            )
            for i in range(118)
        ]
        await record_heartbeats(session, samples=samples)

    await bot.db.run(write)


async def test_health_shows_live_figures_sparklines_and_uptime(bot: Bot) -> None:
    instance_id = bot.ids[0]
    await _store_samples(bot, instance_id, bot.clock())
    answer = await bot.ask("health pod-001", user=VIEWER)
    text = message_text(answer)
    live = bot.sim.health(instance_id)
    assert f"{live['cpu_percent']:.1f} %" in text
    assert "118 samples" in text and "CPU " in text and "▁" in text
    assert "100.0 %" in text  # running for the whole 24 h window
    assert "stale" not in text
    assert bot.emulator.violations() == []


async def test_health_marks_a_stale_heartbeat(bot: Bot) -> None:
    bot.sim.stop_heartbeat(bot.ids[1])
    bot.clock.advance(200)  # the bot's clock runs ahead: the heartbeat is 200 s old
    text = message_text(await bot.ask(f"health {bot.ids[1][:6]}"))
    assert "stale: over 1 m 30 s" in text


async def test_health_card_buttons_lead_to_logs(bot: Bot) -> None:
    card = await bot.ask("health pod-002")
    logs = await bot.click_for_answer(card, ActionId.CARD_LOGS)
    assert "📜" in message_text(logs)


async def test_logs_default_and_filters(bot: Bot) -> None:
    instance_id = bot.ids[0]
    answer = await bot.ask("logs pod-001", user=VIEWER)
    text = message_text(answer)
    assert "the last 50 lines, times in UTC" in text
    expected = bot.sim.log_entries(instance_id, 50)
    assert expected[-1]["message"][:20] in text.replace("&amp;", "&").replace("&lt;", "<").replace(
        "&gt;", ">"
    )
    warn = await bot.ask("logs pod-001 --tail 200 --level warn")
    body = "\n".join(b["text"]["text"] for b in warn.blocks[1:] if b["type"] == "section")
    assert "🟢" not in body and "⚪" not in body
    assert "🟡" in body or "🔴" in body
    assert bot.emulator.violations() == []


async def test_logs_grep_without_match(bot: Bot) -> None:
    answer = await bot.ask('logs pod-001 --grep "zz-no-such-text-zz"')
    assert "None of the last 50 lines" in message_text(answer)


async def test_10000_log_lines_go_to_a_file_in_the_users_dm(bot: Bot) -> None:
    answer = await bot.ask("logs pod-001 --tail 10000", wait=20)
    assert "too long for a message" in message_text(answer)
    assert len(answer.blocks) <= 50
    assert len(bot.emulator.files) == 1
    uploaded = bot.emulator.files[0]
    # The user's DM (the D… id conversations.open gave), not the channel.
    assert uploaded.channel_id == bot.emulator.dm_channel(OPERATOR)
    assert bot.emulator.workspace.dms[uploaded.channel_id] == OPERATOR
    assert uploaded.content.decode().count("\n") == 10_000
    assert bot.emulator.messages("C0OPS") == []
    assert bot.emulator.violations() == []


async def test_history_after_a_restart_names_the_user(bot: Bot) -> None:
    bot.sim.set_status(bot.ids[0], "paused")
    await bot.slash("restart pod-001", user=ADMIN)
    await bot.channel_message(lambda m: "running again" in m.text)
    text = message_text(await bot.ask("history pod-001"))
    assert "<@U0ADMIN>" in text and "*running* from paused" in text


async def test_history_of_a_killed_instance_is_still_there(bot: Bot) -> None:
    prompt = await bot.ask("kill pod-003", user=ADMIN)
    await bot.click(prompt, ActionId.KILL_CONFIRM, user=ADMIN)
    await bot.channel_message(lambda m: "killed after" in m.text)
    text = message_text(await bot.ask("history pod-003"))
    assert "stopped" in text and "<@U0ADMIN>" in text


async def test_audit_lists_the_latest_entries(bot: Bot) -> None:
    await bot.ask("list")
    await bot.ask("lsit")
    await bot.ask("kill pod-001")  # operator: refused
    await bot.ask("health pod-001")
    await bot.wait_audit(4)
    text = message_text(await bot.ask("audit", user=VIEWER))
    assert "`list`" in text and "→ ok" in text
    assert "`lsit`" in text and "→ usage" in text
    assert "`kill`" in text and "→ refused" in text
    one = message_text(await bot.ask("audit pod-001"))
    assert "`health`" in one and "`list`" not in one


async def test_status_without_monitor_or_alerts(bot: Bot) -> None:
    text = message_text(await bot.ask("status", user=VIEWER))
    assert "starpod-bot" in text and "answered in" in text and "5 instances" in text
    assert "not running in this process" in text
    assert "alerts feature" in text


async def test_status_with_monitor_and_incidents(bot: Bot) -> None:
    bot.sim.set_status(bot.ids[0], "error")  # pod-001: the sweep opens its incident
    alerts = bot.use_alerts()
    await bot.use_monitor(alerts)
    [incident] = await alerts.open_incidents()
    bot.clock.advance(12)  # the sweep ran 12 s ago
    text = message_text(await bot.ask("status"))
    assert "12 s ago" in text and "leader" in text and "5 instances, 0 stale" in text
    assert "Open incidents* (1)" in text
    assert f"#{incident.id} pod-001 ({bot.ids[0][:8]}): in error, open since" in text


async def test_status_when_the_backend_is_down(bot: Bot) -> None:
    bot.sim.set_faults(down=True)
    text = message_text(await bot.ask("status"))
    assert "🔴" in text and "503" in text
