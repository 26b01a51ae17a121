"""Roles: a web process (Slack's side) and a worker (the sweeps' side) on one database.

In-process runtimes against the backend simulator and the Slack emulator, on one SQLite
file (the second process ``role all`` would be refused there) and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.config import Role, Settings, WorkerScheduling
from bot.runtime import Runtime
from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.wiring import build
from bot.worker_priority import CpuPriority, take_role_priority
from tests.support.runtimes import close_parts, metric, until
from tests.support.threads import in_a_thread

MakeSettings = Callable[..., Settings]


async def test_a_web_process_builds_no_sweep_and_no_job_of_the_monitors(
    make_settings: MakeSettings,
) -> None:
    parts = build(make_settings(STARPOD_ROLE="web"))
    try:
        assert parts.sweep is None and parts.monitor_handle is None
        assert parts.scheduler.get_jobs() == []
        assert list(parts.readiness.checks) == ["database", "slack"]
        assert not parts.alerts.is_leader
        assert not parts.monitor.status().running
        assert parts.starved_sweeps is None
    finally:
        await close_parts(parts)


async def test_a_worker_needs_no_signing_secret_and_schedules_the_monitors_jobs(
    make_settings: MakeSettings,
) -> None:
    parts = build(make_settings(STARPOD_ROLE="worker", SLACK_SIGNING_SECRET=""))
    try:
        assert parts.sweep is not None and parts.monitor_handle is not None
        assert {job.id for job in parts.scheduler.get_jobs()} >= {
            "starpod-health-sweep",
            "starpod-alerts-delivery",
            "starpod-audit-prune",
        }
        assert list(parts.readiness.checks) == ["database", "slack", "monitor"]
        assert not parts.gateway_on  # keys are set, but the gateway is the web process's
        # This thread runs at normal priority: no warning about idle priority to give.
        assert parts.starved_sweeps is None
    finally:
        await close_parts(parts)


async def test_web_and_worker_share_one_sqlite_file_each_doing_its_half(
    make_settings: MakeSettings, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    backend_sim.seed_instances(3)
    web_settings = make_settings(STARPOD_ROLE="web")
    worker_settings = make_settings(STARPOD_ROLE="worker")
    async with (
        Runtime(worker_settings) as worker,
        Runtime(web_settings) as web,
        httpx.AsyncClient() as http,
    ):
        monitor = worker.monitor
        assert monitor is not None and monitor.is_leader
        await until(lambda: monitor.status().last_sweep_at is not None, "the worker's sweep")
        # The web process answers Slack; the worker does not take Slack's requests.
        reply = await slack_emulator.send_slash_command(f"{web.url}/slack/events", "list")
        await slack_emulator.wait_for(lambda: len(slack_emulator.responses) >= 1, what="list")
        refused = await http.post(f"{worker.url}/slack/events", content=b"token=x")
        no_gateway = await http.get(f"{worker.url}/api/instances")
        ready = {
            name: await http.get(f"{r.url}/readyz")
            for name, r in (("web", web), ("worker", worker))
        }
        scraped = {
            name: (await http.get(f"{r.url}/metrics")).text
            for name, r in (("web", web), ("worker", worker))
        }
        status = await slack_emulator.send_slash_command(f"{web.url}/slack/events", "status")
        await slack_emulator.wait_for(lambda: len(slack_emulator.responses) >= 2, what="status")
        assert web.monitor is not None
        web_status = web.monitor.status()
    assert reply.status_code == 200 and status.status_code == 200
    assert "instance" in str(slack_emulator.responses[0]).lower()
    assert "🟢 runs in the worker process (`--role worker`), last sweep recorded" in str(
        slack_emulator.responses[1]
    )
    assert refused.status_code == 404 and no_gateway.status_code == 404
    assert ready["web"].json()["checks"] == {"database": "ok", "slack": "ok"}
    assert ready["worker"].json()["checks"] == {"database": "ok", "slack": "ok", "monitor": "ok"}
    assert metric(scraped["worker"], "starpod_leader") == 1
    assert metric(scraped["web"], "starpod_leader") == 0
    assert metric(scraped["worker"], 'starpod_sweeps_total{result="ok"}') >= 1
    assert 'starpod_sweeps_total{result="ok"}' not in scraped["web"] or (
        metric(scraped["web"], 'starpod_sweeps_total{result="ok"}') == 0
    )
    # The web process never tried to lead (a second `all` on this file would be refused).
    assert not web_status.standing_by and not web_status.is_leader and not web_status.running
    assert slack_emulator.violations() == []


async def test_a_worker_in_socket_mode_settings_does_not_connect_the_socket(
    make_settings: MakeSettings, slack_emulator: SlackEmulator
) -> None:
    settings = make_settings(STARPOD_ROLE="worker", SLACK_APP_TOKEN=slack_emulator.app_token)
    async with Runtime(settings) as worker:
        assert worker.socket_mode is None and worker.socket_link is None
        assert worker.monitor is not None and worker.monitor.is_leader


async def test_web_and_worker_replicas_on_postgresql_only_workers_lead(
    make_settings: MakeSettings, pg_empty_url: str, backend_sim: BackendSimulator
) -> None:
    backend_sim.seed_instances(2)
    web = make_settings(DATABASE_URL=pg_empty_url, STARPOD_ROLE="web")
    worker = make_settings(DATABASE_URL=pg_empty_url, STARPOD_ROLE="worker")
    # The web processes start first: were they campaigning, one of them would lead.
    async with Runtime(web) as web_a, Runtime(web) as web_b, Runtime(worker) as leader:
        assert leader.monitor is not None
        monitor = leader.monitor
        await until(lambda: monitor.status().last_sweep_at is not None, "the worker's sweep")
        assert monitor.is_leader
        for replica in (web_a, web_b):
            assert replica.monitor is not None and not replica.monitor.is_leader


async def test_a_worker_at_idle_priority_warns_when_its_sweeps_starve(
    make_settings: MakeSettings,
) -> None:
    # The priority the CLI took before any thread (here given: this thread's is normal).
    idle = CpuPriority(WorkerScheduling.IDLE, 0)
    worker = build(make_settings(STARPOD_ROLE="worker"), priority=idle)
    web = build(make_settings(STARPOD_ROLE="web"), priority=idle)
    try:
        assert worker.starved_sweeps is not None
        # Past the sweep's deadline for health calls: two thirds of the interval.
        assert worker.starved_sweeps.deadline_secs == worker.monitor.fetch_deadline_secs
        assert worker.monitor.fetch_deadline_secs == worker.settings.monitor.interval_secs * 2 / 3
        assert web.starved_sweeps is None  # a web process never sweeps
    finally:
        await close_parts(worker)
        await close_parts(web)


def test_only_a_worker_lowers_its_priority(make_settings: MakeSettings) -> None:
    seen: dict[str, CpuPriority] = {}
    before = os.nice(0)

    def normal_scheduling() -> None:
        seen["web"] = take_role_priority(make_settings(STARPOD_ROLE="web"))
        seen["all"] = take_role_priority(make_settings())
        worker = {"STARPOD_ROLE": "worker", "STARPOD_WORKER_SCHEDULING": "normal"}
        seen["worker nice 0"] = take_role_priority(make_settings(**worker, STARPOD_WORKER_NICE="0"))
        seen["worker"] = take_role_priority(make_settings(**worker))

    in_a_thread(normal_scheduling)
    normal = WorkerScheduling.NORMAL
    assert seen == {
        "web": CpuPriority(normal, before),
        "all": CpuPriority(normal, before),
        "worker nice 0": CpuPriority(normal, before),
        "worker": CpuPriority(normal, min(before + 10, 19)),
    }


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's SCHED_IDLE")
def test_a_worker_takes_idle_scheduling_by_default_and_its_threads_inherit_it(
    make_settings: MakeSettings,
) -> None:
    seen: dict[str, int] = {}

    def default_worker() -> None:
        taken = take_role_priority(make_settings(STARPOD_ROLE="worker"))
        assert taken.policy == WorkerScheduling.IDLE
        seen["taken"] = os.sched_getscheduler(0)
        # A thread started afterwards (the sweep's loop, the scheduler's) runs idle too.
        in_a_thread(lambda: seen.update(started_after=os.sched_getscheduler(0)))

    in_a_thread(default_worker)
    assert seen == {"taken": os.SCHED_IDLE, "started_after": os.SCHED_IDLE}
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the test's own thread kept its own


@pytest.mark.parametrize("value", ["bogus", "batch", "IDLE "])
def test_an_unknown_worker_scheduling_is_named_with_its_setting(
    make_settings: MakeSettings, value: str
) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="STARPOD_WORKER_SCHEDULING"):
        make_settings(STARPOD_ROLE="worker", STARPOD_WORKER_SCHEDULING=value)


@pytest.mark.parametrize("value", ["bogus", "Worker ", "both"])
def test_an_unknown_role_is_named_with_its_setting(make_settings: MakeSettings, value: str) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="STARPOD_ROLE"):
        make_settings(STARPOD_ROLE=value)


def test_roles_say_which_half_runs(make_settings: MakeSettings) -> None:
    halves = {
        role: (s.serves_slack, s.runs_monitor)
        for role in Role
        for s in [make_settings(STARPOD_ROLE=role.value)]
    }
    assert halves == {
        Role.ALL: (True, True),
        Role.WEB: (True, False),
        Role.WORKER: (False, True),
    }


async def test_web_and_worker_starting_together_on_a_new_sqlite_file_migrate_once(
    make_settings: MakeSettings, backend_sim: BackendSimulator
) -> None:
    # Two processes started at once (a compose file, a pod with two containers): both find
    # no schema; one migrates under SQLite's write lock, the other then finds it done.
    backend_sim.seed_instances(1)
    web = Runtime(make_settings(STARPOD_ROLE="web"))
    worker = Runtime(make_settings(STARPOD_ROLE="worker"))
    try:
        await asyncio.gather(web.start(), worker.start())
        assert worker.monitor is not None and worker.monitor.is_leader
        assert web.db is not None
        from bot.store.migrate import head_revision

        assert await web.db.current_revision() == head_revision()
    finally:
        await asyncio.gather(web.stop(), worker.stop())


async def _web_status(runtime: Runtime, slack: SlackEmulator) -> str:
    """The monitor field of ``/starpod status`` asked of ``runtime`` (a web process)."""
    answered = len(slack.responses)
    await slack.send_slash_command(f"{runtime.url}/slack/events", "status")
    await slack.wait_for(lambda: len(slack.responses) > answered, what="status")
    text = str(slack.responses[-1])
    return text[text.index("*Monitor*") :][:200]


async def test_a_web_process_says_when_no_worker_records_sweeps(
    make_settings: MakeSettings, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    backend_sim.seed_instances(2)
    async with Runtime(make_settings(STARPOD_ROLE="web")) as web:
        line = await _web_status(web, slack_emulator)
    assert "🔴 runs in the worker process" in line
    assert "no sweep recorded anything in the last hour: is it running?" in line


async def test_a_web_process_says_when_the_workers_last_sweep_is_old(
    make_settings: MakeSettings, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    backend_sim.seed_instances(2)
    async with Runtime(make_settings(STARPOD_ROLE="worker")) as worker:
        monitor = worker.monitor
        assert monitor is not None
        await until(lambda: monitor.status().last_sweep_at is not None, "the worker's sweep")
    # Three intervals (an hour each here) and a minute later, as the web process sees it.
    later = datetime.now(UTC) + timedelta(hours=3, minutes=1)
    async with Runtime(make_settings(STARPOD_ROLE="web"), clock=lambda: later) as web:
        line = await _web_status(web, slack_emulator)
    assert "🔴 runs in the worker process (`--role worker`), last sweep recorded 3 h" in line
    assert "is it running?" in line


async def test_a_web_process_does_not_expect_samples_of_an_empty_fleet(
    make_settings: MakeSettings, slack_emulator: SlackEmulator
) -> None:
    async with Runtime(make_settings(STARPOD_ROLE="web")) as web:
        line = await _web_status(web, slack_emulator)
    assert "the fleet is empty, so no sweep records anything" in line
    assert "🔴" not in line


async def test_a_second_worker_on_the_same_sqlite_file_is_refused_a_web_is_not(
    make_settings: MakeSettings,
) -> None:
    # SQLite has one sweeping process: a second worker (or an `all`) would sweep and alert
    # twice; a second web process takes no leadership and starts.
    from bot.store.errors import LeadershipRefused

    worker = make_settings(STARPOD_ROLE="worker")
    async with Runtime(worker) as first:
        with pytest.raises(LeadershipRefused, match="another starpod-bot process"):
            await Runtime(worker).start()
        with pytest.raises(LeadershipRefused, match="another starpod-bot process"):
            await Runtime(make_settings()).start()
        async with (
            Runtime(make_settings(STARPOD_ROLE="web")) as web_a,
            Runtime(make_settings(STARPOD_ROLE="web")) as web_b,
        ):
            assert web_a.url != web_b.url
        assert first.monitor is not None and first.monitor.is_leader


@pytest.mark.parametrize("value", ["20", "-1", "ten", "2.5"])
def test_an_out_of_range_worker_niceness_is_named(make_settings: MakeSettings, value: str) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="STARPOD_WORKER_NICE"):
        make_settings(STARPOD_ROLE="worker", STARPOD_WORKER_NICE=value)
