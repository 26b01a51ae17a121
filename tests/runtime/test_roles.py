"""``starpod-bot run --role web|worker``: the web/worker split as real processes.

A ``--role web`` process answers Slack and never sweeps; a ``--role worker`` process sweeps,
restarts and alerts, and serves only the probes and the metrics. Each test starts real
``python -m bot run`` processes (their working folder an empty tmp folder, so no
``starpod-bot.toml`` is read) against the backend simulator and the Slack emulator running in
this test process on 127.0.0.1, on one SQLite file or one PostgreSQL database.

An instance goes stale at once: the simulator's clock is set two minutes back while its
heartbeat is frozen, then forward again, so its last heartbeat is two minutes old while the
others keep beating. The sweep runs every second; the bots' clocks are the real one.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from bot.sim.backend import BackendSimulator
from bot.sim.slack import VIA_SOCKET, SlackEmulator
from bot.sim.slack_models import Message
from tests.runtime.conftest import runtime_env
from tests.support.bot_process import BotProcess, bot_environ

pytestmark = pytest.mark.slow

ALERTS = "C0ALERTS"
START_WITHIN_SECS = 30.0
STOP_WITHIN_SECS = 20.0
ALERT_WITHIN_SECS = 30.0
STALE_FOR_SECS = 120.0
# The simulator's heartbeat ticks every 5 s: a beating instance is at most that old.
HEARTBEAT_TIMEOUT = "30"
# A sweep's health calls get a third of the interval: 0.33 s leaves a niced worker on a
# busy host room enough, and an incident opens and resolves within two sweeps.
MONITOR_INTERVAL = "1"
GATEWAY_KEY = "admin-gateway-key"  # tests/runtime/conftest.py GATEWAY_KEYS
UP = "starpod-bot is up: "


class ShiftedClock:
    """The real clock, ``shift`` seconds off: the simulator's, to freeze a heartbeat in the past."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


@pytest.fixture
def sim_clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def backend(sim_clock: ShiftedClock) -> AsyncIterator[BackendSimulator]:
    async with BackendSimulator(clock=sim_clock, transition_secs=0) as sim:
        yield sim


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def go_stale(backend: BackendSimulator, clock: ShiftedClock, instance_id: str) -> None:
    """Freeze ``instance_id``'s heartbeat ``STALE_FOR_SECS`` ago (no await: no request sees
    the simulator's clock shifted). A restart revives it."""
    clock.shift = -STALE_FOR_SECS
    try:
        backend.stop_heartbeat(instance_id)
    finally:
        clock.shift = 0.0


def env_for(
    tmp_path: Path, backend: BackendSimulator, slack: SlackEmulator, **extra: str
) -> dict[str, str]:
    settings = {
        "STARPOD_MONITOR_INTERVAL": MONITOR_INTERVAL,
        "STARPOD_HEARTBEAT_TIMEOUT": HEARTBEAT_TIMEOUT,
        # Normal scheduling at niceness 10: at idle scheduling (the default) a worker gets
        # no CPU while a second suite keeps both cores busy, and 1-second sweeps would
        # time out; the default itself: test_a_worker_takes_idle_scheduling_at_start.
        "STARPOD_WORKER_SCHEDULING": "normal",
    }
    return bot_environ(runtime_env(tmp_path, backend, slack, **(settings | extra)))


async def start(env: dict[str, str], cwd: Path, role: str | None) -> BotProcess:
    """``python -m bot run [--role role]``."""
    args = ("-m", "bot", "run", *(("--role", role) if role else ()))
    return await BotProcess.start(env, cwd, *args)


async def up(bot: BotProcess) -> str:
    """The bot's URL once its start is complete (the "is up" line)."""
    url = await bot.listening(START_WITHIN_SECS)
    await bot.logged(UP, START_WITHIN_SECS)
    return url


async def start_all(*specs: tuple[dict[str, str], str | None], cwd: Path) -> list[BotProcess]:
    """Start one process per ``(env, role)``, all at once."""
    return list(await asyncio.gather(*(start(env, cwd, role) for env, role in specs)))


async def stop_all(*bots: BotProcess) -> list[int]:
    """SIGTERM to each, at once; their exit codes."""
    return list(await asyncio.gather(*(bot.stop(STOP_WITHIN_SECS) for bot in bots)))


def up_line(bot: BotProcess) -> str:
    return next(line for line in bot.lines if UP in line)


def metric(text: str, name: str) -> float:
    """The sum of the samples ``name`` (any labels) in a Prometheus text page (0: none)."""
    samples = re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return sum(float(value) for value in samples)


