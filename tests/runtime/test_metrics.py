"""Metrics: private registries, the backend client's observer, sweeps, scrape-time gauges."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.backend.client import InstanceClient
from bot.backend.errors import BackendStatusError
from bot.metrics import METRIC_NAMES, Metrics, create_metrics
from bot.monitor import HealthMonitor
from bot.sim.backend import BackendSimulator


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_every_metric_is_exposed_and_registries_are_private() -> None:
    first, second = create_metrics(), create_metrics()
    first.observe_command("list", "ok")
    text = (await first.render()).decode()
    for name in METRIC_NAMES:
        assert name in text, name
    # The other registry saw nothing: no command sample at all.
    assert not [
        k for k in samples((await second.render()).decode()) if k[0].startswith("starpod_commands")
    ]


async def test_backend_requests_and_errors_by_endpoint_and_status(
    backend_sim: BackendSimulator,
) -> None:
    metrics = create_metrics()
    backend_sim.seed_instances(2)
    async with InstanceClient(backend_sim.url, observer=metrics.observe_backend) as client:
        await client.list_instances()
        with pytest.raises(BackendStatusError):
            await client.get_instance("00000000-0000-0000-0000-000000000000")
    got = samples((await metrics.render()).decode())
    assert got[("starpod_backend_requests_total", (("endpoint", "list"), ("status", "200")))] == 1
    assert got[("starpod_backend_requests_total", (("endpoint", "get"), ("status", "404")))] == 1
    assert got[("starpod_backend_errors_total", (("endpoint", "get"), ("status", "404")))] == 1
    assert ("starpod_backend_errors_total", (("endpoint", "list"), ("status", "200"))) not in got
    assert got[("starpod_backend_request_duration_seconds_count", (("endpoint", "list"),))] == 1


async def test_sweeps_are_counted_through_the_monitor_hook(backend_sim: BackendSimulator) -> None:
    metrics = create_metrics()
    backend_sim.seed_instances(3)
    async with InstanceClient(backend_sim.url, retry_backoff=0) as client:
        monitor = HealthMonitor(client).on_sweep(metrics.observe_sweep_report)
        await monitor.sweep_once()
        await backend_sim.stop()  # the next sweep cannot list instances
        await monitor.sweep_once()
    got = samples((await metrics.render()).decode())
    assert got[("starpod_sweeps_total", (("result", "ok"),))] == 1
    assert got[("starpod_sweeps_total", (("result", "error"),))] == 1
    assert got[("starpod_sweep_duration_seconds_count", ())] == 2


async def test_gauges_are_read_from_sync_and_async_sources_at_scrape() -> None:
    metrics = Metrics()
    state = {"open": 2, "leader": True}

    async def open_incidents() -> int:
        return state["open"]

    def broken() -> int:
        raise RuntimeError("database gone")

    metrics.set_source("open_incidents", open_incidents)
    metrics.set_source("leader", lambda: state["leader"])
    metrics.set_source("notifications_pending", broken)
    got = samples((await metrics.render()).decode())
    assert got[("starpod_open_incidents", ())] == 2
    assert got[("starpod_leader", ())] == 1
    assert math.isnan(got[("starpod_notifications_pending", ())])
    state.update(open=0, leader=False)
    got = samples((await metrics.render()).decode())
    assert got[("starpod_open_incidents", ())] == 0
    assert got[("starpod_leader", ())] == 0


async def test_commands_acks_and_notifications() -> None:
    metrics = create_metrics()
    metrics.observe_command("restart", "ok")
    metrics.observe_command("kill", "refused", source="gateway")
    metrics.observe_ack(0.04)
    metrics.observe_notification("sent")
    metrics.observe_notification("sent")
    metrics.observe_notification("failed")
    got = samples((await metrics.render()).decode())
    key = (("result", "ok"), ("source", "slack"), ("subcommand", "restart"))
    assert got[("starpod_commands_total", key)] == 1
    key = (("result", "refused"), ("source", "gateway"), ("subcommand", "kill"))
    assert got[("starpod_commands_total", key)] == 1
    assert got[("starpod_ack_latency_seconds_count", ())] == 1
    assert got[("starpod_ack_latency_seconds_bucket", (("le", "0.05"),))] == 1
    assert got[("starpod_notifications_sent_total", ())] == 2
    assert got[("starpod_notifications_failed_total", ())] == 1
