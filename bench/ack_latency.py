"""Slack ack latency: how long Slack waits for the bot's HTTP 200, beside a bare Bolt app.

Slack gives an app 3 seconds to acknowledge; past that the user sees an error. This
measures the time from sending a signed ``/starpod list`` to receiving the 200, on the
real stack (Starlette + uvicorn + Bolt's adapter + signature check + our listeners):

- **bot**: ``create_app`` + ``create_web_app``, doing the real work after the ack (list
  the fleet from a backend simulator, post the answer to ``response_url``);
- **bare**: an ``AsyncApp`` on the same server stack with a no-op ``/starpod`` listener
  that calls ``await ack()`` (Bolt's default usage);
- **bare, ack in middleware**: the same no-op, acking in a listener middleware as the bot
  does (shows what Bolt's 10 ms ack poll costs the bare app).

1,000 requests per app at 20 concurrent, in alternating rounds of 100 (plus a warm-up
round), p50 and p99 of all of them. Then the bot again, 1,000 requests, while its
``HealthMonitor`` sweeps 10,000 instances back to back in the same process, on its own
event loop in a thread that lets the Slack loop's work pass first (bot.priority), with the
heap frozen after the first sweep under ``--gc-freeze`` and full garbage collections run
after each sweep when the Slack loop is idle (bot.collector), as the runtime runs it
(``--layout thread``: the same thread, not waiting; ``--layout same-loop``: on the Slack
loop, the first layout; ``--automatic-full-gc``: CPython's own schedule of full
collections, the fleet still frozen; ``--layout process``: the sweep in a real worker
process, ``starpod-bot run --role worker``, on the server's SQLite file, while the server
serves Slack as a web process would), alternating with the bare app (the baseline for what
a sweep costs any listener). Goal: the bot's p99 during the sweeps <= 1.25x its own idle
p99 of the same run. Every collection's pause during the steady sweeps is recorded
(``gc.callbacks``), by generation and by the thread that ran it: the server's, the web
side, in every layout.

In the process layout the worker is configured by environment as an operator would
(backend = the 10,000-instance simulator, health concurrency 50 as in the other layouts,
its own CPU priority: ``STARPOD_WORKER_SCHEDULING`` and ``STARPOD_WORKER_NICE``, the
runtime's defaults unless ``--worker-scheduling`` and ``--worker-nice``), started as the
CLI starts ``starpod-bot run --role worker`` (``--role worker`` here: settings from the
environment, the CPU priority taken before any thread, the real Runtime),
except that it runs its sweeps back to back itself (``monitor.sweep_once`` in a loop; the
interval is an hour, so the deadlines derived from it never cut a 10,000-instance sweep
short, which a one-second interval would). It runs the runtime's own garbage collection
(start-up freeze, ``bot.collector``): ``--gc-freeze`` and ``--automatic-full-gc`` set the
server's. Its sweep figures come from its ``/metrics`` (``starpod_sweep_duration_seconds``):
a sweep's seconds there are the mean of the sweeps' ``_sum`` over their ``_count``, not a
median, and its yields to its own foreground loop are ``starpod_sweep_yield_seconds_total``
(no count); ``worker.sweeping_share_during`` says how close to back to back they ran.
Then the process layout pairs the comparison in time (``during_sweep.paired``): the worker
stops sweeping back to back and runs ``2 x --repeats`` single sweeps on command; the bot
gets requests at the same concurrency during each sweep and during as long a phase with no
sweep, next to it (sweep first, then idle first, alternately), so a drift of the machine's
speed between an idle phase and a sweeping one minutes later cannot tilt the ratio; it
reports the pooled ratio and the median of the pairs' ratios (one noise burst in one
phase moves the pooled p99, the ~25th-slowest of ~2,500 acks, but only one pair).
``--sham-sweeps`` is the control: the worker makes its first two sweeps (the fleet is
recorded) and then, instead of each sweep, sleeps as long as its last one took, so both
ratios show what the machine's own noise does to the measurement with no sweep at all. The
summary's keys are the same in every layout
(``worker_scheduling`` and ``worker_nice``, the kernel's figures, and ``worker`` are None
outside this one).

The sweep's backend is another machine in production: here the 10,000-instance simulator
runs at niceness 19 (``os.setpriority``) in every layout, so on a 2-core box its CPU is
not charged to the bot the way a remote backend's never is (``--sim-nice 0``: the same
priority as the bot, the figures before this flag). The 20-instance simulator answering
the commands keeps the default priority.

Processes (two cores): this one sends the requests and times them; ``--role server``
runs the three apps (and the monitor, except in the process layout, where the worker
``python -m bot run --role worker`` does) in one event loop; ``--role sink`` answers the
bot's ``response_url`` posts and Web API calls as Slack would (``ok``); two backend
simulators: 20 instances for the commands, 10,000 for the sweep (so the sweep is the
only heavy thing, not 1,000 lists of 10,000 instances).

    python bench/ack_latency.py                 # human table
    python bench/ack_latency.py --json          # one JSON object
    python bench/ack_latency.py --repeats 5     # each phase 5 times; medians (default 3)
    python bench/ack_latency.py --gc-freeze     # the server calls gc.freeze() after start
    python bench/ack_latency.py --gc-freeze --automatic-full-gc  # CPython's full collections
    python bench/ack_latency.py --layout thread # its own loop, not waiting for Slack's
    python bench/ack_latency.py --layout same-loop  # the sweep on the Slack loop
    python bench/ack_latency.py --layout process    # the sweep in a worker process
    python bench/ack_latency.py --layout process --sham-sweeps  # the control: no sweep
    python bench/ack_latency.py --sim-nice 0    # the simulator at the bot's priority
    python bench/ack_latency.py --sweep-instances 30000
    python bench/ack_latency.py --quick         # a few seconds: 200 requests, 1,000 instances
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx

from bot.collector import EVERY_SECS
from bot.priority import precedence_of, run_foreground
from bot.sim.process import free_port, start_simulator, stop_process

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
CONCURRENCY = 20
REQUESTS = 1000
ROUND = 100
SMALL_FLEET = 20
SWEEP_FLEET = 10_000
P99_VS_BARE_GOAL = 1.25
SWEEP_VS_IDLE_P99_GOAL = 1.25
#: Where the sweep runs (``--layout``), as the summary names it.
LAYOUTS = {
    "gated": "its own loop (a thread), letting the Slack loop's work pass first",
    "thread": "its own loop (a thread), not waiting for the Slack loop",
    "same-loop": "the Slack loop",
    "process": "a worker process of its own (starpod-bot run --role worker)",
}
#: The sweep's simulator's niceness by default: a remote backend's CPU is not the bot's.
SIM_NICE = 19
#: The worker's sweep interval (STARPOD_MONITOR_INTERVAL): long, so its deadlines (two
#: thirds of it for a sweep's HTTP calls) never cut a sweep short; the bench's worker role
#: runs the sweeps back to back itself (run_worker).
WORKER_INTERVAL_SECS = 3600
#: How long the bench waits for the worker's next sweep before it gives up.
WORKER_WAIT_SECS = 600
#: The worker's environment variable for --sham-sweeps (the bench's own, not a setting).
SHAM_SWEEPS_ENV = "BENCH_SHAM_SWEEPS"

Figures = dict[str, Any]


# -- helpers shared by the roles --------------------------------------------------------------


def _wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start_role(role: str, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """This script in another role; it prints one JSON line of URLs when ready."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--role", role, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"role {role} exited before it was ready")
    return proc, json.loads(line)


