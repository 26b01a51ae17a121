"""plan_sweep, the pure decide step: effective statuses, causes and reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.backend.models import HealthInfo, Instance
from bot.monitor.events import EventKind
from bot.monitor.tracking import SliceHealth, SweepPlan, Tracked, plan_sweep

NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=90)


def inst(status: str = "running", instance_id: str = "i-1") -> Instance:
    return Instance.model_validate({"id": instance_id, "status": status, "name": "pod"})


def health(age_secs: float) -> HealthInfo:
    return HealthInfo(
        cpu_percent=12.5,
        memory_mb=512,
        disk_mb=2048,
        last_heartbeat=NOW - timedelta(seconds=age_secs),
        uptime_secs=3600,
    )


def plan(
    instance: Instance,
    got: HealthInfo | str | None,
    previous: str | None,
    mem: Tracked | None = None,
) -> SweepPlan:
    """One instance's plan; ``got`` is its fetched health, or its failed call's error."""
    prev = {instance.id: previous} if previous is not None else {}
    tracked = {instance.id: mem} if mem is not None else {}
    fetched = {instance.id: got} if got is not None else {}
    return plan_sweep(
        [instance], SliceHealth(fetched), previous=prev, tracked=tracked, now=NOW, timeout=TIMEOUT
    )


def test_fresh_running_instance_is_sampled_and_unchanged() -> None:
    p = plan(inst(), health(10), "running")
    assert p.changes == [] and p.stale == [] and p.running == 1
    assert len(p.samples) == 1 and p.samples[0].sampled_at == NOW
    assert p.snapshots[0].status == "running"


def test_stale_running_instance_becomes_error_by_the_monitor() -> None:
    p = plan(inst(), health(134), "running", Tracked("running", "running"))
    (change,) = p.changes
    assert (change.from_status, change.to_status, change.cause) == ("running", "error", "monitor")
    assert change.kind is EventKind.STALE and change.announce
    assert change.reason == "heartbeat stale: 134 s old (timeout 90 s)"
    assert [s.instance.id for s in p.stale] == ["i-1"] and p.stale[0].age_secs == 134


def test_still_stale_is_not_a_new_change() -> None:
    p = plan(inst(), health(500), "error", Tracked("error", "running", stale=True))
    assert p.changes == [] and len(p.stale) == 1


def test_recovery_from_stale_is_the_monitors_doing() -> None:
    p = plan(inst(), health(3), "error", Tracked("error", "running", stale=True))
    (change,) = p.changes
    assert change.kind is EventKind.RECOVERED and change.cause == "monitor"
    assert change.reason == "heartbeat fresh again (3 s old)"


def test_recovery_from_a_backend_error_is_the_backends() -> None:
    p = plan(inst(), health(3), "error", Tracked("error", "error"))
    (change,) = p.changes
    assert change.kind is EventKind.RECOVERED and change.cause == "backend"
    assert change.reason == "backend reports running"


def test_failed_health_keeps_a_problem_status_and_counts_to_unknown() -> None:
    failing = "Backend returned 500"
    p = plan(inst(), failing, "error", Tracked("error", "running", health_failures=0, stale=True))
    assert p.changes == [] and p.memory["i-1"][2] == 1 and p.samples == []
    p = plan(inst(), failing, "running", Tracked("running", "running", health_failures=1))
    assert p.changes == [] and p.memory["i-1"][:3] == ("running", "running", 2)
    p = plan(inst(), failing, "running", Tracked("running", "running", health_failures=2))
    (change,) = p.changes
    assert change.kind is EventKind.HEALTH_UNKNOWN and change.to_status == "unknown"
    assert change.reason == "health check failed 3 times in a row: Backend returned 500"


def test_non_running_instances_reset_health_failures_and_are_not_sampled() -> None:
    p = plan(inst("paused"), health(9999), "unknown", Tracked("unknown", "running"))
    (change,) = p.changes
    assert (change.to_status, change.cause, change.kind) == (
        "paused",
        "backend",
        EventKind.STATUS_CHANGED,
    )
    assert p.samples == [] and p.stale == [] and p.memory["i-1"][2] == 0


def test_first_sighting_is_recorded_and_announced_only_for_errors() -> None:
    p = plan(inst("paused"), None, None)
    assert [(c.from_status, c.to_status, c.announce) for c in p.changes] == [
        (None, "paused", False)
    ]
    p = plan(inst("Error"), None, None)
    assert [(c.to_status, c.announce) for c in p.changes] == [("error", True)]
    p = plan(inst(), health(200), None)
    assert [(c.from_status, c.to_status, c.cause) for c in p.changes] == [
        (None, "running", "backend"),
        ("running", "error", "monitor"),
    ]
