"""Memory soak: the real ``starpod-bot run`` tracking a fleet, its RSS every 30 s.

Processes: the backend simulator (``python -m bot.sim.backend``, all instances running),
a Slack sink answering the Web API as Slack would (``bench/ack_latency.py --role sink``),
and the bot itself (``python -m bot run``, HTTP mode, a SQLite file, the default sweep
interval of 30 s unless ``--interval``). This process only reads the bot's RSS (psutil)
and its ``/metrics`` (the last sweep's time, to count sweeps).

Figures:

- the RSS series (MB, every ``--every`` s for ``--duration`` s) and the sweeps done;
- steady RSS: the median of the samples after the warm-up (``--warmup`` s: the first,
  recording sweep and the caches filling), beside the RSS before the first sweep;
- the slope of RSS over time after the warm-up (least squares, MB per hour): a leak shows
  as a slope that stays positive however long the soak;
- the cost of one more instance: a second, shorter run tracking ``--compare`` instances,
  its steady RSS beside the first run's, per additional instance (KB).

    python bench/soak.py                               # 10,000 instances, 10 min, then 20,000
    python bench/soak.py --json
    python bench/soak.py --instances 30000 --duration 120 --compare 0
    python bench/soak.py --migrated                    # the database migrated before start
    python bench/soak.py --quick                       # a few seconds: 300 and 600 instances
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bot.sim.process import free_port, start_simulator, stop_process

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
STEADY_RSS_GOAL_MB = 150
PER_INSTANCE_GOAL_KB = 6
_LAST_SWEEP = re.compile(r"^starpod_last_sweep_timestamp_seconds (\S+)$", re.M)

Figures = dict[str, Any]


def start_sink() -> tuple[subprocess.Popen[str], str]:
    """Slack's side: ``ok`` to every Web API call (auth.test at start, alerts)."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "ack_latency.py"), "--role", "sink"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("the Slack sink exited before it was ready")
    return proc, json.loads(line)["url"]


def start_bot(
    backend: str, sink: str, workdir: Path, interval: float, *, migrated: bool = False
) -> tuple[Any, str]:
    """``python -m bot run`` with the settings a deployment would give it; waits for /healthz.

    ``migrated``: ``python -m bot db upgrade`` first, so the bot finds its database at the
    newest revision, as every start but a new version's first does (and imports no Alembic).
    """
    port = free_port()
    env = {
        **os.environ,
        "STARPOD_INSTANCE_BACKEND_URL": backend,
        "SLACK_BOT_TOKEN": "xoxb-soak-token",
        "SLACK_SIGNING_SECRET": "soak-signing-secret",
        "SLACK_API_URL": sink + "/api/",
        "DATABASE_URL": f"sqlite:///{workdir / 'soak.db'}",
        "PORT": str(port),
        "STARPOD_MONITOR_INTERVAL": str(interval),
        # The soak measures memory, not staleness: no instance goes stale meanwhile.
        "STARPOD_HEARTBEAT_TIMEOUT": str(max(90.0, 3 * interval)),
    }
    log = (workdir / "bot.log").open("w")
    if migrated:
        subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(url + "/healthz", timeout=2).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                tail = (workdir / "bot.log").read_text()[-2000:]
                raise RuntimeError(f"the bot did not start:\n{tail}") from None
            time.sleep(0.2)


def last_sweep(url: str) -> float:
    """The bot's last sweep time from /metrics (0 before the first)."""
    with contextlib.suppress(httpx.HTTPError):
        text = httpx.get(url + "/metrics", timeout=5).text
        if (found := _LAST_SWEEP.search(text)) is not None:
            return float(found.group(1))
    return 0.0


def slope_mb_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in points) / den * 3600


