"""The monitor's pure decisions: staleness, effective status, the restart budget, storms.

Nothing here does I/O or reads a clock: every function is given ``now`` and the facts, so
the rules can be tested exhaustively and reused by the Slack answers (heartbeat age, stale
marks) without a running monitor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

UNKNOWN_STATUS = "unknown"
"""The effective status of a running instance whose health call keeps failing."""

STALE_STATUS = "error"
"""The effective status of a running instance with a stale heartbeat (the seed's choice)."""

RUNNING_STATUS = "running"

HEALTH_FAILURES_FOR_UNKNOWN = 3
"""Consecutive failed health calls after which a running instance counts as unknown."""

BACKEND_FAILURES_FOR_UNREACHABLE = 3
"""Consecutive failed list calls after which the backend counts as unreachable."""

DEGRADED_MIN_FAILURES = 3
DEGRADED_SHARE = 0.1


def health_calls_degraded(failed: int, checked: int) -> bool:
    """True when so many of one sweep's health calls failed that the backend is to blame.

    A backend answering 30 % of requests with errors would otherwise, by chance, fail
    some healthy instance's call three sweeps in a row and open an incident per
    instance. Failures count against an instance only in a sweep where most calls work:
    fewer than 3 failed, or fewer than 10 % of the calls.
    """
    return failed >= max(DEGRADED_MIN_FAILURES, DEGRADED_SHARE * checked)


def is_stale(last_heartbeat: datetime, now: datetime, timeout: timedelta) -> bool:
    """True when the heartbeat is older than ``timeout`` (strictly: age == timeout is fresh)."""
    return now - last_heartbeat > timeout


def heartbeat_age_secs(last_heartbeat: datetime, now: datetime) -> float:
    """Seconds since the heartbeat, never negative (backend and bot clocks differ a little)."""
    return max(0.0, (now - last_heartbeat).total_seconds())


def stale_reason(age_secs: float, timeout: timedelta) -> str:
    """The reason recorded with a stale transition, e.g. ``heartbeat stale: 134 s old``."""
    return f"heartbeat stale: {age_secs:.0f} s old (timeout {timeout.total_seconds():.0f} s)"


# -- restart budget --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestartNow:
    """Restart the instance in this sweep; it will be auto-restart number ``attempt``."""

    attempt: int


@dataclass(frozen=True, slots=True)
class DeferRestart:
    """Not yet: the growing delay since the previous auto-restart has not passed."""

    until: datetime
    attempt: int


@dataclass(frozen=True, slots=True)
class BudgetExhausted:
    """The budget is spent for this window.

    ``announce`` is True only for the first decision of an exhaustion (the caller passes
    back ``episode`` as ``announced_episode`` afterwards), so "stopped restarting" is said
    once, not every sweep. ``until`` is when the oldest restart leaves the window and the
    budget allows one again.
    """

    episode: datetime
    until: datetime
    announce: bool


RestartDecision = RestartNow | DeferRestart | BudgetExhausted


@dataclass(frozen=True, slots=True)
class RestartBudget:
    """At most ``count`` auto-restarts per instance in ``window``, spaced by ``delays``.

    ``delays[i]`` is the least time between auto-restart ``i`` and auto-restart ``i + 1``
    (``delays[0]`` applies to the first restart and is measured from nothing, so anything
    but 0 there is ignored: the first restart is always immediate). When there are fewer
    delays than restarts, the last delay repeats.
    """

    count: int = 3
    window: timedelta = timedelta(minutes=30)
    delays: tuple[timedelta, ...] = (
        timedelta(0),
        timedelta(seconds=60),
        timedelta(seconds=300),
    )

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("restart budget count must be >= 0")
        if self.window <= timedelta(0):
            raise ValueError("restart window must be positive")
        if any(delay < timedelta(0) for delay in self.delays):
            raise ValueError("restart delays must not be negative")

    def delay_before(self, attempt: int) -> timedelta:
        """The least time between auto-restart ``attempt - 1`` and ``attempt`` (1-based)."""
        if attempt <= 1 or not self.delays:
            return timedelta(0)
        return self.delays[min(attempt - 1, len(self.delays) - 1)]


def decide_restart(
    previous: Sequence[datetime],
    now: datetime,
    budget: RestartBudget,
    *,
    announced_episode: datetime | None = None,
) -> RestartDecision:
    """Decide what to do with a stale instance, given its earlier auto-restart times.

    ``previous`` may hold times outside the window (they are ignored) and in any order.
    ``announced_episode`` is the ``episode`` of the last exhaustion already announced.
    """
    recent = sorted(t for t in previous if now - t < budget.window)
    if budget.count == 0:
        # No auto-restarts at all: one announcement for the life of the process.
        never = datetime.min.replace(tzinfo=now.tzinfo)
        forever = datetime.max.replace(tzinfo=now.tzinfo)
        return BudgetExhausted(episode=never, until=forever, announce=announced_episode != never)
    if len(recent) >= budget.count:
        # The restart that spent the budget names the episode: a new episode needs the
        # budget to free up, then be spent again by a later restart.
        episode = recent[-1]
        until = recent[len(recent) - budget.count] + budget.window
        return BudgetExhausted(episode=episode, until=until, announce=announced_episode != episode)
    attempt = len(recent) + 1
    if recent:
        earliest = recent[-1] + budget.delay_before(attempt)
        if now < earliest:
            return DeferRestart(until=earliest, attempt=attempt)
    return RestartNow(attempt=attempt)


# -- storms ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StormRule:
    """A storm: at least ``min_instances`` AND at least ``share`` of running instances stale."""

    min_instances: int = 5
    share: float = 0.5

    def __post_init__(self) -> None:
        if self.min_instances < 1:
            raise ValueError("storm min_instances must be >= 1")
        if not 0 < self.share <= 1:
            raise ValueError("storm share must be in (0, 1]")

    def is_storm(self, stale: int, running: int) -> bool:
        """True when ``stale`` of ``running`` instances make a storm."""
        if running <= 0 or stale < self.min_instances:
            return False
        # The epsilon keeps 3 of 10 at share 0.3 a storm despite 0.3 * 10 == 3.0000000000000004.
        return stale >= self.share * running - 1e-9
