"""SIGKILL in the middle of a sweep, then start again: no lost alert state, no double restart.

A real monitor process (``replica_worker.py``) on a SQLite file sweeps the simulator (real
clock). The moment its restart call for a stale instance reaches the backend (held there
for a moment by injected latency), it is killed with SIGKILL: no clean-up, the lease row
left behind. A new process on the same file must take over at once (the lease names a
dead pid on this host), record what the dead one could not, and not restart the instance
again for the same staleness. Twice: once where the restart heals the instance, once
where it does not (sticky), the documented duplicate window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.sim.backend import BackendSimulator
from bot.store.database import Database
from tests.support.processes import JsonLinesWorker

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("replica_worker.py")
INTERVAL = 0.5


class Proc(JsonLinesWorker):
    """A replica worker; its JSON lines say what each sweep did."""

    WITHIN = 60.0

    def swept(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("swept")]

    def started_at(self) -> float:
        """When the process had started Python and imported the bot (``time.time()``)."""
        return next(line["t"] for line in self.lines if "started" in line)


async def _spawn(backend: str, db_url: str) -> Proc:
    return await Proc.start(
        WORKER, "--backend", backend, "--db", db_url, "--interval", str(INTERVAL)
    )


@pytest.fixture
async def live_sim() -> AsyncIterator[tuple[BackendSimulator, list[float]]]:
    offset = [0.0]
    async with BackendSimulator(
        clock=lambda: time.time() + offset[0], seed=21, transition_secs=0
    ) as s:
        yield s, offset


@pytest.mark.parametrize("sticky", [False, True], ids=["restart-heals", "still-stale"])
async def test_sigkill_mid_sweep_then_restart(
    live_sim: tuple[BackendSimulator, list[float]],
    sqlite_store: Database,
    sqlite_path: Path,
    sticky: bool,
    reliability_figures: dict[str, object],
) -> None:
    sim, offset = live_sim
    ids = sim.seed_instances(5)
    victim = ids[0]
    url = f"sqlite:///{sqlite_path}"
    first = await _spawn(sim.url, url)
    second: Proc | None = None
    try:
        await first.wait_for(lambda: len(first.swept()) >= 1)
        sim.set_faults(latency_secs=0.3, endpoints=["restart"])
        offset[0] = -200
        sim.stop_heartbeat(victim, sticky=sticky)
        offset[0] = 0
        async with asyncio.timeout(Proc.WITHIN):
            while not sim.calls[("restart", victim)]:  # noqa: ASYNC110 - the sim's state
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.35)  # the restart is done; the record may not be
        await first.kill()
        sim.set_faults()
        killed_at = time.time()

        second = await _spawn(sim.url, url)
        await second.wait_for(lambda: len(second.swept()) >= 4)
        # The take-over is the new process's: from the moment it runs (after the kill) to
        # its first sweep. Starting Python and importing the bot is not part of it; on a
        # loaded machine that alone takes seconds (reported, not asserted).
        took_over = second.swept()[0]["t"] - max(killed_at, second.started_at())
        # "At once" is the rule: the new process's very first election round leads (the
        # lease names a dead pid on this host), however long the machine took to get there.
        first_round = next(line for line in second.lines if "sweep" in line)
    finally:
        await first.kill()
        if second is not None:
            await second.kill()

    restarts = sim.calls[("restart", victim)]
    # A restart that healed the instance is never repeated. One that did not heal it (the
    # instance stays stale) may be repeated once if the kill fell between the restart call
    # and its record: the documented duplicate window. Never more.
    assert restarts == 1 if not sticky else restarts in (1, 2), restarts
    assert all(sim.calls[("restart", i)] == 0 for i in ids[1:])
    assert first_round["swept"] is True, second.lines
    reliability_figures.update(
        case="restart heals" if not sticky else "still stale",
        restart_calls=restarts,
        takeover_secs=round(took_over, 2),
        healthy_restarted=0,
    )