def soak(
    instances: int,
    *,
    duration: float,
    every: float,
    warmup: float,
    interval: float,
    migrated: bool = False,
) -> Figures:
    """One run: the bot tracking ``instances``, RSS every ``every`` s for ``duration`` s."""
    sim, backend = start_simulator(instances)
    sink, sink_url = start_sink()
    with tempfile.TemporaryDirectory(prefix="starpod-soak-") as tmp:
        bot, url = start_bot(backend, sink_url, Path(tmp), interval, migrated=migrated)
        try:
            process = psutil.Process(bot.pid)
            rss_at_start = process.memory_info().rss / MB
            started = time.monotonic()
            series: list[tuple[float, float]] = []
            sweeps: set[float] = set()
            while True:
                at = time.monotonic() - started
                series.append((round(at, 1), round(process.memory_info().rss / MB, 1)))
                if (done := last_sweep(url)) > 0:
                    sweeps.add(done)
                if at >= duration:
                    break
                time.sleep(min(every, max(0.0, duration - at)))
            if bot.poll() is not None:
                raise RuntimeError("the bot exited during the soak")
        finally:
            bot.terminate()
            bot.wait(timeout=30)
            stop_process(sim)
            with contextlib.suppress(Exception):
                if sink.stdin:
                    sink.stdin.close()
            sink.terminate()
            sink.wait(timeout=15)
    steady = [mb for at, mb in series if at >= warmup] or [series[-1][1]]
    return {
        "instances": instances,
        "database_migrated_before_start": migrated,
        "interval_secs": interval,
        "duration_secs": duration,
        "every_secs": every,
        "warmup_secs": warmup,
        "sweeps": len(sweeps),
        "rss_mb_at_start": round(rss_at_start, 1),
        "rss_mb_steady": round(statistics.median(steady), 1),
        "rss_mb_max": max(mb for _, mb in series),
        "slope_mb_per_hour": round(
            slope_mb_per_hour([(at, mb) for at, mb in series if at >= warmup]), 2
        ),
        "rss_mb_series": series,
    }


def run(args: argparse.Namespace) -> Figures:
    figures: Figures = {
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "main": soak(
            args.instances,
            duration=args.duration,
            every=args.every,
            warmup=args.warmup,
            interval=args.interval,
            migrated=args.migrated,
        ),
        "steady_rss_goal_mb": STEADY_RSS_GOAL_MB,
        "per_instance_goal_kb": PER_INSTANCE_GOAL_KB,
    }
    if args.compare:
        other = soak(
            args.compare,
            duration=args.compare_duration,
            every=args.every,
            warmup=args.warmup,
            interval=args.interval,
            migrated=args.migrated,
        )
        figures["compare"] = other
        added = args.compare - args.instances
        extra_mb = other["rss_mb_steady"] - figures["main"]["rss_mb_steady"]
        figures["kb_per_additional_instance"] = round(extra_mb * 1024 / added, 2)
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def print_table(f: Figures) -> None:
    for key in ("main", "compare"):
        if key not in f:
            continue
        r = f[key]
        database = "migrated before start" if r["database_migrated_before_start"] else "new"
        print(
            f"{r['instances']:,} instances, {r['duration_secs']:g} s, {r['sweeps']} sweeps, "
            f"database {database} "
            f"(interval {r['interval_secs']:g} s): RSS at start {r['rss_mb_at_start']} MB, "
            f"steady {r['rss_mb_steady']} MB (goal <= {STEADY_RSS_GOAL_MB}), "
            f"max {r['rss_mb_max']} MB, slope {r['slope_mb_per_hour']} MB/h after "
            f"{r['warmup_secs']:g} s"
        )
        print("  RSS MB every sample: " + ", ".join(f"{mb:g}" for _, mb in r["rss_mb_series"]))
    if "kb_per_additional_instance" in f:
        print(
            f"per additional instance: {f['kb_per_additional_instance']} KB "
            f"(goal <= {PER_INSTANCE_GOAL_KB})"
        )
    print(f"load average before/after: {f['load_average_before']} / {f['load_average_after']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of soak")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=120.0, help="seconds before steady")
    parser.add_argument("--interval", type=float, default=30.0, help="the bot's sweep interval")
    parser.add_argument(
        "--compare", type=int, default=20_000, help="instances of the second run (0: none)"
    )
    parser.add_argument("--compare-duration", type=float, default=240.0)
    parser.add_argument(
        "--migrated",
        action="store_true",
        help="run `db upgrade` before the bot starts (a restart), instead of a new database",
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds: 300 and 600")
    args = parser.parse_args()
    if args.quick:
        args.instances, args.compare, args.interval = 300, 600, 1.0
        args.duration, args.compare_duration, args.every, args.warmup = 5.0, 5.0, 1.0, 2.0
    figures = run(args)
    if args.json:
        print(json.dumps(figures))
    else:
        print_table(figures)


if __name__ == "__main__":
    main()
