"""bot.heap: glibc's arena limit and trim, each measured in a fresh interpreter.

Each check runs in a subprocess, so the test process's own heap (and an arena limit set
by an earlier test) cannot decide the outcome. Where the C library is not glibc both
calls must be harmless no-ops; that is checked on every platform.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.heap import SweepTrimmer, glibc, limit_arenas, trim
from bot.monitor.reports import SweepReport

ROOT = Path(__file__).resolve().parents[1]
GLIBC = glibc() is not None
needs_glibc = pytest.mark.skipif(not GLIBC, reason="the C library is not glibc")

# Threads that each malloc while all are alive, then glibc's malloc_stats() (stderr):
# one "Arena N:" block per arena in use.
ARENAS_SCRIPT = """
import ctypes, sys, threading
from bot.heap import limit_arenas
if sys.argv[1] != "none":
    assert limit_arenas(int(sys.argv[1]))
THREADS = 6
barrier = threading.Barrier(THREADS + 1)
def work():
    keep = [bytearray(4096) for _ in range(100)]  # malloc'd in this thread's arena
    barrier.wait()
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(THREADS)]
for t in threads:
    t.start()
barrier.wait()
ctypes.CDLL(None).malloc_stats()
barrier.wait()
for t in threads:
    t.join()
"""

# 40 MB of malloc'd blocks freed below one that stays (so glibc cannot give them back on
# its own by shrinking the top of the heap), RSS before and after trim().
TRIM_SCRIPT = """
import sys
from bot.heap import trim
def rss_mb():
    with open("/proc/self/statm") as fh:
        import os
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
blocks = [bytearray(4000) for _ in range(10_000)]
pin = bytearray(4000)
del blocks
before = rss_mb()
released = trim()
print(before, rss_mb(), released)
"""


def _python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MALLOC_ARENA_MAX", None)
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )


def _arenas(limit: str) -> int:
    return _python(ARENAS_SCRIPT, limit).stderr.count("Arena ")


@needs_glibc
def test_limit_arenas_makes_threads_share_that_many() -> None:
    # Without the limit every thread gets an arena of its own (the test can fail).
    assert _arenas("none") >= 7
    assert _arenas("2") == 2


@needs_glibc
def test_trim_gives_freed_memory_back_to_the_kernel() -> None:
    before, after, released = _python(TRIM_SCRIPT).stdout.split()
    assert released == "True"
    assert float(before) - float(after) > 30, (before, after)


def test_off_glibc_both_calls_are_no_ops() -> None:
    if GLIBC:
        assert glibc() is not None
        return
    assert limit_arenas() is False
    assert trim() is False


async def test_the_trimmer_trims_after_a_sweep_that_swept_and_not_after_others() -> None:
    calls: list[str] = []

    def fake_trim() -> bool:
        calls.append("trim")
        return True

    trimmer = SweepTrimmer(fake_trim)
    trimmer(SweepReport(at=datetime.now(UTC), swept=False))  # a standby's round
    await trimmer.wait()
    assert calls == []
    trimmer(SweepReport(at=datetime.now(UTC), swept=True))
    await trimmer.wait()
    assert calls == ["trim"]
    assert (trimmer.trims, trimmer.released) == (1, 1)


async def test_the_trimmer_skips_a_sweep_while_its_last_trim_still_runs() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_trim() -> bool:
        loop.call_soon_threadsafe(started.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=10)
        return False

    trimmer = SweepTrimmer(slow_trim)
    trimmer(SweepReport(at=datetime.now(UTC), swept=True))
    await started.wait()
    trimmer(SweepReport(at=datetime.now(UTC), swept=True))  # skipped: one is running
    release.set()
    await trimmer.wait()
    assert (trimmer.trims, trimmer.released) == (1, 0)
