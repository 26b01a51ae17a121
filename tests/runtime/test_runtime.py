"""A real Runtime against the simulators: probes, metrics, readiness failures, start and stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.errors import ConfigError
from bot.runtime import Runtime, SlackTokenRejected
from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.store.errors import LeadershipRefused
from bot.store.models import LeaderLease
from tests.support.runtimes import first_sweep, metric, until

MakeSettings = Callable[..., Settings]


async def test_probes_and_metrics_after_a_sweep_and_a_slash_command(
    make_settings: MakeSettings, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    backend_sim.seed_instances(3)
    async with Runtime(make_settings()) as runtime, httpx.AsyncClient(base_url=runtime.url) as http:
        await first_sweep(runtime)
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")
        reply = await slack_emulator.send_slash_command(f"{runtime.url}/slack/events", "list")
        await slack_emulator.wait_for(lambda: len(slack_emulator.responses) >= 1, what="list")
        # The audit row (which counts the command) is written just after the answer.
        async with asyncio.timeout(10):
            while 'subcommand="list"' not in (metrics := await http.get("/metrics")).text:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    assert alive.status_code == 200
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "reasons": [],
        "checks": {"database": "ok", "slack": "ok", "monitor": "ok"},
    }
    assert reply.status_code == 200
    text = metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")
    assert metric(text, 'starpod_sweeps_total{result="ok"}') == 1
    assert metric(text, "starpod_sweep_duration_seconds_count") == 1
    # Once at start (the reachability check), once in the sweep, once for /starpod list.
    assert metric(text, 'starpod_backend_requests_total{endpoint="list",status="200"}') == 3
    assert metric(text, "starpod_ack_latency_seconds_count") == 1
    assert metric(text, 'starpod_commands_total{result="ok",source="slash",subcommand="list"}') == 1
    assert metric(text, "starpod_leader") == 1
    assert metric(text, "starpod_open_incidents") == 0
    assert metric(text, "starpod_notifications_pending") == 0
    assert metric(text, "starpod_ready") == 1
    assert slack_emulator.violations() == []


async def test_readyz_names_the_database_when_its_file_is_gone(make_settings: MakeSettings) -> None:
    settings = make_settings()
    async with Runtime(settings) as runtime, httpx.AsyncClient(base_url=runtime.url) as http:
        assert runtime.db is not None and runtime.db.sqlite_path is not None
        path: Path = runtime.db.sqlite_path
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240 - test setup
        ready = await http.get("/readyz")
        metrics = await http.get("/metrics")
    assert ready.status_code == 503
    # The alerting rule StarpodBotNotReady reads this gauge: it says what the probe says.
    assert metric(metrics.text, "starpod_ready") == 0
    body = ready.json()
    assert body["status"] == "not ready"
    assert body["checks"]["slack"] == "ok" and body["checks"]["monitor"] == "ok"
    assert body["reasons"][0].startswith(f"database: cannot open {path}")


async def test_readyz_names_the_monitor_when_it_is_stopped(make_settings: MakeSettings) -> None:
    async with Runtime(make_settings()) as runtime, httpx.AsyncClient(base_url=runtime.url) as http:
        assert runtime.monitor is not None
        await runtime.monitor.stop()
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reasons"] == ["monitor: stopped: the health sweep is not scheduled"]


async def test_readyz_names_slack_when_the_token_stops_working(
    make_settings: MakeSettings, slack_emulator: SlackEmulator
) -> None:
    runtime = Runtime(make_settings(), slack_recheck_secs=0)
    async with runtime, httpx.AsyncClient(base_url=runtime.url) as http:
        before = await http.get("/readyz")
        slack_emulator.bot_token = "xoxb-rotated-elsewhere"  # the bot's token is now revoked
        after = await http.get("/readyz")
    assert before.status_code == 200
    assert after.status_code == 503
    [reason] = after.json()["reasons"]
    assert reason.startswith("slack: Slack rejected SLACK_BOT_TOKEN (auth.test: invalid_auth)")


async def test_a_rejected_slack_token_stops_the_start(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    runtime = Runtime(make_settings(SLACK_BOT_TOKEN="xoxb-not-the-right-one"))
    with pytest.raises(
        SlackTokenRejected, match=r"Slack rejected SLACK_BOT_TOKEN \(auth.test: invalid_auth\)"
    ):
        await runtime.start()
    assert isinstance(SlackTokenRejected("x"), ConfigError)
    # Everything opened before the failure was closed again: the next start works.
    async with Runtime(make_settings()) as again:
        assert again.url.startswith("http://127.0.0.1:")


async def test_missing_settings_are_named_together(make_settings: MakeSettings) -> None:
    settings = make_settings(
        STARPOD_INSTANCE_BACKEND_URL="", SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET=""
    )
    with pytest.raises(ConfigError) as caught:
        await Runtime(settings).start()
    lines = str(caught.value).split("; ")
    assert len(lines) == 3
    assert "STARPOD_INSTANCE_BACKEND_URL" in lines[0]
    assert "SLACK_BOT_TOKEN" in lines[1]
    assert "SLACK_SIGNING_SECRET" in lines[2] and "SLACK_APP_TOKEN" in lines[2]


async def test_an_unreachable_backend_is_a_warning(
    make_settings: MakeSettings, backend_sim: BackendSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    await backend_sim.stop()
    caplog.set_level(logging.WARNING, logger="bot.runtime")
    async with Runtime(make_settings()) as runtime, httpx.AsyncClient(base_url=runtime.url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert any(
        "is not reachable yet" in r.getMessage() for r in caplog.records if r.name == "bot.runtime"
    )


async def test_a_second_runtime_on_the_same_sqlite_file_is_refused(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings()
    async with Runtime(settings) as first:
        with pytest.raises(LeadershipRefused, match="another starpod-bot process is already using"):
            await Runtime(settings).start()
        assert first.monitor is not None and first.monitor.is_leader
    # Stopping released the lease: the next process starts at once.
    async with Runtime(settings) as second:
        assert second.db is not None
        async with second.db.session() as session:
            [lease] = list(await session.scalars(select(LeaderLease)))
        assert second.monitor is not None and second.monitor.is_leader
        assert lease.holder.split(":")[1].isdigit()


async def test_stop_waits_for_a_running_sweep(
    make_settings: MakeSettings, backend_sim: BackendSimulator
) -> None:
    backend_sim.seed_instances(2)
    runtime = Runtime(make_settings())
    await runtime.start()
    await first_sweep(runtime)
    assert runtime.monitor is not None and runtime.scheduler is not None
    first_at = runtime.monitor.status().last_sweep_at
    backend_sim.seed_instances(1)  # only a sweep that completes sees the third instance
    backend_sim.set_faults(latency_secs=0.5)
    # The first sweep's job must have returned (its observers run after the sweep is
    # recorded): a run due while it still runs is skipped (max_instances=1).
    scheduler = runtime.scheduler
    await until(lambda: len(scheduler.jobs_running) == 0, "the first sweep's job returned")
    # Start a sweep through the scheduler, as the interval would.
    scheduler.modify_job("starpod-health-sweep", next_run_time=runtime.clock())
    monitor = runtime.monitor
    await until(lambda: monitor.sweeping, "a sweep in progress")
    await runtime.stop()
    status = runtime.monitor.status()
    assert status.last_error is None
    assert status.last_sweep_at is not None and first_at is not None
    assert status.last_sweep_at > first_at
    assert status.instances_tracked == 3
    assert not status.running
    assert runtime.scheduler is not None and not runtime.scheduler.running


async def test_replicas_on_postgresql_lead_and_stand_by(
    make_settings: MakeSettings, pg_empty_url: str, backend_sim: BackendSimulator
) -> None:
    backend_sim.seed_instances(2)
    settings = make_settings(DATABASE_URL=pg_empty_url)
    async with Runtime(settings) as leader, Runtime(settings) as standby:
        await first_sweep(leader)
        async with httpx.AsyncClient() as http:
            ready = [await http.get(f"{r.url}/readyz") for r in (leader, standby)]
            scraped = [(await http.get(f"{r.url}/metrics")).text for r in (leader, standby)]
        assert standby.monitor is not None
        standby_status = standby.monitor.status()
    assert [r.status_code for r in ready] == [200, 200]
    assert [metric(text, "starpod_leader") for text in scraped] == [1, 0]
    assert standby_status.standing_by and not standby_status.is_leader


async def test_the_gateway_is_served_with_keys_and_off_without(
    make_settings: MakeSettings, backend_sim: BackendSimulator
) -> None:
    [instance_id] = backend_sim.seed_instances(1)
    async with Runtime(make_settings()) as runtime, httpx.AsyncClient(base_url=runtime.url) as http:
        listed = await http.get("/api/instances", headers={"X-API-Key": "viewer-gateway-key"})
        refused = await http.delete(
            f"/api/instances/{instance_id}", headers={"X-API-Key": "operator-gateway-key"}
        )
        anonymous = await http.get("/api/instances")
        spec = await http.get("/api/openapi.json")
    assert listed.status_code == 200 and [i["id"] for i in listed.json()] == [instance_id]
    assert refused.status_code == 403 and "admin role" in refused.json()["error"]
    assert anonymous.status_code == 401
    assert spec.json()["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    async with (
        Runtime(make_settings(STARPOD_GATEWAY_KEYS="")) as off,
        httpx.AsyncClient(base_url=off.url) as http,
    ):
        gone = await http.get("/api/instances", headers={"X-API-Key": "viewer-gateway-key"})
    assert gone.status_code == 404
