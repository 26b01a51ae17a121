"""The sweep's cost in counts a loaded machine cannot bend, beside raw aiohttp's.

CPU seconds of the same work move by ~0.15x of the raw baseline from run to run on this
2-core machine, more than most single changes to the hot path save. Counts do not:

- ``--count calls`` (default): Python function calls (cProfile) of the bench process's
  main thread; quick, no tool needed, but blind to work done in C and in the database
  driver's thread;
- ``--count instructions``: machine instructions of the whole bench process, every
  thread (valgrind's callgrind; the bench runs itself under valgrind, the simulator
  natively in its own process, so only the client side is counted).

Phases, each beside the raw baseline of the same round (``bench/sweep.py``'s): ``raw``
(aiohttp fetching the list and every running instance's health, ``json()``), ``fetch``
(``InstanceClient`` list + health through ``observe``, nothing recorded) and ``sweep`` (a
whole sweep, recorded to SQLite). A warm-up round is not counted; medians over ``--rounds``.

    python bench/sweep_counts.py --instances 2000 --rounds 3
    python bench/sweep_counts.py --count instructions --instances 2000 --rounds 3 --json

Under callgrind, counting starts when the bench calls ``sched_get_priority_min`` and each
phase is written out when it calls ``sched_get_priority_max`` (``--zero-before`` and
``--dump-before``): two system calls nothing else in the process makes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from sweep import CONCURRENCY, SLICE_SIZE, bench_monitor, client_fetch, raw_sweep_fetch

from bot.backend import InstanceClient
from bot.sim.process import start_simulator, stop_process
from bot.store.database import Database

PHASES = ("raw", "fetch", "sweep")
ZERO_AT = "sched_get_priority_min"
DUMP_AT = "sched_get_priority_max"
Measure = Callable[[str], Any]  # phase name -> a context manager around that phase


async def count_phases(url: str, rounds: int, workdir: Path, measure: Measure) -> None:
    """A warm-up round, then ``rounds`` rounds of raw / fetch / sweep, each inside
    ``measure(phase)``."""
    db = Database(f"sqlite:///{workdir / 'sweep.db'}")
    await db.upgrade()
    try:
        async with (
            InstanceClient(url) as client,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as raw,
        ):
            monitor = bench_monitor(client, db, SLICE_SIZE)
            await monitor.sweep_once()  # records the fleet for the first time
            phases: dict[str, Callable[[], Awaitable[object]]] = {
                "raw": lambda: raw_sweep_fetch(raw, url),
                "fetch": lambda: client_fetch(client, CONCURRENCY),
                "sweep": monitor.sweep_once,
            }
            for fn in phases.values():  # warm-up: connections open, caches full
                await fn()
            for _ in range(rounds):
                for name, fn in phases.items():
                    # Each phase starts without the garbage of the one before: a full
                    # collection landing in one phase or another is the noise that counts
                    # have left (one such raw round counted 1.6x the others).
                    gc.collect()
                    with measure(name):
                        await fn()
    finally:
        await db.dispose()


def run_phases(instances: int, rounds: int, measure: Measure) -> None:
    proc, url = start_simulator(instances)
    try:
        with tempfile.TemporaryDirectory(prefix="starpod-counts-") as tmp:
            asyncio.run(count_phases(url, rounds, Path(tmp), measure))
    finally:
        stop_process(proc)


# -- calls (cProfile) --------------------------------------------------------------------------


def count_calls(instances: int, rounds: int) -> dict[str, list[int]]:
    counts: dict[str, list[int]] = {p: [] for p in PHASES}

    @contextmanager
    def measure(phase: str) -> Iterator[None]:
        profile = cProfile.Profile()
        profile.enable()
        try:
            yield
        finally:
            profile.disable()
            counts[phase].append(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]

    run_phases(instances, rounds, measure)
    return counts


# -- instructions (callgrind) ------------------------------------------------------------------


def _mark_phases(order_file: Path) -> Measure:
    """Inside valgrind: zero the counters before a phase, dump them after it."""
    order: list[str] = []

    @contextmanager
    def measure(phase: str) -> Iterator[None]:
        os.sched_get_priority_min(os.SCHED_OTHER)  # callgrind: --zero-before
        try:
            yield
        finally:
            os.sched_get_priority_max(os.SCHED_OTHER)  # callgrind: --dump-before
            order.append(phase)
            order_file.write_text(json.dumps(order))

    return measure


def count_instructions(args: argparse.Namespace) -> dict[str, list[int]]:
    """Run this bench under callgrind and read one dump per phase."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--count instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="starpod-callgrind-") as tmp:
        out = Path(tmp)
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.out.%p",
            f"--zero-before={ZERO_AT}",
            f"--dump-before={DUMP_AT}",
            f"--log-file={out}/valgrind.log",
            sys.executable,
            __file__,
            "--instances",
            str(args.instances),
            "--rounds",
            str(args.rounds),
            "--inside-callgrind",
            str(out / "phases.json"),
        ]
        # The same hashes every run: set and dict layouts then cost the same instructions.
        env = os.environ | {"PYTHONHASHSEED": "0"}
        if subprocess.run(command, env=env, check=False).returncode != 0:
            print((out / "valgrind.log").read_text()[-3000:], file=sys.stderr)
            raise SystemExit("the bench failed under callgrind")
        order = json.loads((out / "phases.json").read_text())
        dumps = sorted(out.glob("callgrind.out.*.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
        if len(dumps) != len(order):
            raise SystemExit(f"{len(dumps)} callgrind dumps for {len(order)} phases")
        counts: dict[str, list[int]] = {p: [] for p in PHASES}
        for phase, dump in zip(order, dumps, strict=True):
            found = re.search(r"^summary: (\d+)", dump.read_text(), re.MULTILINE)
            if found is None:
                raise SystemExit(f"no summary line in {dump.name}")
            counts[phase].append(int(found.group(1)))
    return counts


# -- main ----------------------------------------------------------------------------------------


def figures(counts: dict[str, list[int]], args: argparse.Namespace) -> dict[str, Any]:
    median = {p: statistics.median(v) for p, v in counts.items()}
    return {
        "count": args.count,
        "instances": args.instances,
        "rounds": args.rounds,
        "rounds_counted": counts,
        "per_instance": {p: round(v / args.instances, 1) for p, v in median.items()},
        "fetch_vs_raw": round(median["fetch"] / median["raw"], 3),
        "sweep_vs_raw": round(median["sweep"] / median["raw"], 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def print_table(r: dict[str, Any]) -> None:
    unit = "calls" if r["count"] == "calls" else "instructions"
    print(f"{unit} per instance, {r['instances']:,} instances, median of {r['rounds']} rounds")
    for phase in PHASES:
        ratio = {"raw": "", "fetch": r["fetch_vs_raw"], "sweep": r["sweep_vs_raw"]}[phase]
        label = f"{ratio}x raw" if ratio else "baseline"
        print(f"  {phase:<6}{r['per_instance'][phase]:>12,.1f}  {label}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", choices=("calls", "instructions"), default="calls")
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds counted (medians)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 300 instances")
    parser.add_argument("--inside-callgrind", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside_callgrind is not None:
        run_phases(args.instances, args.rounds, _mark_phases(args.inside_callgrind))
        return
    if args.quick:
        args.instances, args.rounds = 300, 1
    if args.count == "calls":
        counts = count_calls(args.instances, args.rounds)
    else:
        counts = count_instructions(args)
    result = figures(counts, args)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    cli()
