"""The outbox delivery: Slack failing for a while, poison messages, nudges and leadership."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts.delivery import OutboxDelivery
from bot.alerts.sending import classify
from bot.monitor.own_loop import SweepLoop
from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.store.alert_models import AlertOutbox
from bot.store.database import Database
from tests.alerts.conftest import ALERTS, Harness, build_service, web_client

if TYPE_CHECKING:
    from tests.conftest import FakeClock


async def start(h: Harness, count: int) -> list[str]:
    ids = h.sim.seed_instances(count)
    await h.sweep()
    return ids


async def drain(h: Harness, *, step: float = 1.0, rounds: int = 400) -> None:
    """Run the delivery job, moving the clock on, until nothing is pending."""
    for _ in range(rounds):
        await h.deliver()
        if all(row.state != "pending" for row in await h.outbox()):
            return
        h.advance(step)
    raise AssertionError("the outbox never drained")


def assert_ordered_per_stream(rows: list[AlertOutbox]) -> None:
    """Within each stream, rows reached Slack in id order (ts grows with arrival)."""
    streams: dict[str, list[AlertOutbox]] = {}
    for row in rows:
        if row.state == "sent" and row.kind != "update":
            streams.setdefault(row.stream, []).append(row)
    for stream, sent in streams.items():
        stamps = [float(row.ts or 0) for row in sorted(sent, key=lambda r: r.id)]
        assert stamps == sorted(stamps), f"{stream} went out of order: {stamps}"


async def test_429_500_and_dropped_connections_delay_messages_but_lose_or_repeat_none(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 4)
    await h.deliver()
    h.slack.fail_next(3, status=429, retry_after=2)
    h.slack.fail_next(4, status=500)
    h.slack.fail_next(2, drop=True)

    for victim in ids[:2]:
        h.sim.stop_heartbeat(victim)
    h.advance(100)
    await h.sweep()  # two incidents: a root and a restart reply each
    first = await h.deliver()
    assert first.rate_limited >= 1 and first.sent == 0 and h.channel() == []
    assert h.delivery.paused_until is not None
    again = await h.deliver()
    assert again.skipped == "rate limited", "nothing is sent before Retry-After"

    h.advance(30)
    await h.sweep()  # both recover while Slack is still unwell
    await drain(h)

    rows = await h.outbox()
    assert {row.state for row in rows} <= {"sent", "superseded"}
    roots = h.channel()
    assert len(roots) == 2
    for root in roots:
        replies = h.replies(root)
        assert [r.text.split(" ")[0] for r in replies] == ["🔁", "✅"]
        final = h.slack.find_message(root.ts)
        assert final is not None and "Resolved after 30 s" in str(final.blocks)
    posted = [c for c in h.slack.calls_to("chat.postMessage") if c.ok]
    assert len(posted) == 6, "two roots and four replies, each exactly once"
    assert len([c for c in h.slack.calls if c.injected]) == 9
    assert_ordered_per_stream(rows)

    # Retry-After was honoured: after a 429, no new request for 2 s (requests already in
    # flight when it arrived carry the same time on the fake clock).
    for limited in [c for c in h.slack.calls if c.status == 429]:
        early = [c for c in h.slack.calls if limited.at < c.at < limited.at + 2]
        assert early == [], f"sent during Retry-After: {early}"
    assert h.slack.violations() == []


async def test_a_poison_root_is_marked_failed_and_the_incident_carries_on(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 3)
    await h.deliver()
    h.slack.fail_next(1, status=400, methods={"chat.postMessage"}, error="invalid_arguments")
    h.sim.stop_heartbeat(ids[0])
    h.advance(100)
    await h.sweep()
    report = await h.deliver()
    assert report.failed == 1 and h.delivery.failed_total == 1

    rows = await h.outbox()
    [failed] = [r for r in rows if r.state == "failed"]
    assert failed.kind == "root" and failed.last_error and "400" in failed.last_error
    # The restart reply had no thread to go to: it went out on its own.
    [alone] = h.channel()
    assert alone.text.startswith("🔁")

    h.advance(30)
    await h.sweep()  # recovery: the edit becomes the new root, the reply threads under it
    await h.deliver()
    messages = h.channel()
    assert len(messages) == 2
    new_root = messages[1]
    assert "Resolved after 30 s" in str(new_root.blocks)
    [recovered] = h.replies(new_root)
    assert recovered.text.startswith("✅")
    [incident] = await h.incidents()
    assert incident.root_ts == new_root.ts


async def test_a_commit_nudges_the_delivery_at_once(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    h.service.nudge = True  # as in production: the commit itself wakes the delivery
    ids = await start(h, 2)
    h.sim.stop_heartbeat(ids[0])
    h.advance(100)
    await h.sweep()
    # No delivery run here: the after-commit nudge sends it.
    await h.slack.wait_for(lambda: len(h.channel()) == 1, timeout=30, what="root posted")
    await h.slack.wait_for(
        lambda: len(h.replies(h.channel()[0])) == 1, timeout=5, what="restart reply posted"
    )
    await h.delivery.aclose()


async def test_a_nudge_from_the_sweep_loops_thread_sends_on_the_deliverys_loop(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 2)
    h.sim.stop_heartbeat(ids[0])
    h.advance(100)
    await h.sweep()  # committed without a nudge: the root waits in the outbox
    assert [r.state for r in await h.outbox()] == ["pending", "pending"]
    sweep_loop = SweepLoop()
    sweep_loop.start()

    async def commit_hook_there() -> None:
        h.delivery.nudge()  # what the after-commit hook does on the sweep's loop

    try:
        await sweep_loop.run(commit_hook_there())
    finally:
        await sweep_loop.aclose()
    # Sent by this loop's delivery (its Slack session lives here), with no job run.
    await h.slack.wait_for(lambda: len(h.channel()) == 1, timeout=30, what="root posted")
    await h.delivery.aclose()


async def test_a_replica_that_does_not_lead_sends_nothing(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 2)
    h.sim.stop_heartbeat(ids[1])
    h.advance(100)
    await h.sweep()
    follower = OutboxDelivery(h.db, web_client(h.slack), clock=h.utc, is_leader=lambda: False)
    report = await follower.run_once()
    assert report.skipped == "not the leader" and h.channel() == []
    await h.deliver()
    assert len(h.channel()) == 1


async def test_pending_rows_of_a_dead_process_go_out_once_after_restart(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 3)
    await h.deliver()
    h.sim.stop_heartbeat(ids[0])
    h.sim.stop_heartbeat(ids[1])
    h.advance(100)
    await h.sweep()  # committed: two roots, two restart replies; nothing sent yet
    rows = await h.outbox()
    assert [r.state for r in rows] == ["pending"] * 4

    # The first process had claimed one row and died before sending it.
    async def claim(session: AsyncSession) -> None:
        await session.execute(
            update(AlertOutbox)
            .where(AlertOutbox.id == rows[0].id)
            .values(claimed_by="dead-process", claimed_until=h.utc() + timedelta(seconds=60))
        )

    await h.db.run(claim)
    url = h.db.url
    await h.db.dispose()  # the bot is gone; its service and delivery with it

    db2 = Database(url)
    try:
        second = build_service(db2, h.slack, h.utc, holder="second")
        assert second.delivery is not None
        await second.delivery.run_once()
        # The other incident went out; the claimed one waits for the dead claim to lapse.
        assert len(h.channel()) == 1
        h.advance(61)
        await second.delivery.run_once()
        await second.delivery.run_once()
        assert len(h.channel()) == 2
        for root in h.channel():
            assert len(h.replies(root)) == 1
        posted = [c for c in h.slack.calls_to("chat.postMessage") if c.ok]
        assert len(posted) == 4, "each message exactly once"
    finally:
        await db2.dispose()


def test_classify_maps_slack_answers_to_outcomes() -> None:
    import aiohttp
    from slack_sdk.errors import SlackApiError

    class Answer(dict[str, object]):
        def __init__(self, status: int, body: dict[str, object], headers: dict[str, str]) -> None:
            super().__init__(body)
            self.status_code = status
            self.headers = headers

    def error(status: int, code: str, headers: dict[str, str] | None = None) -> SlackApiError:
        return SlackApiError("x", Answer(status, {"ok": False, "error": code}, headers or {}))

    limited = classify(error(429, "ratelimited", {"Retry-After": "7"}))
    assert limited.status == "ratelimited" and limited.retry_after == 7
    assert classify(error(503, "service_unavailable")).status == "retry"
    assert classify(error(200, "internal_error")).status == "retry"
    auth = classify(error(200, "invalid_auth"))
    assert auth.status == "retry" and auth.config_error
    for code in ("channel_not_found", "invalid_blocks", "message_not_found"):
        assert classify(error(200, code)).status == "failed"
    assert classify(aiohttp.ServerDisconnectedError()).status == "retry"
    assert classify(TimeoutError()).status == "retry"


async def test_alert_channel_routes_pick_the_channel_by_instance_name(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(routes={"pod-00[12]": "C0OPS"})
    ids = await start(h, 3)
    for victim in ids:
        h.sim.stop_heartbeat(victim)
    h.advance(100)
    await h.sweep()
    await h.deliver()
    assert len(h.slack.messages("C0OPS")) == 2
    assert len(h.slack.messages(ALERTS)) == 1


async def test_a_bot_killed_with_pending_rows_delivers_each_once_after_restart(
    sim: BackendSimulator,
    slack: SlackEmulator,
    db: Database,
    utc_clock: Callable[[], datetime],
    fake_clock: FakeClock,
) -> None:
    victim = sim.seed_instances(1)[0]
    sim.stop_heartbeat(victim)
    fake_clock.advance(100)
    slack.fail_next(1000, status=500)  # Slack is down while the first process lives
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("outbox_worker.py")),
        "--db", db.url,
        "--backend", sim.url,
        "--slack", slack.api_url,
        "--token", slack.bot_token,
        "--now", str(fake_clock()),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert json.loads(line) == {"committed": 2}, "a root and its restart reply"
        assert [c.status for c in slack.calls] == [500], "it tried once, and failed"
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    slack.reset()  # Slack is back
    fake_clock.advance(5)
    service = build_service(db, slack, utc_clock, holder="restarted")
    assert service.delivery is not None
    await service.delivery.run_once()
    await service.delivery.run_once()
    [root] = slack.messages(ALERTS)
    assert "heartbeat stale" in root.text
    [restart] = slack.thread(ALERTS, root.ts)[1:]
    assert restart.text.startswith("🔁")
    assert len([c for c in slack.calls_to("chat.postMessage") if c.ok]) == 2


async def test_finished_outbox_rows_are_pruned_after_a_week_pending_ones_never(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 3)
    h.sim.stop_heartbeat(ids[0])
    h.advance(100)
    await h.sweep()
    await h.deliver()
    h.slack.fail_next(1000, status=500)
    h.sim.stop_heartbeat(ids[1])
    h.advance(100)
    await h.sweep()
    await h.deliver()  # the second incident's rows stay pending
    states = sorted(r.state for r in await h.outbox())
    assert "sent" in states and "pending" in states

    h.advance(6 * 86400)
    assert (await h.service.run_housekeeping()).pruned == 0
    h.advance(2 * 86400)
    report = await h.service.run_housekeeping()
    assert report.pruned == states.count("sent") + states.count("superseded")
    assert {r.state for r in await h.outbox()} == {"pending"}
