"""Two senders on one outbox (two replicas that both think they lead): every row once, in order.

Runs on SQLite and on PostgreSQL (``FOR UPDATE SKIP LOCKED`` claims) when
``STARPOD_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts.delivery import OutboxDelivery
from bot.alerts.outbox import REPLY, ROOT, enqueue, incident_stream
from bot.blockkit.blocks import section
from bot.blockkit.limits import reply
from bot.sim.slack import SlackEmulator
from bot.store.alert_models import AlertIncident, AlertOutbox
from bot.store.database import Database
from tests.alerts.conftest import ALERTS, web_client

INCIDENTS = 12
REPLIES = 4


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Database:
    database: Database = request.getfixturevalue("db" if request.param == "sqlite" else "pg_store")
    return database


async def fill(db: Database, now: datetime) -> None:
    """Incidents, each with a root and a few replies waiting in the outbox."""

    async def write(session: AsyncSession) -> None:
        for number in range(INCIDENTS):
            incident = AlertIncident(
                scope="instance",
                instance_id=f"inst-{number}",
                kind="stale",
                state="open",
                open_key=f"inst-{number}",
                flapping=False,
                announced=True,
                detail="",
                facts={},
                opened_at=now,
                updated_at=now,
                restart_attempts=0,
                recurrences=0,
                channel=ALERTS,
            )
            session.add(incident)
            await session.flush()
            for step in range(REPLIES + 1):
                text = f"incident {number} message {step}"
                await enqueue(
                    session,
                    kind=ROOT if step == 0 else REPLY,
                    channel=ALERTS,
                    message=reply(text, [section(text)]),
                    now=now,
                    stream=incident_stream(incident.id),
                    incident_id=incident.id,
                )

    await db.run(write)


async def test_two_senders_send_each_row_once_and_in_order(
    store: Database, slack: SlackEmulator, utc_clock: Callable[[], datetime]
) -> None:
    await fill(store, utc_clock())
    senders = [
        OutboxDelivery(store, web_client(slack), clock=utc_clock, holder=name, batch=5)
        for name in ("replica-a", "replica-b")
    ]
    for _ in range(REPLIES + 2):
        await asyncio.gather(*(sender.run_once() for sender in senders))

    assert sum(s.sent_total for s in senders) == INCIDENTS * (REPLIES + 1)
    posted = [c for c in slack.calls_to("chat.postMessage") if c.ok]
    texts = [c.args["text"] for c in posted]
    assert len(texts) == len(set(texts)) == INCIDENTS * (REPLIES + 1), "no row sent twice"
    roots = slack.messages(ALERTS)
    assert len(roots) == INCIDENTS
    for root in roots:
        number = root.text.split()[1]
        replies = [m.text for m in slack.thread(ALERTS, root.ts)[1:]]
        assert replies == [f"incident {number} message {step}" for step in range(1, REPLIES + 1)]
    assert slack.violations() == []


async def test_a_claimed_head_blocks_its_stream_for_the_other_sender(
    store: Database, slack: SlackEmulator, utc_clock: Callable[[], datetime]
) -> None:
    await fill(store, utc_clock())
    a, b = (
        OutboxDelivery(store, web_client(slack), clock=utc_clock, holder=name, batch=5)
        for name in ("replica-a", "replica-b")
    )
    now = utc_clock()
    # Claims as a crashed or slow replica would leave them: taken, nothing sent yet.
    first = await store.run(lambda s: a._claim(s, now))
    second = await store.run(lambda s: b._claim(s, now))
    assert len(first) == 5 and len(second) == 5
    assert not {r.id for r in first} & {r.id for r in second}
    assert not {r.incident_id for r in first} & {r.incident_id for r in second}, (
        "a stream whose head is claimed is skipped, never overtaken"
    )
    assert all(r.kind == "root" for r in [*first, *second])
    assert slack.calls == []


async def test_the_leader_takes_over_a_dead_leader_s_claims_a_follower_never_does(
    store: Database, slack: SlackEmulator, utc_clock: Callable[[], datetime]
) -> None:
    await fill(store, utc_clock())
    dead = OutboxDelivery(store, web_client(slack), clock=utc_clock, holder="dead", batch=5)
    claimed = await store.run(lambda s: dead._claim(s, utc_clock()))
    assert len(claimed) == 5  # claims live for another minute; their holder is gone

    # Two senders that share the outbox without leadership respect the live claims.
    follower = OutboxDelivery(store, web_client(slack), clock=utc_clock, holder="follower")
    await follower.run_once()
    held = {r.incident_id for r in claimed}
    async with store.session() as session:
        rows = list(await session.scalars(select(AlertOutbox)))
    assert all(r.state == "pending" for r in rows if r.incident_id in held)

    leader = OutboxDelivery(
        store, web_client(slack), clock=utc_clock, holder="leader", is_leader=lambda: True
    )
    await leader.run_once()
    async with store.session() as session:
        rows = list(await session.scalars(select(AlertOutbox)))
    assert {r.state for r in rows} == {"sent"}, "the leader sent the dead leader's streams too"
    for incident_id in held:
        own = sorted((r for r in rows if r.incident_id == incident_id), key=lambda r: r.id)
        stamps = [float(r.ts or 0) for r in own]
        assert stamps == sorted(stamps), "in order within the stream"
