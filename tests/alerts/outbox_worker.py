"""A bot process for the crash test: one sweep that commits alerts, then it waits to be killed.

Run as a script. Its clock stands still at ``--now`` (the test's fake time), so its
delivery tries each due row once and then waits for a back-off that never ends. It
prints ``{"committed": n}`` (pending outbox rows) once the sweep committed and the
delivery had its try, then sleeps until the test kills it with SIGKILL.

With ``--pagerduty URL --routing-key K`` it pages PagerDuty and has no alert channel, so
the only outbox row is the PagerDuty trigger, sent at once (no Slack root to wait for).

The delivery runs once, after the sweep, and is never nudged by a commit: the sweep commits
the root (incident opened) and then, in a second transaction, the restart's edit of the
root and its reply. A nudged delivery running between the two would claim the root, and an
edit never rewrites a claimed root (its sender has already read it): it queues an
``update`` row instead, so the outbox would hold two rows or three depending on which
task the event loop ran first. Without the nudge the tests see the same outbox every run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from bot.alerts.delivery import OutboxDelivery
from bot.alerts.pagerduty import PagerDutySender
from bot.alerts.paging import PAGERDUTY, PagingTargets
from bot.alerts.sending import Sender
from bot.alerts.service import AlertPolicy, AlertService
from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor
from bot.store.alert_models import AlertOutbox
from bot.store.database import Database


async def main(args: argparse.Namespace) -> None:
    now = datetime.fromtimestamp(args.now, UTC)

    def clock() -> datetime:
        return now

    db = Database(args.db)
    web = AsyncWebClient(token=args.token, base_url=args.slack, timeout=5, retry_handlers=[])
    senders: dict[str, Sender] = {}
    if args.pagerduty:
        http = httpx.AsyncClient(timeout=600)
        senders[PAGERDUTY] = PagerDutySender(http, routing_key=args.routing_key, url=args.pagerduty)
    delivery = OutboxDelivery(db, web, clock=clock, holder="doomed", senders=senders)
    service = AlertService(
        db,
        policy=AlertPolicy(channel=None if args.pagerduty else "C0ALERTS"),
        delivery=delivery,
        clock=clock,
        nudge=False,
        paging=PagingTargets(pagerduty=bool(args.pagerduty)),
    )
    async with InstanceClient(args.backend, timeout=5.0, retry_backoff=0) as client:
        monitor = (
            HealthMonitor(client, store=db)
            .with_clock(clock)
            .with_heartbeat_timeout(timedelta(seconds=90))
        )
        service.attach(monitor)
        await monitor.sweep_once()
        # Both of the sweep's commits are in; one try of the stream's head (the root). With
        # Slack failing it meets a 500: the rows stay pending, due again after a back-off
        # that never comes. With Slack holding its answers it waits here until killed.
        await delivery.run_once()
        async with db.session() as session:
            pending = await session.scalar(
                select(func.count(AlertOutbox.id)).where(AlertOutbox.state == "pending")
            )
        print(json.dumps({"committed": pending}), flush=True)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--slack", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--now", type=float, required=True)
    parser.add_argument("--pagerduty", default="")
    parser.add_argument("--routing-key", default="")
    asyncio.run(main(parser.parse_args()))
