"""Alert latency: from an instance's heartbeat stopping to its alert in Slack.

In real time, in one process: the backend simulator (20 running instances), the Slack
emulator, a SQLite file, the HealthMonitor on its own APScheduler (interval 5 s,
heartbeat timeout 15 s) and the AlertService with its delivery and jobs, all wired as
the runtime wires them. The heartbeats stop one by one, 1.5 s apart (the simulator's 5 s
heartbeat tick groups about 3 per sweep: never the 10 of 20 a storm needs), and each
alert's arrival in the emulator is timed.

Two clocks are reported for every alert:

- ``from_last_heartbeat``: from the last heartbeat the backend reported (the simulator
  reports heartbeats on a 5 s tick, so this is when the heartbeat really stopped as far
  as anyone can see) — the figure the goal is about;
- ``from_stop``: from the moment the benchmark froze the heartbeat (up to one tick later).

and split into ``detection`` (last heartbeat → the start of the sweep that opened the
incident) and ``delivery`` (that sweep's start → the message in Slack: the sweep's own
health calls and commit, then the outbox and the Web API call).

Goal: p99 of ``from_last_heartbeat`` <= timeout + interval + 1 s (21 s). The baseline,
run second in the same process, is the same fleet with the after-commit nudge switched
off, so alerts wait for the 1 s delivery job: the nudge's share of the latency.

    python bench/alert_latency.py            # human table
    python bench/alert_latency.py --json     # one JSON object
    python bench/alert_latency.py --no-baseline --instances 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.alerts.delivery import OutboxDelivery
from bot.alerts.jobs import register_jobs
from bot.alerts.service import AlertPolicy, AlertService
from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor
from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.store.alert_models import AlertIncident
from bot.store.database import Database

CHANNEL = "C0ALERTS"
HEARTBEAT_TICK_SECS = 5  # the simulator's heartbeat resolution


@dataclass
class Phase:
    """One fleet's measurements."""

    name: str
    from_last_heartbeat: list[float] = field(default_factory=list)
    from_stop: list[float] = field(default_factory=list)
    detection: list[float] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)
    storms: int = 0
    missing: int = 0


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank, as an alerting SLO counts it)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": round(statistics.median(values), 3),
        "p95": round(_pct(values, 95), 3),
        "p99": round(_pct(values, 99), 3),
        "max": round(max(values), 3),
        "min": round(min(values), 3),
    }


async def run_phase(
    name: str,
    *,
    instances: int,
    interval: float,
    heartbeat_timeout: float,
    nudge: bool,
    seed: int,
    spacing: float = 1.5,
) -> Phase:
    """Start a fleet, stop its heartbeats one by one, time every alert."""
    phase = Phase(name)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        await db.upgrade()
        async with (
            BackendSimulator(seed=seed, transition_secs=0.5) as sim,
            SlackEmulator() as slack,
            InstanceClient(sim.url, timeout=5.0, retry_backoff=0.1) as client,
        ):
            web = AsyncWebClient(
                token=slack.bot_token, base_url=slack.api_url, timeout=10, retry_handlers=[]
            )
            delivery = OutboxDelivery(db, web, holder="bench")
            service = AlertService(
                db, policy=AlertPolicy(channel=CHANNEL), delivery=delivery, nudge=nudge
            )
            monitor = (
                HealthMonitor(client, store=db)
                .with_interval(timedelta(seconds=interval))
                .with_heartbeat_timeout(timedelta(seconds=heartbeat_timeout))
            )
            service.attach(monitor)
            ids = sim.seed_instances(instances)
            scheduler = AsyncIOScheduler(timezone=UTC)
            handle = monitor.start(scheduler)
            register_jobs(scheduler, service=service)
            scheduler.start()
            try:
                # Let the first sweep see every instance healthy.
                for _ in range(int(10 * interval / 0.05)):
                    if monitor.status().last_sweep_at is not None:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(rng.uniform(0, interval))
                stopped: dict[str, float] = {}
                last_beat: dict[str, float] = {}
                for instance_id in ids:
                    sim.stop_heartbeat(instance_id)
                    stopped[instance_id] = time.time()
                    last_beat[instance_id] = float(sim.health(instance_id)["last_heartbeat"])
                    await asyncio.sleep(spacing)
                wait = heartbeat_timeout + 3 * interval + 5
                shorts = {i: i[:8] for i in ids}

                def arrived() -> dict[str, float]:
                    seen: dict[str, float] = {}
                    for message in slack.messages(CHANNEL):
                        for instance_id, short in shorts.items():
                            if short in message.text and instance_id not in seen:
                                seen[instance_id] = float(message.ts)
                    return seen

                with contextlib.suppress(TimeoutError):
                    # Re-checked on every message the emulator receives.
                    await slack.wait_for(lambda: len(arrived()) == len(ids), wait)
                seen = arrived()
            finally:
                # Nothing new starts; what runs finishes; then the scheduler goes.
                scheduler.pause()
                await handle.stop()
                await delivery.aclose()
                scheduler.shutdown(wait=False)
            async with db.session() as session:
                incidents = list(await session.scalars(select(AlertIncident)))
            opened = {i.instance_id: i.opened_at.timestamp() for i in incidents if i.instance_id}
            phase.storms = sum(1 for i in incidents if i.scope == "fleet")
            for instance_id in ids:
                if instance_id not in seen:
                    phase.missing += 1
                    continue
                at = seen[instance_id]
                phase.from_last_heartbeat.append(at - last_beat[instance_id])
                phase.from_stop.append(at - stopped[instance_id])
                if instance_id in opened:
                    phase.detection.append(opened[instance_id] - last_beat[instance_id])
                    phase.delivery.append(at - opened[instance_id])
        await db.dispose()
    return phase


