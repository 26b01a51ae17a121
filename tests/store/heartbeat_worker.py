"""A process that writes or compacts heartbeat history until it is killed (SIGKILL tests).

python heartbeat_worker.py --db URL write      # a batch per loop; prints its number after commit
python heartbeat_worker.py --db URL compact    # compacts one series per transaction; prints
                                               # "slice" before each
python heartbeat_worker.py --db URL compact-die-at-delete
    # compacts, and SIGKILLs itself when its third slice sends the head delete to the
    # database: the chunks are written in that transaction, the head rows still there
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from bot.store.database import Database
from bot.store.heartbeats.compaction import compact
from bot.store.queries import record_heartbeats
from bot.store.records import HeartbeatSampleIn

T0 = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
IDS = [f"i-{n:02d}" for n in range(40)]


def batch(n: int) -> list[HeartbeatSampleIn]:
    """The samples of write number ``n`` (the test rebuilds them to compare)."""
    at = T0 + timedelta(seconds=30 * n, microseconds=n)
    return [
        HeartbeatSampleIn(i, at, float(n % 100) + k / 10, 512 + n, 10_000 + k, at, 3600 + 30 * n)
        for k, i in enumerate(IDS)
    ]


async def write(db: Database) -> None:
    n = 0
    while True:
        await db.run(lambda s, b=batch(n): record_heartbeats(s, samples=b))
        print(n, flush=True)
        n += 1


async def run_compaction(db: Database) -> None:
    def report() -> bool:
        print("slice", flush=True)
        return False

    await compact(db, before=T0 + timedelta(days=30), series_per_slice=1, should_stop=report)
    print("done", flush=True)


def die_at_third_head_delete(db: Database) -> None:
    deletes = 0

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def kill(conn: object, cursor: object, statement: str, *args: object) -> None:
        nonlocal deletes
        if statement.lstrip().upper().startswith("DELETE FROM HEARTBEAT_HEAD"):
            deletes += 1
            if deletes == 3:
                os.kill(os.getpid(), signal.SIGKILL)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("mode", choices=["write", "compact", "compact-die-at-delete"])
    args = parser.parse_args()
    async with Database(args.db) as db:
        if args.mode == "compact-die-at-delete":
            die_at_third_head_delete(db)
        await (write(db) if args.mode == "write" else run_compaction(db))


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
