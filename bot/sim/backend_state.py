"""State of one simulated Starpod instance: lifecycle and health, derived lazily from a clock.

Nothing here runs timers. Every read passes the current time; a pending transition settles
the first time someone looks after it has ended, and it settles *at its end time*, so the
answer does not depend on when (or whether) anyone looked in between. That keeps 10,000
instances free of per-instance tasks and makes every figure reproducible under a fake clock.

Lifecycle (the wire contract's, plus the simulator's rules for illegal moves)::

    creating ──▶ running ──pause──▶ paused ──restart──▶ running
                    │  ▲                                   ▲
                    │  └──────────── restart ───────────── error
                    └──kill──▶ stopped      (kill works from any status but stopped)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import NamedTuple

HEARTBEAT_TICK_SECS = 5
"""A beating instance reports the last 5 s tick as its heartbeat, like a periodic agent."""

HEALTH_STEP_SECS = 10
"""Health figures move once per 10 s step, so two reads in the same step agree."""

# Shown instead of the old status while a transition runs, in the extended-statuses variant.
LABEL_CREATE = "provisioning"
LABEL_PAUSE = "stopping"
LABEL_KILL = "deleting"
LABEL_RESTART = "restarting"
LABEL_RESUME = "starting"

_TWO_PI = 2.0 * math.pi


class TransitionError(Exception):
    """An action the instance's status does not allow; the server answers 409 with the message."""


@dataclass(slots=True, frozen=True)
class HealthShape:
    """Per-instance constants that make its health figures wander: sums of slow sine waves.

    Sines are O(1) to evaluate at any time, smooth, deterministic and cheap; a random walk
    would need its whole history.
    """

    cpu_base: float
    cpu_amp: float
    cpu_period: float
    cpu_phase: float
    cpu_amp2: float
    cpu_period2: float
    cpu_phase2: float
    mem_base: float
    mem_amp: float
    mem_period: float
    mem_phase: float
    disk_base: float
    disk_mb_per_hour: float

    @classmethod
    def draw(cls, rng: random.Random) -> HealthShape:
        """Draw a plausible shape from a seeded RNG (so a seed fixes every figure)."""
        return cls(
            cpu_base=rng.uniform(8.0, 55.0),
            cpu_amp=rng.uniform(3.0, 20.0),
            cpu_period=rng.uniform(300.0, 1800.0),
            cpu_phase=rng.uniform(0.0, _TWO_PI),
            cpu_amp2=rng.uniform(1.0, 8.0),
            cpu_period2=rng.uniform(40.0, 120.0),
            cpu_phase2=rng.uniform(0.0, _TWO_PI),
            mem_base=rng.choice((512.0, 1024.0, 2048.0, 4096.0)) * rng.uniform(0.3, 0.7),
            mem_amp=rng.uniform(20.0, 200.0),
            mem_period=rng.uniform(600.0, 3600.0),
            mem_phase=rng.uniform(0.0, _TWO_PI),
            disk_base=rng.uniform(2_000.0, 20_000.0),
            disk_mb_per_hour=rng.uniform(0.5, 12.0),
        )