async def once_ready(url: str, within: float = START_WITHIN_SECS) -> httpx.Response:
    """``GET /readyz`` until it answers 200 (the last answer after ``within`` s). A worker
    sweeping every second is "stalled" past three seconds without a sweep: on a loaded
    machine one /readyz may meet that, and the next sweep clears it."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while True:
            answer = await http.get("/readyz")
            if answer.status_code == 200 or time.monotonic() > deadline:
                return answer
            await asyncio.sleep(0.1)  # the worker's next sweep, in another process


async def metrics_of(url: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        page = await http.get("/metrics")
    assert page.status_code == 200, page.text
    return page.text


def roots(slack: SlackEmulator) -> list[Message]:
    return slack.messages(ALERTS)


def resolved(slack: SlackEmulator) -> bool:
    """An alert root whose thread says the instance is back (✅ reply)."""
    return any(
        reply.text.startswith("✅")
        for root in roots(slack)
        for reply in slack.thread(ALERTS, root.ts)[1:]
    )


async def stale_instance_is_restarted_once_and_alerted_once(
    backend: BackendSimulator, clock: ShiftedClock, slack: SlackEmulator, victim: str
) -> Message:
    """Make ``victim`` stale; wait for the incident to open and resolve; its one root."""
    go_stale(backend, clock, victim)
    await slack.wait_for(
        lambda: resolved(slack), ALERT_WITHIN_SECS, what="the incident opened and resolved"
    )
    assert backend.calls[("restart", victim)] == 1
    [root] = roots(slack)
    assert backend.instance(victim)["name"] in root.visible_text()
    # The restart and the recovery, once each (a diagnostics reply may come in between).
    replies = [m.text.split(" ")[0] for m in slack.thread(ALERTS, root.ts)[1:]]
    assert [r for r in replies if r in ("🔁", "✅")] == ["🔁", "✅"], replies
    return root


def answered(slack: SlackEmulator, count: int) -> Callable[[], bool]:
    """True once ``count`` answers reached Slack (acks and response_url posts)."""
    return lambda: len(slack.responses) >= count


def own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


# -- one SQLite file, a web and a worker -------------------------------------------------------


async def test_web_and_worker_on_one_sqlite_file_split_the_work(
    tmp_path: Path,
    workdir: Path,
    backend: BackendSimulator,
    sim_clock: ShiftedClock,
    slack_emulator: SlackEmulator,
) -> None:
    slack = slack_emulator
    victim, *_ = backend.seed_instances(3)
    web_env = env_for(tmp_path, backend, slack)
    # The worker answers no Slack request: it needs no signing secret.
    worker_env = env_for(tmp_path, backend, slack, SLACK_SIGNING_SECRET="")
    # Together, as a process manager starts them: the two migrate the new file once.
    web, worker = await start_all((web_env, "web"), (worker_env, "worker"), cwd=workdir)
    try:
        web_url, worker_url = await asyncio.gather(up(web), up(worker))
        assert "role web" in up_line(web) and "HTTP mode" in up_line(web), up_line(web)
        nice = min(own_nice() + 10, 19)
        assert f"role worker at niceness {nice}" in up_line(worker), up_line(worker)
        # The worker yields the CPU to the web process; the web process keeps its priority.
        assert os.getpriority(os.PRIO_PROCESS, worker.proc.pid) == nice
        assert os.getpriority(os.PRIO_PROCESS, web.proc.pid) == own_nice()

        await stale_instance_is_restarted_once_and_alerted_once(backend, sim_clock, slack, victim)

        # Slack reaches the web process: it answers, from the same database.
        await slack.send_slash_command(f"{web_url}/slack/events", "list")
        await slack.wait_for(answered(slack, 1), 10, what="the list answer")
        listed = str(slack.responses[0].body)
        assert all(backend.instance(i)["name"] in listed for i in backend.instance_ids())
        await slack.send_slash_command(f"{web_url}/slack/events", "status")
        await slack.wait_for(answered(slack, 2), 10, what="the status answer")
        status = str(slack.responses[1].body)
        # No sweep figures: the web process has none (the worker sweeps).
        assert "*Monitor*" in status and "*Last sweep*" not in status, status
        assert "not running in this process" in status or "worker process" in status, status

        # The worker serves the probes and the metrics only.
        to_worker = await slack.send_slash_command(f"{worker_url}/slack/events", "list")
        assert to_worker.status_code == 404, to_worker.text
        async with httpx.AsyncClient(timeout=10) as http:
            gateway = await http.get(
                f"{worker_url}/api/instances", headers={"X-API-Key": GATEWAY_KEY}
            )
            web_gateway = await http.get(
                f"{web_url}/api/instances", headers={"X-API-Key": GATEWAY_KEY}
            )
            web_ready = await http.get(f"{web_url}/readyz")
        worker_ready = await once_ready(worker_url)
        async with httpx.AsyncClient(timeout=10) as http:
            worker_alive = await http.get(f"{worker_url}/healthz")
            worker_key_link = await http.get(f"{worker_url}/ssh-key/some-token")
        assert gateway.status_code == 404 and web_gateway.status_code == 200
        assert worker_alive.status_code == 200 and worker_key_link.status_code == 404
        assert worker_ready.status_code == 200, worker_ready.text
        assert worker_ready.json()["checks"] == {"database": "ok", "slack": "ok", "monitor": "ok"}
        assert web_ready.status_code == 200, web_ready.text
        assert web_ready.json()["checks"] == {"database": "ok", "slack": "ok"}

        # The worker swept, led and delivered the alert; the web process did none of it.
        worker_metrics, web_metrics = await metrics_of(worker_url), await metrics_of(web_url)
        assert metric(worker_metrics, "starpod_leader") == 1
        assert metric(worker_metrics, "starpod_sweeps_total") >= 2
        assert metric(worker_metrics, "starpod_notifications_sent_total") >= 1
        assert metric(web_metrics, "starpod_leader") == 0
        assert metric(web_metrics, "starpod_sweeps_total") == 0
        assert metric(web_metrics, "starpod_notifications_sent_total") == 0
    finally:
        web_code, worker_code = await stop_all(web, worker)
    assert web_code == 0, web.output()
    assert worker_code == 0, worker.output()
    for bot in (web, worker):
        assert "Traceback" not in bot.output() and " ERROR " not in bot.output(), bot.output()
        assert bot.lines[-1].endswith("starpod-bot stopped"), bot.output()
    assert len(roots(slack)) == 1, "one alert, however many processes"
    assert slack.violations() == []


async def test_in_socket_mode_only_the_web_process_connects(
    tmp_path: Path, workdir: Path, backend: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    slack = slack_emulator
    backend.seed_instances(2)
    # Both get the app token, as from one shared environment file.
    env = env_for(
        tmp_path, backend, slack, SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET=""
    )
    web, worker = await start_all((env, "web"), (env, "worker"), cwd=workdir)
    try:
        _, worker_url = await asyncio.gather(up(web), up(worker))
        # Both are up: the web process's link is open, the worker never asked for one.
        assert len(slack.socket_mode.connections) == 1 and slack.socket_mode.opens == 1
        await slack.send_slash_command(VIA_SOCKET, "list")
        await slack.wait_for(lambda: bool(slack.responses), 10, what="the list answer")
        worker_ready = await once_ready(worker_url)
    finally:
        codes = await stop_all(web, worker)
    assert codes == [0, 0], web.output() + worker.output()
    assert "Socket Mode" in up_line(web) and "role web" in up_line(web), up_line(web)
    assert "Socket Mode" not in up_line(worker), up_line(worker)
    assert "no Slack requests (probes and metrics only)" in up_line(worker), up_line(worker)
    assert worker_ready.status_code == 200, worker_ready.text
    assert set(worker_ready.json()["checks"]) == {"database", "slack", "monitor"}
    assert len(slack.socket_mode.connections) == 1
    assert slack.violations() == []


async def test_worker_nice_0_keeps_its_priority_and_starpod_role_selects_the_role(
    tmp_path: Path, workdir: Path, backend: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    env = env_for(
        tmp_path,
        backend,
        slack_emulator,
        SLACK_SIGNING_SECRET="",
        STARPOD_ROLE="worker",
        STARPOD_WORKER_NICE="0",
    )
    worker = await start(env, workdir, None)
    try:
        await up(worker)
        nice = os.getpriority(os.PRIO_PROCESS, worker.proc.pid)
    finally:
        code = await worker.stop(STOP_WITHIN_SECS)
    assert "role worker" in up_line(worker), up_line(worker)
    assert nice == own_nice()
    assert code == 0, worker.output()


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's SCHED_IDLE")
async def test_a_worker_takes_idle_scheduling_at_start(
    tmp_path: Path, workdir: Path, backend: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    # The runtime's default, as an operator leaves it.
    env = env_for(tmp_path, backend, slack_emulator, SLACK_SIGNING_SECRET="")
    del env["STARPOD_WORKER_SCHEDULING"]
    worker = await start(env, workdir, "worker")
    try:
        # Read from the kernel until the CLI took it: it does so before any thread starts,
        # at normal priority until then. Not waited further: a process at idle scheduling
        # gets no CPU while other tests keep both cores busy.
        async with asyncio.timeout(START_WITHIN_SECS):
            while os.sched_getscheduler(worker.proc.pid) != os.SCHED_IDLE:
                assert worker.proc.returncode is None, worker.output()
                await asyncio.sleep(0.01)
    finally:
        worker.proc.kill()
        await worker.finish(STOP_WITHIN_SECS)


async def test_the_role_flag_wins_over_starpod_role(
    tmp_path: Path, workdir: Path, backend: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    env = env_for(tmp_path, backend, slack_emulator, STARPOD_ROLE="worker")
    web = await start(env, workdir, "web")
    try:
        url = await up(web)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            ready = await http.get("/readyz")
        nice = os.getpriority(os.PRIO_PROCESS, web.proc.pid)
    finally:
        code = await web.stop(STOP_WITHIN_SECS)
    assert "role web" in up_line(web), up_line(web)
    assert "monitor" not in ready.json()["checks"]
    assert nice == own_nice()
    assert code == 0, web.output()


# -- PostgreSQL: two web processes and a worker ------------------------------------------------


async def test_two_webs_and_a_worker_on_postgresql_one_leads_and_alerts_once(
    tmp_path: Path,
    workdir: Path,
    backend: BackendSimulator,
    sim_clock: ShiftedClock,
    slack_emulator: SlackEmulator,
    pg_empty_url: str,
) -> None:
    slack = slack_emulator
    victim, *_ = backend.seed_instances(3)
    env = env_for(tmp_path, backend, slack, DATABASE_URL=pg_empty_url)
    names = ("worker", "web-1", "web-2")
    started = await start_all((env, "worker"), (env, "web"), (env, "web"), cwd=workdir)
    bots = dict(zip(names, started, strict=True))
    try:
        urls = dict(zip(names, await asyncio.gather(*map(up, started)), strict=True))

        await stale_instance_is_restarted_once_and_alerted_once(backend, sim_clock, slack, victim)
        for count, name in enumerate(("web-1", "web-2"), start=1):
            await slack.send_slash_command(f"{urls[name]}/slack/events", "list")
            await slack.wait_for(answered(slack, count), 10, what=f"{name}'s list answer")
        pages = {name: await metrics_of(url) for name, url in urls.items()}
    finally:
        codes = dict(zip(names, await stop_all(*started), strict=True))
    assert codes == {"worker": 0, "web-1": 0, "web-2": 0}, {n: b.output() for n, b in bots.items()}
    leaders = {name: metric(page, "starpod_leader") for name, page in pages.items()}
    assert leaders == {"worker": 1, "web-1": 0, "web-2": 0}
    sent = {name: metric(page, "starpod_notifications_sent_total") for name, page in pages.items()}
    assert sent["worker"] >= 1 and sent["web-1"] == sent["web-2"] == 0, sent
    assert len(roots(slack)) == 1
    assert backend.calls[("restart", victim)] == 1
    assert slack.violations() == []


# -- bad roles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "unset", "named"),
    [
        ("worker", "SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN"),  # it posts the alerts
        ("worker", "STARPOD_INSTANCE_BACKEND_URL", "STARPOD_INSTANCE_BACKEND_URL"),
        ("web", "SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET"),  # HTTP mode
    ],
)
async def test_a_role_refuses_to_start_without_what_it_needs(
    tmp_path: Path,
    workdir: Path,
    backend: BackendSimulator,
    slack_emulator: SlackEmulator,
    role: str,
    unset: str,
    named: str,
) -> None:
    bot = await start(env_for(tmp_path, backend, slack_emulator, **{unset: ""}), workdir, role)
    code = await bot.finish(START_WITHIN_SECS)
    assert code == 2, bot.output()
    problems = [line for line in bot.lines if "error" in line.lower()]
    assert len(problems) == 1 and named in problems[0], bot.output()
    assert "Traceback" not in bot.output()


async def test_an_unknown_role_flag_is_a_usage_error_exit_2(
    tmp_path: Path, workdir: Path, backend: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    bot = await start(env_for(tmp_path, backend, slack_emulator), workdir, "nonsense")
    code = await bot.finish(START_WITHIN_SECS)
    assert code == 2, bot.output()
    # Click's usage error, its message boxed (and wrapped) by Typer: read it unboxed.
    message = " ".join(re.sub(r"[│╭╮╰╯─]", " ", bot.output()).split())
    assert "Invalid value for '--role'" in message, bot.output()
    assert "'nonsense' is not one of 'all', 'web', 'worker'" in message, bot.output()
    assert "Traceback" not in bot.output()
    assert slack_emulator.calls == [] and backend.requests_total == 0, "it started nothing"


async def test_an_unknown_starpod_role_is_one_line_and_exit_2(
    tmp_path: Path, workdir: Path, backend: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    env = env_for(tmp_path, backend, slack_emulator, STARPOD_ROLE="bogus")
    bot = await start(env, workdir, None)
    code = await bot.finish(START_WITHIN_SECS)
    assert code == 2, bot.output()
    [line] = [line for line in bot.lines if line.strip()]
    # Settings errors never repeat the value (it might be a secret): the name and the choices.
    assert "invalid setting STARPOD_ROLE (role)" in line, line
    assert "'all', 'web' or 'worker'" in line, line
    assert slack_emulator.calls == [] and backend.requests_total == 0, "it started nothing"
