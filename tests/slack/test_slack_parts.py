"""The Slack surface's parts on their own: work slots, click dedupe, roles, the audit log."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog import Role
from bot.config import AccessSettings, Settings
from bot.errors import AccessDenied, ConfigError
from bot.sim.slack import SlackEmulator
from bot.slack import SlackDeps, SshLinkService, build_web_client, create_app
from bot.slack.access import Access, needed_role
from bot.slack.dedupe import ClickDeduper
from bot.slack.slots import WorkSlots
from bot.store.audit import AuditDraft, AuditLog, latest_audit, record_audit
from bot.store.database import Database

# -- work slots ----------------------------------------------------------------------------


async def test_work_slots_bound_concurrency() -> None:
    slots = WorkSlots(2)
    running = 0
    peak = 0

    async def work() -> None:
        nonlocal running, peak
        async with slots.hold():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(work() for _ in range(10)))
    assert peak == 2


async def test_work_slots_count_who_waits_for_one() -> None:
    slots = WorkSlots(1)
    release = asyncio.Event()
    entered = asyncio.Event()

    async def holder() -> None:
        async with slots.hold():
            entered.set()
            await release.wait()

    async def waiter() -> None:
        async with slots.hold():
            assert slots.queued == 0

    first = asyncio.create_task(holder())
    await entered.wait()
    second = asyncio.create_task(waiter())
    for _ in range(3):  # loop turns, not time: the waiter reaches the semaphore in one
        await asyncio.sleep(0)
    assert slots.queued == 1
    release.set()
    await asyncio.gather(first, second)
    assert slots.queued == 0


async def test_waiting_gives_the_slot_back() -> None:
    slots = WorkSlots(1)
    order: list[str] = []

    async def poller() -> None:
        async with slots.hold():
            order.append("poll start")
            async with slots.waiting():
                assert not slots.held
                await asyncio.sleep(0.05)
            assert slots.held
            order.append("poll end")

    async def quick() -> None:
        await asyncio.sleep(0.01)
        async with slots.hold():
            order.append("quick")

    await asyncio.gather(poller(), quick())
    assert order == ["poll start", "quick", "poll end"]


async def test_slots_are_reentrant_and_waiting_outside_is_harmless() -> None:
    slots = WorkSlots(1)
    async with slots.hold(), slots.hold():
        assert slots.held
    async with slots.waiting():
        assert not slots.held
    with pytest.raises(ValueError):
        WorkSlots(0)


# -- dedupe and in-flight ------------------------------------------------------------------


def test_click_deduper_remembers_for_a_while() -> None:
    now = [0.0]
    clicks = ClickDeduper(ttl=10, max_keys=3, monotonic=lambda: now[0])
    assert clicks.first_time("ts1", "U1", "a")
    assert not clicks.first_time("ts1", "U1", "a")
    assert clicks.first_time("ts1", "U2", "a")
    now[0] = 11
    assert clicks.first_time("ts1", "U1", "a")  # forgotten after the TTL
    for i in range(10):
        clicks.first_time(f"k{i}")
    assert len(clicks._seen) <= 3


# -- roles ---------------------------------------------------------------------------------


def test_needed_roles() -> None:
    assert needed_role("list", configured=True) is Role.VIEWER
    assert needed_role("restart", configured=True) is Role.OPERATOR
    assert needed_role("kill", configured=True) is Role.ADMIN
    assert needed_role("kill", configured=False) is Role.OPERATOR
    assert needed_role("acknowledge", configured=True) is Role.OPERATOR
    assert needed_role("launch-missiles", configured=True) is Role.ADMIN


async def test_roles_from_users_and_groups(slack_emulator: SlackEmulator) -> None:
    slack_emulator.add_usergroup("S0ADMINS", ["U0BOSS"])
    slack_emulator.add_usergroup("S0OPS", ["U0OPS", "U0BOSS"])
    web = AsyncWebClient(token=slack_emulator.bot_token, base_url=slack_emulator.api_url)
    access = Access(
        AccessSettings(admins=["S0ADMINS"], operators=["S0OPS"], viewers=["U0VIEW"]), web
    )
    assert await access.role_of("U0BOSS") is Role.ADMIN
    assert await access.role_of("U0OPS") is Role.OPERATOR
    assert await access.role_of("U0VIEW") is Role.VIEWER
    assert await access.role_of("U0OTHER") is None
    assert await access.check("U0OPS", "C0OPS", "restart") is Role.OPERATOR
    with pytest.raises(AccessDenied) as refused:
        await access.check("U0OPS", "C0OPS", "kill")
    assert refused.value.needed_role == "admin"
    assert "You need the admin role to use `/starpod kill` (your role is operator)" in str(
        refused.value
    )
    with pytest.raises(AccessDenied, match="you have no role"):
        await access.check("U0OTHER", "C0OPS", "list")


async def test_group_cache_expires_and_keeps_stale_members_on_failure(
    slack_emulator: SlackEmulator,
) -> None:
    slack_emulator.add_usergroup("S0OPS", ["U0OPS"])
    web = AsyncWebClient(token=slack_emulator.bot_token, base_url=slack_emulator.api_url)
    now = [0.0]
    access = Access(
        AccessSettings(operators=["S0OPS"]), web, group_ttl=60, monotonic=lambda: now[0]
    )
    assert await access.role_of("U0OPS") is Role.OPERATOR
    await asyncio.gather(*(access.role_of("U0OPS") for _ in range(5)))
    assert len(slack_emulator.calls_to("usergroups.users.list")) == 1
    now[0] = 61
    slack_emulator.fail_next(1, status=500, methods={"usergroups.users.list"})
    assert await access.role_of("U0OPS") is Role.OPERATOR  # stale beats nobody
    slack_emulator.add_usergroup("S0OPS", [])
    now[0] = 200
    assert await access.role_of("U0OPS") is None  # refreshed: removed from the group


async def test_open_access_everyone_is_an_operator() -> None:
    web = AsyncWebClient(token="xoxb-x", base_url="http://127.0.0.1:9/api/")
    access = Access(AccessSettings(), web)
    assert await access.role_of("U0ANYONE") is Role.OPERATOR
    assert await access.check("U0ANYONE", None, "kill") is Role.OPERATOR


# -- audit ---------------------------------------------------------------------------------


async def test_audit_log_writes_once_and_reads_newest_first(db: Database) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    audit = AuditLog(db, lambda: now[0])
    first = AuditDraft(user_id="U1", channel_id="C1", source="slash", action="list")
    await audit.write(first)
    await audit.write(first)  # a second write of the same draft does nothing
    now[0] += timedelta(seconds=1)
    second = AuditDraft(user_id="U2", channel_id="C1", source="button", action="restart")
    second.instance_id = "i-1"
    second.fail("error", "x" * 5000)
    await audit.write(second)
    rows = await audit.latest()
    assert [r.action for r in rows] == ["restart", "list"]
    assert len(rows[0].detail or "") == 2000  # bounded
    assert [r.action for r in await audit.latest(instance_id="i-1")] == ["restart"]


async def test_audit_refuses_unknown_sources_and_results(db: Database) -> None:
    async def bad_source(session):  # type: ignore[no-untyped-def]
        await record_audit(
            session, at=datetime.now(UTC), user_id="U", channel_id=None, source="email", action="x"
        )

    with pytest.raises(ValueError):
        await db.run(bad_source)
    async with db.session() as session:
        assert await latest_audit(session) == []


async def test_an_audit_write_failure_never_raises() -> None:
    broken = Database("sqlite:///:memory:")  # never migrated: the table does not exist
    audit = AuditLog(broken, lambda: datetime.now(UTC))
    await audit.write(AuditDraft(user_id="U", channel_id=None, source="slash", action="list"))
    await broken.dispose()


# -- create_app's checks ----------------------------------------------------------------------


async def test_create_app_needs_a_secret_or_an_app_token(db: Database) -> None:
    settings = Settings.model_validate({"slack": {"bot_token": "xoxb-1"}})
    web = build_web_client(settings)
    links = SshLinkService(db, public_url=None)
    deps = SlackDeps(backend=None, db=db, web=web, ssh_links=links)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        create_app(settings, deps)
    socket_only = Settings.model_validate({"slack": {"bot_token": "xoxb-1", "app_token": "xapp-1"}})
    assert create_app(socket_only, deps) is not None
    no_token = Settings.model_validate({"slack": {"signing_secret": "s"}})
    deps.web = build_web_client(no_token)
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        create_app(no_token, deps)


async def test_create_app_does_not_warn_about_the_token_it_means_to_skip(
    db: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Production sets SLACK_BOT_TOKEN, which Bolt reads by itself and then skips.
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    settings = Settings.model_validate({"slack": {"bot_token": "xoxb-1", "signing_secret": "s"}})
    links = SshLinkService(db, public_url=None)
    deps = SlackDeps(backend=None, db=db, web=build_web_client(settings), ssh_links=links)  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG):
        create_app(settings, deps)
    assert not [r for r in caplog.records if "`token`" in r.getMessage()]
