"""A monitor process for the leader-election tests (run as a script, one per replica).

It starts a real HealthMonitor with its own scheduler against a backend URL and a
database URL, and prints one JSON line per thing the test needs to see:
``{"ready": pid}``, ``{"standby": pid}``, ``{"sweep": n, "pid": pid}``,
``{"event": kind, "id": instance_id, "pid": pid}``, ``{"round": n, "swept": bool, "at": t}``
(each election round, ``at`` when it began by the monitor's clock); or ``{"refused": message}`` and
exit code 3 when SQLite is already held by another process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import timedelta

from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor, MonitorEvent, SweepReport
from bot.store.database import Database
from bot.store.errors import LeadershipRefused
from bot.store.leader import PostgresAdvisoryLeadership, SqliteLeadership, default_holder


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def main(args: argparse.Namespace) -> int:
    pid = os.getpid()
    interval = timedelta(seconds=args.interval)
    db = Database(args.db)
    leadership = (
        PostgresAdvisoryLeadership(db.url, key=args.key)
        if db.dialect == "postgresql"
        else SqliteLeadership(db, holder=default_holder(), ttl=3 * interval)
    )

    async def report(_session: object, event: MonitorEvent) -> None:
        say(event=str(event.kind), id=event.instance_id, pid=pid)

    rounds = 0

    def round_done(result: SweepReport) -> None:
        nonlocal rounds
        rounds += 1
        say(round=rounds, swept=result.swept, at=result.at.timestamp())

    async with InstanceClient(args.backend, timeout=5.0, retry_backoff=0) as client:
        monitor = (
            HealthMonitor(client, store=db, leadership=leadership)
            .with_interval(interval)
            .with_heartbeat_timeout(timedelta(seconds=args.timeout))
            .on_event(report)
            .on_sweep(round_done)
        )
        try:
            await monitor.acquire_leadership()
        except LeadershipRefused as exc:
            say(refused=str(exc))
            return 3
        handle = monitor.start()
        say(ready=pid)
        seen = None
        sweeps = 0
        standby_said = False
        try:
            while True:
                status = monitor.status()
                if status.last_sweep_at is not None and status.last_sweep_at != seen:
                    seen = status.last_sweep_at
                    sweeps += 1
                    say(sweep=sweeps, pid=pid)
                if status.standing_by and not standby_said:
                    standby_said = True
                    say(standby=pid)
                await asyncio.sleep(0.02)
        finally:
            await handle.send()
            await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--key", type=int, default=0)
    sys.exit(asyncio.run(main(parser.parse_args())))
