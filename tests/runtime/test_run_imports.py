"""``starpod-bot run`` imports only what it uses: no FastAPI with the gateway off, no
Alembic (nor mako, pygments) on a migrated database, no rich, no PostgreSQL dialect on
SQLite, no cryptography before an SSH key link (BENCHMARKS.md, "What the running bot
imports").

The bot runs as a real process, entered the way the console script enters it, pointed at
the simulators in this test process; once its first sweep is recorded it is stopped
(SIGTERM), and on its way out it writes the names of every module it imported.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest

from bot.sim.backend import BackendSimulator
from bot.sim.process import free_port
from bot.sim.slack import SlackEmulator
from bot.store.database import Database
from tests.runtime.conftest import runtime_env
from tests.support.bot_process import BotProcess, bot_environ

pytestmark = pytest.mark.slow

#: Imported by the running bot only for a command or a feature it is not using: here, on
#: SQLite (PostgreSQL's dialect is for a bot on PostgreSQL), and before anyone asked for an
#: SSH key link (cryptography encrypts its key).
UNUSED = (
    "fastapi",
    "alembic",
    "mako",
    "pygments",
    "rich",
    "sqlalchemy.dialects.postgresql",
    "cryptography",
)
START_WITHIN_SECS = 60.0
STOP_WITHIN_SECS = 15.0
_LAST_SWEEP = re.compile(r"^starpod_last_sweep_timestamp_seconds (\S+)$", re.M)

# The console script's entry (`from bot.cli import main`); the module list on the way out.
PROBE = """
import json, os, sys
from bot.cli import main
try:
    main()
finally:
    with open(os.environ["PROBE_MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
"""


def _packages(modules: list[str], names: tuple[str, ...]) -> set[str]:
    """Which of the top-level packages ``names`` have a module in ``modules``."""
    return {name for name in names for m in modules if m == name or m.startswith(name + ".")}


async def _first_sweep(url: str, proc: asyncio.subprocess.Process) -> None:
    """Until the bot's /metrics shows a recorded sweep (fails if the bot exits first)."""
    async with (
        httpx.AsyncClient(base_url=url, timeout=5) as http,
        asyncio.timeout(START_WITHIN_SECS),
    ):
        while proc.returncode is None:
            try:
                found = _LAST_SWEEP.search((await http.get("/metrics")).text)
            except httpx.TransportError:
                found = None  # not listening yet
            if found is not None and float(found.group(1)) > 0:
                return
            await asyncio.sleep(0.05)  # another process: polled, as bench/soak.py does
    raise AssertionError(f"the bot exited with {proc.returncode} before its first sweep")


async def _modules_of_a_run(
    tmp_path: Path, backend: BackendSimulator, slack: SlackEmulator, **overrides: str
) -> list[str]:
    """Run the bot until its first sweep is recorded; the modules it had imported by exit."""
    out = tmp_path / "modules.json"
    port = free_port()
    env = bot_environ(runtime_env(tmp_path, backend, slack, PORT=str(port), **overrides))
    env["PROBE_MODULES_OUT"] = str(out)
    workdir = tmp_path / "cwd"  # empty: no starpod-bot.toml is read
    workdir.mkdir()
    bot = await BotProcess.start(env, workdir, "-c", PROBE, "run")
    try:
        await _first_sweep(f"http://127.0.0.1:{port}", bot.proc)
    finally:
        code = await bot.stop(STOP_WITHIN_SECS)
    assert code == 0, bot.output()[-3000:]
    modules: list[str] = json.loads(out.read_text())
    return modules


async def test_the_running_bot_imports_no_gateway_migrations_or_terminal_tables(
    tmp_path: Path, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    backend_sim.seed_instances(5)
    # Migrated beforehand, as every start but a new version's first finds it.
    async with Database(f"sqlite:///{tmp_path / 'bot.db'}") as db:
        await db.upgrade()
    modules = await _modules_of_a_run(
        tmp_path, backend_sim, slack_emulator, STARPOD_GATEWAY_KEYS=""
    )
    assert "bot.monitor.sweep" in modules  # it did sweep
    assert _packages(modules, UNUSED) == set()


async def test_the_gateway_and_a_migration_do_import_theirs(
    tmp_path: Path, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    # The same probe sees what a start imports when it needs it: the test above can fail.
    backend_sim.seed_instances(5)
    modules = await _modules_of_a_run(tmp_path, backend_sim, slack_emulator)  # keys, new file
    # Alembic brings mako, pygments and PostgreSQL's dialect (its DDL for both dialects).
    assert _packages(modules, UNUSED) == set(UNUSED) - {"rich", "cryptography"}
