"""``starpod-bot db stats`` and ``db compact``, run as a user runs them: the real command in
a subprocess, on a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.store.database import Database
from bot.store.queries import record_heartbeats, upsert_instances
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def _db_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STARPOD_", "ANTHROPIC_"))}
    env.update(DATABASE_URL=url, STARPOD_CONFIG=os.devnull, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "bot", "db", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


async def test_stats_and_compact_on_a_database_with_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    ids = [f"i-{n}" for n in range(4)]
    async with Database(url) as db:
        await db.upgrade()
        snapshots = [InstanceSnapshot(i, None, None, "running") for i in ids]
        await db.run(lambda s: upsert_instances(s, instances=snapshots, seen_at=T0))
        for n in range(130):
            at = T0 + timedelta(seconds=30 * n)
            batch = [HeartbeatSampleIn(i, at, 12.5, 512, 9000, at, 30 * n) for i in ids]
            await db.run(lambda s, b=batch: record_heartbeats(s, samples=b))

    before = _db_cli(url, "stats")
    assert before.returncode == 0, before.stderr
    assert "samples          520 (520 in the head, 0 in chunks)" in before.stdout
    assert "bytes per sample " in before.stdout and "file size " in before.stdout

    compacted = _db_cli(url, "compact")
    assert compacted.returncode == 0, compacted.stderr
    # The samples of 2026 are all of a finished hour by now.
    assert compacted.stdout.startswith("compacted 520 samples into 8 new and 0 merged chunks")

    after = _db_cli(url, "stats")
    assert "samples          520 (0 in the head, 520 in chunks)" in after.stdout
    assert "0 head, 8 chunks, 0 batches, 4 series" in after.stdout


@pytest.mark.parametrize("command", ["stats", "compact"])
def test_an_unmigrated_database_gets_one_line_and_exit_1(tmp_path: Path, command: str) -> None:
    result = _db_cli(f"sqlite:///{tmp_path / 'fresh.db'}", command)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: the database is at revision none, not 0008: run `starpod-bot db upgrade` first"
    ]
    assert result.stdout == ""