def stop(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(Exception):
        if proc.stdin:
            proc.stdin.close()
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


async def _until_stdin_closes() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


def renice(pid: int, niceness: int) -> None:
    """Set every thread of process ``pid`` to ``niceness`` (Linux: niceness is per thread).

    Threads it starts later inherit their starter's, so the whole process stays there.
    """
    tasks = Path(f"/proc/{pid}/task")
    for tid in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [pid]:
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.setpriority(os.PRIO_PROCESS, tid, niceness)


# -- the worker process (--layout process) ----------------------------------------------------


def _settings_env_names() -> set[str]:
    """Every setting's environment variable, so the bench's own shell or a starpod-bot.toml
    never leaks into the measured worker."""
    from bot.config import SETTINGS_TABLE

    return {spec.env for spec in SETTINGS_TABLE if spec.env} | {"STARPOD_CONFIG"}


class Worker:
    """``starpod-bot run --role worker`` on the server's database, configured by env."""

    def __init__(
        self,
        workdir: Path,
        database: str,
        backend: str,
        sink: str,
        nice: int | None,
        scheduling: str | None,
        sham_sweeps: bool = False,
    ) -> None:
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if k not in _settings_env_names()}
        self.env |= {
            "STARPOD_INSTANCE_BACKEND_URL": backend,
            "DATABASE_URL": database,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": sink + "/api/",
            "STARPOD_HTTP_HOST": "127.0.0.1",
            "STARPOD_ROLE": "worker",
            "STARPOD_MONITOR_INTERVAL": str(WORKER_INTERVAL_SECS),
            "LOG_LEVEL": "WARNING",
        }
        if nice is not None:
            self.env["STARPOD_WORKER_NICE"] = str(nice)
        if scheduling is not None:
            self.env["STARPOD_WORKER_SCHEDULING"] = scheduling
        self.sham_sweeps = sham_sweeps
        self.env[SHAM_SWEEPS_ENV] = "1" if sham_sweeps else "0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.niceness: int | None = None
        self.scheduling: str | None = None
        self.figures: Figures | None = None

    def start(self) -> None:
        """Start it; return once its /metrics answers (its first sweep is under way)."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with (self.workdir / "worker.log").open("wb") as log:
            # Its own folder as the working directory: no ./starpod-bot.toml by accident.
            # stdin/stdout: the paired phase's commands and replies (run_worker); its log
            # (stderr) to a file.
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--role", "worker"],
                env=self.env | {"PORT": str(port)},
                cwd=self.workdir,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        deadline = time.monotonic() + 120
        while True:
            self.check()
            try:
                httpx.get(self.url + "/metrics", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker did not come up") from None
                time.sleep(0.1)
        # Read from the kernel: what the runtime took at start (STARPOD_WORKER_NICE).
        self.niceness = os.getpriority(os.PRIO_PROCESS, self.proc.pid)
        idle = os.sched_getscheduler(self.proc.pid) == getattr(os, "SCHED_IDLE", None)
        self.scheduling = "idle" if idle else "normal"

    def check(self) -> None:
        """Raise with the end of its log when it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            tail = (self.workdir / "worker.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the worker exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, grace=15)

    def send(self, command: str) -> None:
        """One command to its loop (run_worker): ``step`` or ``sweep``."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    async def reply(self) -> str:
        """Its next reply line (run_worker); a worker alive but stuck fails the bench."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            async with asyncio.timeout(WORKER_WAIT_SECS):
                line = await asyncio.to_thread(self.proc.stdout.readline)
        except TimeoutError:
            raise RuntimeError(f"no reply from the worker in {WORKER_WAIT_SECS} s") from None
        if not line:
            self.check()
            raise RuntimeError("the worker closed its output")
        return line.decode().strip()

    async def until(self, done: Callable[[Figures], bool]) -> Figures:
        """Poll its sweep counters until ``done`` holds for them; the last snapshot."""
        deadline = time.monotonic() + WORKER_WAIT_SECS
        while True:
            self.check()
            now = await worker_sweeps(self.url)
            if done(now):
                return now
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker's sweeps did not get there: {now}")
            await asyncio.sleep(0.1)


def run_worker() -> None:
    """``starpod-bot run --role worker`` as the CLI starts it (settings from the environment,
    the niceness taken before any thread, the Runtime on a foreground loop), its health
    sweeps run back to back until SIGTERM. The scheduled sweep comes once an interval
    (an hour here): ``sweep_once`` in a loop is what makes them back to back, each with
    the deadlines of the configured interval, as a fleet that outgrew its interval is."""
    import signal

    from bot.config import load_settings
    from bot.logging_setup import configure_logging, secret_values
    from bot.runtime import Runtime
    from bot.worker_priority import take_role_priority

    settings = load_settings()
    take_role_priority(settings)
    configure_logging(settings.log, secrets=secret_values(settings))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue[str] = asyncio.Queue()
        loop.add_signal_handler(signal.SIGTERM, commands.put_nowait, "stop")

        def read_commands() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(commands.put_nowait, line.strip())
            loop.call_soon_threadsafe(commands.put_nowait, "stop")

        threading.Thread(target=read_commands, daemon=True).start()
        async with Runtime(settings) as runtime:
            monitor = runtime.monitor
            assert monitor is not None
            # Back to back until "step"; then one sweep per "sweep", its seconds replied.
            # A sham (--sham-sweeps), after the two recording sweeps: as long a sleep.
            sham = os.environ.get(SHAM_SWEEPS_ENV) == "1"
            swept, last_secs = 0, 0.0

            async def sweep() -> float:
                nonlocal swept, last_secs
                if sham and swept >= 2:
                    await asyncio.sleep(last_secs)
                    return last_secs
                last_secs = (await monitor.sweep_once()).secs
                swept += 1
                return last_secs

            while commands.empty() and not (sham and swept >= 2):
                await sweep()
            if sham:
                # The scheduled first sweep came before or between these two (the sweep
                # lock serializes them): from now on none runs, and the bench is told.
                print("shamming", flush=True)
            command = await commands.get()
            if command == "step":
                print("ready", flush=True)
                while (command := await commands.get()) == "sweep":
                    print(json.dumps({"secs": await sweep()}), flush=True)

    run_foreground(main())


async def worker_sweeps(url: str) -> Figures:
    """The worker's sweep counters from its /metrics: count, seconds, errors, yields."""
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.request("GET", url + "/metrics") as response:
        response.raise_for_status()
        text = await response.text()
    found: Figures = {"count": 0, "secs": 0.0, "errors": 0, "yielded_secs": 0.0, "gc_secs": 0.0}
    found["at"] = time.monotonic()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "starpod_sweep_duration_seconds_count":
                found["count"] = int(sample.value)
            elif sample.name == "starpod_sweep_duration_seconds_sum":
                found["secs"] = sample.value
            elif sample.name == "starpod_sweeps_total" and sample.labels.get("result") == "error":
                found["errors"] = int(sample.value)
            elif sample.name == "starpod_sweep_yield_seconds_total":
                found["yielded_secs"] = sample.value
            elif sample.name == "starpod_gc_full_collection_seconds_total":
                found["gc_secs"] = sample.value
    return found


def _mean_secs(after: Figures, before: Figures) -> float:
    """The mean seconds of the sweeps that ended between two snapshots (nan: none did)."""
    count = after["count"] - before["count"]
    return round((after["secs"] - before["secs"]) / count, 2) if count else float("nan")


# -- role: sink (Slack's side of the bot's answers) -------------------------------------------


async def run_sink() -> None:
    """Answer response_url posts and Web API calls like Slack would, counting them."""
    from aiohttp import web

    count = {"responses": 0}

    async def response(request: web.Request) -> web.Response:
        await request.read()
        count["responses"] += 1
        return web.Response(text="ok")

    async def api(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(
            {"ok": True, "team_id": "T0BENCH", "user_id": "U0BOT", "bot_id": "B0BOT", "ts": "1.0"}
        )

    async def counter(_request: web.Request) -> web.Response:
        return web.json_response(count)

    app = web.Application()
    app.router.add_post("/response/{token}", response)
    app.router.add_route("*", "/api/{method}", api)
    app.router.add_get("/count", counter)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(json.dumps({"url": f"http://127.0.0.1:{port}"}), flush=True)
    await _until_stdin_closes()
    await runner.cleanup()


# -- role: server (the apps being measured, and the monitor) ----------------------------------


class GcPauses:
    """Every garbage collection's pause while recording, by generation and thread (gc.callbacks).

    Each pause is kept as wall-clock seconds and as the collecting thread's CPU seconds: on a
    loaded machine the wall clock also counts the time the process was not scheduled, the
    CPU time is what the collection itself cost.
    """

    def __init__(self) -> None:
        self.recording = False
        self._started = (0.0, 0.0)
        self.pauses: dict[tuple[int, str], list[tuple[float, float]]] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        # Collections never overlap (they hold the interpreter lock): one start at a time.
        if phase == "start":
            self._started = (time.perf_counter(), time.thread_time())
        elif self.recording:
            wall, cpu = self._started
            key = (info["generation"], threading.current_thread().name)
            pause = (time.perf_counter() - wall, time.thread_time() - cpu)
            self.pauses.setdefault(key, []).append(pause)

    def summary(self) -> Figures:
        """Per generation: count, total, p50/p99/max in ms (wall and CPU), count per thread."""
        out: Figures = {}
        for generation in (0, 1, 2):
            mine = {t: v for (g, t), v in self.pauses.items() if g == generation}
            row: Figures = {"count": sum(len(v) for v in mine.values())}
            for index, unit in ((0, "ms"), (1, "cpu_ms")):
                every = sorted(p[index] for values in mine.values() for p in values)
                if every:
                    row |= {
                        f"total_{unit}": round(sum(every) * 1000, 1),
                        f"p50_{unit}": round(statistics.median(every) * 1000, 3),
                        f"p99_{unit}": round(every[max(0, int(len(every) * 0.99) - 1)] * 1000, 3),
                        f"max_{unit}": round(every[-1] * 1000, 3),
                        f"over_5_{unit}": sum(1 for x in every if x > 0.005),
                    }
            row["by_thread"] = {t: len(v) for t, v in sorted(mine.items())}
            out[f"gen{generation}"] = row
        return out


async def run_server(
    sink: str, backend: str, database: str, gc_freeze: bool, layout: str, automatic_full_gc: bool
) -> None:
    """The bot, the bare app and the bare app with ack-in-middleware, on one event loop.

    In the process layout the sweep is the worker process's: this one only serves Slack
    (as ``--role web``) and records its own collections while the worker sweeps.
    """
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from bot.backend import InstanceClient
    from bot.collector import IdleCollector
    from bot.config import Settings
    from bot.metrics import AckLatencyMiddleware, create_metrics
    from bot.monitor import HealthMonitor
    from bot.monitor.own_loop import SweepLoop
    from bot.slack import SlackDeps, SshLinkService, build_web_client, create_app
    from bot.slack.ack import ack_first
    from bot.store.database import Database
    from bot.web.app import create_web_app
    from bot.web.server import WebServer, freeze_startup_heap

    settings = Settings.model_validate(
        {
            "backend": {"url": backend},
            "slack": {
                "bot_token": BOT_TOKEN,
                "signing_secret": SIGNING_SECRET,
                "api_url": sink + "/api/",
            },
        }
    )
    db = Database(database)
    await db.upgrade()
    session = aiohttp.ClientSession()
    web = build_web_client(settings, session=session)
    sweep_state: dict[str, Any] = {"task": None, "sweeps": [], "instances": 0, "errors": 0}
    # As the runtime wires it: run by run_foreground, this loop marks when it has work and
    # the sweep's loop lets that work pass first (bot.priority); None in the other layouts.
    gate = precedence_of(asyncio.get_running_loop())
    # As the runtime runs it under --gc-freeze: the fleet frozen after the first sweep, and
    # full collections after each sweep when the Slack loop is idle, or CPython's own.
    collector = IdleCollector(gate, take_schedule=not automatic_full_gc) if gc_freeze else None
    pauses = GcPauses()
    gc.callbacks.append(pauses)

    async def sweep_loop(url: str) -> None:
        # As the runtime builds it: on a loop of its own, with its own client and engine.
        own = None if layout == "same-loop" else SweepLoop(gate=gate)
        big = InstanceClient(url)
        store = db if own is None else Database(db.url)
        if own is not None:
            own.start()
        monitor = HealthMonitor(big, store=store).with_health_concurrency(50).on_own_loop(own)
        if collector is not None:
            monitor.on_sweep(collector)
        try:
            first = await monitor.sweep_once()  # records every instance the first time
            sweep_state["first_secs"] = first.secs
            sweep_state["instances"] = first.instances
            pauses.recording = True  # the steady sweeps
            while True:
                report = await monitor.sweep_once()
                sweep_state["sweeps"].append(report.secs)
                if report.backend_error is not None:
                    sweep_state["errors"] += 1
        finally:
            if own is not None:
                await own.aclose([big.aclose, store.dispose])
            else:
                await big.aclose()

    async def sweep_start(request: Request) -> Response:
        body = await request.json()
        if layout == "process":
            pauses.recording = True  # the worker's first sweep is done: the steady ones
        else:
            sweep_state["task"] = asyncio.create_task(sweep_loop(body["backend"]))
        return JSONResponse({"started": True})

    async def sweep_status(_request: Request) -> Response:
        task = sweep_state["task"]
        failed = task is not None and task.done() and task.exception() is not None
        return JSONResponse(
            {
                "steady_sweeps": len(sweep_state["sweeps"]),
                "sweep_secs": sweep_state["sweeps"],
                "first_secs": sweep_state.get("first_secs"),
                "instances": sweep_state["instances"],
                "errors": sweep_state["errors"],
                "gate_yields": gate.yields if gate is not None else None,
                "gate_yielded_secs": round(gate.yielded_secs, 3) if gate is not None else None,
                "failed": repr(task.exception()) if failed else None,
                "gc_pauses": pauses.summary(),
                "collector": None
                if collector is None
                else {
                    "takes_full_collections": collector.take_schedule,
                    "collections": collector.collections,
                    "collected_secs": round(collector.collected_secs, 3),
                    "waits_timed_out": collector.waits_timed_out,
                    "frozen": collector.frozen,
                },
            }
        )

    async def sweep_stop(_request: Request) -> Response:
        task = sweep_state["task"]
        pauses.recording = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return JSONResponse({"stopped": True})

    async with InstanceClient(backend) as client:
        links = SshLinkService.from_settings(settings, db)
        deps = SlackDeps(backend=client, db=db, web=web, ssh_links=links)
        bot_app = create_app(settings, deps)
        control = [
            Route("/bench/sweep/start", sweep_start, methods=["POST"]),
            Route("/bench/sweep/status", sweep_status, methods=["GET"]),
            Route("/bench/sweep/stop", sweep_stop, methods=["POST"]),
        ]
        bot_web = create_web_app(
            slack_app=bot_app, signing_secret=SIGNING_SECRET, ssh_links=links, extra_routes=control
        )

        def bare(ack_in_middleware: bool) -> Any:
            # Bolt's default single-workspace setup (token on the client, auth.test once).
            app = AsyncApp(
                signing_secret=SIGNING_SECRET,
                client=AsyncWebClient(token=BOT_TOKEN, base_url=sink + "/api/"),
            )

            async def noop(ack: Any) -> None:
                await ack()

            if ack_in_middleware:
                app.command("/starpod", middleware=[ack_first])(noop)
            else:
                app.command("/starpod")(noop)
            return create_web_app(slack_app=app, signing_secret=SIGNING_SECRET, ssh_links=links)

        # Keep-alive outlasts the pauses between rounds, so a client never reuses a
        # connection the server just closed (a reset, not a latency).
        keep = {"timeout_keep_alive": 300}
        servers = {
            # With the middleware that times acknowledgements, as the runtime serves it.
            "bot": WebServer(AckLatencyMiddleware(bot_web, create_metrics()), **keep),
            "bare": WebServer(bare(False), **keep),
            "bare_ack_first": WebServer(bare(True), **keep),
        }
        urls = {name: await server.start() for name, server in servers.items()}
        if gc_freeze:
            # The start-up heap leaves the collector's reach: a full collection then scans
            # only what requests allocate (~2 ms here instead of 50-80 ms).
            freeze_startup_heap()
        if collector is not None:
            collector.start()  # as the runtime does, after the start-up freeze
        print(json.dumps(urls), flush=True)
        await _until_stdin_closes()
        for server in servers.values():
            await server.stop()
        if collector is not None:
            await collector.aclose()
    await session.close()
    await db.dispose()


# -- the load generator -----------------------------------------------------------------------


def signed_request(sink: str, index: int) -> tuple[bytes, dict[str, str]]:
    """A ``/starpod list`` slash command, signed as Slack signs it."""
    from bot.sim.slack_payloads import slash_command_fields
    from bot.sim.slack_signing import signed_headers

    fields = slash_command_fields(
        command="/starpod",
        text="list",
        user_id="U0BENCH",
        user_name="bench",
        channel_id="C0BENCH",
        channel_name="bench",
        team_id="T0BENCH",
        response_url=f"{sink}/response/{index}",
        trigger_id=f"{index}.{index}.bench",
    )
    body = urlencode(fields).encode()
    return body, signed_headers(SIGNING_SECRET, body, int(time.time()))


async def load(
    session: aiohttp.ClientSession, url: str, sink: str, count: int, start_index: int
) -> list[float]:
    """``count`` requests at CONCURRENCY; each one's seconds to the HTTP 200."""
    requests = [signed_request(sink, start_index + i) for i in range(count)]
    pending = iter(requests)
    latencies: list[float] = []

    async def worker() -> None:
        for body, headers in pending:
            started = time.perf_counter()
            async with session.post(url + "/slack/events", data=body, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{url} answered {r.status}")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return latencies


async def wait_for_answers(session: aiohttp.ClientSession, sink: str, expected: int) -> None:
    """Wait until the bot posted every answer, so its work never spills into a bare round."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        async with session.get(sink + "/count") as response:
            if (await response.json())["responses"] >= expected:
                return
        await asyncio.sleep(0.02)
    raise RuntimeError("the bot did not answer every request")


def summary(latencies: list[float]) -> Figures:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def median_of(runs: list[Figures]) -> Figures:
    """Each figure's median over repeats (a noise burst spoils one repeat, not the result)."""
    return {
        key: round(statistics.median(run[key] for run in runs), 2)
        for key in ("p50_ms", "p99_ms", "max_ms")
    } | {
        "requests": sum(run["requests"] for run in runs),
        "p99_ms_repeats": [r["p99_ms"] for r in runs],
    }


async def measure(
    urls: dict[str, str],
    sink: str,
    big_backend: str | None,
    repeats: int,
    requests: int,
    worker: Worker | None = None,
    instances: int = SWEEP_FLEET,
) -> Figures:
    answered = 0
    index = 0
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def rounds_until(stop: asyncio.Event) -> list[float]:
            """The bot's rounds (each one's answers awaited, as in the other phases) until
            ``stop``: a round begun goes to its end."""
            latencies: list[float] = []
            while not stop.is_set():
                latencies.extend(await round_of("bot", ROUND))
            return latencies

        async def paired_phases(worker: Worker, sweeps: int, last: Figures) -> Figures:
            """The bot's acks during ``sweeps`` single sweeps, each paired with as long a
            phase with the worker idle between two sweeps, alternately first."""
            worker.send("step")
            if await worker.reply() != "ready":
                raise RuntimeError("the worker did not stop sweeping back to back")
            secs = last["secs"] / max(1, last["count"])
            kept: dict[str, list[float]] = {"idle": [], "sweeping": []}
            ratios = []
            for number in range(sweeps):
                order = ["sweeping", "idle"] if number % 2 == 0 else ["idle", "sweeping"]
                pair: dict[str, list[float]] = {}
                for phase in order:
                    stop = asyncio.Event()
                    if phase == "idle":
                        asyncio.get_running_loop().call_later(secs, stop.set)
                        pair[phase] = await rounds_until(stop)
                        continue
                    worker.send("sweep")
                    done = asyncio.ensure_future(worker.reply())
                    done.add_done_callback(functools.partial(_set, stop))
                    pair[phase] = await rounds_until(stop)
                    secs = json.loads(await done)["secs"]
                for phase, values in pair.items():
                    kept[phase].extend(values)
                ratios.append(
                    round(summary(pair["sweeping"])["p99_ms"] / summary(pair["idle"])["p99_ms"], 2)
                )
            idle, sweeping = summary(kept["idle"]), summary(kept["sweeping"])
            return {
                "sweeps": sweeps,
                "idle": idle,
                "sweeping": sweeping,
                "sweeping_vs_idle_p99": round(sweeping["p99_ms"] / idle["p99_ms"], 2),
                "sweeping_vs_idle_p99_pairs": ratios,
                "sweeping_vs_idle_p99_pairs_median": round(statistics.median(ratios), 2),
            }

        async def round_of(name: str, count: int) -> list[float]:
            nonlocal answered, index
            latencies = await load(session, urls[name], sink, count, index)
            index += count
            if name == "bot":
                answered += count
                await wait_for_answers(session, sink, answered)
            return latencies

        async def alternate(names: list[str]) -> dict[str, Figures]:
            """REQUESTS per app in alternating rounds; a summary per app."""
            kept: dict[str, list[float]] = {name: [] for name in names}
            for number in range(max(1, requests // ROUND)):
                order = names if number % 2 == 0 else list(reversed(names))
                for name in order:
                    kept[name].extend(await round_of(name, ROUND))
            return {name: summary(values) for name, values in kept.items()}

        names = list(urls)
        for name in names:  # warm-up: connections, Bolt's first auth.test for the bare apps
            await round_of(name, 100)
        quiet = [await alternate(names) for _ in range(repeats)]
        figures: Figures = {name: median_of([run[name] for run in quiet]) for name in names}
        ratios = [run["bot"]["p99_ms"] / run["bare"]["p99_ms"] for run in quiet]
        figures["bot_vs_bare_p99"] = round(statistics.median(ratios), 2)
        figures["bot_vs_bare_p99_repeats"] = [round(r, 2) for r in ratios]
        figures["bot_vs_bare_p99_goal"] = P99_VS_BARE_GOAL

        if big_backend is None:
            figures["during_sweep"] = "pending: no monitor"
            return figures
        control = urls["bot"] + "/bench/sweep"

        async def start_recording() -> None:
            # The in-process layouts: the sweep starts (collections are recorded from its
            # first steady sweep on); the process layout: the server records from now on.
            body = {"backend": big_backend}
            async with aiohttp.request("POST", control + "/start", json=body) as r:
                r.raise_for_status()

        async def status() -> Figures:
            # A fresh connection: control calls must not take a slot of the measured pool.
            async with aiohttp.request("GET", control + "/status") as r:
                return await r.json()

        if worker is None:
            await start_recording()
            while (await status())["steady_sweeps"] < 1:  # past the first, recording sweep
                current = await status()
                if current["failed"]:
                    raise RuntimeError(f"the sweep failed: {current['failed']}")
                await asyncio.sleep(0.2)
        else:
            # Started only now: its first sweep must not fall in the idle measurement.
            worker.start()
            base = await worker.until(lambda now: now["count"] >= 1)  # the recording sweep
            await start_recording()
            if worker.sham_sweeps:  # its sweeps are over: measured from here on
                if await worker.reply() != "shamming":
                    raise RuntimeError("the worker did not stop sweeping for the control")
                before_sweeps = await worker_sweeps(worker.url)
            else:
                before_sweeps = await worker.until(lambda now: now["count"] > base["count"])
        before_state = await status()
        # The bare app lives in the same process and loop: it is the baseline for what the
        # sweep does to any listener on that loop.
        busy = [await alternate(["bot", "bare"]) for _ in range(repeats)]
        state = await status()
        paired: Figures | None = None
        if worker is not None:
            after_sweeps = await worker_sweeps(worker.url)
            paired = await paired_phases(worker, 2 * repeats, after_sweeps)
        async with aiohttp.request("POST", control + "/stop") as r:
            r.raise_for_status()
        await wait_for_answers(session, sink, answered)
        during = median_of([run["bot"] for run in busy])
        if worker is None:
            before = before_state["steady_sweeps"]
            sweeps: Figures = {
                "instances": state["instances"],
                "sweeps_during_measurement": state["steady_sweeps"] - before + 1,
                "sweep_secs_median": round(statistics.median(state["sweep_secs"]), 2),
                # Sweeps that ended while Slack requests were measured: what yielding costs.
                "sweep_secs_median_during": round(
                    statistics.median(state["sweep_secs"][before:] or [float("nan")]), 2
                ),
                "gate_yields_during": _delta(state, before_state, "gate_yields"),
                "gate_yielded_secs_during": _delta(state, before_state, "gate_yielded_secs"),
            }
        else:
            # The worker's /metrics: means over _sum/_count (see the module docstring).
            sweeps = {
                "instances": instances,
                # The one under way when measuring began counts too; a sham has none.
                "sweeps_during_measurement": after_sweeps["count"]
                - before_sweeps["count"]
                + (0 if worker.sham_sweeps else 1),
                "sweep_secs_median": _mean_secs(after_sweeps, base),
                "sweep_secs_median_during": _mean_secs(after_sweeps, before_sweeps),
                "gate_yields_during": None,  # the worker counts no yields, only their seconds
                "gate_yielded_secs_during": round(
                    after_sweeps["yielded_secs"] - before_sweeps["yielded_secs"], 3
                ),
            }
            worker.figures = {
                "interval_secs": WORKER_INTERVAL_SECS,
                # The control: after its two recording sweeps the worker only slept.
                "sham_sweeps": worker.sham_sweeps,
                # Sweeping seconds over wall-clock seconds while measured (1.0: back to back).
                "sweeping_share_during": round(
                    (after_sweeps["secs"] - before_sweeps["secs"])
                    / (after_sweeps["at"] - before_sweeps["at"]),
                    2,
                ),
                "sweep_errors": after_sweeps["errors"] - base["errors"],
                "gc_full_collection_secs_during": round(
                    after_sweeps["gc_secs"] - before_sweeps["gc_secs"], 3
                ),
            }
        figures["during_sweep"] = {
            "bot": during,
            "bare": median_of([run["bare"] for run in busy]),
            **sweeps,
            # The same bot, same run: its p99 during the sweeps over its idle p99.
            "bot_vs_idle_p99": round(during["p99_ms"] / figures["bot"]["p99_ms"], 2),
            "bot_vs_idle_p99_goal": SWEEP_VS_IDLE_P99_GOAL,
            # The process layout: the same comparison paired in time (see the module
            # docstring); None in the other layouts.
            "paired": paired,
            # Every collection's pause from the first steady sweep to the end of measuring.
            "gc_pauses": state["gc_pauses"],
            "collector": state["collector"],
        }
    return figures


def _set(event: asyncio.Event, _done: object) -> None:
    event.set()


def _delta(after: Figures, before: Figures, key: str) -> float | None:
    if after.get(key) is None or before.get(key) is None:
        return None
    return round(after[key] - before[key], 3)


def run(
    with_sweep: bool,
    repeats: int,
    gc_freeze: bool,
    *,
    automatic_full_gc: bool = False,
    layout: str = "gated",
    sweep_instances: int = SWEEP_FLEET,
    requests: int = REQUESTS,
    sim_nice: int = SIM_NICE,
    worker_nice: int | None = None,
    worker_scheduling: str | None = None,
    sham_sweeps: bool = False,
) -> Figures:
    workdir = Path(tempfile.mkdtemp(prefix="starpod-ack-"))
    # The server's database; in the process layout the worker's too.
    database = f"sqlite:///{workdir / 'bot.db'}"
    small, small_url = start_simulator(SMALL_FLEET)
    big: subprocess.Popen[bytes] | None = None
    big_url: str | None = None
    worker: Worker | None = None
    sink, sink_urls = start_role("sink")
    server_args = ["--sink", sink_urls["url"], "--backend", small_url, "--database", database]
    server_args += ["--gc-freeze"] if gc_freeze else []
    server_args += ["--automatic-full-gc"] if automatic_full_gc else []
    server_args += ["--layout", layout]
    server, urls = start_role("server", *server_args)
    try:
        if with_sweep:
            big, big_url = start_simulator(sweep_instances)
            # A remote machine in production: its CPU must not be charged to the bot.
            renice(big.pid, sim_nice)
            if layout == "process":
                worker = Worker(
                    workdir,
                    database,
                    big_url,
                    sink_urls["url"],
                    worker_nice,
                    worker_scheduling,
                    sham_sweeps,
                )
        figures = asyncio.run(
            measure(urls, sink_urls["url"], big_url, repeats, requests, worker, sweep_instances)
        )
    finally:
        if worker is not None:
            worker.stop()
        for proc in (server, sink):
            stop(proc)
        for sim in (small, big):
            if sim is not None:
                sim.terminate()
                sim.wait(timeout=15)
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "concurrency": CONCURRENCY,
        "requests_per_app_per_repeat": requests,
        "repeats": repeats,
        "gc_freeze": gc_freeze,
        "full_collections": _full_collections(gc_freeze, automatic_full_gc, layout),
        "sweep_loop": LAYOUTS[layout],
        # The sweep's backend simulator's niceness (the module docstring says why).
        "sim_nice": sim_nice,
        # The process layout: the worker's scheduling and niceness as the kernel reports
        # them, and its own figures (None in the other layouts, where the sweep shares the
        # server's priority).
        "worker_scheduling": worker.scheduling if worker is not None else None,
        "worker_nice": worker.niceness if worker is not None else None,
        "worker": worker.figures if worker is not None else None,
        "command": f"python bench/ack_latency.py --json --repeats {repeats}"
        + (" --gc-freeze" if gc_freeze else "")
        + (" --automatic-full-gc" if automatic_full_gc else "")
        + (f" --layout {layout}" if layout != "gated" else "")
        + (f" --sweep-instances {sweep_instances}" if sweep_instances != SWEEP_FLEET else "")
        + (f" --sim-nice {sim_nice}" if sim_nice != SIM_NICE else "")
        + (f" --worker-nice {worker_nice}" if worker_nice is not None else "")
        + (f" --worker-scheduling {worker_scheduling}" if worker_scheduling else "")
        + (" --sham-sweeps" if sham_sweeps else ""),
        **figures,
    }


def _full_collections(gc_freeze: bool, automatic_full_gc: bool, layout: str) -> str:
    """Who runs the server's full collections (the worker's are always the runtime's)."""
    if automatic_full_gc or not gc_freeze:  # without --gc-freeze always CPython's
        return "CPython's schedule"
    if layout == "process":  # no sweep in the server: bot.collector's own period
        return f"every {EVERY_SECS:g} s, Slack idle (bot.collector)"
    return "after each sweep, Slack idle (bot.collector)"


def print_table(f: Figures) -> None:
    freeze = ", gc.freeze() after start-up" if f["gc_freeze"] else ""
    requests = f["requests_per_app_per_repeat"]
    print(f"median of {f['repeats']} repeats, {requests} requests per app each{freeze}")
    print(f"{'app':36} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    labels = {
        "bare": "bare AsyncApp (no-op, Bolt default)",
        "bare_ack_first": "bare AsyncApp, ack in middleware",
        "bot": "starpod-bot /starpod list",
    }
    for key, label in labels.items():
        row = f[key]
        print(f"{label:36} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['max_ms']:8.2f}")
    print(
        f"bot p99 / bare p99: {f['bot_vs_bare_p99']} (goal <= {P99_VS_BARE_GOAL}); "
        f"per repeat {f['bot_vs_bare_p99_repeats']}"
    )
    sweep = f["during_sweep"]
    if isinstance(sweep, dict):
        print(
            f"during {sweep['sweeps_during_measurement']} back-to-back sweeps of "
            f"{sweep['instances']} instances (~{sweep['sweep_secs_median']} s each, "
            f"{sweep['sweep_secs_median_during']} s while measured), "
            f"the sweep on {f['sweep_loop']}:"
        )
        worker = f["worker"]
        if worker is not None and worker["sham_sweeps"]:
            print("  THE CONTROL (--sham-sweeps): no sweep ran, the worker slept as long")
        if worker is not None:
            print(
                f"  the worker at {f['worker_scheduling']} scheduling, niceness "
                f"{f['worker_nice']}, sweeping every "
                f"{worker['interval_secs']} s (sweep seconds: means from its /metrics), "
                f"sweeping {worker['sweeping_share_during']:.0%} of the time measured, "
                f"{worker['sweep_errors']} failed sweeps, "
                f"{worker['gc_full_collection_secs_during']} s of its full collections while "
                "measured"
            )
        for key, label in (("bare", "bare AsyncApp (same loop)"), ("bot", "starpod-bot")):
            row = sweep[key]
            print(f"  {label:34} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['max_ms']:8.2f}")
        print(
            f"  bot p99 during / idle: {sweep['bot_vs_idle_p99']} "
            f"(goal <= {SWEEP_VS_IDLE_P99_GOAL})"
        )
        paired = sweep["paired"]
        if paired is not None:
            print(
                f"  paired: {paired['sweeps']} single sweeps, each beside as long without: "
                f"p99 {paired['idle']['p99_ms']} ms idle, {paired['sweeping']['p99_ms']} ms "
                f"sweeping ({paired['idle']['requests']} and {paired['sweeping']['requests']} "
                f"acks): {paired['sweeping_vs_idle_p99']} (per pair "
                f"{paired['sweeping_vs_idle_p99_pairs']}, median "
                f"{paired['sweeping_vs_idle_p99_pairs_median']})"
            )
        print(f"  garbage collection pauses during the steady sweeps ({f['full_collections']}):")
        for generation, row in sweep["gc_pauses"].items():
            if not row["count"]:
                print(f"    {generation}: none")
                continue
            print(
                f"    {generation}: {row['count']} pauses, {row['total_ms']} ms in all "
                f"({row['total_cpu_ms']} ms CPU), p99 {row['p99_ms']} ms ({row['p99_cpu_ms']} "
                f"CPU), max {row['max_ms']} ms ({row['max_cpu_ms']} CPU), by thread "
                f"{row['by_thread']}"
            )
        print(f"  the sweep's backend simulator at niceness {f['sim_nice']}")
    else:
        print(f"during sweep: {sweep}")
    print(f"load average while measuring: {f['load_average']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-sweep", action="store_true", help="skip the sweep phase")
    parser.add_argument("--repeats", type=int, default=3, help="repeat each phase (median)")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() in the server after start-up"
    )
    parser.add_argument(
        "--automatic-full-gc",
        action="store_true",
        help="with --gc-freeze: CPython's own full collections, not bot.collector's",
    )
    parser.add_argument(
        "--layout", choices=sorted(LAYOUTS), default="gated", help="where the sweep runs"
    )
    parser.add_argument("--sweep-instances", type=int, default=SWEEP_FLEET)
    parser.add_argument(
        "--sim-nice",
        type=int,
        choices=range(20),
        default=SIM_NICE,
        metavar="0-19",
        help=f"niceness of the sweep's backend simulator, a remote machine in production "
        f"({SIM_NICE}; 0: the bot's priority)",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        choices=range(20),
        metavar="0-19",
        help="--layout process: the worker's STARPOD_WORKER_NICE (default: the runtime's)",
    )
    parser.add_argument(
        "--worker-scheduling",
        choices=["idle", "normal"],
        help="--layout process: the worker's STARPOD_WORKER_SCHEDULING (default: the runtime's)",
    )
    parser.add_argument(
        "--sham-sweeps",
        action="store_true",
        help="--layout process: the control; after recording the fleet the worker sleeps as "
        "long as a sweep instead of sweeping",
    )
    parser.add_argument("--requests", type=int, default=REQUESTS, help="per app per repeat")
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds: 200 requests, 1,000 instances"
    )
    parser.add_argument("--role", choices=["bench", "server", "sink", "worker"], default="bench")
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "bench" and args.layout != "process":
        given = {
            "--worker-nice": args.worker_nice is not None,  # 0 is a value
            "--worker-scheduling": args.worker_scheduling is not None,
            "--sham-sweeps": args.sham_sweeps,
        }
        for flag in (flag for flag, set_ in given.items() if set_):
            parser.error(f"{flag} needs --layout process")
    if args.role == "sink":
        asyncio.run(run_sink())
        return
    if args.role == "worker":
        run_worker()
        return
    if args.role == "server":
        server = run_server(
            args.sink,
            args.backend,
            args.database,
            args.gc_freeze,
            args.layout,
            args.automatic_full_gc,
        )
        # As `starpod-bot run` runs the bot (bot.priority), unless the layout is an old one.
        if args.layout in ("gated", "process"):
            run_foreground(server)
        else:
            asyncio.run(server)
        return
    requests = args.requests
    if args.quick:
        args.repeats, args.sweep_instances, requests = 1, 1000, 2 * ROUND
    figures = run(
        with_sweep=not args.no_sweep,
        repeats=args.repeats,
        gc_freeze=args.gc_freeze,
        automatic_full_gc=args.automatic_full_gc,
        layout=args.layout,
        sweep_instances=args.sweep_instances,
        requests=requests,
        sim_nice=args.sim_nice,
        worker_nice=args.worker_nice,
        worker_scheduling=args.worker_scheduling,
        sham_sweeps=args.sham_sweeps,
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)


if __name__ == "__main__":
    main()
