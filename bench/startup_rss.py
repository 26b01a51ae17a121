"""What the bot's code costs before any instance: RSS after its imports, and after its first sweep.

Each figure is the median of ``--rounds`` fresh processes (RSS read with psutil from here):

- the interpreter alone (``python -c``), the baseline of the rest;
- the run path's imports: ``import bot.cli, bot.runtime, bot.wiring`` (what
  ``starpod-bot run`` loads before it builds anything), and how many modules that is;
- the real ``starpod-bot run`` (``bench/soak.py``'s set-up: HTTP mode, SQLite file, gateway
  off, the backend simulator and a Slack sink in their own processes) tracking
  ``--instances``, right after its first sweep is recorded: on a database migrated
  beforehand (every start but a new version's first) and on a new one (it migrates at
  start, so Alembic is imported).

    python bench/startup_rss.py                  # 1,000 instances, 3 rounds
    python bench/startup_rss.py --json
    python bench/startup_rss.py --quick          # a few seconds: 50 instances, 1 round

Run it from the checkout it measures: the processes it starts import ``bot`` from the
working folder first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from soak import last_sweep, start_bot, start_sink  # bench/soak.py: the same bot set-up

from bot.sim.process import start_simulator, stop_process

MB = 1024 * 1024
RUN_PATH = "import bot.cli, bot.runtime, bot.wiring"
#: Long enough that no second sweep starts while the RSS is read.
INTERVAL_SECS = 600.0
FIRST_SWEEP_WITHIN_SECS = 300.0


def rss_after(code: str) -> tuple[float, int]:
    """RSS (MB) of a fresh interpreter once ``code`` ran, and its module count."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"{code}\nimport sys\nprint(len(sys.modules), flush=True)\nsys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    modules = int(proc.stdout.readline())
    rss = psutil.Process(proc.pid).memory_info().rss / MB
    proc.stdin.close()
    proc.wait(timeout=30)
    return rss, modules


def bot_after_first_sweep(backend: str, sink: str, *, migrated: bool) -> float:
    """RSS (MB) of ``starpod-bot run`` right after its first sweep is recorded."""
    with tempfile.TemporaryDirectory(prefix="starpod-startup-") as tmp:
        bot, url = start_bot(backend, sink, Path(tmp), INTERVAL_SECS, migrated=migrated)
        try:
            deadline = time.monotonic() + FIRST_SWEEP_WITHIN_SECS
            while last_sweep(url) == 0:  # another process: polled through /metrics
                if bot.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the bot recorded no sweep:\n" + _tail(Path(tmp)))
                time.sleep(0.2)
            return float(psutil.Process(bot.pid).memory_info().rss / MB)
        finally:
            bot.terminate()
            bot.wait(timeout=30)


def _tail(workdir: Path) -> str:
    return (workdir / "bot.log").read_text()[-2000:]


def run(instances: int, rounds: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {
        "interpreter": [],
        "imports": [],
        "bot_migrated": [],
        "bot_new_database": [],
    }
    modules: list[int] = []
    load_before = [round(x, 2) for x in os.getloadavg()]
    sim, backend = start_simulator(instances)
    sink, sink_url = start_sink()
    try:
        for _ in range(rounds):
            samples["interpreter"].append(rss_after("pass")[0])
            rss, count = rss_after(RUN_PATH)
            samples["imports"].append(rss)
            modules.append(count)
            samples["bot_migrated"].append(bot_after_first_sweep(backend, sink_url, migrated=True))
            samples["bot_new_database"].append(
                bot_after_first_sweep(backend, sink_url, migrated=False)
            )
    finally:
        stop_process(sim)
        if sink.stdin:
            sink.stdin.close()
        sink.terminate()
        sink.wait(timeout=15)
    return {
        "instances": instances,
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "run_path": RUN_PATH,
        "modules_after_imports": statistics.median(modules),
        **{f"rss_mb_{k}": round(statistics.median(v), 1) for k, v in samples.items()},
        "rss_mb_samples": {k: [round(x, 1) for x in v] for k, v in samples.items()},
    }


def print_table(f: dict[str, Any]) -> None:
    print(f"median of {f['rounds']} rounds (MB):")
    print(f"  interpreter alone                       {f['rss_mb_interpreter']:7.1f}")
    print(
        f"  {f['run_path']:<40}{f['rss_mb_imports']:7.1f}  ({f['modules_after_imports']:g} modules)"
    )
    print(
        f"  the bot after its first sweep, {f['instances']:,} instances:\n"
        f"    database migrated before start        {f['rss_mb_bot_migrated']:7.1f}\n"
        f"    new database (migrates at start)      {f['rss_mb_bot_new_database']:7.1f}"
    )
    print(f"load average before/after: {f['load_average_before']} / {f['load_average_after']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--instances", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few seconds: 50 instances")
    args = parser.parse_args()
    if args.quick:
        args.instances, args.rounds = 50, 1
    figures = run(args.instances, args.rounds)
    if args.json:
        print(json.dumps(figures))
    else:
        print_table(figures)


if __name__ == "__main__":
    main()