def _phase_json(phase: Phase) -> dict[str, Any]:
    return {
        "alerts": len(phase.from_last_heartbeat),
        "missing": phase.missing,
        "fleet_incidents": phase.storms,
        "from_last_heartbeat_secs": _stats(phase.from_last_heartbeat),
        "from_stop_secs": _stats(phase.from_stop),
        "detection_secs": _stats(phase.detection),
        "delivery_secs": _stats(phase.delivery),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both phases; returns every figure."""
    goal = args.timeout + args.interval + 1
    main = await run_phase(
        "nudged",
        instances=args.instances,
        interval=args.interval,
        heartbeat_timeout=args.timeout,
        nudge=True,
        seed=args.seed,
        spacing=args.spacing,
    )
    result: dict[str, Any] = {
        "instances": args.instances,
        "interval_secs": args.interval,
        "timeout_secs": args.timeout,
        "goal_p99_secs": goal,
        "nudged": _phase_json(main),
    }
    p99 = _pct(main.from_last_heartbeat, 99) if main.from_last_heartbeat else float("inf")
    result["p99_secs"] = round(p99, 3)
    result["goal_met"] = main.missing == 0 and p99 <= goal
    if not args.no_baseline:
        baseline = await run_phase(
            "job only",
            instances=args.instances,
            interval=args.interval,
            heartbeat_timeout=args.timeout,
            nudge=False,
            seed=args.seed + 1,
            spacing=args.spacing,
        )
        result["job_only"] = _phase_json(baseline)
    return result


def _table(result: dict[str, Any]) -> None:
    print(
        f"{result['instances']} instances, interval {result['interval_secs']} s, "
        f"timeout {result['timeout_secs']} s; goal p99 <= {result['goal_p99_secs']} s"
    )
    header = ["phase", "figure", "p50", "p95", "p99", "max"]
    rows = [header]
    for key in ("nudged", "job_only"):
        phase = result.get(key)
        if phase is None:
            continue
        for figure in ("from_last_heartbeat_secs", "from_stop_secs", "detection_secs",
                       "delivery_secs"):  # fmt: skip
            stats = phase[figure]
            rows.append(
                [key, figure.removesuffix("_secs")]
                + [f"{stats.get(p, float('nan')):.3f}" for p in ("p50", "p95", "p99", "max")]
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    print(f"p99 {result['p99_secs']} s; goal met: {result['goal_met']}")


def main() -> None:
    """Parse arguments, run, print."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spacing", type=float, default=1.5, help="seconds between stops")
    parser.add_argument("--no-baseline", action="store_true", help="skip the job-only phase")
    parser.add_argument(
        "--quick", action="store_true", help="~15 s: 3 instances, 1 s sweeps, no baseline"
    )
    args = parser.parse_args()
    if args.quick:
        # The timeout must outlast the simulator's 5 s heartbeat tick, or every instance is
        # stale between two ticks.
        args.instances, args.interval, args.timeout = 3, 1.0, HEARTBEAT_TICK_SECS + 1.0
        args.spacing, args.no_baseline = 0.2, True
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        _table(result)


if __name__ == "__main__":
    main()
