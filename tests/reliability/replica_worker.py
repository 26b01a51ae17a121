"""One bot replica's monitor, run as a script by the chaos tests (one process per replica).

It runs a real HealthMonitor with its own scheduler and the leadership that fits the
database (an advisory lock on PostgreSQL, a lease on SQLite), and prints one JSON line per
thing the test needs to see, each stamped with ``time.time()``:
``{"started": pid}`` (imports done, nothing opened yet), ``{"ready": pid}``,
``{"sweep": n, "swept": bool, "restarted": [...], "pid", "at", "t"}`` (``at``: when
that election round and sweep began),
``{"refused": message}`` (exit 3 when SQLite is held by another process).

Copied in small from ``tests/monitor/monitor_worker.py`` (test folders cannot import each
other), with the sweep reports the chaos tests measure take-over times from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import timedelta

from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor, SweepReport
from bot.store.database import Database
from bot.store.errors import LeadershipRefused
from bot.store.leader import PostgresAdvisoryLeadership, SqliteLeadership, default_holder


def say(**fields: object) -> None:
    print(json.dumps({**fields, "t": time.time()}), flush=True)


async def main(args: argparse.Namespace) -> int:
    pid = os.getpid()
    say(started=pid)
    interval = timedelta(seconds=args.interval)
    db = Database(args.db)
    leadership = (
        PostgresAdvisoryLeadership(db.url, key=args.key)
        if db.dialect == "postgresql"
        else SqliteLeadership(db, holder=default_holder(), ttl=3 * interval)
    )
    sweeps = 0

    def report(result: SweepReport) -> None:
        nonlocal sweeps
        sweeps += 1
        # "at": when the round began (the monitor's own clock), so a test can tell the
        # rounds that started after an event from those already under way.
        say(
            sweep=sweeps,
            swept=result.swept,
            restarted=result.restarted,
            pid=pid,
            at=result.at.timestamp(),
        )

    async with InstanceClient(args.backend, timeout=5.0, retry_backoff=0) as client:
        monitor = (
            HealthMonitor(client, store=db, leadership=leadership)
            .with_interval(interval)
            .with_heartbeat_timeout(timedelta(seconds=args.timeout))
            .on_sweep(report)
        )
        try:
            await monitor.acquire_leadership()
        except LeadershipRefused as exc:
            say(refused=str(exc))
            return 3
        handle = monitor.start()
        say(ready=pid)
        try:
            await asyncio.Event().wait()
        finally:
            await handle.send()
            await db.dispose()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--key", type=int, default=0)
    sys.exit(asyncio.run(main(parser.parse_args())))
