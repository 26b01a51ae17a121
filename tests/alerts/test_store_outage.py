"""The alert channel hears, directly (not through the outbox), when writes stop and return.

The database is a real PostgreSQL database switched to ``default_transaction_read_only``
and back; Slack is the emulator, reached by a real ``AsyncWebClient``, made to fail once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts.store_outage import StoreOutageNotice, check_every_secs
from bot.sim.slack import SlackEmulator
from bot.store.alert_models import AlertOutbox
from bot.store.database import Database
from bot.store.errors import StoreUnwritable
from bot.store.models import LeaderLease
from tests.alerts.conftest import ALERTS, web_client
from tests.support.databases import pg_execute

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def _write(db: Database) -> None:
    """A write, as a sweep makes one every interval (refused while read-only)."""

    async def touch(session: AsyncSession) -> None:
        session.add(
            LeaderLease(name="touch", holder="t", acquired_at=T0, renewed_at=T0, expires_at=T0)
        )
        await session.flush()
        await session.delete(await session.get(LeaderLease, "touch"))

    await db.run(touch)


async def _read_only(db: Database, admin_url: str, on: bool) -> None:
    """Switch ``db``'s database (from the maintenance one); new connections see it."""
    name = make_url(db.url).database
    value = "on" if on else "off"
    await pg_execute(
        admin_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}'
    )
    await db.dispose()


async def test_one_message_when_writes_stop_one_when_they_return_despite_a_slack_failure(
    pg_store: Database,
    postgres_url: str,
    slack_emulator: SlackEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack = slack_emulator
    leading = False
    notice = StoreOutageNotice(pg_store, web_client(slack), ALERTS, may_post=lambda: leading)
    await _write(pg_store)
    await notice.check()
    assert pg_store.writes.writable and slack.messages(ALERTS) == []

    await _read_only(pg_store, postgres_url, True)
    try:
        with pytest.raises(StoreUnwritable):
            await _write(pg_store)
        await notice.check()  # a replica that does not lead says nothing
        assert not pg_store.writes.writable and slack.messages(ALERTS) == []
        leading = True
        slack.fail_next(1, status=500, body="html", methods={"chat.postMessage"})
        caplog.set_level(logging.WARNING, logger="bot.alerts.store_outage")
        await notice.check()  # Slack fails: logged, tried again at the next check
        assert slack.messages(ALERTS) == []
        assert any("could not post the database degraded" in r.getMessage() for r in caplog.records)
        for _ in range(3):
            await notice.check()
        degraded = slack.messages(ALERTS)
        assert len(degraded) == 1 and notice.announced_since is not None
        assert "Monitoring is degraded" in degraded[0].text
        assert f"database is read-only: {pg_store.safe_url} refuses writes" in degraded[0].text
        async with pg_store.session() as session:  # not through the outbox
            assert await session.scalar(select(func.count()).select_from(AlertOutbox)) == 0
    finally:
        await _read_only(pg_store, postgres_url, False)

    for _ in range(3):
        await notice.check()
    assert pg_store.writes.writable and notice.announced_since is None
    texts = [m.text for m in slack.messages(ALERTS)]
    assert len(texts) == 2 and "Monitoring resumed" in texts[1] and pg_store.safe_url in texts[1]
    assert [kind for kind, _ in notice.posted] == ["degraded", "recovered"]
    assert slack.violations() == []


async def test_no_alert_channel_posts_nothing_and_the_period_follows_the_interval(
    pg_store: Database, postgres_url: str, slack_emulator: SlackEmulator
) -> None:
    notice = StoreOutageNotice(pg_store, web_client(slack_emulator), None, may_post=lambda: True)
    await _read_only(pg_store, postgres_url, True)
    try:
        with pytest.raises(StoreUnwritable):
            await _write(pg_store)
        await notice.check()
    finally:
        await _read_only(pg_store, postgres_url, False)
    await notice.check()
    assert slack_emulator.calls_to("chat.postMessage") == [] and notice.posted == []
    assert pg_store.writes.writable
    assert [check_every_secs(s) for s in (0.2, 1, 5, 30, 3600)] == [1, 1, 5, 10, 10]
