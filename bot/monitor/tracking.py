"""One sweep's observations → the monitor's effective statuses and the changes to record.

This is the "decide" step of a sweep, with no I/O: given what the backend said (instances,
health or health errors), the statuses recorded before and the little the monitor keeps in
memory per instance, it computes a :class:`SweepPlan`. The plan is applied to memory only
after the store committed it, so a failed transaction leaves the monitor as it was.

Effective status: the backend's status (lower-cased), except that a ``running`` instance
with a stale heartbeat is ``error`` and one whose health call failed
:data:`~bot.monitor.policy.HEALTH_FAILURES_FOR_UNKNOWN` times in a row is ``unknown``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.backend.models import HealthInfo, Instance
from bot.monitor.events import EventKind
from bot.monitor.policy import (
    HEALTH_FAILURES_FOR_UNKNOWN,
    RUNNING_STATUS,
    STALE_STATUS,
    UNKNOWN_STATUS,
    heartbeat_age_secs,
    is_stale,
    stale_reason,
)
from bot.store.records import HeartbeatSampleIn, InstanceSnapshot

PROBLEM_STATUSES = frozenset({STALE_STATUS, UNKNOWN_STATUS})


@dataclass(slots=True)
class Tracked:
    """What the monitor remembers about one instance between sweeps (kept small: 10k of them).

    ``status`` is the effective status last recorded; ``backend_status`` what the backend
    said then (tells a change the monitor saw from one the backend reported);
    ``restarts`` this process's recent auto-restart times (the store has them too);
    ``stored`` the instance row last written, so unchanged rows are not rewritten.
    """

    status: str | None = None
    backend_status: str | None = None
    health_failures: int = 0
    stale: bool = False
    announced_exhaustion: datetime | None = None
    deferred_until: datetime | None = None
    restarts: list[datetime] | None = None
    stored: InstanceSnapshot | None = None


@dataclass(frozen=True, slots=True)
class SliceHealth:
    """What the fetch step learned about one slice's health calls.

    ``fetched`` maps an instance id to its health, or to the text of its failed health
    call; an instance not in it was not asked (not running, or health inlined in the
    list). ``failures_count`` is False when the slice's health calls failed broadly: the
    backend is degraded, and a failure then says nothing about its instance (see
    policy.health_calls_degraded).
    """

    fetched: Mapping[str, HealthInfo | str]
    failures_count: bool = True


@dataclass(frozen=True, slots=True)
class Change:
    """One status change to record; ``announce`` says whether events and callbacks fire."""

    instance: Instance
    from_status: str | None
    to_status: str
    cause: str
    reason: str | None
    kind: EventKind
    health: HealthInfo | None
    announce: bool


@dataclass(frozen=True, slots=True)
class StaleInstance:
    """A running instance whose heartbeat is stale in this sweep."""

    instance: Instance
    health: HealthInfo
    age_secs: float


@dataclass(slots=True)
class SweepPlan:
    """Everything one sweep decided before touching the store."""

    snapshots: list[InstanceSnapshot] = field(default_factory=list)
    samples: list[HeartbeatSampleIn] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    stale: list[StaleInstance] = field(default_factory=list)
    running: int = 0
    # id → (effective status, backend status, health failures, stale, snapshot): applied
    # to memory after the commit.
    memory: dict[str, tuple[str, str, int, bool, InstanceSnapshot]] = field(default_factory=dict)

    def extend(self, other: SweepPlan) -> None:
        """Append the plan of another slice of the same sweep."""
        self.snapshots.extend(other.snapshots)
        self.samples.extend(other.samples)
        self.changes.extend(other.changes)
        self.stale.extend(other.stale)
        self.running += other.running
        self.memory.update(other.memory)


def _cause(tracked: Tracked | None, backend_status: str, derived: bool) -> str:
    # The monitor caused the change when it derived the new status itself, or when the
    # backend kept saying the same thing and only the monitor's reading moved.
    if derived:
        return "monitor"
    if tracked is not None and tracked.backend_status == backend_status:
        return "monitor"
    return "backend"


def plan_sweep(
    instances: Iterable[Instance],
    health: SliceHealth,
    *,
    previous: Mapping[str, str],
    tracked: Mapping[str, Tracked],
    now: datetime,
    timeout: timedelta,
) -> SweepPlan:
    """Decide effective statuses, samples and status changes for one sweep (no I/O).

    An instance's health is the one fetched for it, else the one the list inlined; a
    failed call leaves it without. ``previous`` maps instance id → the status recorded
    before (the store's, or memory's). An instance seen for the first time is recorded
    with its backend status, from None; that first sighting is announced only when it is
    ``error``. A stale one then changes to ``error`` like any other, so its staleness is
    announced and acted on.
    """
    plan = SweepPlan()
    fetched = health.fetched
    for inst in instances:
        backend_status = inst.status
        mem = tracked.get(inst.id)
        prev = previous.get(inst.id)
        failures = 0
        stale = False
        got = fetched.get(inst.id) if fetched else None
        health_error: str | None = None
        if got is None:
            info = inst.health
        elif isinstance(got, str):
            info, health_error = None, got
        else:
            info = got
        status = backend_status
        derived = False
        reason: str | None = None
        kind = EventKind.STATUS_CHANGED

        if inst.is_running:
            plan.running += 1
            if info is not None:
                age = heartbeat_age_secs(info.last_heartbeat, now)
                plan.samples.append(
                    HeartbeatSampleIn(
                        instance_id=inst.id,
                        sampled_at=now,
                        cpu_percent=info.cpu_percent,
                        memory_mb=info.memory_mb,
                        disk_mb=info.disk_mb,
                        last_heartbeat=info.last_heartbeat,
                        uptime_secs=info.uptime_secs,
                    )
                )
                if is_stale(info.last_heartbeat, now, timeout):
                    stale = True
                    status, derived, kind = STALE_STATUS, True, EventKind.STALE
                    reason = stale_reason(age, timeout)
                    plan.stale.append(StaleInstance(inst, info, age))
                elif prev in PROBLEM_STATUSES:
                    kind = EventKind.RECOVERED
                    if prev == UNKNOWN_STATUS:
                        reason = "health check answers again"
                    elif mem is None or mem.backend_status == RUNNING_STATUS:
                        reason = f"heartbeat fresh again ({age:.0f} s old)"
            else:
                failures = (mem.health_failures if mem is not None else 0) + int(
                    health.failures_count
                )
                if failures >= HEALTH_FAILURES_FOR_UNKNOWN:
                    status, derived, kind = UNKNOWN_STATUS, True, EventKind.HEALTH_UNKNOWN
                    reason = (
                        f"health check failed {failures} times in a row: "
                        f"{health_error or 'no answer'}"
                    )
                elif prev in PROBLEM_STATUSES:
                    # A failed health call says nothing new: keep the problem status.
                    status = prev

        stored = mem.stored if mem is not None else None
        if (
            stored is not None
            and stored.status == status
            and stored.name == inst.name
            and stored.region == inst.region
        ):
            # Unchanged: the row last written stands for it (one object fewer per instance,
            # and the callers' comparisons with it are identity checks).
            snapshot = stored
        else:
            snapshot = InstanceSnapshot(inst.id, inst.name, inst.region, status)
        plan.snapshots.append(snapshot)
        plan.memory[inst.id] = (status, backend_status, failures, stale, snapshot)

        if prev is None:
            # First sighting: the backend's word first, then the monitor's if it differs.
            plan.changes.append(
                Change(
                    instance=inst,
                    from_status=None,
                    to_status=backend_status,
                    cause="backend",
                    reason="first seen",
                    kind=EventKind.STATUS_CHANGED,
                    health=info,
                    announce=backend_status == STALE_STATUS,
                )
            )
            prev = backend_status
            if status == prev:
                continue
        elif status == prev:
            continue
        if reason is None:
            reason = f"backend reports {backend_status}"
        plan.changes.append(
            Change(
                instance=inst,
                from_status=prev,
                to_status=status,
                cause=_cause(mem, backend_status, derived),
                reason=reason,
                kind=kind,
                health=info,
                announce=True,
            )
        )
    return plan
