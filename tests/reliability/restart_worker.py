"""One life of a bot process for the restart test: start, sweep once, deliver, exit.

Run as a script. Its clock stands still at ``--now`` (the test's fake time). It builds
the monitor (budget: 2 auto-restarts, no delay) and the alerts as the runtime does, on
the SQLite file it is given, runs one sweep, delivers until nothing is due, prints
``{"sent": n}`` and exits: a restart of the bot is the next run of this script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.delivery import OutboxDelivery
from bot.alerts.service import AlertPolicy, AlertService
from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor
from bot.store.database import Database


async def main(args: argparse.Namespace) -> None:
    now = datetime.fromtimestamp(args.now, UTC)

    def clock() -> datetime:
        return now

    db = Database(args.db)
    web = AsyncWebClient(token=args.token, base_url=args.slack, timeout=5, retry_handlers=[])
    delivery = OutboxDelivery(db, web, clock=clock, holder=args.holder, is_leader=lambda: True)
    service = AlertService(
        db,
        policy=AlertPolicy(channel=args.channel, mention=args.mention),
        delivery=delivery,
        clock=clock,
        nudge=False,
        is_leader=lambda: True,
    )
    sent = 0
    try:
        async with InstanceClient(args.backend, timeout=5.0, retry_backoff=0) as client:
            monitor = (
                HealthMonitor(client, store=db)
                .with_clock(clock)
                .with_heartbeat_timeout(timedelta(seconds=90))
                .with_restart_budget(2, timedelta(minutes=30), (0, 0))
            )
            service.attach(monitor)
            await monitor.sweep_once()
            await service.run_housekeeping()
            for _ in range(10):
                report = await delivery.run_once()
                sent += report.sent
                if report.sent == 0:
                    break
    finally:
        await delivery.aclose()
        await db.dispose()
    print(json.dumps({"sent": sent}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--slack", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--now", type=float, required=True)
    parser.add_argument("--holder", required=True)
    parser.add_argument("--channel", default="C0ALERTS")
    parser.add_argument("--mention", default="<!subteam^S0ONCALL>")
    asyncio.run(main(parser.parse_args()))