def heartbeat_tick(t: float) -> int:
    """Round a time down to the heartbeat tick."""
    return int(t // HEARTBEAT_TICK_SECS) * HEARTBEAT_TICK_SECS


class HealthFigures(NamedTuple):
    """One health reading, in wire units before any variant formatting."""

    cpu_percent: float
    memory_mb: int
    disk_mb: int
    last_heartbeat: int
    uptime_secs: int


@dataclass(slots=True, eq=False)
class SimInstance:
    """One instance. ``status`` is the settled status; a pending transition may be running."""

    id: str
    name: str | None
    region: str | None
    created_at: float
    status: str
    updated_at: float
    shape: HealthShape
    noise_seed: int
    started_at: float | None = None
    left_running_at: float | None = None
    pending_status: str | None = None
    pending_label: str | None = None
    pending_until: float = 0.0
    # The heartbeat stops at this time (in the past: stalled; in the future: a scheduled stall).
    heartbeat_stops_at: float | None = None
    # A sticky stall survives restarts, so the monitor's restart budget can run out.
    heartbeat_sticky: bool = False
    # Restarts a stall still survives before one revives it: a wedge that outlasts the
    # monitor's auto-restart budget but not a person's restart after it.
    heartbeat_survives: int = 0
    # Bumped on every status change; caches of derived values compare against it.
    version: int = 0
    # (version, 10 s step) → (cpu, memory, disk): the costly part of a health reading.
    wander_key: tuple[int, float] | None = None
    wander: tuple[float, int, int] = (0.0, 0, 0)
    # Owned by the wire module: a pre-encoded prefix of the Instance JSON, and its key.
    wire_key: object = None
    wire_prefix: str = ""

    # -- lifecycle -------------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Apply a pending transition whose end time has passed, as of its end time."""
        if self.pending_status is not None and now >= self.pending_until:
            target, at = self.pending_status, self.pending_until
            self.pending_status = None
            self.pending_label = None
            self._enter(target, at, fresh_start=True)

    def _enter(self, status: str, at: float, *, fresh_start: bool) -> None:
        was_running = self.status == "running"
        if status == "running":
            if fresh_start or not was_running:
                self.started_at = at
                self.left_running_at = None
                self._revive_heartbeat(at)
        elif was_running:
            self.left_running_at = at
            # A wedge still ahead keeps its time: pausing first must not bring it forward.
            ahead = self.heartbeat_survives > 0
            if self.heartbeat_stops_at is None or (self.heartbeat_stops_at > at and not ahead):
                self.heartbeat_stops_at = at
        self.status = status
        self.updated_at = at
        self.version += 1

    def _begin(self, target: str, label: str, now: float, duration: float) -> None:
        self.pending_status = target
        self.pending_label = label
        self.pending_until = now + max(duration, 0.0)
        self.updated_at = now
        self.version += 1
        self.settle(now)

    def _busy(self, verb: str) -> None:
        if self.pending_status is not None:
            raise TransitionError(f"Cannot {verb}: instance is {self.pending_label}")

    def begin_create(self, now: float, duration: float) -> None:
        """Start provisioning: ``creating`` now, ``running`` after ``duration``."""
        self.status = "creating"
        self._begin("running", LABEL_CREATE, now, duration)

    def pause(self, now: float, duration: float) -> None:
        """running → paused; anything else is a :class:`TransitionError`."""
        self.settle(now)
        self._busy("pause")
        if self.status != "running":
            raise TransitionError(f"Cannot pause: instance is {self.status}")
        self._begin("paused", LABEL_PAUSE, now, duration)

    def restart(self, now: float, duration: float) -> None:
        """running/paused/error → running; revives the heartbeat unless the stall is sticky."""
        self.settle(now)
        self._busy("restart")
        if self.status not in ("running", "paused", "error"):
            raise TransitionError(f"Cannot restart: instance is {self.status}")
        label = LABEL_RESUME if self.status == "paused" else LABEL_RESTART
        self._begin("running", label, now, duration)

    def kill(self, now: float, duration: float) -> None:
        """Any status but stopped → stopped; a kill overrides another pending transition."""
        self.settle(now)
        if self.status == "stopped":
            raise TransitionError("Cannot stop: instance is stopped")
        if self.pending_status == "stopped":
            raise TransitionError(f"Cannot stop: instance is {self.pending_label}")
        self._begin("stopped", LABEL_KILL, now, duration)

    def force_status(self, status: str, now: float) -> None:
        """Set a status at once (any string), dropping a pending transition."""
        self.settle(now)
        self.pending_status = None
        self.pending_label = None
        self.version += 1
        if status != self.status:
            self._enter(status, now, fresh_start=False)

    # -- heartbeat -------------------------------------------------------------------------

    def _revive_heartbeat(self, at: float) -> None:
        """A (re)start at ``at``: the heartbeat beats again unless the stall outlives it."""
        if self.heartbeat_sticky:
            return
        if self.heartbeat_survives > 0:
            if self.heartbeat_stops_at is not None and self.heartbeat_stops_at <= at:
                self.heartbeat_survives -= 1
            return  # a wedge still ahead stays scheduled
        self.heartbeat_stops_at = None
        self.heartbeat_survives = 0

    def stop_heartbeat(self, now: float, *, sticky: bool) -> None:
        """Freeze the heartbeat now (it goes stale as the clock moves on)."""
        self.settle(now)
        if self.heartbeat_stops_at is None or self.heartbeat_stops_at > now:
            self.heartbeat_stops_at = now
        self.heartbeat_sticky = sticky
        self.heartbeat_survives = 0

    def resume_heartbeat(self, now: float) -> None:
        """Beat again from now on (only visible while running)."""
        self.settle(now)
        self.heartbeat_stops_at = None
        self.heartbeat_sticky = False
        self.heartbeat_survives = 0

    def schedule_stall(self, now: float, after_secs: float, *, survives_restarts: int = 0) -> None:
        """Let the heartbeat stop by itself ``after_secs`` from now (not sticky).

        With ``survives_restarts`` the stall is a wedge: a restart before it does not cancel
        it, and the first ``survives_restarts`` restarts after it leave the heartbeat stopped;
        the next one revives it. A plain stall is cancelled or ended by any restart.
        """
        if survives_restarts < 0:
            raise ValueError("survives_restarts must not be negative")
        self.settle(now)
        self.heartbeat_stops_at = now + max(after_secs, 0.0)
        self.heartbeat_sticky = False
        self.heartbeat_survives = survives_restarts

    def last_heartbeat(self, now: float) -> int:
        """The last heartbeat as of ``now``: the latest tick while beating, else frozen."""
        if self.status == "running":
            stop = self.heartbeat_stops_at
            frozen_at = now if stop is None or stop > now else stop
        else:
            frozen_at = self.left_running_at if self.left_running_at is not None else now
            stop = self.heartbeat_stops_at
            if stop is not None and stop < frozen_at:
                frozen_at = stop
            if self.started_at is None:
                # Never ran: no agent ever reported; show the creation time.
                return int(self.created_at)
        tick = heartbeat_tick(frozen_at)
        started = self.started_at
        if started is not None and frozen_at >= started:
            # The agent reports right away after a (re)start, not at the next tick.
            tick = max(tick, int(started))
        return tick

    # -- health ----------------------------------------------------------------------------

    def health(self, now: float) -> HealthFigures:
        """Health figures as of ``now`` (settle first).

        Figures depend on ``now`` only through whole seconds (and 10 s steps), so a list of
        10,000 can reuse each instance's wander for ten seconds.
        """
        step = (now // HEALTH_STEP_SECS) * HEALTH_STEP_SECS
        key = (self.version, step)
        if self.wander_key != key:
            self.wander = self._wander(step)
            self.wander_key = key
        cpu, memory, disk = self.wander
        if self.status != "running":
            return HealthFigures(0.0, 0, disk, self.last_heartbeat(now), 0)
        started = self.started_at if self.started_at is not None else self.created_at
        uptime = int(now) - int(started)
        return HealthFigures(cpu, memory, disk, self.last_heartbeat(now), max(uptime, 0))

    def _wander(self, t: float) -> tuple[float, int, int]:
        shape = self.shape
        running = self.status == "running"
        disk_until = t if running or self.left_running_at is None else self.left_running_at
        disk = (
            shape.disk_base + shape.disk_mb_per_hour * max(disk_until - self.created_at, 0.0) / 3600
        )
        if not running:
            return 0.0, 0, int(disk)
        cpu = (
            shape.cpu_base
            + shape.cpu_amp * math.sin(_TWO_PI * t / shape.cpu_period + shape.cpu_phase)
            + shape.cpu_amp2 * math.sin(_TWO_PI * t / shape.cpu_period2 + shape.cpu_phase2)
        )
        memory = shape.mem_base + shape.mem_amp * math.sin(
            _TWO_PI * t / shape.mem_period + shape.mem_phase
        )
        return round(min(max(cpu, 0.0), 100.0), 1), int(max(memory, 16.0)), int(disk)
