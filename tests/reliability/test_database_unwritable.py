"""``starpod-bot run`` on a database that stops taking writes, then takes them again.

Two real outages, each against the real runtime as a subprocess (``python -m bot run``),
the backend simulator and the Slack emulator on 127.0.0.1:

- **A full disk**: the SQLite file lives on a small tmpfs volume mounted for the test; the
  test fills the volume with a file until the kernel says ENOSPC, then deletes it. (Needs
  root to mount; skipped with that reason otherwise, and only then.)
- **A read-only PostgreSQL**: a database of its own switched to
  ``default_transaction_read_only`` and its sessions ended (what a failover to a read-only
  server looks like), then switched back. No mount needed.

In both, while writes are refused: ``/readyz`` answers 503 naming the database; the alert
channel gets exactly one direct message (the outbox is a table and cannot take it);
``/starpod list`` and ``/starpod status`` answer; an action answers "database is …" and
the gateway 503; ``starpod_database_writable`` is 0; the refusal is logged once. When
writes are back, without a restart: ``/readyz`` 200, one recovery message, the sweeps
resume, and every row committed before the failure is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.sim.slack_models import Message
from tests.runtime.conftest import runtime_env
from tests.support.bot_process import BotProcess, bot_environ
from tests.support.databases import create_pg_database, drop_pg_database, pg_execute

pytestmark = pytest.mark.slow

INTERVAL_SECS = 1.0
ALERTS = "C0ALERTS"
OPERATOR_KEY = "operator-gateway-key"
WITHIN_SECS = 60.0
START_SECS = 120.0
REFUSAL_LOG = "read-only commands still answer"


async def until(
    check: Callable[[], Awaitable[bool]], what: str, within: float = WITHIN_SECS
) -> None:
    """Ask ``check`` again and again (a real state: the bot's answers) until it says yes."""
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 - polls the bot's own answers
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {within} s") from None


@dataclass
class Outage:
    """How to take writes away from the bot's database and give them back."""

    database_url: str
    name: str  # how the bot names the database in its messages
    refuse: Callable[[], Awaitable[None]]
    restore: Callable[[], Awaitable[None]]
    count_rows: Callable[[], Awaitable[dict[str, int]]]
    figures: dict[str, object] = field(default_factory=dict)


def _bot_env(
    tmp_path: Path, backend: BackendSimulator, slack: SlackEmulator, database_url: str
) -> dict[str, str]:
    return bot_environ(
        runtime_env(
            tmp_path,
            backend,
            slack,
            DATABASE_URL=database_url,
            STARPOD_MONITOR_INTERVAL=str(INTERVAL_SECS),
        )
    )


def _metric(text: str, name: str, *, absent: float | None = None) -> float:
    """The value of ``name`` (a labelled series not yet counted: ``absent``)."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    if not found and absent is not None:
        return absent
    assert found, f"{name} not in /metrics"
    return total


def _alerts_saying(slack: SlackEmulator, words: str) -> list[Message]:
    return [m for m in slack.messages(ALERTS) if words in m.text]


#: What must never shrink, each counted by one query. Heartbeat samples live in the head and,
#: once compacted, in per-hour chunks that record how many samples each holds.
COUNTS = {
    "instances": "SELECT count(*) FROM instances",
    "heartbeat_samples": "SELECT (SELECT count(*) FROM heartbeat_head)"
    " + (SELECT coalesce(sum(samples), 0) FROM heartbeat_chunks)",
    "audit_log": "SELECT count(*) FROM audit_log",
}
TABLES = tuple(COUNTS)


async def _run_outage(
    outage: Outage,
    tmp_path: Path,
    backend: BackendSimulator,
    slack: SlackEmulator,
) -> dict[str, object]:
    instance_id, *_ = backend.seed_instances(3)
    env = _bot_env(tmp_path, backend, slack, outage.database_url)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    bot = await BotProcess.start(env, workdir)
    events_answered = 0
    try:
        await bot.listening(START_SECS)
        events = f"{bot.url}/slack/events"
        async with httpx.AsyncClient(base_url=bot.url, timeout=15) as http:

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            async def sweeps() -> float:
                return _metric(
                    (await http.get("/metrics")).text, 'starpod_sweeps_total{result="ok"}', absent=0
                )

            async def command(text: str) -> str:
                nonlocal events_answered
                await slack.send_slash_command(events, text)
                events_answered += 1
                await slack.wait_for(
                    lambda: len(slack.responses) >= events_answered, timeout=WITHIN_SECS, what=text
                )
                return str(slack.responses[-1].body)

            await until(ready, "ready at start")
            await until(lambda: _gt(sweeps, 2), "two sweeps")
            listed = await command("list")
            assert instance_id in listed
            # The list's audit row is written once its answer is out.
            rows: dict[str, int] = {}

            async def every_table_has_rows() -> bool:
                rows.update(await outage.count_rows())
                return all(rows[t] > 0 for t in TABLES)

            await until(every_table_has_rows, "rows in every table")
            before = dict(rows)

            # -- writes refused ----------------------------------------------------------------
            refused_at = time.monotonic()
            await outage.refuse()
            refused = await _wait_answer(http, lambda r: r.status_code == 503)
            to_503 = time.monotonic() - refused_at
            await slack.wait_for(
                lambda: bool(_alerts_saying(slack, "Monitoring is degraded")),
                timeout=WITHIN_SECS,
                what="the degraded message",
            )
            to_message = time.monotonic() - refused_at
            listed_while_full = await command("list")
            status_while_full = await command("status")
            reads_while_full = [
                await command(text)
                for text in (f"health {instance_id}", f"history {instance_id}", "audit")
            ]
            restart_while_full = await command(f"restart {instance_id}")
            fleet_while_full = len(backend.instance_ids())
            create_while_full = await command("create --name during-the-outage")
            gateway = await http.post(
                f"/api/instances/{instance_id}/restart", headers={"X-API-Key": OPERATOR_KEY}
            )
            metrics_while_full = (await http.get("/metrics")).text
            # Three more intervals of refused writes: no second message, no second log line.
            window_end = time.monotonic() + 3 * INTERVAL_SECS
            while time.monotonic() < window_end:
                assert (await http.get("/readyz")).status_code == 503
                await asyncio.sleep(0.2)
            degraded = _alerts_saying(slack, "Monitoring is degraded")

            # -- writes back -------------------------------------------------------------------
            restored_at = time.monotonic()
            await outage.restore()
            await until(ready, "ready again after writes came back")
            to_ready = time.monotonic() - restored_at
            swept = await sweeps()
            await until(lambda: _gt(sweeps, swept), "a sweep after recovery")
            to_sweep = time.monotonic() - restored_at
            await until(lambda: _gt(sweeps, swept + 2), "three sweeps after recovery")
            to_sweeps = time.monotonic() - restored_at
            await slack.wait_for(
                lambda: bool(_alerts_saying(slack, "Monitoring resumed")),
                timeout=WITHIN_SECS,
                what="the recovery message",
            )
            listed_after = await command("list")
            metrics_after = (await http.get("/metrics")).text
    finally:
        code = await bot.stop()
    assert code == 0, bot.output()[-4000:]
    after = await outage.count_rows()

    body = refused.json()
    assert body["status"] == "not ready"
    check = body["checks"]["database"]
    assert check.startswith(("database is full:", "database is read-only:")), check
    assert outage.name in check and "refuses writes" in check
    assert len(degraded) == 1, [m.text for m in degraded]
    assert outage.name in degraded[0].text and degraded[0].thread_ts is None
    assert instance_id in listed_while_full
    assert "refuses writes" in status_while_full
    for answer in reads_while_full:  # answered from the backend and the stored rows
        assert "error id" not in answer and "refuses writes" not in answer, answer
    assert all(instance_id[:8] in answer for answer in reads_while_full[:2]), reads_while_full
    assert "refuses writes" in restart_while_full and "Nothing was done" in restart_while_full
    # A create is refused before the backend is asked: no instance the bot cannot track.
    assert "refuses writes" in create_while_full and "Nothing was done" in create_while_full
    assert len(backend.instance_ids()) == fleet_while_full
    assert gateway.status_code == 503 and outage.name in gateway.json()["error"]
    assert _metric(metrics_while_full, "starpod_database_writable") == 0
    assert _metric(metrics_after, "starpod_database_writable") == 1
    assert instance_id in listed_after
    assert len(_alerts_saying(slack, "Monitoring resumed")) == 1
    assert len(_alerts_saying(slack, "Monitoring is degraded")) == 1
    refusal_lines = [line for line in bot.lines if REFUSAL_LOG in line]
    assert len(refusal_lines) == 1, refusal_lines
    assert not [line for line in bot.lines if "Traceback" in line], bot.output()[-4000:]
    # Nothing committed before the failure was lost; the recovered bot wrote more.
    assert all(after[t] >= before[t] for t in TABLES), (before, after)
    assert after["heartbeat_samples"] > before["heartbeat_samples"]
    assert slack.violations() == []
    return {
        "interval secs": INTERVAL_SECS,
        "secs to readyz 503": round(to_503, 2),
        "secs to the degraded message": round(to_message, 2),
        "degraded messages": len(degraded),
        "refusal log lines": len(refusal_lines),
        "secs from writes back to readyz 200": round(to_ready, 2),
        "secs from writes back to the first sweep": round(to_sweep, 2),
        "secs from writes back to 3 sweeps": round(to_sweeps, 2),
        "rows before": sum(before.values()),
        "rows lost": sum(max(0, before[t] - after[t]) for t in TABLES),
    }


async def _gt(read: Callable[[], Awaitable[float]], value: float) -> bool:
    return await read() > value


async def _wait_answer(
    http: httpx.AsyncClient, good: Callable[[httpx.Response], bool]
) -> httpx.Response:
    answer: list[httpx.Response] = []

    async def check() -> bool:
        response = await http.get("/readyz")
        answer[:] = [response]
        return good(response)

    await until(check, "/readyz turns 503")
    return answer[0]


# -- a full tmpfs volume -----------------------------------------------------------------------


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs volume mounted for this test (skipped, saying why, when mount is refused)."""
    mount_point = tmp_path / "volume"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs volume (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path) -> Path:
    """Write a file until the volume is full (ENOSPC); return it."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as handle:
        while True:
            try:
                handle.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        # The last pages too: one byte at a time, until not one more fits.
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0")
    return filler


def _fill_under(path: Path) -> Path:
    """Fill the volume of the SQLite file at ``path``; return the filler file."""
    # Start the write-ahead log over, as a checkpoint does in time: every write after
    # this needs new pages on the volume.
    conn = sqlite3.connect(path, timeout=10)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return _fill(path.parent)


def _close_last(path: Path) -> None:
    """Open and close the file read-write: as the last connection, SQLite removes the WAL."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        conn.close()
    assert not Path(f"{path}-shm").exists()


def _sqlite_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return {t: conn.execute(sql).fetchone()[0] for t, sql in COUNTS.items()}
    finally:
        conn.close()


async def test_a_full_disk_degrades_says_so_once_and_recovers_on_its_own(
    tmp_path: Path,
    small_volume: Path,
    backend_sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    reliability_figures: dict[str, object],
) -> None:
    path = small_volume / "bot.db"
    fillers: list[Path] = []

    async def refuse() -> None:
        fillers.append(await asyncio.to_thread(_fill_under, path))

    async def restore() -> None:
        for filler in fillers:
            filler.unlink()

    async def count_rows() -> dict[str, int]:
        return await asyncio.to_thread(_sqlite_counts, path)

    outage = Outage(f"sqlite:///{path}", str(path), refuse, restore, count_rows)
    figures = await _run_outage(outage, tmp_path, backend_sim, slack_emulator)
    reliability_figures.update({"database": "sqlite on a 16 MB tmpfs", **figures})


async def test_a_bot_restarted_on_a_full_disk_is_not_ready_says_so_and_leads_once_space_returns(
    tmp_path: Path,
    small_volume: Path,
    backend_sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    reliability_figures: dict[str, object],
) -> None:
    slack = slack_emulator
    backend_sim.seed_instances(2)
    path = small_volume / "bot.db"
    env = _bot_env(tmp_path, backend_sim, slack, f"sqlite:///{path}")
    workdir = tmp_path / "cwd"
    workdir.mkdir()

    # A first process records a few sweeps; the disk fills under it; it crashes.
    first = await BotProcess.start(env, workdir)
    try:
        async with httpx.AsyncClient(
            base_url=await first.listening(START_SECS), timeout=15
        ) as http:
            await until(lambda: _sweeps_over(http, 2), "two sweeps")
            filler = await asyncio.to_thread(_fill_under, path)
            await _wait_answer(http, lambda r: r.status_code == 503)
    finally:
        first.proc.kill()
        await first.stop()
    before = await asyncio.to_thread(_sqlite_counts, path)
    said_before = len(_alerts_saying(slack, "Monitoring is degraded"))

    # The next start finds the disk full: up, not ready, saying why, never leading.
    bot = await BotProcess.start(env, workdir)
    try:
        async with httpx.AsyncClient(base_url=await bot.listening(START_SECS), timeout=15) as http:
            refused = await _wait_answer(http, lambda r: r.status_code == 503)
            await slack.wait_for(
                lambda: len(_alerts_saying(slack, "Monitoring is degraded")) > said_before,
                timeout=WITHIN_SECS,
                what="the degraded message of the new process",
            )
            metrics_while_full = (await http.get("/metrics")).text
            freed_at = time.monotonic()
            filler.unlink()

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await until(ready, "ready once space returns")
            await until(lambda: _sweeps_over(http, 1), "a sweep once space returns")
            to_sweep = time.monotonic() - freed_at
            await slack.wait_for(
                lambda: bool(_alerts_saying(slack, "Monitoring resumed")),
                timeout=WITHIN_SECS,
                what="the recovery message",
            )
    finally:
        code = await bot.stop()
    assert code == 0, bot.output()[-4000:]
    checks = refused.json()["checks"]
    assert checks["database"].startswith(f"database is full: {path} refuses writes"), checks
    assert checks["monitor"].startswith("leadership cannot be decided"), checks
    assert _metric(metrics_while_full, 'starpod_sweeps_total{result="ok"}', absent=0) == 0
    assert _metric(metrics_while_full, "starpod_leader") == 0
    assert any("starpod-bot is up" in line and "standing by" in line for line in bot.lines)
    assert len(_alerts_saying(slack, "Monitoring is degraded")) == said_before + 1
    assert len(_alerts_saying(slack, "Monitoring resumed")) == 1
    after = await asyncio.to_thread(_sqlite_counts, path)
    assert all(after[t] >= before[t] for t in TABLES), (before, after)

    # After a clean stop SQLite has removed the WAL's files, and on a full volume it
    # cannot make them again: not even a read works. The start says so in one line.
    await asyncio.to_thread(_close_last, path)
    await asyncio.to_thread(_fill, small_volume)
    third = await BotProcess.start(env, workdir)
    assert await third.finish(WITHIN_SECS) == 1
    refusals = [line for line in third.lines if "cannot start" in line]
    assert len(refusals) == 1, third.output()[-4000:]
    assert f"cannot start: database is full: {path} refuses writes" in refusals[0]
    reliability_figures.update(
        {
            "database": "sqlite on a full 16 MB tmpfs at start",
            "readyz after a crash and restart": refused.status_code,
            "secs from space back to the first sweep": round(to_sweep, 2),
            "exit code of a start after a clean stop": 1,
        }
    )


async def _sweeps_over(http: httpx.AsyncClient, count: float) -> bool:
    text = (await http.get("/metrics")).text
    return _metric(text, 'starpod_sweeps_total{result="ok"}', absent=0) >= count


# -- a read-only PostgreSQL --------------------------------------------------------------------


@pytest.fixture
async def pg_own_database(postgres_url: str) -> AsyncIterator[str]:
    """A PostgreSQL database for this test alone (it is switched to read-only)."""
    name = f"starpod_ro_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    url = await create_pg_database(postgres_url, name)
    try:
        yield url
    finally:
        await drop_pg_database(postgres_url, name)


async def test_a_read_only_postgresql_degrades_says_so_once_and_recovers_on_its_own(
    tmp_path: Path,
    pg_own_database: str,
    postgres_url: str,
    backend_sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    reliability_figures: dict[str, object],
) -> None:
    name = make_url(pg_own_database).database
    plain = make_url(pg_own_database).set(drivername="postgresql")
    shown = plain.set(drivername="postgresql+asyncpg").render_as_string(hide_password=True)

    async def switch(read_only: bool) -> None:
        # Altered from the maintenance database (the read-only one would refuse it back);
        # the setting reaches new sessions, so the bot's are ended: it reconnects.
        value = "on" if read_only else "off"
        await pg_execute(
            postgres_url,
            f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )

    async def count_rows() -> dict[str, int]:
        conn = await asyncpg.connect(plain.render_as_string(hide_password=False))
        try:
            return {t: int(await conn.fetchval(sql)) for t, sql in COUNTS.items()}
        finally:
            await conn.close()

    outage = Outage(pg_own_database, shown, lambda: switch(True), lambda: switch(False), count_rows)
    figures = await _run_outage(outage, tmp_path, backend_sim, slack_emulator)
    reliability_figures.update({"database": "postgresql, read-only", **figures})
