"""What Slack can read, the terminal can too: ``instance logs --follow`` against the backend
simulator (its own process, a line every 2 s), ``instance history`` and ``audit`` from the
bot's database. The real command in a subprocess, as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from bot.sim.process import start_simulator, stop_process
from bot.store.audit import record_audit
from bot.store.database import Database
from bot.store.queries import record_status_change, upsert_instances
from bot.store.records import InstanceSnapshot
from tests.support.databases import migrated, sqlite_url

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "bot"]
STAMP = "%Y-%m-%d %H:%M:%S"


def cli_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STARPOD_", "ANTHROPIC_"))}
    env.pop("DATABASE_URL", None)
    env.update({"COLUMNS": "200", "PYTHONUNBUFFERED": "1", "STARPOD_CONFIG": os.devnull})
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=cli_env(env), timeout=60
    )


# -- logs --follow -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    proc, url = start_simulator(2)
    yield url
    stop_process(proc)


def read_lines(stream: object, into: queue.Queue[str]) -> None:
    for raw in stream:  # type: ignore[attr-defined]
        into.put(raw.rstrip("\n"))


def test_follow_prints_new_lines_as_they_come_once_each_until_ctrl_c(sim_url: str) -> None:
    env = cli_env({"STARPOD_INSTANCE_BACKEND_URL": sim_url})
    names = json.loads(
        subprocess.run(
            [*CLI, "instance", "list", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        ).stdout
    )
    running = next(i["name"] for i in names if i["status"] == "running")
    proc = subprocess.Popen(
        [*CLI, "instance", "logs", running, "--follow", "--tail", "3", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    printed: list[str] = []
    try:
        # 3 lines at once, then the simulator appends one every 2 s; dozens of polls
        # meanwhile each read the same last lines again.
        deadline = time.monotonic() + 120  # only to fail rather than hang
        while len(printed) < 7:
            printed.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    reader.join(timeout=10)
    while not lines.empty():
        printed.append(lines.get_nowait())
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    stamps = [datetime.strptime(line[:19], STAMP) for line in printed]
    assert len(stamps) >= 7
    # Every line once, none skipped: the simulator writes one every 2 s.
    gaps = {(b - a).total_seconds() for a, b in pairwise(stamps)}
    assert gaps == {2.0}, printed
    # The same lines the plain command shows for that stretch of the log.
    # Enough lines that a slow machine's minutes since the follow began still reach back.
    tail = run_cli(
        "instance", "logs", running, "--tail", "500", env={"STARPOD_INSTANCE_BACKEND_URL": sim_url}
    )
    shown = tail.stdout.splitlines()
    start = shown.index(printed[0])
    assert shown[start : start + len(printed)] == printed


def test_follow_of_an_unknown_instance_is_one_line_exit_2(sim_url: str) -> None:
    result = run_cli(
        "instance", "logs", "no-such-pod", "--follow", env={"STARPOD_INSTANCE_BACKEND_URL": sim_url}
    )
    assert result.returncode == 2  # a reference that names nothing is a usage error
    assert "no-such-pod" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- history and audit from the bot's database ----------------------------------------------------

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POD = "0b7c9a5e-1111-4000-8000-000000000001"
OTHER = "0b7c9a5e-2222-4000-8000-000000000002"


async def fill(db: Database) -> None:
    async def write(session: object) -> None:
        await upsert_instances(
            session,  # type: ignore[arg-type]
            instances=[
                InstanceSnapshot(POD, "web-1", "eu-west-1", "running"),
                InstanceSnapshot(OTHER, "db-1", "eu-west-1", "running"),
            ],
            seen_at=NOW,
        )
        changes = [
            (POD, "running", "error", 0, "monitor", None, "heartbeat stale: 134 s old"),
            (POD, "error", "running", 60, "user", "U0ANA", "restarted from Slack"),
            (OTHER, "running", "paused", 90, "user", "U0BOB", None),
        ]
        for instance_id, old, new, secs, cause, actor, reason in changes:
            await record_status_change(
                session,  # type: ignore[arg-type]
                instance_id=instance_id,
                from_status=old,
                to_status=new,
                at=NOW + timedelta(seconds=secs),
                cause=cause,
                actor=actor,
                reason=reason,
            )
        for secs, user, action, instance_id, result in [
            (60, "U0ANA", "restart", POD, "ok"),
            (90, "U0BOB", "pause", OTHER, "ok"),
            (95, "U0EVE", "kill", POD, "refused"),
        ]:
            await record_audit(
                session,  # type: ignore[arg-type]
                at=NOW + timedelta(seconds=secs),
                user_id=user,
                channel_id="C0OPS",
                source="slash",
                action=action,
                instance_id=instance_id,
                args=f"{action} web-1",
                result=result,
            )

    await db.run(write)  # type: ignore[arg-type]


@pytest.fixture
def bot_db(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path / "bot.db")

    async def build() -> None:
        async with migrated(url) as db:
            await fill(db)

    asyncio.run(build())
    return url


def test_history_reads_the_bot_database_by_name_or_prefix(bot_db: str) -> None:
    env = {"DATABASE_URL": bot_db}
    table = run_cli("instance", "history", "web-1", env=env)
    assert table.returncode == 0, table.stderr
    assert "web-1 (0b7c9a5e): 2 latest status changes" in table.stdout
    rows = [line for line in table.stdout.splitlines() if "→" in line]
    assert "running → error" in rows[1] and "heartbeat stale" in rows[1]
    assert "error → running" in rows[0] and "U0ANA" in rows[0], "newest first"
    data = json.loads(run_cli("instance", "history", POD[:14], "--json", env=env).stdout)
    assert data["id"] == POD and [c["to"] for c in data["changes"]] == ["running", "error"]
    assert data["changes"][0]["actor"] == "U0ANA"
    limited = json.loads(
        run_cli("instance", "history", "web-1", "-n", "1", "--json", env=env).stdout
    )
    assert len(limited["changes"]) == 1


def test_audit_reads_everything_or_one_instance(bot_db: str) -> None:
    env = {"DATABASE_URL": bot_db}
    every = json.loads(run_cli("audit", "--json", env=env).stdout)
    assert [(e["user"], e["action"], e["result"]) for e in every] == [
        ("U0EVE", "kill", "refused"),
        ("U0BOB", "pause", "ok"),
        ("U0ANA", "restart", "ok"),
    ]
    one = json.loads(run_cli("audit", "web-1", "--json", env=env).stdout)
    assert [e["action"] for e in one] == ["kill", "restart"]
    table = run_cli("audit", "db-1", env=env)
    assert table.returncode == 0, table.stderr
    assert "1 latest audit entries of db-1 (0b7c9a5e)" in table.stdout
    assert "U0BOB" in table.stdout and "U0ANA" not in table.stdout


def test_bad_references_and_databases_are_one_line(bot_db: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": bot_db}
    cases = [
        (("instance", "history", "nope"), env, 2, "nope"),
        (("audit", "0b7c9a5e"), env, 2, "matches 2 instances"),
        (("instance", "history", "web-1", "-n", "0"), env, 2, "--limit"),
    ]
    missing = tmp_path / "elsewhere.db"
    cases.append(
        (("audit",), {"DATABASE_URL": sqlite_url(missing)}, 2, f"no database at {missing}")
    )
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    cases.append((("audit",), {"DATABASE_URL": sqlite_url(empty)}, 2, "no starpod-bot tables"))
    for args, extra, code, words in cases:
        result = run_cli(*args, env=extra)
        assert result.returncode == code, (args, result.stderr)
        assert words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not missing.exists(), "a missing SQLite file is not created"
